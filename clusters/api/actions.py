"""The API's use cases: each is the clusters/services function of the same name (one way in).

Only what the API answers differently lives here: a resume that cannot go ahead is a 409 by
its state, and trusting a host key without a fingerprint accepts the key the node offers now
(the caller has read it from the node's resource).
"""

from clusters import sweep
from clusters.api.errors import Conflict, field_errors
from clusters.services import (
    adopt,
    clusters,
    credentials,
    hostkeys,
    instances,
    nodes,
    pushes,
    vips,
)
from clusters.services.errors import Refused

create_credential = credentials.create_credential
create_cluster = clusters.create_cluster
update_cluster = clusters.update_cluster
delete_cluster = clusters.delete_cluster
create_node = nodes.create_node
update_node = nodes.update_node
delete_node = nodes.delete_node
create_vip = vips.create_vip
delete_vip = vips.delete_vip
preview = pushes.preview
create_instance = instances.create_instance
update_instance = instances.update_instance
delete_instance = instances.delete_instance
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


def start_cluster_push(user, cluster):
    return pushes.start_push(user, cluster)


def resume_cluster_push(user, push):
    try:
        return pushes.resume_push(user, push)
    except Refused as e:
        # Not resumable now (running, or succeeded): a conflict with its state either way.
        errors = field_errors(e.errors)
        active = {"id": e.active.pk, "state": e.active.state} if e.active else None
        raise Conflict("; ".join(m for ms in errors.values() for m in ms), active=active) from None


def refresh_status(user, cluster):
    """Probe every node now and record what was seen, as a sweep would; the events found."""
    return sweep.probe_now(cluster)[1]
