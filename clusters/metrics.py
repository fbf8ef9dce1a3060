"""Prometheus metrics at /metrics, by prometheus_client with a collector that reads the database.

Everything comes from what the database already holds (the last sweep's NodeState and VipState,
pushes, failover events), read at scrape time by ``DatabaseCollector``, so a scrape never opens
an SSH connection and costs a fixed handful of queries however many clusters there are. The
sweep's figures (its duration, the ticks that skipped a cluster still being probed) come from
Redis; when Redis does not answer they are left out and the rest is served all the same.

Types are honest: a gauge wherever the value can go down. Pushes and failover events are rows
that queued/running pushes leave and that retention prunes, so they are gauges (without a
``_total`` name); the only counter is the sweep's skips, which only grows (a Redis flush is a
counter reset, as Prometheus expects).

Access: a valid API token (any role), or a client address in VIPANEL_METRICS_ALLOW (addresses
or networks; default loopback only).
"""

import ipaddress
import logging
from collections import defaultdict

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from clusters import health, render, roles
from clusters.api import auth
from clusters.models import Cluster, ConfigPush, FailoverEvent, Node, VirtualIP

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
SWEEP_SECONDS_KEY = "vipanel:last_sweep_seconds"
DEFAULT_ALLOW = ["127.0.0.1", "::1"]
VRRP_STATES = ("MASTER", "BACKUP", "FAULT", "STOPPED", "UNKNOWN")


def _sweep_figures():
    """(seconds of the last sweep or None, skipped ticks or None); both None without Redis."""
    from clusters import sweep  # clusters.sweep imports history and status: only when scraped

    try:
        seconds = cache.get(SWEEP_SECONDS_KEY)
        skipped = sweep.skipped_total()
    except Exception as e:  # noqa: BLE001 - Redis down: serve the database's figures alone
        log.warning("/metrics without the sweep's figures: %s", e)
        return None, None
    return seconds, skipped


