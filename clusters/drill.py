"""Failover drill: stop keepalived on the holder, confirm the VIPs move to the expected node
within the VRRP timeout, start it again, and record the outcome in the failover history."""

import time

from django.utils import timezone

from clusters import audit, history, remote, ssh
from clusters.models import ConfigPush, FailoverEvent
from clusters.push import settle_seconds, wait_until_settled
from clusters.status import probe_cluster

# keepalived writes its pid here by default (and Debian's systemd unit reads it); SIGTERM makes
# it give up its VIPs at once with a priority-0 advert, like a clean stop.
STOP_COMMAND = 'kill -TERM "$(cat /run/keepalived.pid)"'
WAIT_FOR_EXIT = "for i in $(seq 100); do pidof keepalived >/dev/null || exit 0; sleep 0.1; done; exit 1"


class DrillRefused(Exception):
    pass


def start_drill(cluster, user=None):
    """Check a drill can start (DrillRefused if not). clusters.services.drills audits it and
    hands it to a worker on commit; the engine never imports the tasks."""
    problem = _refusal(cluster)
    if problem:
        raise DrillRefused(problem)


def _refusal(cluster):
    if cluster.pushes.filter(state__in=ConfigPush.ACTIVE_STATES).exists():
        return "A push of this cluster is active; run the drill when it has finished."
    if cluster.nodes.filter(maintenance=False).count() < 2:
        return "A drill needs at least two nodes that are not in maintenance."
    return None


def run_drill(cluster, user=None):
    """-> the DRILL FailoverEvent recording what happened."""
    status = probe_cluster(cluster)
    history.record_status(cluster, status)
    anchor = next(iter(status.holders), None)
    holder_name = status.holder(anchor) if anchor else None
    if holder_name is None:
        return _record(cluster, user, "", "", False, "No single node holds the VIPs; nothing to drill.")
    nodes = {n.name: n for n in cluster.nodes.select_related("credential", "cluster__credential")}
    holder = nodes[holder_name]
    candidates = [
        nodes[p.name] for p in status.nodes
        if p.name != holder_name and p.keepalived_running and not nodes[p.name].maintenance
    ]
    if not candidates:
        return _record(cluster, user, holder_name, "", False, "No other node runs keepalived to take over.")
    expected = max(candidates, key=lambda n: n.priority)
    limit = settle_seconds(cluster)
    try:
        with remote.open_node(holder) as conn:
            stopped_at = time.monotonic()
            result = conn.run(STOP_COMMAND)
            if result.exit_status != 0:
                return _record(cluster, user, holder_name, expected.name, False,
                               f"Could not stop keepalived on {holder_name}: {result.stderr.strip()}")
            moved_after = _wait_for_holder(cluster, expected.name, stopped_at, limit)
            # keepalived takes a moment to exit after SIGTERM; a reload command that finds it
            # still there (kill -HUP, or systemd's "reload") would not start a new one.
            conn.run(WAIT_FOR_EXIT, timeout=15)
            conn.run(cluster.reload_command)
    except ssh.SSHError as e:
        return _record(cluster, user, holder_name, expected.name, False, f"SSH failed: {e.message}")
    settled = wait_until_settled(cluster, final=True)
    if moved_after is None:
        detail = (f"The VIPs did not move to {expected.name} within {limit}s. keepalived on "
                  f"{holder_name} was started again.")
        return _record(cluster, user, holder_name, expected.name, False, detail)
    detail = f"The VIPs moved to {expected.name} in {moved_after:.1f}s (limit {limit}s). "
    detail += "Back to normal after the restart." if settled is None else f"After the restart: {settled}."
    return _record(cluster, user, holder_name, expected.name, settled is None, detail)


def _wait_for_holder(cluster, name, since, limit):
    """Seconds until `name` holds every VIP, or None after `limit` seconds."""
    while time.monotonic() - since <= limit:
        status = probe_cluster(cluster)
        if status.holders and all(h == [name] for h in status.holders.values()):
            return time.monotonic() - since
        time.sleep(0.1)
    return None


def _record(cluster, user, from_node, to_node, passed, detail):
    vip = cluster.vips.order_by("id").first()
    event = FailoverEvent.objects.create(
        cluster=cluster,
        vip=vip,
        vip_address=vip.address if vip else "",
        from_node=from_node,
        to_node=to_node,
        at=timezone.now(),
        kind=FailoverEvent.Kind.DRILL,
        detected_by=FailoverEvent.DetectedBy.DRILL,
        detail=("Passed. " if passed else "FAILED. ") + detail,
    )
    audit.record(user, "drill", cluster, result=("passed" if passed else "failed"))
    return event
