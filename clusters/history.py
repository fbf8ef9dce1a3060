"""Recording what probes and notify reports saw, and turning changes into FailoverEvents.

VipState holds who the panel believes holds each VIP. A sweep or a notify report that differs
from it becomes an event (failover, split brain and its end, no holder and its end). Each
observation carries the time it was made; an older one never overwrites a newer one, so a sweep
that started before a notify report cannot undo it.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from clusters import desired, render
from clusters.models import Cluster, ConfigPush, FailoverEvent, Node, NodeState, VipState
from clusters.status import (
    ABSENT,
    ClusterStatus,
    probe_cluster,
    probe_clusters,
    stale_address_message,
)

log = logging.getLogger(__name__)

SWEEP_SECONDS_KEY = "vipanel:last_sweep_seconds"
Kind = FailoverEvent.Kind
DetectedBy = FailoverEvent.DetectedBy


def _event(cluster, vip, kind, detected_by, at, from_node="", to_node="", detail=""):
    active = cluster.pushes.filter(state=ConfigPush.State.RUNNING).values_list("pk", "kind").first()
    if active:
        # Expected moves (a first start, a reload, a drill) are told apart from real failures.
        what = "drill" if active[1] == ConfigPush.Kind.DRILL else "push"
        detail = f"During {what} #{active[0]}. {detail}".strip()
    return FailoverEvent.objects.create(
        cluster=cluster,
        vip=vip,
        vip_address=vip.address,
        instance_name=render.vip_instance_name(vip),
        kind=kind,
        detected_by=detected_by,
        at=at,
        from_node=from_node,
        to_node=to_node,
        detail=detail,
    )


def notify_yield_seconds():
    """How long the sweep may defer to notify reports newer than its probe (see record_status)."""

    return 2 * settings.VIPANEL_SWEEP_INTERVAL


def _stale_events(cluster, vip, state, stale, detected_by, at, nodes):
    """Events for nodes whose keepalived is stopped but that still have the address."""
    events = []
    before = set(state.stale_on if state else [])
    for name in sorted(set(stale) - before):
        node = nodes.get(name)
        interface = node.effective_interface if node else "its interface"
        events.append(
            _event(
                cluster,
                vip,
                Kind.STALE_ADDRESS,
                detected_by,
                at,
                from_node=name,
                detail=stale_address_message(name, vip.address, interface),
            )
        )
    for name in sorted(before - set(stale)):
        events.append(
            _event(
                cluster,
                vip,
                Kind.STALE_ADDRESS_END,
                detected_by,
                at,
                from_node=name,
                detail=f"The stale address is gone from {name}.",
            )
        )
    return events


def record_status(cluster: Cluster, status: ClusterStatus, detected_by=DetectedBy.SWEEP):
    """Store a probe's result; returns the FailoverEvents it created.

    The sweep is the source of truth. It defers to a notify report that arrived after its probe
    started (it may have seen the node a moment before the takeover), but only while its own
    last record of that VIP is younger than notify_yield_seconds(): a flood of reports can delay
    the sweep's verdict by that much at most, never hide it.
    """
    at = status.checked_at
    # With their last state: a notify report newer than this probe (NodeState.reported_at).
    rows = cluster.nodes.select_related("state").defer("pushed_config", "state__drift_config")
    nodes = {n.name: n for n in rows}
    by_id = {n.pk: n for n in nodes.values()}
    stale_by_vip = getattr(status, "stale", {}) or {}
    yield_for = timezone.timedelta(seconds=notify_yield_seconds())
    events = []
    reported = {
        pk
        for pk, n in by_id.items()
        if (state := _state_of(n)) is not None
        and state.reported_at
        and state.reported_at > at
        and at - state.checked_at < yield_for
    }
    seen_as_before = []
    with transaction.atomic():
        for probe in status.nodes:
            node = by_id.get(probe.node_id)
            if node is not None:
                _record_desired(node, probe)
            fields = dict(
                checked_at=at,
                reachable=probe.reachable,
                keepalived_running=probe.keepalived_running,
                vrrp_state=probe.vrrp_state,
                holds=probe.holds,
                drift=probe.drift,
                error=probe.error,
                host_key_problem=probe.host_key_problem,
                config_sha=probe.config_sha or "",
            )
            if probe.live_config is not None:
                fields.update(
                    drift_config=probe.live_config,
                    drift_config_sha=probe.config_sha or ABSENT,
                )
            elif probe.drift is False:
                fields.update(drift_config="", drift_config_sha="")
            if probe.node_id in reported and probe.reachable:
                # keepalived reported a transition after this probe started (its STOP as it
                # goes down, say): the report is newer. The next sweep judges again.
                del fields["keepalived_running"], fields["vrrp_state"], fields["holds"]
            if node is not None and _seen_as_before(_state_of(node), fields):
                seen_as_before.append(probe.node_id)
                continue
            NodeState.objects.update_or_create(node_id=probe.node_id, defaults=fields)
        if seen_as_before:
            # The steady state of a fleet in service: one UPDATE for every such node, instead
            # of a row read, locked and saved per node (most of a sweep's database time).
            NodeState.objects.filter(node_id__in=seen_as_before).update(checked_at=at)
        unknown = bool(status.unreachable)
        # A VIP never pushed is configuration only: no holder is looked for, nothing recorded.
        for vip in cluster.vips.filter(pushed_at__isnull=False):
            holders = status.holders.get(vip.address, [])
            stale = stale_by_vip.get(vip.address, [])
            if not holders and unknown:
                continue  # it may be on the node we could not reach: nothing learned
            holder = nodes.get(holders[0]) if len(holders) == 1 else None
            split, none = len(holders) > 1, not holders
            state = (
                VipState.objects.select_for_update(of=("self",))
                .select_related("holder")
                .filter(vip=vip)
                .first()
            )
            if state is None:
                VipState.objects.create(
                    vip=vip,
                    holder=holder,
                    since=at,
                    split_brain=split,
                    no_holder=none,
                    checked_at=at,
                    stale_on=stale,
                )
                events += _stale_events(cluster, vip, None, stale, detected_by, at, nodes)
                if split:
                    events.append(
                        _event(
                            cluster,
                            vip,
                            Kind.SPLIT_BRAIN,
                            detected_by,
                            at,
                            to_node=", ".join(holders),
                        )
                    )
                elif none:
                    events.append(_event(cluster, vip, Kind.NO_HOLDER, detected_by, at))
                continue
            if state.checked_at > at:
                continue  # a newer sweep is already recorded
            if state.notified_at and state.notified_at > at and at - state.checked_at < yield_for:
                continue  # a report newer than this probe: the next sweep judges
            events += _stale_events(cluster, vip, state, stale, detected_by, at, nodes)
            previous = state.holder.name if state.holder else ""
            if split and not state.split_brain:
                events.append(
                    _event(
                        cluster,
                        vip,
                        Kind.SPLIT_BRAIN,
                        detected_by,
                        at,
                        from_node=previous,
                        to_node=", ".join(holders),
                        detail="Several nodes hold this VIP: check that VRRP "
                        "(IP protocol 112) passes between them.",
                    )
                )
            elif not split and state.split_brain:
                events.append(
                    _event(
                        cluster,
                        vip,
                        Kind.SPLIT_BRAIN_END,
                        detected_by,
                        at,
                        to_node=holder.name if holder else "",
                    )
                )
            if none and not state.no_holder:
                events.append(
                    _event(cluster, vip, Kind.NO_HOLDER, detected_by, at, from_node=previous)
                )
            elif not none and state.no_holder:
                events.append(
                    _event(
                        cluster,
                        vip,
                        Kind.NO_HOLDER_END,
                        detected_by,
                        at,
                        to_node=", ".join(holders),
                    )
                )
                if holder and previous and holder.name != previous:
                    # Back on another node than before the gap: the gap was the takeover's
                    # master-down interval (or a dead keepalived's), so this is a failover.
                    events.append(
                        _event(
                            cluster,
                            vip,
                            Kind.FAILOVER,
                            detected_by,
                            at,
                            from_node=previous,
                            to_node=holder.name,
                        )
                    )
            elif (
                holder
                and state.holder_id
                and holder.pk != state.holder_id
                and not state.split_brain
            ):
                events.append(
                    _event(
                        cluster,
                        vip,
                        Kind.FAILOVER,
                        detected_by,
                        at,
                        from_node=previous,
                        to_node=holder.name,
                    )
                )
            if holder is None or holder.pk != state.holder_id:
                state.since = at
            # The last single holder is kept through a split brain or a gap with none.
            state.holder = holder if holder is not None else state.holder
            state.split_brain, state.no_holder, state.checked_at = split, none, at
            state.stale_on = stale
            state.save()
    return events


def _seen_as_before(state, fields):
    """Whether a probe's `fields` for a node's NodeState are what `state` holds already (all but
    checked_at), for a node the probe found healthy. A node with a problem (unreachable, a host
    key refused, an error, drift) is saved in full every sweep, so post_save's receivers (the
    alerts) hear of it each time, as they do of every change."""
    if state is None or not fields["reachable"] or fields["host_key_problem"]:
        return False
    if fields["error"] or fields["drift"]:
        return False
    for name, value in fields.items():
        if name == "checked_at":
            continue
        if name == "drift_config":
            if value:  # a drifted file's content to store
                return False
            continue  # deferred; it goes with drift_config_sha, compared below
        if getattr(state, name) != value:
            return False
    return True


def _state_of(node):
    try:
        return node.state
    except NodeState.DoesNotExist:
        return None


def _record_desired(node, probe):
    """The desired hash the probe rendered, and an upgrade's adoption of the live file: an
    earlier release pushed this node without recording what, so the file there now is taken as
    the one last pushed (its content is kept when it is what vipanel renders, for a later
    drift's diff). Changes `probe.drift` to what it is after the adoption."""
    desired.store(node.pk, probe.desired_sha, node.desired_config_sha)
    if not (node.adopt_live_config and probe.reachable and probe.config_sha):
        return
    content = ""
    if probe.config_sha == probe.desired_sha:
        try:
            content = render.node_config(node)
        except ValueError:
            content = ""
    Node.objects.filter(pk=node.pk, adopt_live_config=True).update(
        adopt_live_config=False, pushed_config_sha=probe.config_sha, pushed_config=content
    )
    probe.drift = False


def _instance_vips(cluster: Cluster, name: str):
    """The VIPs of the cluster's vrrp_instance that keepalived calls `name` (none when no
    instance has that name any more: renamed or removed since the node's last push)."""
    if name == cluster.instance_name:
        return cluster.vips.filter(instance__isnull=True)
    for inst in cluster.instances.all():
        if inst.keepalived_name == name:
            return cluster.vips.filter(instance=inst)
    return cluster.vips.none()


def record_notify(cluster: Cluster, node: Node, vrrp_state: str, at=None, instance=None):
    """A node reported a transition of one vrrp_instance (`instance`, keepalived's name of it).
    MASTER means the node now holds that instance's VIPs. A report that names no instance (from
    a script pushed before reports named it) speaks for every VIP only when the cluster has one
    instance; with several, the sweep records the holders.

    A report speaks for its own node only: it can make that node the holder, never another.
    VIPs never pushed are left alone, as by the sweep.
    It sets notified_at, not checked_at: checked_at is the sweep's, so reports (however many)
    never make the sweep's observations look old (see record_status).
    """
    at = at or timezone.now()
    events = []
    with transaction.atomic():
        # The report comes from keepalived itself: it runs, in that state, unless it says STOP
        # (it is going down). A sweep whose probe started before this does not undo it.
        running = vrrp_state != "STOP"
        fields = dict(
            vrrp_state=vrrp_state if running else "STOPPED",
            keepalived_running=running,
            reported_at=at,
        )
        if not running:
            # A keepalived that stops gives its addresses up (SIGTERM); one killed outright
            # reports nothing, and the sweep finds what it left behind.
            fields["holds"] = []
        NodeState.objects.filter(node=node).update(**fields)
        if vrrp_state != "MASTER":
            return events
        if instance is not None:
            vips = _instance_vips(cluster, instance)
        elif cluster.instances.exists():
            return events
        else:
            vips = cluster.vips.all()
        for vip in vips.filter(pushed_at__isnull=False):
            state = (
                VipState.objects.select_for_update(of=("self",))
                .select_related("holder")
                .filter(vip=vip)
                .first()
            )
            if state is None:
                VipState.objects.create(
                    vip=vip, holder=node, since=at, checked_at=at, notified_at=at
                )
                continue
            if state.checked_at > at or (state.notified_at and state.notified_at > at):
                continue  # an observation newer than this report is already recorded
            if state.holder_id == node.pk and not state.no_holder:
                state.notified_at = at
                state.save(update_fields=["notified_at"])
                continue
            if state.no_holder:
                # A sweep saw the gap between the old holder stopping and this takeover.
                events.append(
                    _event(
                        cluster, vip, Kind.NO_HOLDER_END, DetectedBy.NOTIFY, at, to_node=node.name
                    )
                )
            elif state.holder_id:
                events.append(
                    _event(
                        cluster,
                        vip,
                        Kind.FAILOVER,
                        DetectedBy.NOTIFY,
                        at,
                        from_node=state.holder.name,
                        to_node=node.name,
                    )
                )
            state.holder, state.since, state.notified_at = node, at, at
            state.no_holder = False
            state.save()
    return events


def sweep_cluster(cluster: Cluster):
    status = probe_cluster(cluster)
    record_status(cluster, status)
    return status


def sweep_clusters(clusters, after=None) -> dict:
    """Probe these clusters' nodes all at once and record each cluster's result. A fault in one
    cluster (or node) is logged and recorded as such; the others are recorded all the same.
    ``after(cluster)`` is called once each cluster is recorded (the sweep releases its lock)."""

    def record(cluster, status):
        # As each cluster's nodes have answered: a dead node delays only its own cluster.
        try:
            record_status(cluster, status)
        except Exception:
            log.exception("recording the sweep of cluster %s failed", cluster.name)
        finally:
            if after is not None:
                after(cluster)

    return probe_clusters(clusters, on_done=record)


def batches(items, sizes, limit):
    """Split items (in order) into lists whose `sizes` add up to at most `limit` each (an item
    bigger than the limit gets a list of its own)."""
    out, current, weight = [], [], 0
    for item, size in zip(items, sizes, strict=True):
        if current and weight + size > limit:
            out.append(current)
            current, weight = [], 0
        current.append(item)
        weight += size
    if current:
        out.append(current)
    return out


def sweep_all():
    """Every cluster, in this process (the fanned-out sweep is clusters.sweep; this is for
    commands and tests): batches of VIPANEL_SWEEP_BATCH_NODES nodes, probed at once. The push
    housekeeping of each sweep is the sweep task's (clusters.tasks), so observation does not
    import the push engine."""
    started = time.monotonic()
    clusters = list(Cluster.objects.order_by("pk"))
    sizes = [c.nodes.count() for c in clusters]
    for batch in batches(clusters, sizes, settings.VIPANEL_SWEEP_BATCH_NODES):
        try:
            sweep_clusters(batch)
        except Exception:
            log.exception("sweeping clusters %s failed", ", ".join(c.name for c in batch))
    # For /metrics, which another process serves: the cache is shared (Redis).
    cache.set(SWEEP_SECONDS_KEY, time.monotonic() - started, timeout=None)
