"""What each API mutation does today, one function per use case.

Each has the shape of the matching clusters/services function (`verb_noun(user, obj_or_parent,
data=None)`, data already parsed by the serializer), so the views can be pointed at the service
layer with a one-line change per call. Until then these are the code paths the API always used:
full_clean, save and the audit entry in one transaction; pushes through clusters.push.
"""

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from clusters import audit, history, remote, status
from clusters.api.errors import Conflict
from clusters.models import Cluster, ConfigPush, Node, SSHCredential, VirtualIP
from clusters.preview import preview_cluster
from clusters.push import PushRefused, resume_push, set_maintenance, start_push

AUDIT_NAMES = {SSHCredential: "credential", Cluster: "cluster", Node: "node", VirtualIP: "vip"}


def _save(user, instance, data, fields):
    """Set data on instance, validate it with full_clean, save it and audit the change."""
    creating = instance.pk is None
    before = {} if creating else audit.snapshot(instance, fields)
    for name, value in data.items():
        setattr(instance, name, value)
    instance.full_clean()
    name = AUDIT_NAMES[type(instance)]
    try:
        with transaction.atomic():
            instance.save()
            changes = audit.diff(before, audit.snapshot(instance, fields))
            if creating or changes:
                action = f"{name}.{'create' if creating else 'update'}"
                result = "created via API" if creating else "saved via API"
                audit.record(user, action, instance, changes=changes, result=result)
    except IntegrityError:
        # full_clean() checked the rules; a concurrent write got there first.
        raise Conflict(
            "Another change conflicting with this one was saved meanwhile; retry."
        ) from None
    return instance


def _delete(user, instance, fields):
    before = audit.snapshot(instance, fields)
    try:
        with transaction.atomic():
            audit.record(
                user,
                f"{AUDIT_NAMES[type(instance)]}.delete",
                instance,
                changes=audit.diff(before, {}),
                result="deleted via API",
            )
            instance.delete()
    except ProtectedError as e:
        names = ", ".join(sorted(str(o) for o in e.protected_objects)[:10])
        raise Conflict(f"Still in use by {names}; change those first.") from None


CREDENTIAL_FIELDS = ["name", "username", "private_key", "passphrase"]
CLUSTER_FIELDS = [
    "name",
    "network",
    "virtual_router_id",
    "interface",
    "advert_int",
    "auth_pass",
    "unicast",
    "preempt",
    "preempt_delay",
    "check_script",
    "check_interval",
    "check_weight",
    "check_fall",
    "check_rise",
    "config_path",
    "reload_command",
    "credential",
]
NODE_FIELDS = [
    "name",
    "address",
    "ssh_port",
    "priority",
    "interface",
    "credential",
    "maintenance",
    "host_key_fingerprint",
]
VIP_FIELDS = ["address", "label"]


def create_credential(user, data):
    return _save(user, SSHCredential(), data, CREDENTIAL_FIELDS)


def create_cluster(user, data):
    return _save(user, Cluster(), data, CLUSTER_FIELDS)


def update_cluster(user, cluster, data):
    return _save(user, cluster, data, CLUSTER_FIELDS)


def delete_cluster(user, cluster):
    active = cluster.pushes.filter(state__in=ConfigPush.ACTIVE_STATES).first()
    if active:
        raise Conflict(
            f"Push #{active.pk} of this cluster is {active.state}; wait for it to finish.",
            active={"id": active.pk, "state": active.state},
        )
    _delete(user, cluster, CLUSTER_FIELDS)


def create_node(user, cluster, data):
    return _save(user, Node(cluster=cluster), data, NODE_FIELDS)


def update_node(user, node, data):
    """Save the node; a change of `maintenance` goes through set_maintenance (it pushes, as the
    panel's maintenance button does)."""
    data = dict(data)
    maintenance = data.pop("maintenance", node.maintenance)
    try:
        with transaction.atomic():
            _save(user, node, data, NODE_FIELDS)
            if maintenance != node.maintenance:
                set_maintenance(node, maintenance, user)
    except PushRefused as e:
        # Recorded outside the rolled-back transaction, as the panel records a refusal.
        action = "maintenance on" if maintenance else "maintenance off"
        audit.record(user, action, node, result=f"refused: {e}")
        raise
    return node


def delete_node(user, node):
    _delete(user, node, NODE_FIELDS)


def trust_host_key(user, node, fingerprint=None):
    """Accept the host key the node offered instead of the pinned one.

    An optional fingerprint must equal the offered key: the caller compared that one, and a key
    offered since then is not accepted blindly.
    """
    offered = node.offered_host_key_fingerprint
    if not offered:
        raise Conflict(
            "This node has not offered a different host key; there is nothing to accept.",
            host_key_fingerprint=node.host_key_fingerprint,
        )
    if fingerprint is not None and fingerprint != offered:
        raise Conflict(
            "The node now offers a different key from the one you compared; compare again.",
            offered_host_key_fingerprint=offered,
        )
    before = audit.snapshot(node, fields=["host_key_fingerprint"])
    with transaction.atomic():
        remote.repin(node, offered)
        audit.record(
            user,
            "node.repin",
            node,
            changes=audit.diff(before, audit.snapshot(node, fields=["host_key_fingerprint"])),
            result="re-pinned via API",
        )
    return node


def create_vip(user, cluster, data):
    return _save(user, VirtualIP(cluster=cluster), data, VIP_FIELDS)


def delete_vip(user, vip):
    _delete(user, vip, VIP_FIELDS)


def start_cluster_push(user, cluster):
    try:
        with transaction.atomic():
            push = start_push(cluster, user=user)
            audit.record(
                user,
                "push.start",
                cluster,
                changes={"push": [None, push.pk]},
                result=f"push #{push.pk} queued via API",
            )
    except PushRefused as e:
        audit.record(user, "push.start", cluster, result=f"refused: {e}")
        raise
    return push


def resume_cluster_push(user, push):
    try:
        with transaction.atomic():
            push = resume_push(push)
            audit.record(
                user,
                "push.resume",
                push.cluster,
                changes={"push": [None, push.pk]},
                result=f"push #{push.pk} queued again via API",
            )
    except PushRefused as e:
        audit.record(
            user,
            "push.resume",
            push.cluster,
            changes={"push": [None, push.pk]},
            result=f"refused: {e}",
        )
        # Not resumable now (running, or succeeded): a conflict with its state either way.
        errors = {k: [v] if isinstance(v, str) else list(v) for k, v in e.errors.items()}
        active = {"id": e.active.pk, "state": e.active.state} if e.active else None
        raise Conflict("; ".join(m for ms in errors.values() for m in ms), active=active) from None
    return push


def preview(user, cluster):
    """What a push would change on each node (reads the live files over SSH)."""
    return preview_cluster(cluster)


def refresh_status(user, cluster):
    """Probe every node now and record what was seen, as a sweep would; the events found."""
    return history.record_status(cluster, status.probe_cluster(cluster))
