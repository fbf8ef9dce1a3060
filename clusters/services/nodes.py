"""Nodes: create, update, delete. A maintenance change inside an update goes through
clusters.services.maintenance (it pushes); a fingerprint typed into the form pins that key."""

from django.db import transaction

from clusters import audit, impact, roles
from clusters.models import Node
from clusters.services import _rules, instances, maintenance
from clusters.services.errors import Refused

FIELDS = [
    "name",
    "address",
    "ssh_port",
    "priority",
    "interface",
    "credential",
    "maintenance",
    "host_key_fingerprint",
]


def _pin_typed(node, data):
    """A fingerprint given up front is a person's trust decision: pin it; the key the node
    offered is no longer a problem if it is this one."""
    fingerprint = data.get("host_key_fingerprint")
    if fingerprint and fingerprint == node.offered_host_key_fingerprint:
        node.offered_host_key_fingerprint = ""


def create_node(user, cluster, data):
    _rules.require(user, roles.OPERATOR)
    node = Node(cluster=cluster)
    _rules.apply(node, data, FIELDS)
    node.full_clean()
    with transaction.atomic():
        node.save()
        # A priority in each further instance too, so the node's file can be rendered.
        instances.add_node_priorities(node)
        audit.record(
            user,
            "node.create",
            node,
            cluster=cluster,
            changes=audit.diff({}, audit.snapshot(node, FIELDS)),
            result="created",
        )
    return node


def update_node(user, node, data, queue=True, *, confirm=None):
    """A change of `maintenance` among the data pushes, confirmed like the button's."""
    _rules.require(user, roles.OPERATOR)
    # The caller's instance may already carry a form's unsaved values: compare with the row.
    node = Node.objects.select_related("cluster", "credential").get(pk=node.pk)
    before = audit.snapshot(node, FIELDS)
    data = dict(data)
    wanted = data.pop("maintenance", node.maintenance)
    if wanted != node.maintenance:
        _rules.confirm(user, node.cluster, confirm, maintenance.what(node, wanted))
    if data.get("host_key_fingerprint") == "" and "host_key_fingerprint" in data:
        del data["host_key_fingerprint"]  # empty: keep the pinned key (untrusting is not here)
    _rules.apply(node, data, FIELDS)
    _pin_typed(node, data)
    node.full_clean()
    try:
        with transaction.atomic():
            node.save()
            changes = audit.diff(before, audit.snapshot(node, FIELDS))
            # A maintenance switch alone is audited once, as itself (below); saving what was
            # already there is no change, and the audit log lists changes.
            if changes:
                audit.record(
                    user, "node.update", node, cluster=node.cluster, changes=changes, result="saved"
                )
            if wanted != node.maintenance:
                # Same rule as the maintenance button: the flag never changes without a push.
                maintenance.switch(user, node, wanted, queue=queue)
    except Refused as e:
        # Nothing of the update was saved: the push could not start.
        maintenance.audit_refusal(user, node, wanted, e)
        raise
    return node


def delete_preview(user, node):
    """What deleting `node` would do (clusters.impact): nothing on the nodes now; vipanel
    leaves its keepalived running."""
    _rules.require(user, roles.OPERATOR)
    return impact.delete_impact(node.cluster, node)


def delete_node(user, node, *, confirm=None):
    """Delete a node from vipanel, confirmed by naming its cluster (its keepalived runs on)."""
    _rules.require(user, roles.OPERATOR)
    _rules.confirm(user, node.cluster, confirm, f"Deleting node {node.name}")
    cluster = node.cluster
    before = audit.snapshot(node, FIELDS)
    with transaction.atomic():
        audit.record(
            user,
            "node.delete",
            node,
            cluster=cluster,
            changes=audit.diff(before, {}),
            result="deleted",
        )
        node.delete()
