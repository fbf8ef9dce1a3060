"""Admin for every model; secret fields come from clusters.forms, so they are write-only here too.

Every change made here goes through clusters.services (save_model, delete_model, the inlines'
save_formset), so it obeys the same rules as the panel and is audited the same way: a node's
maintenance box pushes, reload_command stays an admin's, a secret is logged as "(changed)".
"""

from functools import partial

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponseRedirect

from clusters import roles
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
from clusters.services import EXPLICIT, records, users
from clusters.services import clusters as cluster_services
from clusters.services import credentials as credential_services
from clusters.services import nodes as node_services
from clusters.services import vips as vip_services
from clusters.services.errors import Refused


def _confirmed(service):
    """The admin's own pages are its confirmation (its "Are you sure?" page for a deletion):
    the service's confirmation is given (clusters.services.EXPLICIT)."""
    return partial(service, confirm=EXPLICIT)


def _data(form, fields):
    return {name: form.cleaned_data[name] for name in fields if name in form.cleaned_data}


class ServiceAdmin(admin.ModelAdmin):
    """save_model/delete_model call the model's services; a refusal is shown, not saved.

    `services` is (create(user, [parent,] data), update(user, obj, data), delete(user, obj),
    FIELDS); `parent` names the field passed to create before the data, if any.
    """

    services = None
    parent = None

    def save_model(self, request, obj, form, change):
        create, update, _delete, fields = self.services
        data = _data(form, fields)
        try:
            if change:
                saved = update(request.user, obj, data)
            elif self.parent:
                data.pop(self.parent, None)
                saved = create(request.user, getattr(obj, self.parent), data)
            else:
                saved = create(request.user, data)
        except (Refused, ValidationError) as e:
            self._refused(request, e)
            return
        obj.pk = saved.pk  # the admin's redirect and log read it
        obj._state.adding = False
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        try:
            self.services[2](request.user, obj)
        except Refused as e:
            self._refused(request, e)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def _refused(self, request, error):
        request._vipanel_refused = True
        text = error.text if isinstance(error, Refused) else "; ".join(error.messages)
        messages.error(request, f"Not saved: {text}")

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs):
        # After a refusal, the admin's own "changed successfully" would be a lie.
        if getattr(request, "_vipanel_refused", False) and level == messages.SUCCESS:
            return
        super().message_user(request, message, level, *args, **kwargs)

    def log_addition(self, request, obj, message):
        if getattr(request, "_vipanel_refused", False):
            return None  # nothing was added; the audit log has the refusal
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if getattr(request, "_vipanel_refused", False):
            return None
        return super().log_change(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(request, "_vipanel_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if getattr(request, "_vipanel_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)


class RecordAdmin(admin.ModelAdmin):
    """Deleting a record the panel writes itself is an admin's act, and audited."""

    def delete_model(self, request, obj):
        records.delete_record(request.user, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            records.delete_record(request.user, obj)


class WriteOnlySecretsAdmin(ServiceAdmin):
    """Lays out the form's "remove the stored secret" boxes only where they exist: on a change
    of an object with that secret stored."""

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        hidden = set(self.form.clear_field_names()) - set(self.form.clear_fields_for(obj))
        return [f for f in fields if f not in hidden]


@admin.register(SSHCredential)
class SSHCredentialAdmin(WriteOnlySecretsAdmin):
    form = SSHCredentialForm
    services = (
        credential_services.create_credential,
        credential_services.update_credential,
        credential_services.delete_credential,
        credential_services.FIELDS,
    )
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
    services = (
        cluster_services.create_cluster,
        cluster_services.update_cluster,
        _confirmed(cluster_services.delete_cluster),
        cluster_services.FIELDS,
    )

    def save_formset(self, request, form, formset, change):
        """Each inline row through its service: a node's maintenance box pushes here too."""
        # The admin's change message reads these; the audit log has the real record.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if getattr(request, "_vipanel_refused", False) or form.instance.pk is None:
            return
        model = formset.model
        service = {Node: node_services, VirtualIP: vip_services}[model]
        verb = "node" if model is Node else "vip"
        create = getattr(service, f"create_{verb}")
        update = getattr(service, f"update_{verb}")
        if model is Node:
            update = _confirmed(update)
        delete = _confirmed(getattr(service, f"delete_{verb}"))
        try:
            for row in formset.deleted_forms:
                if row.instance.pk:
                    delete(request.user, row.instance)
            for row in formset.forms:
                if row in formset.deleted_forms or not row.has_changed():
                    continue
                data = _data(row, service.FIELDS)
                data.pop("cluster", None)
                if row.instance.pk:
                    update(request.user, row.instance, data)
                else:
                    create(request.user, form.instance, data)
        except (Refused, ValidationError) as e:
            self._refused(request, e)


@admin.register(Node)
class NodeAdmin(ServiceAdmin):
    list_display = ["name", "cluster", "address", "priority", "maintenance", "host_key_fingerprint"]
    list_filter = ["cluster", "maintenance"]
    search_fields = ["name", "address"]
    readonly_fields = ["offered_host_key_fingerprint"]
    services = (
        node_services.create_node,
        _confirmed(node_services.update_node),
        _confirmed(node_services.delete_node),
        node_services.FIELDS,
    )
    parent = "cluster"


@admin.register(VirtualIP)
class VirtualIPAdmin(ServiceAdmin):
    list_display = ["address", "cluster", "label"]
    services = (
        vip_services.create_vip,
        vip_services.update_vip,
        _confirmed(vip_services.delete_vip),
        vip_services.FIELDS,
    )
    parent = "cluster"
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

    def delete_model(self, request, obj):
        users.revoke_api_token(request.user, obj)

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("user"):
            users.revoke_api_token(request.user, token)


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
class ConfigPushAdmin(RecordAdmin):
    list_display = ["pk", "cluster", "kind", "state", "created", "finished"]
    list_filter = ["state", "kind"]
    readonly_fields = [f.name for f in ConfigPush._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(FailoverEvent)
class FailoverEventAdmin(RecordAdmin):
    list_display = ["at", "cluster", "vip_address", "from_node", "to_node", "kind", "detected_by"]
    list_filter = ["kind", "detected_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(RecordAdmin):
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
    # A drifted file as read on the node holds auth_pass: its masked diff is the panel's
    # (/nodes/<id>/drift/), never the raw text here.
    exclude = ["drift_config"]


@admin.register(VipState)
class VipStateAdmin(ReadOnlyAdmin):
    list_display = ["vip", "holder", "since", "split_brain", "no_holder", "checked_at"]


@admin.register(NotifyNonce)
class NotifyNonceAdmin(ReadOnlyAdmin):
    list_display = ["nonce", "received"]


# --- django.contrib.auth's users and groups: their own forms, audited like the rest ---------

SECRET_USER_FIELDS = {"password", "password1", "password2", "usable_password"}


def _value(value):
    if hasattr(value, "all"):  # a related manager
        value = value.all()
    if isinstance(value, (list, tuple, set, QuerySet)):
        return sorted(str(v) for v in value)
    return value if value is None or isinstance(value, (bool, int, float)) else str(value)


def _auth_changes(form):
    changes = {}
    for name in form.changed_data:
        if name in SECRET_USER_FIELDS:
            changes["password"] = ["(secret)", "(changed)"]
        else:
            changes[name] = [_value(form.initial.get(name)), _value(form.cleaned_data.get(name))]
    return changes


def _role(user):
    fresh = type(user).objects.get(pk=user.pk)
    return roles.role_of(fresh) or "none"


class AuditedAuthAdmin(admin.ModelAdmin):
    """Users and groups through django.contrib.auth's forms, each save audited in the admin's
    transaction; for a user, with the vipanel role it had and has (groups are saved last)."""

    def save_model(self, request, obj, form, change):
        if change and isinstance(obj, get_user_model()):
            request._vipanel_role_before = _role(obj)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        target = form.instance
        changes = _auth_changes(form)
        if isinstance(target, get_user_model()):
            before, after = getattr(request, "_vipanel_role_before", None), _role(target)
            if before != after:
                changes["role"] = [before, after]
        kind = target._meta.model_name
        users.record_admin_change(
            request.user, target, f"{kind}.update" if change else f"{kind}.create", changes
        )


class VipanelUserAdmin(AuditedAuthAdmin, UserAdmin):
    def user_change_password(self, request, id, form_url=""):
        """UserAdmin's own password page saves its form without save_model; audited here, in
        the same transaction, with no value."""
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:  # saved
                target = self.get_object(request, unquote(id))
                users.record_admin_change(
                    request.user, target, "user.password", {"password": ["(secret)", "(changed)"]}
                )
        return response

    def delete_model(self, request, obj):
        try:
            users.delete_user(request.user, obj)
        except Refused as e:
            messages.error(request, f"Not deleted: {e.text}")

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class VipanelGroupAdmin(AuditedAuthAdmin, GroupAdmin):
    def delete_model(self, request, obj):
        records.delete_record(request.user, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            records.delete_record(request.user, obj)


class AuditedAccessAttemptAdmin(AccessAttemptAdmin):
    """django-axes' lockouts: deleting one unlocks a user at an address, an admin's decision,
    audited like every other change (axes' own admin writes no entry)."""

    def delete_model(self, request, obj):
        with transaction.atomic():
            users.record_unlock(request.user, obj.username, obj.ip_address)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                users.record_unlock(request.user, obj.username, obj.ip_address)
            super().delete_queryset(request, queryset)


for _model, _admin in (
    (get_user_model(), VipanelUserAdmin),
    (Group, VipanelGroupAdmin),
    (AccessAttempt, AuditedAccessAttemptAdmin),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
