"""Prometheus metrics at /metrics, in the text exposition format 0.0.4, written by hand.

Everything comes from what the database already holds (the last sweep's NodeState and VipState,
pushes, failover events), so a scrape never opens an SSH connection and costs a fixed handful
of queries however many clusters there are. The sweep's duration comes from the cache key
SWEEP_SECONDS_KEY, which the sweep sets.

Access: a valid API token (any role), or a client address in VIPANEL_METRICS_ALLOW (addresses
or networks; default loopback only).
"""

import ipaddress
from collections import defaultdict

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET

from clusters import roles
from clusters.api import auth
from clusters.models import Cluster, ConfigPush, FailoverEvent, Node, VirtualIP

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SWEEP_SECONDS_KEY = "vipanel:last_sweep_seconds"
DEFAULT_ALLOW = ["127.0.0.1", "::1"]
VRRP_STATES = ("MASTER", "BACKUP", "FAULT", "STOPPED", "UNKNOWN")


def escape_label(value) -> str:
    """A label value as the exposition format wants it: \\, " and newline escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


class Exposition:
    """Metric families in the order they are declared, each with its HELP and TYPE once."""

    def __init__(self):
        self.families = {}

    def family(self, name, kind, help_text):
        self.families.setdefault(name, (kind, help_text, []))

    def sample(self, name, value, **labels):
        label_text = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
        self.families[name][2].append(
            f"{name}{{{label_text}}} {_number(value)}" if labels else f"{name} {_number(value)}"
        )

    def render(self) -> str:
        lines = []
        for name, (kind, help_text, samples) in self.families.items():
            lines.append(f"# HELP {name} {escape_help(help_text)}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)
        return "\n".join(lines) + "\n"


def collect() -> str:
    out = Exposition()
    nodes = list(
        Node.objects.select_related("cluster", "state").order_by("cluster__name", "-priority")
    )
    vips = list(
        VirtualIP.objects.select_related("cluster", "state").order_by("cluster__name", "pk")
    )
    nodes_of = defaultdict(list)
    for node in nodes:
        nodes_of[node.cluster_id].append(node)

    out.family(
        "vipanel_vip_holder",
        "gauge",
        "1 for each node that held the VIP at the last check, 0 for the cluster's other nodes.",
    )
    out.family(
        "vipanel_vip_split_brain",
        "gauge",
        "1 while more than one node holds the VIP (VRRP adverts are not getting through).",
    )
    out.family("vipanel_vip_holders", "gauge", "How many nodes held the VIP at the last check.")
    for vip in vips:
        holders = 0
        for node in nodes_of[vip.cluster_id]:
            state = getattr(node, "state", None)
            held = state is not None and vip.address in (state.holds or [])
            holders += held
            out.sample(
                "vipanel_vip_holder",
                held,
                cluster=vip.cluster.name,
                vip=vip.address,
                node=node.name,
            )
        vip_state = getattr(vip, "state", None)
        out.sample(
            "vipanel_vip_split_brain",
            bool(vip_state and vip_state.split_brain),
            cluster=vip.cluster.name,
            vip=vip.address,
        )
        out.sample("vipanel_vip_holders", holders, cluster=vip.cluster.name, vip=vip.address)

    out.family("vipanel_node_reachable", "gauge", "1 if the last probe reached the node over SSH.")
    out.family(
        "vipanel_node_keepalived_up",
        "gauge",
        "1 if keepalived ran on the node at the last probe (absent when unreachable).",
    )
    out.family(
        "vipanel_node_vrrp_state",
        "gauge",
        "1 for the node's VRRP state at the last probe, 0 for the others (UNKNOWN: not probed "
        "yet or unreachable).",
    )
    out.family(
        "vipanel_node_config_drift",
        "gauge",
        "1 if the node's keepalived.conf differs from what vipanel renders (absent: unknown).",
    )
    out.family("vipanel_node_maintenance", "gauge", "1 while the node is in maintenance.")
    out.family(
        "vipanel_node_last_check_timestamp_seconds",
        "gauge",
        "Unix time of the node's last probe.",
    )
    for node in nodes:
        labels = {"cluster": node.cluster.name, "node": node.name}
        state = getattr(node, "state", None)
        out.sample("vipanel_node_reachable", bool(state and state.reachable), **labels)
        if state is not None and state.keepalived_running is not None:
            out.sample("vipanel_node_keepalived_up", state.keepalived_running, **labels)
        current = state.vrrp_state if state is not None else "UNKNOWN"
        for vrrp_state in VRRP_STATES + ((current,) if current not in VRRP_STATES else ()):
            out.sample("vipanel_node_vrrp_state", current == vrrp_state, **labels, state=vrrp_state)
        if state is not None and state.drift is not None:
            out.sample("vipanel_node_config_drift", state.drift, **labels)
        out.sample("vipanel_node_maintenance", node.maintenance, **labels)
        if state is not None:
            out.sample(
                "vipanel_node_last_check_timestamp_seconds", state.checked_at.timestamp(), **labels
            )

    # Rows, not a counter kept in memory: queued and running go down as pushes finish, and all
    # of a cluster's go when it is deleted, so this is a gauge despite the _total name.
    out.family(
        "vipanel_pushes_total",
        "gauge",
        "Pushes recorded in the database, by state.",
    )
    pushes = dict(ConfigPush.objects.values_list("state").annotate(n=Count("pk")).order_by())
    for state in ConfigPush.State.values:
        out.sample("vipanel_pushes_total", pushes.get(state, 0), state=state)

    out.family(
        "vipanel_failovers_total",
        "counter",
        "Failover history events recorded, by cluster and kind (failover, split_brain, ...).",
    )
    events = {
        (cluster_id, kind): n
        for cluster_id, kind, n in FailoverEvent.objects.values_list("cluster_id", "kind")
        .annotate(n=Count("pk"))
        .order_by()
    }
    for cluster_id, name in Cluster.objects.order_by("name").values_list("pk", "name"):
        for kind in FailoverEvent.Kind.values:
            n = events.get((cluster_id, kind), 0)
            out.sample("vipanel_failovers_total", n, cluster=name, kind=kind)

    seconds = cache.get(SWEEP_SECONDS_KEY)
    if seconds is not None:
        out.family(
            "vipanel_sweep_duration_seconds",
            "gauge",
            "How long the last status sweep of every cluster took.",
        )
        out.sample("vipanel_sweep_duration_seconds", float(seconds))
    return out.render()


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
