"""Virtual IPs: create, update, delete (a push puts the change on the nodes)."""

from django.db import transaction

from clusters import audit, impact, roles
from clusters.models import VipState, VirtualIP
from clusters.services import _rules

FIELDS = ["address", "label", "instance"]


def create_vip(user, cluster, data):
    _rules.require(user, roles.OPERATOR)
    vip = VirtualIP(cluster=cluster)
    _rules.apply(vip, data, FIELDS)
    vip.full_clean()
    with transaction.atomic():
        vip.save()
        audit.record(
            user,
            "vip.create",
            vip,
            cluster=cluster,
            changes=audit.diff({}, audit.snapshot(vip, FIELDS)),
            result="created",
        )
    return vip


def update_vip(user, vip, data):
    _rules.require(user, roles.OPERATOR)
    vip = VirtualIP.objects.select_related("cluster").get(pk=vip.pk)
    before = audit.snapshot(vip, FIELDS)
    address = vip.address
    _rules.apply(vip, data, FIELDS)
    vip.full_clean()
    with transaction.atomic():
        if vip.address != address:
            # Another address is another VIP on the nodes: not there until it is pushed, and
            # what was observed of the old one says nothing about it.
            vip.pushed_at = None
            VipState.objects.filter(vip=vip).delete()
        vip.save()
        changes = audit.diff(before, audit.snapshot(vip, FIELDS))
        # Saving what was already there is no change, and the audit log lists changes.
        if changes:
            audit.record(
                user, "vip.update", vip, cluster=vip.cluster, changes=changes, result="saved"
            )
    return vip


def delete_preview(user, vip):
    """What deleting `vip` would do at the next push (clusters.impact)."""
    _rules.require(user, roles.OPERATOR)
    return impact.delete_impact(vip.cluster, vip)


def delete_vip(user, vip, *, confirm=None):
    """Delete a VIP, confirmed by naming its cluster; the next push takes it off the nodes."""
    _rules.require(user, roles.OPERATOR)
    _rules.confirm(user, vip.cluster, confirm, f"Deleting VIP {vip.address}")
    cluster = vip.cluster
    before = audit.snapshot(vip, FIELDS)
    with transaction.atomic():
        audit.record(
            user,
            "vip.delete",
            vip,
            cluster=cluster,
            changes=audit.diff(before, {}),
            result="deleted",
        )
        vip.delete()
