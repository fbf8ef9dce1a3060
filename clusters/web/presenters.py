"""Presenters: what the pages show of a node, a VIP or a cluster, with the CSS class of each
badge. What counts as a problem is clusters.health's; here it only gets its colours."""

from types import SimpleNamespace

from django.utils import timezone

from clusters import health
from clusters.models import Node, VirtualIP
from clusters.templatetags.vipanel import state_class

# Kept importable from here for old callers; the rule lives in clusters.health.
vip_status = health.vip_status
node_problems = health.node_problems


class InstanceView:
    """One VRRP instance of a cluster as its page shows it: the main one (the cluster row,
    `obj` None) or a further one, with its VIPs and their holders and each node's priority."""

    def __init__(self, name, obj, vrid, interface, vips, priorities):
        self.name, self.obj, self.vrid, self.interface = name, obj, vrid, interface
        self.vips = vips  # [VipView]
        self.priorities = priorities  # [(node, priority or None)], highest first
        holders = sorted({v.state.holder.name for v in vips if v.state and v.state.holder_id})
        self.holder = ", ".join(holders)


def instance_views(cluster, nodes, vip_views):
    """The main instance first, then the further ones in creation order."""
    by_instance = {}
    for v in vip_views:
        by_instance.setdefault(v.vip.instance_id, []).append(v)
    main = InstanceView(
        cluster.instance_name,
        None,
        cluster.virtual_router_id,
        cluster.interface,
        by_instance.get(None, []),
        [(n, n.priority) for n in nodes],
    )
    views = [main]
    for inst in cluster.instances.order_by("id"):
        prios = inst.priorities()
        rows = sorted(((n, prios.get(n.pk)) for n in nodes), key=lambda r: -(r[1] or 0))
        views.append(
            InstanceView(
                inst.keepalived_name,
                inst,
                inst.virtual_router_id,
                inst.interface or cluster.interface,
                by_instance.get(inst.pk, []),
                rows,
            )
        )
    return views


class VipView:
    """One VIP as the cluster page shows it: who holds it, or what is wrong."""

    def __init__(self, vip, nodes):
        self.vip = vip
        self.state = state = vip.state if _has_state(vip) else None
        # Several holders only matter in a split brain; NodeState.holds names them.
        self.holders = [
            n.name for n in nodes if _has_state(n) and vip.address in (n.state.holds or [])
        ]
        pushed = not health.vip_pending(vip)
        if not pushed:
            # Never pushed: what was observed of the address is not about this VIP yet.
            self.state = state = None
        holder = state.holder.name if state is not None and state.holder_id else ""
        self.status, self.text = vip_status(state, holder, self.holders, pushed)

    @property
    def pending(self):
        return self.status == "pending"


def _has_state(obj):
    try:
        obj.state  # noqa: B018 - reading it is the question: does the row exist?
    except (Node.state.RelatedObjectDoesNotExist, VirtualIP.state.RelatedObjectDoesNotExist):
        return False
    return True


class NodeHealth:
    """One node as the cluster page shows it: its state, problems and host key."""

    def __init__(self, node):
        self.node = node
        self.state = node.state if _has_state(node) else None
        # "", "host key changed" or "host key not trusted yet: SHA256:..." (clusters.health).
        self.host_key_problem = health.host_key_problem(
            node.host_key_fingerprint, node.offered_host_key_fingerprint, self.state
        )
        # No key pinned and one offered: a person decides (the Trust button).
        self.untrusted = bool(node.offered_host_key_fingerprint) and not node.host_key_fingerprint
        self.ever_pushed = health.ever_pushed(node)
        self.problems = health.node_problems(self.state, self.host_key_problem, self.ever_pushed)
        self.pending = health.node_pending(node)
        self.drift = bool(self.state is not None and self.state.drift)


class Freshness:
    """When the nodes were last probed, and whether that is too long ago to trust."""

    def __init__(self, healths, now=None):
        times = [h.state.checked_at for h in healths if h.state is not None]
        self.checked_at = min(times) if times else None
        now = now or timezone.now()
        self.stale = health.is_stale(self.checked_at, now)


