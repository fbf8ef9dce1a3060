"""A cluster's further VRRP instances, their node priorities and sync groups (issue 11).

The main instance is the cluster itself (clusters.services.clusters); these are the ones beyond
it. Every function checks the role, validates with full_clean, and writes its change with its
audit entry in one transaction; a push puts the change on the nodes.
"""

from django.core.exceptions import ValidationError
from django.db import transaction

from clusters import audit, constants, impact, roles
from clusters.models import NodePriority, SyncGroup, VrrpInstance, free_vrid
from clusters.services import _rules, vips

FIELDS = [
    "name",
    "virtual_router_id",
    "interface",
    "network",
    "advert_int",
    "auth_pass",
    "unicast",
    "preempt",
    "preempt_delay",
    "track_check",
    "sync_group",
]
GROUP_FIELDS = ["name", "includes_main"]


def _free_priority(wanted, used):
    """wanted if no other node of the instance has it, else the nearest free one."""
    if wanted not in used:
        return wanted
    for distance in range(1, constants.PRIORITY_MAX):
        for candidate in (wanted - distance, wanted + distance):
            if constants.PRIORITY_MIN <= candidate <= constants.PRIORITY_MAX and (
                candidate not in used
            ):
                return candidate
    raise ValidationError({"priority": "Every priority of this instance is taken."})


def _save_priority(instance, node, priority):
    row = NodePriority.objects.filter(instance=instance, node=node).first()
    row = row or NodePriority(instance=instance, node=node)
    row.priority = priority
    row.full_clean()
    row.save()
    return row


def create_instance(user, cluster, data, priorities=None):
    """A further instance; every node gets a priority in it: `priorities` ({node: priority})
    where given, else its main-instance priority (the same election as the main instance)."""
    _rules.require(user, roles.OPERATOR)
    instance = VrrpInstance(cluster=cluster)
    _rules.apply(instance, data, FIELDS)
    instance.full_clean()
    priorities = priorities or {}
    with transaction.atomic():
        instance.save()
        for node in cluster.nodes.order_by("-priority"):
            _save_priority(instance, node, priorities.get(node, node.priority))
        # Checked again with its priorities (the check weight against their spread).
        instance.full_clean()
        audit.record(
            user,
            "instance.create",
            instance,
            cluster=cluster,
            changes=audit.diff({}, audit.snapshot(instance, FIELDS)),
            result="created",
        )
    return instance


def create_active_active(user, cluster, data):
    """The mirrored instance in one step: a free VRID on the cluster's segment, the main
    instance's priorities rotated by one node (the main instance's first backup masters the
    new one; with two nodes this is the mirror) and the given VIP.

    data: name (default "B") and vip (an address with prefix length).
    """

    _rules.require(user, roles.OPERATOR)
    data = dict(data)
    vip = data.pop("vip", None)
    name = data.pop("name", "B")
    _rules.apply(VrrpInstance(), data, [])  # nothing else is accepted
    nodes = list(cluster.nodes.order_by("-priority", "name"))
    if len(nodes) < 2:
        raise ValidationError({"nodes": "Active/active needs at least two nodes: add one first."})
    if not vip:
        raise ValidationError({"vip": "Enter the new instance's virtual IP, e.g. 192.0.2.200/24."})
    values = [n.priority for n in nodes]
    rotated = {node: values[(i - 1) % len(nodes)] for i, node in enumerate(nodes)}
    with transaction.atomic():
        instance = create_instance(
            user,
            cluster,
            {
                "name": name,
                "virtual_router_id": free_vrid(cluster.ip_network, exclude=None),
                "interface": "",
                "advert_int": cluster.advert_int,
                "unicast": cluster.unicast,
                "preempt": cluster.preempt,
                "preempt_delay": cluster.preempt_delay,
                "track_check": bool(cluster.check_script),
            },
            priorities=rotated,
        )
        vips.create_vip(user, cluster, {"address": vip, "instance": instance})
    return instance


def update_instance(user, instance, data):
    _rules.require(user, roles.OPERATOR)
    instance = VrrpInstance.objects.select_related("cluster").get(pk=instance.pk)
    before = audit.snapshot(instance, FIELDS)
    _rules.apply(instance, data, FIELDS)
    instance.full_clean()
    with transaction.atomic():
        instance.save()
        changes = audit.diff(before, audit.snapshot(instance, FIELDS))
        audit.record(
            user,
            "instance.update",
            instance,
            cluster=instance.cluster,
            changes=changes,
            result="saved" if changes else "no change",
        )
    return instance


