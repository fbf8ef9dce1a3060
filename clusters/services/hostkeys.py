"""Host keys are trusted by a person, never by a machine (issue 15, item 5).

A node with no pinned key is "not trusted yet": connecting records the key it offers
(offered_host_key_fingerprint) and goes no further. An operator compares that fingerprint with
the node's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console) and trusts it,
or types the fingerprint up front. Re-pinning after a key change is the same decision.
"""

from django.core.exceptions import ValidationError
from django.db import transaction

from clusters import audit, roles, validators
from clusters.models import Node
from clusters.services import _rules
from clusters.services.errors import Busy

NOT_OFFERED = (
    "The key the node offers is not the one you confirmed (it changed, or the problem is "
    "gone). Compare the fingerprints again."
)


def trust_host_key(user, node, fingerprint, typed=False):
    """Pin `fingerprint` as the node's host key.

    Without `typed`, `fingerprint` is the person's confirmation of the key the node offered:
    refused (Busy) unless it is still the one offered. With `typed`, it is a fingerprint the
    person read elsewhere and typed; it must be well-formed (ValidationError).
    """
    _rules.require(user, roles.OPERATOR)
    node = Node.objects.select_related("cluster").get(pk=node.pk)
    old = node.host_key_fingerprint
    action = "node.repin" if old else "node.trust"
    if typed:
        try:
            validators.fingerprint_validator(fingerprint)
        except ValidationError as e:
            raise ValidationError({"host_key_fingerprint": e.messages}) from None
    elif not fingerprint or fingerprint != node.offered_host_key_fingerprint:
        error = Busy({"fingerprint": NOT_OFFERED})
        _rules.refused(user, action, node, error, cluster=node.cluster)
        raise error
    with transaction.atomic():
        # Conditional on what the person saw: a key offered meanwhile is not trusted blindly.
        expected = {} if typed else {"offered_host_key_fingerprint": fingerprint}
        Node.objects.filter(pk=node.pk, **expected).update(
            host_key_fingerprint=fingerprint, offered_host_key_fingerprint=""
        )
        audit.record(
            user,
            action,
            node,
            cluster=node.cluster,
            changes={"host_key_fingerprint": [old, fingerprint]},
            result="re-pinned" if old else "trusted",
        )
    node.host_key_fingerprint, node.offered_host_key_fingerprint = fingerprint, ""
    return node