class DashboardNode:
    """A node on one line of the dashboard: its name, VRRP state and what is wrong."""

    def __init__(self, row):
        self.pk = row["id"]
        self.name = row["name"]
        self.priority = row["priority"]
        self.checked_at = row["checked_at"]
        self.reachable = row["reachable"]
        self.keepalived_running = row["keepalived_running"]
        self.vrrp_state = row["vrrp_state"]
        self.drift = row["drift"]
        self.error = row["error"] or ""
        self.holds = row["holds"] or []
        self.host_key_problem = row["host_key_problem"]
        self.adopt_live_config = row["adopt_live_config"]
        self.pushed_config_sha = row["pushed_config_sha"]
        self.desired_config_sha = row["desired_config_sha"]
        self.pending = health.node_pending(self)
        checked = self.checked_at is not None
        host_key = health.host_key_problem(
            row["host_key_fingerprint"],
            row["offered_host_key_fingerprint"],
            self if checked else None,
        )
        problems = health.node_problems(
            self if checked else None, host_key, health.ever_pushed(self)
        )
        self.trouble = health.is_trouble(problems)
        # (css class, text, title) for each badge, in the order they read.
        badges = []
        if checked and self.reachable:
            css = state_class(self.vrrp_state)
            if not health.ever_pushed(self) and self.vrrp_state in health.STOPPED_STATES:
                css = "neutral"  # nothing pushed here yet: not running is expected
            badges.append((css, self.vrrp_state, "VRRP state"))
        for problem in problems:
            if problem == health.NOT_CHECKED:
                badges.append(("neutral", problem, ""))
            elif problem == health.UNREACHABLE:
                badges.append(("bad", problem, self.error))
            elif problem == health.DRIFT:
                badges.append(("bad", problem, health.DRIFT_DEFINITION))
            elif problem != health.FAULT:  # the VRRP badge says it already
                badges.append(("bad", problem, ""))
        if self.pending:
            badges.append(("pending", health.PENDING, health.PENDING_DEFINITION))
        if checked and self.reachable:
            if self.keepalived_running is None:
                badges.append(("neutral", "keepalived ?", "could not tell if keepalived runs"))
            if self.drift is None and not self.pending:
                badges.append(("neutral", "config ?", "not compared with a push yet"))
            if not problems and self.keepalived_running and self.drift is False:
                # Never while keepalived is down or stopping (health.keepalived_down is a
                # problem), whatever an older report said.
                badges.append(
                    ("good", "ok", "reachable, keepalived running, config as last pushed")
                )
        if row["maintenance"]:
            badges.append(("busy", "maintenance", "taken out of service for maintenance"))
        self.badges = badges


class DashboardVip:
    def __init__(self, row, nodes):
        self.address = row["address"]
        # The further VRRP instance the VIP is in ("" for the cluster's main instance).
        self.instance = row.get("instance_name") or ""
        self.split_brain, self.no_holder = row["split_brain"], row["no_holder"]
        checked = row["checked_at"] is not None
        self.since = row["since"]
        holders = [n.name for n in nodes if self.address in n.holds]
        pushed = not health.vip_pending(SimpleNamespace(pushed_at=row["pushed_at"]))
        self.status, self.text = health.vip_status(
            self if checked else None, row["holder"], holders, pushed
        )
        self.pending = not pushed


class DashboardRow:
    """One cluster on the dashboard, built from its page's rows of plain values."""

    def __init__(self, cluster, nodes, vips, last_push, failovers, now):
        self.pk = cluster["pk"]
        self.name = cluster["name"]
        self.network = cluster["network"]
        self.virtual_router_id = cluster["virtual_router_id"]
        self.trouble = cluster["trouble"]
        self.nodes = [DashboardNode(n) for n in nodes]
        self.vips = [DashboardVip(v, self.nodes) for v in vips]
        times = [n.checked_at for n in self.nodes if n.checked_at is not None]
        self.checked_at = min(times) if times else None
        self.stale = health.is_stale(self.checked_at, now)
        self.last_push = last_push
        self.failovers = failovers
        # The same answer as the `pending` annotation (health.cluster_pending).
        self.pending = cluster["pending"]