def delete_preview(user, instance):
    """What deleting `instance` would do at the next push (clusters.impact)."""
    _rules.require(user, roles.OPERATOR)
    return impact.delete_impact(instance.cluster, instance)


def delete_instance(user, instance, *, confirm=None):
    """Removes the instance and its VIPs (they leave the nodes at the next push), confirmed by
    naming its cluster."""
    _rules.require(user, roles.OPERATOR)
    _rules.confirm(user, instance.cluster, confirm, f"Deleting instance {instance.name}")
    before = audit.snapshot(instance, FIELDS)
    with transaction.atomic():
        audit.record(
            user,
            "instance.delete",
            instance,
            cluster=instance.cluster,
            changes=audit.diff(before, {}),
            result="deleted",
        )
        instance.delete()


def set_priority(user, instance, node, priority):
    """A node's priority in one further instance (the main one is the node's own field)."""
    _rules.require(user, roles.OPERATOR)
    old = NodePriority.objects.filter(instance=instance, node=node).first()
    with transaction.atomic():
        row = _save_priority(instance, node, priority)
        audit.record(
            user,
            "instance.priority",
            row,
            cluster=instance.cluster,
            changes={"priority": [old.priority if old else None, priority]},
            result="saved",
        )
    return row


def add_node_priorities(node):
    """A new node's priority in every further instance of its cluster: its main priority, or
    the nearest free one. Called by services.nodes.create_node in its transaction."""
    for instance in node.cluster.instances.order_by("id"):
        used = set(instance.node_priorities.values_list("priority", flat=True))
        _save_priority(instance, node, _free_priority(node.priority, used))


def create_sync_group(user, cluster, data, members=()):
    _rules.require(user, roles.OPERATOR)
    group = SyncGroup(cluster=cluster)
    _rules.apply(group, data, GROUP_FIELDS)
    group.full_clean()
    with transaction.atomic():
        group.save()
        _set_members(group, members)
        audit.record(
            user,
            "sync_group.create",
            group,
            cluster=cluster,
            changes=audit.diff({}, _group_snapshot(group)),
            result="created",
        )
    return group


def update_sync_group(user, group, data, members=None):
    _rules.require(user, roles.OPERATOR)
    group = SyncGroup.objects.select_related("cluster").get(pk=group.pk)
    before = _group_snapshot(group)
    _rules.apply(group, data, GROUP_FIELDS)
    group.full_clean()
    with transaction.atomic():
        group.save()
        if members is not None:
            _set_members(group, members)
        changes = audit.diff(before, _group_snapshot(group))
        audit.record(
            user,
            "sync_group.update",
            group,
            cluster=group.cluster,
            changes=changes,
            result="saved" if changes else "no change",
        )
    return group


def delete_sync_group(user, group):
    _rules.require(user, roles.OPERATOR)
    before = _group_snapshot(group)
    with transaction.atomic():
        audit.record(
            user,
            "sync_group.delete",
            group,
            cluster=group.cluster,
            changes=audit.diff(before, {}),
            result="deleted",
        )
        group.delete()


def _set_members(group, members):
    """Makes exactly `members` (further instances) the group's, each checked by full_clean
    (same cluster; a member of another group moves here only when it is not in one)."""
    wanted = {m.pk for m in members}
    for instance in group.instances.exclude(pk__in=wanted):
        instance.sync_group = None
        instance.save(update_fields=["sync_group"])
    for instance in members:
        instance = VrrpInstance.objects.get(pk=instance.pk)
        if instance.sync_group_id not in (None, group.pk):
            raise ValidationError(
                {
                    "members": (
                        f"Instance '{instance.name}' is already in sync group "
                        f"'{instance.sync_group.name}'; an instance belongs to one group at most. "
                        "Take it out of that group first."
                    )
                }
            )
        instance.sync_group = group
        instance.full_clean()
        instance.save(update_fields=["sync_group"])


def _group_snapshot(group):
    values = audit.snapshot(group, GROUP_FIELDS)
    values["members"] = ", ".join(group.instances.order_by("name").values_list("name", flat=True))
    return values
