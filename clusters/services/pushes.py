"""Pushes: start one, resume one, and preview what one would change.

The engine that runs a push is clusters.push (Rollout); here a push is only created, audited
and handed to Celery once the transaction that created it has committed.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.utils import timezone

from clusters import audit, impact, roles, tasks
from clusters import preview as preview_engine
from clusters import push as push_engine
from clusters.convergence import settle_seconds
from clusters.models import ConfigPush, FailoverEvent, NodeState, PushStep
from clusters.services import _rules
from clusters.services.errors import Busy, Refused, Unreachable


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


def _skip_list(cluster, skip, user):
    """The nodes an operator leaves out, as the push records them; Refused naming a name that
    is no node of the cluster."""
    names = set(cluster.nodes.values_list("name", flat=True))
    wrong = [n for n in dict.fromkeys(skip) if n not in names]
    if wrong:
        # What was sent is not echoed (it may be anything): the names it may take are.
        raise Refused(
            {
                "skip": f"{len(wrong)} of the names to skip {'is' if len(wrong) == 1 else 'are'} "
                f"no node of cluster {cluster.name}; its nodes are {', '.join(sorted(names))}."
            }
        )
    who = user.get_username() if user is not None and user.is_authenticated else "system"
    return [{"node": n, "by": who} for n in dict.fromkeys(skip)]


def check_reachable(cluster, kind, skip=(), names=None):
    """Unreachable naming the nodes the last probe could not reach, that the push would change
    (`names`: only these; a normal push leaves nodes in maintenance alone) and that are not
    skipped. The worker checks again when it plans, before it touches any node."""
    states = NodeState.objects.filter(node__cluster=cluster, reachable=False).select_related("node")
    down = [
        s
        for s in states.order_by("node__name")
        if s.node.name not in skip
        and (names is None or s.node.name in names)
        and not (kind == ConfigPush.Kind.PUSH and s.node.maintenance)
    ]
    if not down:
        return
    listed = ", ".join(s.node.name for s in down)
    why = "; ".join(f"{s.node.name}: {s.error}" for s in down if s.error)
    raise Unreachable(
        {
            "__all__": f"{listed} did not answer the last probe"
            + (f" ({why})" if why else "")
            + f". A push is refused while a node it must change is unreachable: skip {listed} "
            "(left as it is, never connected to) or bring it back."
        },
        nodes=[s.node.name for s in down],
    )


def queue_push(cluster, user=None, kind=ConfigPush.Kind.PUSH, queue=True, skip=()):
    """Create a push and its steps, enqueued on commit; no role, no audit (callers do both).

    Refused (readiness, a node unreachable and not skipped) or Busy (another active push, which
    the database also forbids).
    """
    errors = cluster.readiness_errors()
    if errors:
        raise Refused(errors)
    skipped = _skip_list(cluster, skip, user)
    check_reachable(cluster, kind, skip)
    try:
        with transaction.atomic():
            # While queued, the heartbeat says when it was last handed to Celery.
            push = ConfigPush.objects.create(
                cluster=cluster,
                requested_by=user,
                kind=kind,
                heartbeat=timezone.now(),
                skipped=skipped,
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


def requeue_push(push, queue=True, skip=(), user=None):
    """Queue a failed or interrupted push again, leaving out the `skip`ped nodes too; no role,
    no audit (callers do both)."""
    added = _skip_list(push.cluster, skip, user)
    skipped = push.skipped + [s for s in added if s["node"] not in push.skipped_names]
    pending = [s.node_name for s in push.steps.all() if not s.is_done]
    if push.state in ConfigPush.RESUMABLE_STATES and push.kind != ConfigPush.Kind.DRILL:
        check_reachable(push.cluster, push.kind, [s["node"] for s in skipped], names=set(pending))
    try:
        with transaction.atomic():
            # A drill is never resumed: it stops keepalived on a holder, run it anew instead.
            # The heartbeat is the database's clock, as the engine's staleness rule reads it.
            resumed = (
                ConfigPush.objects.filter(pk=push.pk, state__in=ConfigPush.RESUMABLE_STATES)
                .exclude(kind=ConfigPush.Kind.DRILL)
                .update(
                    state=ConfigPush.State.QUEUED,
                    finished=None,
                    detail="",
                    heartbeat=Now(),
                    skipped=skipped,
                )
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


def push_changes(push):
    """The audit entry's account of a push: its number, the nodes it covers and those an
    operator left out (the push's own end adds what changed on each, clusters.push)."""
    steps = list(push.steps.order_by("position").values_list("node_name", flat=True))
    skipped = push.skipped_names
    changes = {"push": [None, push.pk]}
    if steps:
        changes["nodes"] = [None, ", ".join(n for n in steps if n not in skipped)]
    if skipped:
        changes["skipped"] = [None, ", ".join(f"{n} (unreachable)" for n in skipped)]
    return changes


def start_push(user, cluster, kind=ConfigPush.Kind.PUSH, queue=True, *, confirm=None, skip=()):
    """An operator's push of `cluster`, confirmed by naming it (_rules.confirm), leaving out the
    `skip`ped nodes (names; recorded on the push and its audit entry). queue=False leaves it
    for the caller to run (the push command's --here, tests)."""
    _rules.require(user, roles.OPERATOR)
    _rules.confirm(user, cluster, confirm, "The push")
    try:
        with transaction.atomic():
            push = queue_push(cluster, user, kind=kind, queue=queue, skip=skip)
            changes = push_changes(push)
            audit.record(
                user,
                "push.start",
                cluster,
                changes=changes,
                result=f"push #{push.pk} queued for {changes.get('nodes', [None, ''])[1]}"
                + (f", skipping {', '.join(push.skipped_names)}" if push.skipped else ""),
            )
    except Refused as e:
        _rules.refused(user, "push.start", cluster, e)
        raise
    return push


def resume_push(user, push, queue=True, *, confirm=None, skip=()):
    """Resume a failed or interrupted push, confirmed by naming its cluster; `skip` leaves out
    further nodes (the ones that could not be reached), recorded like a start's."""
    _rules.require(user, roles.OPERATOR)
    _rules.confirm(user, push.cluster, confirm, "Resuming the push")
    try:
        with transaction.atomic():
            push = requeue_push(push, queue=queue, skip=skip, user=user)
            changes = push_changes(push)
            audit.record(
                user,
                "push.resume",
                push.cluster,
                changes=changes,
                result=f"push #{push.pk} queued again"
                + (f", skipping {', '.join(push.skipped_names)}" if push.skipped else ""),
            )
    except Refused as e:
        _rules.refused(user, "push.resume", push.cluster, e, changes={"push": [None, push.pk]})
        raise
    return push


def preview(user, cluster, skip=(), maintenance=None, action="push"):
    """What a push would do: a clusters.preview.Preview (each node's diff, the prediction, and
    why a push would be refused, if it would).

    An operator's action everywhere: it connects to every node (but the `skip`ped ones) and
    reads its config. It never pins a host key (clusters.preview); nodes not trusted yet report
    that instead of a diff. `maintenance` {node id: flag}: a maintenance switch not made yet.
    """
    _rules.require(user, roles.OPERATOR)
    _skip_list(cluster, skip, user)
    return preview_engine.preview_cluster(
        cluster, maintenance=maintenance, skip=tuple(skip), action=action
    )


def preview_node(user, node):
    """One node's live file against what a push would send it (clusters.preview.NodePreview):
    read over SSH like `preview`, an operator's action, never pinning a host key."""
    _rules.require(user, roles.OPERATOR)
    return preview_engine.preview_node(node)


def drift(user, node):
    """What was edited on `node`: its live file (as the last probe kept it) against what vipanel
    last pushed there, secrets masked (clusters.preview.Drift), or None with no drift. An
    operator's, like the preview: a file edited by hand may hold anything."""
    _rules.require(user, roles.OPERATOR)
    state = NodeState.objects.filter(node=node).first()
    return preview_engine.drift_of(node, state)


# --- Whether a push's prediction held --------------------------------------------------------


def verdict_window(cluster):
    """Seconds after a push or drill ends during which its moves may still be reported: the
    VRRP settling time and one sweep."""
    return settle_seconds(cluster) + settings.VIPANEL_SWEEP_INTERVAL


def push_events(push):
    """The FailoverEvents of `push`'s window (its start to its end plus verdict_window)."""
    if push.started is None:
        return FailoverEvent.objects.none()
    events = FailoverEvent.objects.filter(cluster_id=push.cluster_id, at__gte=push.started)
    if push.finished is not None:
        grace = timedelta(seconds=verdict_window(push.cluster))
        events = events.filter(at__lte=push.finished + grace)
    return events.order_by("at", "id")


def verdict(push, now=None):
    """Did `push`'s recorded prediction hold (clusters.impact.judge), from the events of its
    window and the holders it saw at its end. Read by the push page, the API and the history."""
    events = [
        {
            "id": e.pk,
            "kind": e.kind,
            "vip": e.vip_address,
            "from_node": e.from_node,
            "to_node": e.to_node,
        }
        for e in push_events(push)
    ]
    finished = push.finished is not None and not push.is_active
    result = impact.judge(
        push.prediction,
        push.observed or None,
        events,
        finished=finished,
        succeeded=push.state == ConfigPush.State.SUCCEEDED,
    )
    if finished and result.status == "held":
        now = now or timezone.now()
        if now < push.finished + timedelta(seconds=verdict_window(push.cluster)):
            result.status = "pending"
            result.reasons = [
                "So far as predicted; moves reported in the next few seconds still count."
            ]
    return result
