"""Admin for every model; secret fields come from clusters.forms, so they are write-only here too."""

from django.contrib import admin

from clusters.forms import ClusterForm, SSHCredentialForm
from clusters.models import Cluster, Node, SSHCredential, VirtualIP


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
