"""Failover drills: the service checks the role, creates the drill's record (a ConfigPush of
kind DRILL, so one push or drill per cluster at a time) and hands it to a worker on commit.
clusters.drill decides whether one may start and runs it."""

from django.db import transaction

from clusters import audit, drill, impact, roles, tasks
from clusters.models import ConfigPush
from clusters.services import _rules
from clusters.services.errors import Busy


def preview(user, cluster, instance=None):
    """What a drill of `instance` would do (clusters.impact): where its VIPs go when keepalived
    stops on their holder, and where when it starts again."""
    _rules.require(user, roles.OPERATOR)
    return impact.drill_impact(cluster, instance)


def start_drill(user, cluster, instance=None, *, confirm=None):
    """Stop keepalived on the holder of `instance` (a VrrpInstance; None: the main instance)
    on purpose and check its VIPs move to its next priority (in a worker). A person confirms it
    by naming the cluster; the record keeps the prediction it was confirmed with.

    Busy when a push or drill of the cluster is active or too few nodes can take over.
    -> the drill's record.
    """
    _rules.require(user, roles.OPERATOR)
    _rules.confirm(user, cluster, confirm, "The failover drill")
    prediction = impact.drill_impact(cluster, instance)
    try:
        with transaction.atomic():
            record = drill.create_drill(cluster, user, instance)
            record.prediction = prediction.as_dict()
            record.save(update_fields=["prediction"])
            changes = {"push": [None, record.pk], "predicted": [None, prediction.summary()]}
            if instance is not None:
                changes["instance"] = [None, instance.name]
            audit.record(user, "drill started", cluster, changes=changes)
            transaction.on_commit(lambda: tasks.drill_task.delay(record.pk))
    except drill.DrillRefused as e:
        active = cluster.pushes.filter(state__in=ConfigPush.ACTIVE_STATES).first()
        error = Busy({"__all__": str(e)}, active=active)
        _rules.refused(user, "drill started", cluster, error)
        raise error from None
    return record
