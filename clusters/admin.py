"""Admin for every model; secret fields come from clusters.forms, so they are write-only here too."""

from django.contrib import admin

from clusters.forms import ClusterForm, SSHCredentialForm
from clusters.models import (
    ApiToken,
    AuditEntry,
    Cluster,
    ConfigPush,
    FailoverEvent,
    Node,
    NodeState,
    NotifyNonce,
    PushStep,
    SSHCredential,
    VipState,
    VirtualIP,
)


class WriteOnlySecretsAdmin(admin.ModelAdmin):
    """Lays out the form's "remove the stored secret" boxes only where they exist: on a change."""

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None:
            clear = set(self.form.clear_field_names())
            fields = [f for f in fields if f not in clear]
        return fields


@admin.register(SSHCredential)
class SSHCredentialAdmin(WriteOnlySecretsAdmin):
    form = SSHCredentialForm
    list_display = ["name", "username", "updated"]
    search_fields = ["name", "username"]


class NodeInline(admin.TabularInline):
    model = Node
    extra = 0
    fields = ["name", "address", "ssh_port", "priority", "interface", "credential", "maintenance"]


class VirtualIPInline(admin.TabularInline):
    model = VirtualIP
    extra = 0


@admin.register(Cluster)
class ClusterAdmin(WriteOnlySecretsAdmin):
    form = ClusterForm
    list_display = ["name", "network", "virtual_router_id", "interface", "unicast"]
    search_fields = ["name", "network"]
    inlines = [NodeInline, VirtualIPInline]


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["name", "cluster", "address", "priority", "maintenance", "host_key_fingerprint"]
    list_filter = ["cluster", "maintenance"]
    search_fields = ["name", "address"]
    readonly_fields = ["offered_host_key_fingerprint"]


@admin.register(VirtualIP)
class VirtualIPAdmin(admin.ModelAdmin):
    list_display = ["address", "cluster", "label"]
    search_fields = ["address", "label"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Read-only but deletable: admins see who holds a token and revoke it; keys are never shown."""

    list_display = ["prefix", "user", "name", "created", "last_used"]
    readonly_fields = ["prefix", "user", "name", "created", "last_used"]
    fields = readonly_fields
    search_fields = ["prefix", "name", "user__username"]

    def has_add_permission(self, request):
        # Tokens are made with `manage.py create_api_token`, which shows the key once.
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "username", "action", "object_type", "object_repr", "result"]
    list_filter = ["action"]
    search_fields = ["username", "object_repr"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # An audit log that admins can edit is not an audit log.
        return False


@admin.register(ConfigPush)
class ConfigPushAdmin(admin.ModelAdmin):
    list_display = ["pk", "cluster", "kind", "state", "created", "finished"]
    list_filter = ["state", "kind"]
    readonly_fields = [f.name for f in ConfigPush._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(FailoverEvent)
class FailoverEventAdmin(admin.ModelAdmin):
    list_display = ["at", "cluster", "vip_address", "from_node", "to_node", "kind", "detected_by"]
    list_filter = ["kind", "detected_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Observations and bookkeeping the panel writes itself: shown, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PushStep)
class PushStepAdmin(ReadOnlyAdmin):
    list_display = ["push", "position", "node_name", "state", "finished"]
    list_filter = ["state"]


@admin.register(NodeState)
class NodeStateAdmin(ReadOnlyAdmin):
    list_display = ["node", "checked_at", "reachable", "keepalived_running", "vrrp_state", "drift"]


@admin.register(VipState)
class VipStateAdmin(ReadOnlyAdmin):
    list_display = ["vip", "holder", "since", "split_brain", "no_holder", "checked_at"]


@admin.register(NotifyNonce)
class NotifyNonceAdmin(ReadOnlyAdmin):
    list_display = ["nonce", "received"]
