"""Failover drill: stop keepalived on the holder, confirm the VIPs move to the expected node
within the VRRP timeout, start it again, and record the outcome in the failover history.

A drill is a ConfigPush of kind DRILL (no steps): it shares the database's one active
operation per cluster rule with pushes, so a push during a drill, a drill during a push and
two drills at once are refused; it is claimed, heartbeated and fenced like a push.
"""

import time

from django.db import IntegrityError, transaction
from django.utils import timezone

from clusters import audit, history, remote, render, ssh
from clusters import push as engine
from clusters.convergence import settle_seconds, wait_until_settled
from clusters.models import ConfigPush, FailoverEvent
from clusters.status import probe_cluster

# keepalived writes its pid here by default (and Debian's systemd unit reads it); SIGTERM makes
# it give up its VIPs at once with a priority-0 advert, like a clean stop.
STOP_COMMAND = 'kill -TERM "$(cat /run/keepalived.pid)"'
WAIT_FOR_EXIT = (
    "for i in $(seq 100); do pidof keepalived >/dev/null || exit 0; sleep 0.1; done; exit 1"
)


class DrillRefused(Exception):
    pass


def create_drill(cluster, user=None, instance=None):
    """The drill's record, queued; DrillRefused when another push or drill is active.
    `instance`: the VrrpInstance whose failover is drilled (None: the main instance)."""
    if instance is not None and instance.cluster_id != cluster.pk:
        raise DrillRefused(f"Instance {instance.name} is not an instance of {cluster.name}.")
    if cluster.nodes.filter(maintenance=False).count() < 2:
        raise DrillRefused("A drill needs at least two nodes that are not in maintenance.")
    try:
        with transaction.atomic():
            return ConfigPush.objects.create(
                cluster=cluster,
                requested_by=user if user is not None and user.pk else None,
                kind=ConfigPush.Kind.DRILL,
                heartbeat=timezone.now(),
                drill_instance=instance,
            )
    except IntegrityError:
        active = cluster.pushes.filter(state__in=ConfigPush.ACTIVE_STATES).first()
        if active is None:
            raise
        what = "A drill" if active.kind == ConfigPush.Kind.DRILL else "A push"
        raise DrillRefused(
            f"{what} of this cluster is active (#{active.pk}); run the drill when it has finished."
        ) from None


def run_drill_record(record_id):
    """Claim a queued drill record and run it (the Celery task): -> the FailoverEvent, or
    None when it was not ours to run (redelivered, or already claimed)."""

    owner = engine.claim(record_id, kinds=[ConfigPush.Kind.DRILL])
    if owner is None:
        return None
    record = ConfigPush.objects.select_related("cluster", "requested_by", "drill_instance").get(
        pk=record_id
    )
    with engine._heartbeat(owner):
        try:
            event = _run(record.cluster, record.requested_by, record.drill_instance)
        except engine.PushLost:
            return None
        except BaseException as e:
            engine._finish(record, ConfigPush.State.FAILED, f"The drill stopped: {e!r}", owner)
            raise
        passed = event.detail.startswith("Passed.")
        engine._finish(
            record,
            ConfigPush.State.SUCCEEDED if passed else ConfigPush.State.FAILED,
            event.detail,
            owner,
        )
    return event


def run_drill(cluster, user=None, instance=None):
    """Create the drill's record and run it here: -> the DRILL FailoverEvent."""
    record = create_drill(cluster, user, instance)
    return run_drill_record(record.pk)


def _run(cluster, user=None, instance=None):
    """-> the DRILL FailoverEvent recording what happened to `instance`'s VIPs (None: the main
    instance). Stopping keepalived on its holder stops every instance there; the drill judges
    the one it targets."""
    target = next(i for i in cluster.vrrp_instances() if i.instance == instance)
    addresses = [v.address for v in target.vips]
    status = probe_cluster(cluster)
    history.record_status(cluster, status)
    anchor = addresses[0] if addresses else None
    holder_name = status.holder(anchor) if anchor else None
    if holder_name is None:
        return _record(
            cluster,
            user,
            "",
            "",
            False,
            f"No single node holds the VIPs of {target.name}; nothing to drill.",
            target,
        )
    nodes = {n.name: n for n in cluster.nodes.select_related("credential", "cluster__credential")}
    holder = nodes[holder_name]
    candidates = [
        nodes[p.name]
        for p in status.nodes
        if p.name != holder_name and p.keepalived_running and not nodes[p.name].maintenance
    ]
    if not candidates:
        return _record(
            cluster,
            user,
            holder_name,
            "",
            False,
            "No other node runs keepalived to take over.",
            target,
        )
    expected = max(candidates, key=lambda n: target.priorities.get(n.pk, 0))
    limit = settle_seconds(cluster)
    try:
        with remote.open_node(holder) as conn:
            stopped_at = time.monotonic()
            result = conn.run(STOP_COMMAND)
            if result.exit_status != 0:
                return _record(
                    cluster,
                    user,
                    holder_name,
                    expected.name,
                    False,
                    f"Could not stop keepalived on {holder_name}: {result.stderr.strip()}",
                    target,
                )
            moved_after = _wait_for_holder(cluster, expected.name, stopped_at, limit, addresses)
            # keepalived takes a moment to exit after SIGTERM; a reload command that finds it
            # still there (kill -HUP, or systemd's "reload") would not start a new one.
            conn.run(WAIT_FOR_EXIT, timeout=15)
            conn.run(cluster.reload_command)
    except ssh.SSHError as e:
        return _record(
            cluster, user, holder_name, expected.name, False, f"SSH failed: {e.message}", target
        )
    settled = wait_until_settled(cluster, final=True)
    if moved_after is None:
        detail = (
            f"The VIPs did not move to {expected.name} within {limit}s. keepalived on "
            f"{holder_name} was started again."
        )
        return _record(cluster, user, holder_name, expected.name, False, detail, target)
    detail = f"The VIPs moved to {expected.name} in {moved_after:.1f}s (limit {limit}s). "
    detail += (
        "Back to normal after the restart." if settled is None else f"After the restart: {settled}."
    )
    return _record(cluster, user, holder_name, expected.name, settled is None, detail, target)


def _wait_for_holder(cluster, name, since, limit, addresses):
    """Seconds until `name` holds every VIP of `addresses`, or None after `limit` seconds."""
    while time.monotonic() - since <= limit:
        status = probe_cluster(cluster)
        if all(status.holders.get(a) == [name] for a in addresses):
            return time.monotonic() - since
        time.sleep(0.1)
    return None


def _record(cluster, user, from_node, to_node, passed, detail, target=None):
    vip = target.vips[0] if target and target.vips else cluster.vips.order_by("id").first()
    event = FailoverEvent.objects.create(
        cluster=cluster,
        vip=vip,
        vip_address=vip.address if vip else "",
        instance_name=render.vip_instance_name(vip) if vip else "",
        from_node=from_node,
        to_node=to_node,
        at=timezone.now(),
        kind=FailoverEvent.Kind.DRILL,
        detected_by=FailoverEvent.DetectedBy.DRILL,
        detail=("Passed. " if passed else "FAILED. ") + detail,
    )
    audit.record(user, "drill", cluster, result=("passed" if passed else "failed"))
    return event
