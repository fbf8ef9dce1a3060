"""Pushes: start one, resume one, and preview what one would change.

The engine that runs a push is clusters.push (Rollout); here a push is only created, audited
and handed to Celery once the transaction that created it has committed.
"""

from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.utils import timezone

from clusters import audit, roles, tasks
from clusters import preview as preview_engine
from clusters import push as push_engine
from clusters.models import ConfigPush, NodeState, PushStep
from clusters.services import _rules
from clusters.services.errors import Busy, Refused


def enqueue(push_id):
    """Hand a committed push to a Celery worker."""
    tasks.run_push_task.delay(push_id)


def active_push(cluster):
    return cluster.pushes.filter(state__in=ConfigPush.ACTIVE_STATES).first()


def _busy(cluster, active):
    if active.kind == ConfigPush.Kind.DRILL:
        text = (
            f"A failover drill (#{active.pk}) of cluster {cluster.name} is {active.state}; "
            "wait for it to finish."
        )
    else:
        text = (
            f"Push #{active.pk} of cluster {cluster.name} is {active.state}; "
            "wait for it to finish (or resume it if it was interrupted)."
        )
    return Busy({"__all__": text}, active=active)


def queue_push(cluster, user=None, kind=ConfigPush.Kind.PUSH, queue=True):
    """Create a push and its steps, enqueued on commit; no role, no audit (callers do both).

    Refused (readiness) or Busy (another active push, which the database also forbids).
    """
    errors = cluster.readiness_errors()
    if errors:
        raise Refused(errors)
    try:
        with transaction.atomic():
            # While queued, the heartbeat says when it was last handed to Celery.
            push = ConfigPush.objects.create(
                cluster=cluster, requested_by=user, kind=kind, heartbeat=timezone.now()
            )
            nodes = cluster.nodes.order_by("priority", "pk")
            # Provisional order (lowest priority first); the worker puts the holder last
            # once it has probed who holds the VIPs.
            PushStep.objects.bulk_create(
                PushStep(push=push, node=node, node_name=node.name, position=i)
                for i, node in enumerate(nodes, start=1)
            )
            if queue:
                transaction.on_commit(lambda: enqueue(push.pk))
    except IntegrityError:
        active = active_push(cluster)
        if active is None:
            raise
        raise _busy(cluster, active) from None
    return push


def requeue_push(push, queue=True):
    """Queue a failed or interrupted push again; no role, no audit (callers do both)."""
    try:
        with transaction.atomic():
            # A drill is never resumed: it stops keepalived on a holder, run it anew instead.
            # The heartbeat is the database's clock, as the engine's staleness rule reads it.
            resumed = (
                ConfigPush.objects.filter(pk=push.pk, state__in=ConfigPush.RESUMABLE_STATES)
                .exclude(kind=ConfigPush.Kind.DRILL)
                .update(state=ConfigPush.State.QUEUED, finished=None, detail="", heartbeat=Now())
            )
            if not resumed:
                push.refresh_from_db()
                if push.kind == ConfigPush.Kind.DRILL:
                    raise Refused(
                        {
                            "__all__": f"#{push.pk} is a failover drill; a drill is "
                            "not resumed, start a new one."
                        }
                    )
                raise Refused(
                    {
                        "__all__": f"Push #{push.pk} is {push.state}; only a failed "
                        "or interrupted push can be resumed."
                    }
                )
            push.steps.filter(state=PushStep.State.FAILED).update(state=PushStep.State.PENDING)
            if queue:
                transaction.on_commit(lambda: enqueue(push.pk))
    except IntegrityError:
        active = active_push(push.cluster)
        raise Busy(
            {
                "__all__": f"Push #{active.pk if active else '?'} of this cluster is active; wait "
                "for it to finish before resuming this one."
            },
            active=active,
        ) from None
    push_engine._append_log(push.pk, "resumed")
    push.refresh_from_db()
    return push


def start_push(user, cluster, kind=ConfigPush.Kind.PUSH, queue=True):
    """An operator's push of `cluster`. queue=False leaves it for the caller to run (the push
    command's --here, tests)."""
    _rules.require(user, roles.OPERATOR)
    try:
        with transaction.atomic():
            push = queue_push(cluster, user, kind=kind, queue=queue)
            audit.record(
                user,
                "push.start",
                cluster,
                changes={"push": [None, push.pk]},
                result=f"push #{push.pk} queued",
            )
    except Refused as e:
        _rules.refused(user, "push.start", cluster, e)
        raise
    return push


def resume_push(user, push, queue=True):
    _rules.require(user, roles.OPERATOR)
    try:
        with transaction.atomic():
            push = requeue_push(push, queue=queue)
            audit.record(
                user,
                "push.resume",
                push.cluster,
                changes={"push": [None, push.pk]},
                result=f"push #{push.pk} queued again",
            )
    except Refused as e:
        _rules.refused(user, "push.resume", push.cluster, e, changes={"push": [None, push.pk]})
        raise
    return push


def preview(user, cluster):
    """What a push would change on each node: [clusters.preview.NodePreview].

    An operator's action everywhere: it connects to every node and reads its config. It never
    pins a host key (clusters.preview); nodes not trusted yet report that instead of a diff.
    """
    _rules.require(user, roles.OPERATOR)
    return preview_engine.preview_cluster(cluster)


def drift(user, node):
    """What was edited on `node`: its live file (as the last probe kept it) against what vipanel
    last pushed there, secrets masked (clusters.preview.Drift), or None with no drift. An
    operator's, like the preview: a file edited by hand may hold anything."""
    _rules.require(user, roles.OPERATOR)
    state = NodeState.objects.filter(node=node).first()
    return preview_engine.drift_of(node, state)