class DatabaseCollector:
    """Reads the database (and Redis, when it answers) on each scrape."""

    def collect(self):
        nodes = list(
            Node.objects.select_related("cluster", "state")
            .defer("pushed_config", "notify_key")
            .order_by("cluster__name", "-priority")
        )
        vips = list(
            VirtualIP.objects.select_related("cluster", "state", "instance").order_by(
                "cluster__name", "pk"
            )
        )
        nodes_of = defaultdict(list)
        for node in nodes:
            nodes_of[node.cluster_id].append(node)

        holder = GaugeMetricFamily(
            "vipanel_vip_holder",
            "1 for each node that held the VIP at the last check, 0 for the cluster's other nodes.",
            labels=["cluster", "instance", "vip", "node"],
        )
        split = GaugeMetricFamily(
            "vipanel_vip_split_brain",
            "1 while more than one node holds the VIP (VRRP adverts are not getting through).",
            labels=["cluster", "instance", "vip"],
        )
        holders_n = GaugeMetricFamily(
            "vipanel_vip_holders",
            "How many nodes held the VIP at the last check (absent until its first push).",
            labels=["cluster", "instance", "vip"],
        )
        vip_pending = GaugeMetricFamily(
            "vipanel_vip_pending_push",
            "1 while the VIP is saved in vipanel but was never pushed (no holder is expected).",
            labels=["cluster", "instance", "vip"],
        )
        for vip in vips:
            # Holders and split brain as clusters.health decides them (the panel's rule), each
            # VIP under its VRRP instance's keepalived name (VI_<cluster>[_<name>]).
            key = [vip.cluster.name, render.vip_instance_name(vip), vip.address]
            pending = health.vip_pending(vip)
            vip_pending.add_metric(key, int(pending))
            if pending:
                # Not on the nodes yet: no holder series, so "holders == 0" alerts stay quiet.
                continue
            holders = []
            for node in nodes_of[vip.cluster_id]:
                held = health.node_holds(getattr(node, "state", None), vip.address)
                holders += [node.name] if held else []
                holder.add_metric([*key, node.name], int(held))
            status, _ = health.vip_status(getattr(vip, "state", None), "", holders)
            split.add_metric(key, int(status == "split"))
            holders_n.add_metric(key, len(holders))
        yield from (holder, split, holders_n, vip_pending)

        labels = ["cluster", "node"]
        reachable = GaugeMetricFamily(
            "vipanel_node_reachable",
            "1 if the last probe reached the node over SSH.",
            labels=labels,
        )
        up = GaugeMetricFamily(
            "vipanel_node_keepalived_up",
            "1 if keepalived ran on the node at the last probe (absent when unreachable, or "
            "before vipanel's first push there).",
            labels=labels,
        )
        vrrp = GaugeMetricFamily(
            "vipanel_node_vrrp_state",
            "1 for the node's VRRP state at the last probe, 0 for the others (UNKNOWN: not probed "
            "yet or unreachable).",
            labels=[*labels, "state"],
        )
        drift = GaugeMetricFamily(
            "vipanel_node_config_drift",
            "1 if the node's keepalived.conf is not what vipanel last pushed there: edited on "
            "the node (absent: unknown, e.g. never pushed).",
            labels=labels,
        )
        node_pending = GaugeMetricFamily(
            "vipanel_node_pending_push",
            "1 while a change saved in vipanel is not pushed to the node yet (or it never was).",
            labels=labels,
        )
        maintenance = GaugeMetricFamily(
            "vipanel_node_maintenance", "1 while the node is in maintenance.", labels=labels
        )
        checked = GaugeMetricFamily(
            "vipanel_node_last_check_timestamp_seconds",
            "Unix time of the node's last probe.",
            labels=labels,
        )
        for node in nodes:
            values = [node.cluster.name, node.name]
            state = getattr(node, "state", None)
            reachable.add_metric(values, int(bool(state and state.reachable)))
            # Not before vipanel pushed there: a node not set up yet is not a keepalived down.
            if (
                state is not None
                and state.keepalived_running is not None
                and health.ever_pushed(node)
            ):
                up.add_metric(values, int(state.keepalived_running))
            current = state.vrrp_state if state is not None else "UNKNOWN"
            for vrrp_state in VRRP_STATES + ((current,) if current not in VRRP_STATES else ()):
                vrrp.add_metric([*values, vrrp_state], int(current == vrrp_state))
            if state is not None and state.drift is not None:
                drift.add_metric(values, int(state.drift))
            maintenance.add_metric(values, int(node.maintenance))
            node_pending.add_metric(values, int(health.node_pending(node)))
            if state is not None:
                checked.add_metric(values, state.checked_at.timestamp())
        yield from (reachable, up, vrrp, drift, node_pending, maintenance, checked)

        pushes = GaugeMetricFamily(
            "vipanel_pushes",
            "Pushes recorded in the database, by state (queued and running ones move on; old "
            "ones may be pruned).",
            labels=["state"],
        )
        by_state = dict(ConfigPush.objects.values_list("state").annotate(n=Count("pk")).order_by())
        for state in ConfigPush.State.values:
            pushes.add_metric([state], by_state.get(state, 0))
        yield pushes

        events = GaugeMetricFamily(
            "vipanel_failover_events",
            "Failover history events kept in the database, by cluster and kind (failover, "
            "split_brain, ...). A gauge: old events may be pruned, and a deleted cluster's go.",
            labels=["cluster", "kind"],
        )
        counts = {
            (cluster_id, kind): n
            for cluster_id, kind, n in FailoverEvent.objects.values_list("cluster_id", "kind")
            .annotate(n=Count("pk"))
            .order_by()
        }
        for cluster_id, name in Cluster.objects.order_by("name").values_list("pk", "name"):
            for kind in FailoverEvent.Kind.values:
                events.add_metric([name, kind], counts.get((cluster_id, kind), 0))
        yield events

        seconds, skipped = _sweep_figures()
        if skipped is not None:
            yield CounterMetricFamily(
                "vipanel_sweep_skipped",
                "Clusters a sweep tick skipped because the previous probe of it still ran.",
                value=skipped,
            )
        if seconds is not None:
            yield GaugeMetricFamily(
                "vipanel_sweep_duration_seconds",
                "How long the last status sweep of every cluster took, from beat's tick to the "
                "last result recorded.",
                value=float(seconds),
            )


# The registry /metrics exposes. Apps built on clusters add their own collectors to it in their
# AppConfig.ready() (alerts: availability), so clusters never imports them. auto_describe=False:
# registering collects nothing (no query at start-up); each scrape collects everything.
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(DatabaseCollector())


def collect() -> str:
    return generate_latest(REGISTRY).decode()


def allowed_networks():
    entries = getattr(settings, "VIPANEL_METRICS_ALLOW", DEFAULT_ALLOW)
    try:
        return [ipaddress.ip_network(entry, strict=False) for entry in entries]
    except ValueError as e:
        raise ImproperlyConfigured(
            f"VIPANEL_METRICS_ALLOW: {e}; use addresses or networks (127.0.0.1, 10.0.0.0/8)"
        ) from None


def client_allowed(request) -> bool:
    """REMOTE_ADDR only: X-Forwarded-For is whatever the client says it is."""
    try:
        ip = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in allowed_networks())


@login_not_required
@require_GET
def metrics_view(request):
    if not client_allowed(request):
        user = auth.authenticate(request)
        if user is None:
            response = JsonResponse(
                {"detail": "Send an API token or scrape from an address in VIPANEL_METRICS_ALLOW."},
                status=401,
            )
            response["WWW-Authenticate"] = 'Token realm="vipanel"'
            return response
        if not roles.can_view(user):
            return JsonResponse({"detail": "This needs the viewer role."}, status=403)
    return HttpResponse(collect(), content_type=CONTENT_TYPE)


# Included at the root by vipanel/urls.py, so the address is /metrics as Prometheus expects.
urlpatterns = [path("metrics", metrics_view, name="metrics")]
