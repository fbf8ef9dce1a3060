"""Maintenance in and out. Whatever the entry point (panel button, node form, admin, API), a
change of a node's maintenance flag is this function, and it always pushes."""

from django.db import transaction

from clusters import audit, desired, roles
from clusters.models import ConfigPush, Node
from clusters.services import _rules, pushes
from clusters.services.errors import Refused


def what(node, on):
    return f"{'Putting' if on else 'Taking'} {node.name} {'into' if on else 'out of'} maintenance"


def preview(user, node, on, skip=()):
    """What switching `node`'s maintenance would do: the push it starts, previewed with the
    flag already switched (clusters.preview.Preview; reads every node but the skipped)."""
    return pushes.preview(
        user,
        node.cluster,
        skip=skip,
        maintenance={node.pk: on},
        action=ConfigPush.Kind.MAINTENANCE if on else ConfigPush.Kind.PUSH,
    )


def set_maintenance(user, node, on, queue=True, *, confirm=None, skip=()):
    """Put a node into maintenance (or take it out) and push, so the VIPs move gracefully.

    Going in, a maintenance push renders the node with the lowest priority, so every other node
    outranks it and the VIPs move off it by election, not by a hard stop. Coming out, a normal
    push gives it back its priority. If the push cannot start, nothing changes (Refused/Busy).
    A person confirms it by naming the cluster (_rules.confirm).
    """
    _rules.require(user, roles.OPERATOR)
    _rules.confirm(user, node.cluster, confirm, what(node, on))
    try:
        with transaction.atomic():
            push = switch(user, node, on, queue, skip=skip)
    except Refused as e:
        audit_refusal(user, node, on, e)
        raise
    return push


def switch(user, node, on, queue=True, skip=()):
    """The flag, the push and the audit entry; call inside the caller's transaction."""
    Node.objects.filter(pk=node.pk).update(maintenance=on)
    node.maintenance = on
    # An update sends no signal: the node's desired config (its priority) changed all the same.
    desired.changed(node.cluster_id)
    kind = ConfigPush.Kind.MAINTENANCE if on else ConfigPush.Kind.PUSH
    push = pushes.queue_push(node.cluster, user, kind=kind, queue=queue, skip=skip)
    changes = {"maintenance": [not on, on], **pushes.push_changes(push)}
    audit.record(
        user,
        "maintenance on" if on else "maintenance off",
        node,
        changes=changes,
        result=f"push #{push.pk}"
        + (f", skipping {', '.join(push.skipped_names)}" if push.skipped else ""),
    )
    return push


def audit_refusal(user, node, on, error):
    """After the rollback: the flag is as it was, and the refusal is on record."""
    node.maintenance = not on
    _rules.refused(user, "maintenance on" if on else "maintenance off", node, error)
