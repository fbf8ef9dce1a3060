"""The JSON API's handlers. `urls.py` joins them per URL with base.route().

Every write builds the instance, validates it with full_clean() (the forms' rules), saves it and
records an audit entry in one transaction. Secrets are accepted and never returned.
"""

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clusters import audit, history, preview, remote, roles, status
from clusters.api import schema, serializers
from clusters.api.base import (
    PUBLIC,
    Conflict,
    Invalid,
    needs,
    paginated,
    read_empty,
    read_json,
)
from clusters.api.serializers import CLUSTER, CREDENTIAL, NODE, VIP, to_dict
from clusters.models import (
    Cluster,
    ConfigPush,
    FailoverEvent,
    Node,
    SSHCredential,
    VirtualIP,
)
from clusters.push import PushRefused, resume_push, start_push
from clusters.roles import ADMIN, OPERATOR, VIEWER


def _created(data):
    return JsonResponse(data, status=201)


def _accepted(data):
    return JsonResponse(data, status=202)


def _no_content():
    return HttpResponse(status=204)


def _save(user, resource, instance, data):
    """Validate data onto instance, save it and audit the change; Invalid with the errors."""
    creating = instance.pk is None
    before = {} if creating else audit.snapshot(instance, resource.writable)
    errors = serializers.apply(resource, instance, data)
    if errors:
        raise Invalid(errors)
    try:
        with transaction.atomic():
            instance.save()
            changes = audit.diff(before, audit.snapshot(instance, resource.writable))
            if creating or changes:
                action = f"{resource.audit_name}.{'create' if creating else 'update'}"
                result = "created via API" if creating else "saved via API"
                audit.record(user, action, instance, changes=changes, result=result)
    except IntegrityError:
        # clean() checked the rules; a concurrent write got there first.
        raise Conflict(
            "Another change conflicting with this one was saved meanwhile; retry."
        ) from None
    return to_dict(resource, instance)


def _delete(user, resource, instance):
    before = audit.snapshot(instance, resource.writable)
    try:
        with transaction.atomic():
            audit.record(
                user,
                f"{resource.audit_name}.delete",
                instance,
                changes=audit.diff(before, {}),
                result="deleted via API",
            )
            instance.delete()
    except ProtectedError as e:
        names = ", ".join(sorted(str(o) for o in e.protected_objects)[:10])
        raise Conflict(f"Still in use by {names}; change those first.") from None
    return _no_content()


def _cluster(cluster_id):
    return get_object_or_404(Cluster, pk=cluster_id)


# --- Schema ----------------------------------------------------------------------------------


@needs(PUBLIC)
def schema_view(request):
    return JsonResponse(schema.SCHEMA)


# --- Credentials -----------------------------------------------------------------------------


# Operators pick a credential for a cluster or node, so they see names and user names (never a
# secret); viewers do not need them, as in the panel.
@needs(OPERATOR)
def credential_list(request):
    credentials = SSHCredential.objects.defer("private_key", "passphrase").order_by("name", "pk")
    return paginated(request, credentials, lambda c: to_dict(CREDENTIAL, c))


@needs(ADMIN)
def credential_create(request):
    credential = SSHCredential()
    return _created(_save(request.user, CREDENTIAL, credential, read_json(request)))


# --- Clusters --------------------------------------------------------------------------------


def _refuse_reload_command(request, cluster, data):
    # The admin-only fields (reload_command, check_script, config_path): clusters/roles.py.
    if not isinstance(data, dict):
        return
    refused = roles.admin_only_violations(request.user, cluster, data)
    if refused:
        raise PermissionDenied(" ".join(refused.values()))


@needs(VIEWER)
def cluster_list(request):
    clusters = Cluster.objects.defer("notify_secret").order_by("name", "pk")
    return paginated(request, clusters, lambda c: to_dict(CLUSTER, c))


@needs(OPERATOR)
def cluster_create(request):
    data = read_json(request)
    cluster = Cluster()
    _refuse_reload_command(request, cluster, data)
    return _created(_save(request.user, CLUSTER, cluster, data))


@needs(VIEWER)
def cluster_detail(request, cluster_id):
    return JsonResponse(to_dict(CLUSTER, _cluster(cluster_id)))


@needs(OPERATOR)
def cluster_update(request, cluster_id):
    cluster = _cluster(cluster_id)
    data = read_json(request)
    _refuse_reload_command(request, cluster, data)
    return JsonResponse(_save(request.user, CLUSTER, cluster, data))


