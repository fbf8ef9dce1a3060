"""Nodes: create, update, delete. A maintenance change inside an update goes through
clusters.services.maintenance (it pushes); a fingerprint typed into the form pins that key.
Also what the node page shows: the files a push would send (secrets masked unless an admin
asks for them) and "test SSH now"."""

from dataclasses import dataclass

from django.db import transaction

from clusters import audit, impact, nodecheck, preview, render, roles
from clusters.models import Node
from clusters.services import _rules, instances, maintenance
from clusters.services.errors import Forbidden, Refused

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
    refused = roles.readdress_violations(user, node, data, node.carried.exists())
    if refused:
        raise Forbidden(" ".join(refused.values()))
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


# --- What the node page shows ----------------------------------------------------------------


def check_ssh(user, nodes):
    """Test SSH to these nodes now, all at once: [clusters.nodecheck.SSHCheck].

    An operator's action, like a preview: it connects to the nodes. It changes nothing on them
    and pins nothing, so it writes no audit entry; a key a node offers is recorded for a person
    to trust, as every connection records it (clusters.remote.settle).
    """
    _rules.require(user, roles.OPERATOR)
    return nodecheck.check_nodes(nodes)


# Put at the top of a copy whose secrets are masked: "********" is itself a valid 8-character
# auth_pass, so such a copy placed on a node would run with the wrong password.
MASKED_NOTE = (
    "# auth_pass is masked (********) in this copy: it is not the file vipanel sends. "
    "Do not put it on a node as it is.\n"
)


@dataclass
class NodeFile:
    """One file a push sends a node, as the node page shows and downloads it."""

    kind: str  # "keepalived" or "iptables"
    filename: str
    text: str = ""
    error: str = ""  # why it cannot be rendered yet (the cluster is not ready)
    family: int | None = None
    masked: bool = False


def _secrets_of(cluster):
    return preview.cluster_secrets(cluster) + [
        i.auth_pass for i in cluster.instances.all() if i.auth_pass
    ]


def keepalived_file(user, node, with_secrets=False):
    """keepalived.conf exactly as a push sends it to `node` (clusters.render.node_config).

    Secrets (auth_pass) are masked for everyone; only an admin may have them
    (`with_secrets`, roles.SECRETS_READER), and that is written to the audit log: reading a
    secret is a thing someone did. Viewers and operators never receive them.
    """
    _rules.require(user, roles.SECRETS_READER if with_secrets else roles.VIEWER)
    cluster = node.cluster
    result = NodeFile("keepalived", f"keepalived-{cluster.name}-{node.name}.conf")
    try:
        text = render.node_config(node)
    except ValueError as e:
        result.error = str(e)
        return result
    if with_secrets:
        with transaction.atomic():
            audit.record(
                user,
                "node.config_download",
                node,
                cluster=cluster,
                result="downloaded keepalived.conf with its secrets",
            )
        result.text = text
        return result
    masked = preview.scrub(text, _secrets_of(cluster))
    result.masked = masked != text
    result.text = MASKED_NOTE + masked if result.masked else masked
    return result


def iptables_files(user, node):
    """vipanel's iptables rules for `node`, one iptables-restore input per address family
    (both on a dual-stack node). They hold no secret: every role may read them."""
    _rules.require(user, roles.VIEWER)
    cluster = node.cluster
    try:
        families = render.firewall_families(node)
    except ValueError as e:
        return [NodeFile("iptables", "", error=str(e))]
    files = []
    for family in families:
        name = f"{'ip6tables' if family == 6 else 'iptables'}-{cluster.name}-{node.name}.v{family}"
        try:
            files.append(
                NodeFile("iptables", name, render.render_iptables(node, family), family=family)
            )
        except ValueError as e:
            files.append(NodeFile("iptables", name, error=str(e), family=family))
    return files
