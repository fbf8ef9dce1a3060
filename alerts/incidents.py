"""Turning what the history records into incidents, and incidents into messages.

Two sources:
- conditions that last (split brain, no holder, node unreachable, host key, config drift, a
  failed push): `evaluate(cluster)` compares what the latest observations show with the
  cluster's active incidents, after every sweep. A new problem is "pending" until it has lasted
  VIPANEL_ALERT_MIN_DURATION seconds (flap damping), then "open" with one message; when it is
  gone the incident is "resolved" with one more message. A problem gone before it alerted
  resolves silently.
- events that happen once (a failover, a drill's result): `record_event(event)` makes an
  incident that opens and resolves at once, with one message.

Expected problems send nothing and say why: a node in maintenance, anything while a push or a
drill runs on the cluster (a problem that outlasts it alerts then).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from alerts.models import Channel, Delivery, EventKind, Incident
from clusters import health
from clusters.convergence import settle_seconds
from clusters.models import ConfigPush, FailoverEvent

log = logging.getLogger(__name__)


@dataclass
class Condition:
    kind: str
    key: str
    subject: str
    title: str
    detail: str = ""
    vip: object = None
    node: object = None
    expected: str = ""


def min_duration():
    return timedelta(seconds=settings.VIPANEL_ALERT_MIN_DURATION)


def drill_running(cluster, at):
    """True while a drill of `cluster` was running at `at`: its record (a ConfigPush of kind
    DRILL) is still active, or had started by `at` and finished at most settle_seconds before
    it (the failback as the stopped node returns may be reported just after the record closed).
    """
    grace = timedelta(seconds=settle_seconds(cluster))
    drills = ConfigPush.objects.filter(cluster=cluster, kind=ConfigPush.Kind.DRILL)
    return drills.filter(
        Q(state__in=ConfigPush.ACTIVE_STATES) | Q(created__lte=at, finished__gte=at - grace)
    ).exists()


def busy_reason(cluster, at):
    """Why problems of `cluster` are expected right now ("" when they are not)."""
    # A drill first: it is a ConfigPush too, and "during a drill" says more than its number.
    if drill_running(cluster, at):
        return "during a drill"
    active = (
        cluster.pushes.filter(state__in=ConfigPush.ACTIVE_STATES)
        .values_list("pk", flat=True)
        .first()
    )
    if active:
        return f"during push #{active}"
    return ""


def conditions(cluster):
    """-> ({Incident.key: Condition}, time of the latest observation or None): the problems
    the latest observations of `cluster` show. What is a problem is clusters.health's one rule
    (the dashboard's, the API's, the metrics'); alerts pick the kinds they send. A VIP never
    pushed has none (pending push is no problem), nor has a node never checked."""
    found, latest = [], None
    report = health.cluster_health(cluster)
    for checked in report.nodes:
        state, node = checked.state, checked.node
        if state is None:
            continue
        latest = max(latest or state.checked_at, state.checked_at)
        expected = "node in maintenance" if node.maintenance else ""
        common = dict(node=node, subject=node.name, expected=expected)
        host_key = [
            p
            for p in checked.problems
            if p == health.HOST_KEY_CHANGED or p.startswith(health.NOT_TRUSTED)
        ]
        if host_key:
            found.append(
                Condition(
                    EventKind.HOST_KEY,
                    f"hostkey:{node.pk}",
                    title=f"Host key problem on {node.name}",
                    detail=state.error,
                    **common,
                )
            )
        elif health.UNREACHABLE in checked.problems:
            found.append(
                Condition(
                    EventKind.NODE_UNREACHABLE,
                    f"node:{node.pk}",
                    title=f"Node {node.name} is unreachable",
                    detail=state.error,
                    **common,
                )
            )
        if health.DRIFT in checked.problems:
            found.append(
                Condition(
                    EventKind.DRIFT,
                    f"drift:{node.pk}",
                    title=f"Config drift on {node.name}",
                    detail="The node's keepalived.conf is not what vipanel last pushed there: "
                    "it was edited on the node. Compare them on the cluster page, then push "
                    "to put vipanel's back, or take the edit into vipanel.",
                    **common,
                )
            )
    for checked in report.vips:
        vip, state = checked.vip, checked.state
        if state is None:
            continue
        latest = max(latest or state.checked_at, state.checked_at)
        if health.SPLIT_BRAIN in checked.problems:
            found.append(
                Condition(
                    EventKind.SPLIT_BRAIN,
                    f"vip:{vip.pk}",
                    vip=vip,
                    subject=vip.address,
                    title=f"Split brain: several nodes hold {vip.address}",
                    detail="Check that VRRP (IP protocol 112) passes between the nodes.",
                )
            )
        elif health.NO_HOLDER in checked.problems:
            found.append(
                Condition(
                    EventKind.NO_HOLDER,
                    f"vip:{vip.pk}",
                    vip=vip,
                    subject=vip.address,
                    title=f"No node holds {vip.address}",
                    detail="The VIP is down: no node answers for it.",
                )
            )
    last = (
        cluster.pushes.exclude(state__in=ConfigPush.ACTIVE_STATES)
        .order_by("-created", "-id")
        .first()
    )
    if last is not None and last.state in ConfigPush.RESUMABLE_STATES:
        found.append(
            Condition(
                EventKind.PUSH_FAILED,
                f"push:{cluster.pk}",
                subject=f"push #{last.pk}",
                title=f"Push #{last.pk} of {cluster.name} {last.state}",
                detail=last.detail,
            )
        )
    return {c.key: c for c in found}, latest


def evaluate(cluster, now=None):
    """Open, promote and resolve `cluster`'s incidents from its latest observations.

    Durations are measured in observation time (when the sweeps looked), so a worker that ran
    late does not make a problem look longer or shorter than it was.
    """
    wanted, latest = conditions(cluster)
    now = now or latest or timezone.now()
    busy = busy_reason(cluster, now)
    with transaction.atomic():
        active = {
            i.key: i
            for i in Incident.objects.select_for_update().filter(
                cluster=cluster, state__in=Incident.ACTIVE_STATES
            )
        }
        for key, incident in active.items():
            condition = wanted.get(key)
            if condition is None or condition.kind != incident.kind:
                if key.startswith("push:") and busy.startswith("during push"):
                    continue  # a resumed push is running: its outcome decides
                _resolve(incident, now, busy)
                continue
            incident.last_seen, incident.detail = now, condition.detail or incident.detail
            if incident.state == Incident.State.PENDING:
                if not busy and now - incident.started >= min_duration():
                    _open(incident, now, condition.expected)
            elif incident.expected and not condition.expected and not busy:
                # Out of maintenance and still broken: now it is worth a message.
                incident.expected = ""
                queue(incident, Delivery.Purpose.OPENED)
            incident.save()
        for key, condition in wanted.items():
            if key in active and active[key].kind == condition.kind:
                continue
            try:
                with transaction.atomic():
                    incident = Incident.objects.create(
                        kind=condition.kind,
                        cluster=cluster,
                        vip=condition.vip,
                        node=condition.node,
                        key=key,
                        subject=condition.subject[:100],
                        title=condition.title[:200],
                        detail=condition.detail,
                        started=now,
                        last_seen=now,
                    )
            except IntegrityError:
                continue  # a concurrent evaluation (a notify report) opened it just now
            # A failed push is a fact, not a flapping observation: no damping.
            if not busy and (not min_duration() or condition.kind == EventKind.PUSH_FAILED):
                _open(incident, now, condition.expected)
                incident.save()


def _open(incident, now, expected):
    incident.state, incident.opened, incident.expected = Incident.State.OPEN, now, expected
    if not expected:
        queue(incident, Delivery.Purpose.OPENED)


def _resolve(incident, now, busy):
    was_alerted = incident.alerted
    incident.state, incident.resolved, incident.last_seen = Incident.State.RESOLVED, now, now
    if incident.opened is None and busy:
        incident.expected = busy
    incident.save()
    if was_alerted:
        queue(incident, Delivery.Purpose.RESOLVED)


def record_event(event):
    """An incident for a failover or a drill result: it opens and resolves at once."""
    if event.kind not in (FailoverEvent.Kind.FAILOVER, FailoverEvent.Kind.DRILL):
        return None
    cluster = event.cluster
    if event.kind == FailoverEvent.Kind.DRILL:
        passed = event.detail.startswith("Passed")
        kind, expected = EventKind.DRILL, ""
        title = f"Drill {'passed' if passed else 'FAILED'} on {cluster.name}"
        subject = cluster.name
    else:
        kind = EventKind.FAILOVER
        title = f"Failover of {event.vip_address}: {event.from_node or '?'} -> {event.to_node}"
        subject = event.vip_address
        expected = ""
        # A drill first: its record is a ConfigPush, so the history says "During push #N".
        if drill_running(cluster, event.at):
            expected = "during a drill"
        elif event.detail.startswith("During push #"):
            expected = "during push #" + event.detail[len("During push #") :].split(".")[0]
        elif cluster.nodes.filter(name=event.from_node, maintenance=True).exists():
            expected = "node in maintenance"
    with transaction.atomic():
        incident = Incident.objects.create(
            kind=kind,
            cluster=cluster,
            vip_id=event.vip_id,
            event=event,
            key=f"event:{event.pk}",
            subject=subject[:100],
            title=title[:200],
            detail=f"{event.detail} (detected by {event.detected_by})".strip(),
            state=Incident.State.RESOLVED,
            started=event.at,
            last_seen=event.at,
            opened=event.at,
            resolved=event.at,
            expected=expected,
        )
        if not expected:
            queue(incident, Delivery.Purpose.OPENED)
    return incident


def channels_for(incident):
    """Enabled channels that want this kind of event from this cluster."""
    candidates = (
        Channel.objects.filter(enabled=True)
        .filter(Q(all_clusters=True) | Q(clusters=incident.cluster_id))
        .distinct()
    )
    return [c for c in candidates if incident.kind in c.kinds]


def queue(incident, purpose):
    """One Delivery per channel, sent by a worker once this transaction commits."""
    from alerts.tasks import deliver_task  # alerts.tasks imports this module

    for channel in channels_for(incident):
        delivery = Delivery.objects.create(
            incident=incident, channel=channel, channel_name=channel.name, purpose=purpose
        )
        transaction.on_commit(lambda pk=delivery.pk: deliver_task.delay(pk))


def message(delivery):
    """-> (title, body, is_failure) of a delivery."""
    incident = delivery.incident
    if delivery.purpose == Delivery.Purpose.TEST:
        return (
            "vipanel test message",
            f"A test of the alert channel '{delivery.channel_name}' from vipanel.",
            False,
        )
    cluster = incident.cluster.name
    if incident.kind in (EventKind.FAILOVER, EventKind.DRILL):
        failure = not (incident.kind == EventKind.DRILL and incident.title.startswith("Drill pa"))
        return (
            f"[vipanel] {incident.title}",
            f"Cluster {cluster}, {incident.started:%Y-%m-%d %H:%M:%S %Z}. {incident.detail}",
            failure,
        )
    if delivery.purpose == Delivery.Purpose.RESOLVED:
        took = _human(incident.resolved - incident.started)
        return (
            f"[vipanel] RESOLVED: {incident.title}",
            f"Cluster {cluster}: resolved after {took} (incident #{incident.pk}).",
            False,
        )
    return (
        f"[vipanel] PROBLEM: {incident.title}",
        f"Cluster {cluster}, since {incident.started:%Y-%m-%d %H:%M:%S %Z} "
        f"(incident #{incident.pk}). {incident.detail}".strip(),
        True,
    )


def _human(delta):
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"