@needs(OPERATOR)
def cluster_delete(request, cluster_id):
    cluster = _cluster(cluster_id)
    active = cluster.pushes.filter(state__in=ConfigPush.ACTIVE_STATES).first()
    if active:
        raise Conflict(
            f"Push #{active.pk} of this cluster is {active.state}; wait for it to finish.",
            active={"id": active.pk, "state": active.state},
        )
    return _delete(request.user, CLUSTER, cluster)


# --- Nodes -----------------------------------------------------------------------------------


@needs(VIEWER)
def node_list(request, cluster_id):
    cluster = _cluster(cluster_id)
    nodes = Node.objects.filter(cluster=cluster).order_by("-priority", "pk")
    return paginated(request, nodes, lambda n: to_dict(NODE, n))


@needs(OPERATOR)
def node_create(request, cluster_id):
    node = Node(cluster=_cluster(cluster_id))
    return _created(_save(request.user, NODE, node, read_json(request)))


def _node(node_id):
    return get_object_or_404(Node.objects.select_related("cluster"), pk=node_id)


@needs(VIEWER)
def node_detail(request, node_id):
    return JsonResponse(to_dict(NODE, _node(node_id)))


@needs(OPERATOR)
def node_update(request, node_id):
    node = _node(node_id)
    data = read_json(request)
    pinned = node.host_key_fingerprint
    if isinstance(data, dict) and pinned and data.get("host_key_fingerprint", pinned) != pinned:
        message = (
            "The host key is pinned; a different one is accepted only with "
            f"POST /api/v1/nodes/{node.pk}/repin/, after the node has offered it."
        )
        raise Invalid({"host_key_fingerprint": [message]})
    return JsonResponse(_save(request.user, NODE, node, data))


@needs(OPERATOR)
def node_delete(request, node_id):
    return _delete(request.user, NODE, _node(node_id))


@needs(OPERATOR)
def node_repin(request, node_id):
    """Accept the host key the node offered instead of the pinned one.

    An optional {"fingerprint": ...} must equal the offered key: the caller compared that one,
    and a key offered since then is not accepted blindly.
    """
    node = _node(node_id)
    data = read_json(request)
    if not isinstance(data, dict):
        raise Invalid({"__all__": ['Send {} or {"fingerprint": "SHA256:..."}.']})
    unknown = set(data) - {"fingerprint"}
    if unknown:
        raise Invalid({name: ["Unknown field; the only field is fingerprint."] for name in unknown})
    offered = node.offered_host_key_fingerprint
    if not offered:
        raise Conflict(
            "This node has not offered a different host key; there is nothing to accept.",
            host_key_fingerprint=node.host_key_fingerprint,
        )
    expected = data.get("fingerprint")
    if expected is not None and expected != offered:
        raise Conflict(
            "The node now offers a different key from the one you compared; compare again.",
            offered_host_key_fingerprint=offered,
        )
    before = audit.snapshot(node, fields=["host_key_fingerprint"])
    with transaction.atomic():
        remote.repin(node, offered)
        audit.record(
            request.user,
            "node.repin",
            node,
            changes=audit.diff(before, audit.snapshot(node, fields=["host_key_fingerprint"])),
            result="re-pinned via API",
        )
    return JsonResponse(to_dict(NODE, node))


# --- Virtual IPs -----------------------------------------------------------------------------


@needs(VIEWER)
def vip_list(request, cluster_id):
    cluster = _cluster(cluster_id)
    return paginated(
        request, VirtualIP.objects.filter(cluster=cluster).order_by("pk"), lambda v: to_dict(VIP, v)
    )


@needs(OPERATOR)
def vip_create(request, cluster_id):
    vip = VirtualIP(cluster=_cluster(cluster_id))
    return _created(_save(request.user, VIP, vip, read_json(request)))


def _vip(vip_id):
    return get_object_or_404(VirtualIP.objects.select_related("cluster"), pk=vip_id)


@needs(VIEWER)
def vip_detail(request, vip_id):
    return JsonResponse(to_dict(VIP, _vip(vip_id)))


@needs(OPERATOR)
def vip_delete(request, vip_id):
    return _delete(request.user, VIP, _vip(vip_id))


# --- Pushes ----------------------------------------------------------------------------------


def _refused(e: PushRefused):
    errors = {k: [v] if isinstance(v, str) else list(v) for k, v in e.errors.items()}
    if e.active is not None:
        return Conflict(
            "; ".join(m for ms in errors.values() for m in ms),
            active={"id": e.active.pk, "state": e.active.state},
            **errors,
        )
    return Invalid(errors)


