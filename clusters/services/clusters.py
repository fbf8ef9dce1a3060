"""Clusters: create, update, delete. Operators change clusters; what runs as root on the nodes
(reload_command, a free-form check, config_path) is an admin's (clusters.roles)."""

from django.db import transaction

from clusters import audit, impact, roles
from clusters.models import Cluster, ConfigPush
from clusters.services import _rules
from clusters.services.errors import Busy, Forbidden

# What a person may set on a cluster (the rest is the panel's own bookkeeping).
FIELDS = [
    "name",
    "network",
    "virtual_router_id",
    "interface",
    "advert_int",
    "auth_pass",
    "unicast",
    "preempt",
    "preempt_delay",
    "check_type",
    "check_target",
    "check_script",
    "check_interval",
    "check_weight",
    "check_fall",
    "check_rise",
    "config_path",
    "reload_command",
    "credential",
]


def admin_only_fields(user):
    """The fields `user` may not change (the panel disables them in its form)."""
    return () if user is None or roles.can_admin(user) else roles.ADMIN_ONLY_CLUSTER_FIELDS


def check_admin_fields(user, cluster, data):
    """What only an admin may set (clusters.roles.admin_only_violations: reload_command, a
    free-form check command, config_path, a URL check of another host): Forbidden naming each.
    A value echoed back unchanged is no change; None is the system (management commands)."""
    if user is None:
        return
    refused = roles.admin_only_violations(user, cluster, data)
    if refused:
        raise Forbidden(" ".join(dict.fromkeys(refused.values())))


def create_cluster(user, data):
    _rules.require(user, roles.OPERATOR)
    cluster = Cluster()
    check_admin_fields(user, cluster, data)
    _rules.apply(cluster, data, FIELDS)
    cluster.full_clean()
    with transaction.atomic():
        cluster.save()
        audit.record(
            user,
            "cluster.create",
            cluster,
            changes=audit.diff({}, audit.snapshot(cluster, FIELDS)),
            result="created",
        )
    return cluster


def update_cluster(user, cluster, data):
    _rules.require(user, roles.OPERATOR)
    # The caller's instance may already carry a form's unsaved values: compare with the row.
    cluster = Cluster.objects.get(pk=cluster.pk)
    check_admin_fields(user, cluster, data)
    before = audit.snapshot(cluster, FIELDS)
    _rules.apply(cluster, data, FIELDS)
    cluster.full_clean()
    with transaction.atomic():
        cluster.save()
        changes = audit.diff(before, audit.snapshot(cluster, FIELDS))
        # Saving what was already there is no change, and the audit log lists changes.
        if changes:
            audit.record(user, "cluster.update", cluster, changes=changes, result="saved")
    return cluster


def delete_preview(user, cluster):
    """What deleting `cluster` would do (clusters.impact): nothing on the nodes."""
    _rules.require(user, roles.OPERATOR)
    return impact.delete_impact(cluster)


def delete_cluster(user, cluster, *, confirm=None):
    """Refused while a push of it is active: the worker would lose its rows mid-step. A person
    confirms by typing the cluster's name."""
    _rules.require(user, roles.OPERATOR)
    _rules.confirm(user, cluster, confirm, f"Deleting cluster {cluster.name}")
    with transaction.atomic():
        active = (
            cluster.pushes.select_for_update().filter(state__in=ConfigPush.ACTIVE_STATES).first()
        )
        if active is not None:
            error = Busy(
                {
                    "__all__": f"Push #{active.pk} of cluster {cluster.name} is "
                    f"{active.state}; delete the cluster when it has finished."
                },
                active=active,
            )
        else:
            before = audit.snapshot(cluster, FIELDS)
            audit.record(
                user, "cluster.delete", cluster, changes=audit.diff(before, {}), result="deleted"
            )
            # The entry keeps the name; its link to the cluster goes with the row.
            cluster.delete()
            return None
    _rules.refused(user, "cluster.delete", cluster, error)
    raise error
