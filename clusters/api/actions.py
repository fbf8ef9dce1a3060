"""The API's use cases: each is the clusters/services function of the same name (one way in).

Only what the API answers differently lives here: a resume that cannot go ahead is a 409 by
its state, and trusting a host key without a fingerprint accepts the key the node offers now
(the caller has read it from the node's resource).

Confirmations: a request to the API is itself the explicit act (a token, a method, a URL naming
the object), and scripts written before the panel asked for confirmations must keep working, so
the moving and deleting actions go ahead without one (EXPLICIT). A push or resume may send
`confirm` (the cluster's name): then it must match, so a script that got an id wrong is stopped.
The predictions are in the previews (GET .../preview/, .../impact/).
"""

from functools import partial

from clusters import sweep
from clusters.api.errors import Conflict, field_errors
from clusters.services import (
    EXPLICIT,
    adopt,
    clusters,
    credentials,
    drills,
    hostkeys,
    instances,
    maintenance,
    nodes,
    pushes,
    vips,
)
from clusters.services.errors import Refused, Unconfirmed, Unreachable

create_credential = credentials.create_credential
create_cluster = clusters.create_cluster
update_cluster = clusters.update_cluster
delete_cluster = partial(clusters.delete_cluster, confirm=EXPLICIT)
create_node = nodes.create_node
update_node = partial(nodes.update_node, confirm=EXPLICIT)
delete_node = partial(nodes.delete_node, confirm=EXPLICIT)
create_vip = vips.create_vip
delete_vip = partial(vips.delete_vip, confirm=EXPLICIT)
preview = pushes.preview
create_instance = instances.create_instance
update_instance = instances.update_instance
delete_instance = partial(instances.delete_instance, confirm=EXPLICIT)
set_priority = instances.set_priority
create_sync_group = instances.create_sync_group
update_sync_group = instances.update_sync_group
delete_sync_group = instances.delete_sync_group
scan_host_keys = adopt.scan_host_keys
read_cluster = adopt.read_cluster
describe = adopt.describe


def adopt_cluster(user, nodes, credential, digest, edits=None, **kwargs):
    try:
        return adopt.adopt_cluster(user, nodes, credential, digest, edits, **kwargs)
    except Refused as e:
        # The nodes changed since the reading the caller reviewed: read again.
        raise Conflict(" ".join(str(v) for v in e.errors.values())) from None


def trust_host_key(user, node, fingerprint=None):
    offered = node.offered_host_key_fingerprint
    try:
        # Even with nothing offered the service decides, so the refusal is audited as elsewhere.
        return hostkeys.trust_host_key(user, node, offered if fingerprint is None else fingerprint)
    except Refused as e:
        if not offered:
            raise Conflict(
                "This node has not offered a different host key; there is nothing to accept.",
                host_key_fingerprint=node.host_key_fingerprint,
            ) from None
        # The node offers another key than the one compared: a conflict with its state.
        raise Conflict(
            " ".join(str(v) for v in e.errors.values()), offered_host_key_fingerprint=offered
        ) from None


def impact(user, cluster, action, obj=None):
    """The prediction of one action (clusters.impact) for GET .../impact/."""
    if action == "drill":
        return drills.preview(user, cluster, obj)
    if action in ("maintenance-on", "maintenance-off"):
        return maintenance.preview(user, obj, action == "maintenance-on").impact
    if action == "delete":
        service = {
            "Node": nodes.delete_preview,
            "VirtualIP": vips.delete_preview,
            "VrrpInstance": instances.delete_preview,
        }.get(type(obj).__name__)
        return service(user, obj) if service else clusters.delete_preview(user, cluster)
    return pushes.preview(user, cluster).impact


def start_cluster_push(user, cluster, confirm=EXPLICIT, skip=()):
    return pushes.start_push(user, cluster, confirm=confirm, skip=skip)


def resume_cluster_push(user, push, confirm=EXPLICIT, skip=()):
    try:
        return pushes.resume_push(user, push, confirm=confirm, skip=skip)
    except (Unconfirmed, Unreachable):
        raise  # 400 naming `confirm`; 409 naming the unreachable nodes (api.errors)
    except Refused as e:
        if "skip" in e.errors:
            raise
        # Not resumable now (running, or succeeded): a conflict with its state either way.
        errors = field_errors(e.errors)
        active = {"id": e.active.pk, "state": e.active.state} if e.active else None
        raise Conflict("; ".join(m for ms in errors.values() for m in ms), active=active) from None


def refresh_status(user, cluster):
    """Probe every node now and record what was seen, as a sweep would; the events found."""
    return sweep.probe_now(cluster)[1]