@needs(VIEWER)
def push_list(request, cluster_id):
    cluster = _cluster(cluster_id)
    pushes = ConfigPush.objects.filter(cluster=cluster).order_by("-created", "-pk")
    return paginated(request, pushes, serializers.push_summary)


@needs(OPERATOR)
def push_create(request, cluster_id):
    cluster = _cluster(cluster_id)
    read_empty(request)
    try:
        with transaction.atomic():
            push = start_push(cluster, user=request.user)
            audit.record(
                request.user,
                "push.start",
                cluster,
                changes={"push": [None, push.pk]},
                result=f"push #{push.pk} queued via API",
            )
    except PushRefused as e:
        audit.record(request.user, "push.start", cluster, result=f"refused: {e}")
        raise _refused(e) from None
    return _accepted(serializers.push_dict(push, steps=list(push.steps.all())))


def _push(push_id):
    return get_object_or_404(
        ConfigPush.objects.select_related("cluster", "requested_by"), pk=push_id
    )


@needs(VIEWER)
def push_detail(request, push_id):
    push = _push(push_id)
    secrets = serializers.cluster_secrets(push.cluster)
    return JsonResponse(serializers.push_dict(push, secrets=secrets))


@needs(OPERATOR)
def push_resume(request, push_id):
    push = _push(push_id)
    read_empty(request)
    try:
        with transaction.atomic():
            push = resume_push(push)
            audit.record(
                request.user,
                "push.resume",
                push.cluster,
                changes={"push": [None, push.pk]},
                result=f"push #{push.pk} queued again via API",
            )
    except PushRefused as e:
        audit.record(
            request.user,
            "push.resume",
            push.cluster,
            changes={"push": [None, push.pk]},
            result=f"refused: {e}",
        )
        # Not resumable now (running, or succeeded): a conflict with its state either way.
        errors = {k: [v] if isinstance(v, str) else list(v) for k, v in e.errors.items()}
        active = {"id": e.active.pk, "state": e.active.state} if e.active else None
        raise Conflict("; ".join(m for ms in errors.values() for m in ms), active=active) from None
    secrets = serializers.cluster_secrets(push.cluster)
    return _accepted(serializers.push_dict(push, secrets=secrets))


# --- Preview, status, failovers --------------------------------------------------------------


# Operator, as on the web: it connects to every node and reads its live file (issue 15).
@needs(OPERATOR)
def cluster_preview(request, cluster_id):
    """What a push would change on each node: reads every node's live file over SSH."""
    cluster = _cluster(cluster_id)
    secrets = serializers.cluster_secrets(cluster)
    nodes = []
    for node_preview in preview.preview_cluster(cluster):
        row = node_preview.as_dict()
        row["diff"] = serializers.scrub(row["diff"], secrets)
        row["error"] = serializers.scrub(row["error"], secrets)
        nodes.append(row)
    return JsonResponse({"cluster": cluster.pk, "nodes": nodes})


@needs(VIEWER)
def cluster_status(request, cluster_id):
    return JsonResponse(serializers.status_dict(_cluster(cluster_id)))


@needs(OPERATOR)
def cluster_refresh(request, cluster_id):
    """Probe every node now, record what was seen (as a sweep would) and return it."""
    cluster = _cluster(cluster_id)
    read_empty(request)
    probed = status.probe_cluster(cluster)
    events = history.record_status(cluster, probed)
    data = serializers.status_dict(cluster)
    data["events"] = [serializers.failover_dict(e) for e in events]
    return JsonResponse(data)


def _since(request):
    raw = request.GET.get("since")
    if raw is None or raw == "":
        return None
    value = None
    # A '+' in a query string arrives as a space: 2025-01-01T00:00:00+00:00 unencoded.
    for candidate in (raw, raw.replace(" ", "+")):
        try:
            value = parse_datetime(candidate)
        except ValueError:
            value = None
        if value is not None:
            break
    if value is None:
        raise Invalid({"since": ["Use an ISO 8601 date and time, e.g. 2025-01-31T12:00:00Z."]})
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


@needs(VIEWER)
def cluster_failovers(request, cluster_id):
    cluster = _cluster(cluster_id)
    events = FailoverEvent.objects.filter(cluster=cluster).order_by("-at", "-pk")
    since = _since(request)
    if since is not None:
        events = events.filter(at__gte=since)
    return paginated(request, events, serializers.failover_dict)
