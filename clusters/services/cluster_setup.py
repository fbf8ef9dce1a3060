"""A new cluster with its first nodes and VIPs, in one go (the panel's guided flow).

Each part goes through its own use case (clusters.services.clusters, nodes, vips: the same
role checks, validation and audit entries as when they are made one by one), all inside one
transaction: a bad node or VIP leaves no half-made cluster, and none of the audit entries.
"""

from dataclasses import dataclass, field

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from clusters import roles, validators
from clusters.models import SSHCredential, free_vrid
from clusters.services import _rules, clusters, nodes, vips


@dataclass
class Setup:
    cluster: object
    # Choices made for the person, said back to them ("VRID 3: the lowest free on ...").
    notes: list = field(default_factory=list)
    # Not errors, but worth a look (a VIP outside the cluster's network).
    warnings: list = field(default_factory=list)


NO_CREDENTIAL = (
    "Pick the SSH credential vipanel logs in to the nodes with; without one nothing can be "
    "previewed or pushed."
)
NO_CREDENTIAL_AT_ALL = (
    "No SSH credential exists yet: an admin adds one under Credentials (a private key whose "
    "public key is in root's authorized_keys on the nodes), then pick it here."
)


def _credential(data, notes):
    """The credential is required; when none is given and exactly one exists, that one."""
    if data.get("credential"):
        return
    only = list(SSHCredential.objects.order_by("pk")[:2])
    if len(only) != 1:
        raise ValidationError({"credential": NO_CREDENTIAL if only else NO_CREDENTIAL_AT_ALL})
    data["credential"] = only[0]
    notes.append(f"SSH credential: {only[0].name}, the only one there is.")


def _vrid(data, notes):
    """No VRID given: the lowest one free on the network's segment (Cluster.free_vrid's rule)."""
    if data.get("virtual_router_id") not in (None, ""):
        return
    try:
        net = validators.parse_network(data.get("network") or "")
    except ValidationError as e:
        raise ValidationError({"network": e.messages}) from None
    vrid = free_vrid(net)
    if vrid is None:
        raise ValidationError(
            {
                "virtual_router_id": f"Every VRID is taken on {net}: split the segment or retire "
                "an instance."
            }
        )
    data["virtual_router_id"] = vrid
    notes.append(f"VRID {vrid}: the lowest one free on {net}.")


def _keyed(error, part, index):
    """A ValidationError of one node or VIP, its keys prefixed "nodes.2.address", so the form
    that sent the rows can put each message next to the field it is about."""
    if not hasattr(error, "error_dict"):
        return ValidationError({f"{part}.{index}": error.messages})
    return ValidationError(
        {
            f"{part}.{index}" if name == NON_FIELD_ERRORS else f"{part}.{index}.{name}": errors
            for name, errors in error.error_dict.items()
        }
    )


def setup_cluster(user, data, node_rows, vip_rows):
    """Create a cluster (`data`, as for clusters.create_cluster), its nodes (`node_rows`, each
    as for nodes.create_node) and its VIPs (`vip_rows`), all or nothing.

    Unlike create_cluster, a credential is required (or the only one there is is taken) and an
    empty VRID means "the lowest free one on this network". At least one node and one VIP.
    ValidationError keyed by field; a row's as "nodes.N.field" / "vips.N.field" (N from 0).
    """
    _rules.require(user, roles.OPERATOR)
    data, notes = dict(data), []
    missing = {}
    if not node_rows:
        missing["nodes"] = "Add at least one node: a cluster needs nodes to hold its VIPs."
    if not vip_rows:
        missing["vips"] = "Add the virtual IP the nodes will hold."
    try:
        _credential(data, notes)
    except ValidationError as e:
        missing.update(e.message_dict)
    if missing:
        raise ValidationError(missing)
    _vrid(data, notes)
    with transaction.atomic():
        cluster = clusters.create_cluster(user, data)
        for i, row in enumerate(node_rows):
            try:
                nodes.create_node(user, cluster, row)
            except ValidationError as e:
                raise _keyed(e, "nodes", i) from None
        made = []
        for i, row in enumerate(vip_rows):
            try:
                made.append(vips.create_vip(user, cluster, row))
            except ValidationError as e:
                raise _keyed(e, "vips", i) from None
        # The rules of a cluster with its nodes (unicast needs two, the check weight must
        # exceed the priorities' spread): checked once the nodes are there, so a flow that
        # promises a pushable cluster does not end with one that cannot be pushed.
        cluster.full_clean()
    warnings = [w for w in (v.network_warning() for v in made) if w]
    return Setup(cluster, notes, warnings)
