"""Failover drills: the service checks the role and hands the drill to a worker on commit.
clusters.drill decides whether one may start and runs it."""

from django.db import transaction

from clusters import audit, drill, roles, tasks
from clusters.services import _rules
from clusters.services.errors import Busy


def start_drill(user, cluster):
    """Stop keepalived on the holder on purpose and check the VIPs move (in a worker).

    Busy when a push (or drill) of the cluster is active or too few nodes can take over.
    """
    _rules.require(user, roles.OPERATOR)
    try:
        with transaction.atomic():
            drill.start_drill(cluster, user)
            audit.record(user, "drill started", cluster)
            user_id = user.pk if user is not None and user.pk else None
            transaction.on_commit(lambda: _enqueue(cluster.pk, user_id))
    except drill.DrillRefused as e:
        error = Busy({"__all__": str(e)})
        _rules.refused(user, "drill started", cluster, error)
        raise error from None


def _enqueue(cluster_id, user_id):
    tasks.drill_task.delay(cluster_id, user_id)
