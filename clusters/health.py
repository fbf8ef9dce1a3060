"""The one definition of what is wrong with a node, a VIP and a cluster (issue 10, item 3),
and of what is saved but not pushed yet (issue 17).

The dashboard asks the database the same questions for every cluster at once
(clusters.querysets.with_problems); tests/test_health.py proves both agree on the same
fixtures. The panel, the API, the metrics and the alerts read problems from here.

Desired and observed are kept apart. A change saved in vipanel and not pushed is "pending push":
amber, never a problem, never an event or an alert; a VIP never pushed has no holder to look
for. "Drift" is only a node whose live file is not what vipanel last pushed there (edited on
the node by hand).

Inputs are row-like: a NodeState or VipState, or any object with the same attribute names
(the dashboard's plain-value rows), None when the thing was never checked.
"""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone

from clusters.models import ConfigPush

NOT_CHECKED = "not checked yet"
UNREACHABLE = "unreachable"
KEEPALIVED_STOPPED = "keepalived stopped"
FAULT = "FAULT"
DRIFT = "config drift"
PENDING = "pending push"
# Said where each badge is shown, so nobody has to guess what the two words mean.
DRIFT_DEFINITION = (
    "The config file on the node is not what vipanel last pushed there: it was edited on the node."
)
PENDING_DEFINITION = (
    "Saved in vipanel but not pushed yet: the nodes still run what was last pushed. Preview "
    "shows the difference."
)
# keepalived's state when it is not running (the probe) or is stopping (its notify "STOP").
STOPPED_STATES = ("STOPPED", "STOP")
HOST_KEY_CHANGED = "host key changed"
SPLIT_BRAIN = "split brain"
NO_HOLDER = "no holder"
NOT_TRUSTED = "host key not trusted yet"
STALE = "status stale"


def stale_limit():
    """Three sweeps missed (and at least 30 s): the sweep is not running."""
    return dt.timedelta(seconds=max(30, 3 * settings.VIPANEL_SWEEP_INTERVAL))


def is_stale(checked_at, now):
    return checked_at is not None and now - checked_at > stale_limit()


def host_key_problem(pinned, offered, state):
    """ "host key not trusted yet: SHA256:..." (no pin, a key offered), "host key changed"
    (a key offered that is not the pinned one, or the last probe said so), or ""."""
    if offered and not pinned:
        return f"{NOT_TRUSTED}: {offered}"
    if offered or (state is not None and state.host_key_problem):
        return HOST_KEY_CHANGED
    return ""


def keepalived_down(state):
    """Whether the last probe or report says keepalived is not running, or is stopping."""
    return state.keepalived_running is False or state.vrrp_state in STOPPED_STATES


def config_drift(live_sha, pushed_sha, desired_sha):
    """Whether a node's live config (its SHA-256; None when it was not read) was edited on the
    node: it is neither what vipanel last pushed there nor what it would push now (a push
    under way has just written that). None when there is nothing to compare with: vipanel
    never pushed to this node, or the file was not read."""
    if not pushed_sha or live_sha is None:
        return None
    return live_sha != pushed_sha and live_sha != desired_sha


def ever_pushed(node):
    """Whether vipanel put a config on `node` (a Node, or a row with its fields): until then
    keepalived not running there is what is expected of a node not set up yet, no problem."""
    return bool(node.pushed_config_sha) or node.adopt_live_config


def node_pending(node):
    """Whether `node` (a Node, or a row with its fields) has a change saved but not pushed:
    what vipanel would send it now is not what it last pushed there, or it was never pushed.
    A node an upgrade marked to adopt its live file is not pending until its next probe."""
    if node.adopt_live_config:
        return False
    return not node.pushed_config_sha or node.desired_config_sha != node.pushed_config_sha


def vip_pending(vip):
    """Whether a VIP (or a row with pushed_at) was never pushed."""
    return vip.pushed_at is None


def node_problems(state, host_key="", pushed=True):
    """What is wrong with a node, in words; `host_key` from host_key_problem(); `pushed` from
    ever_pushed() (keepalived not running on a node never pushed is no problem yet)."""
    if state is None:
        problems = [NOT_CHECKED]
    else:
        problems = []
        if not state.reachable:
            problems.append(UNREACHABLE)
        elif keepalived_down(state) and pushed:
            # A dead keepalived's address left behind (kill -9) is a stale address, not a split
            # brain: say where it is, so the operator removes it (clusters.services.stale).
            stale = list(getattr(state, "holds", None) or [])
            problems.append(
                f"{KEEPALIVED_STOPPED}, the address {', '.join(stale)} is still on the interface"
                if stale
                else KEEPALIVED_STOPPED
            )
        if state.vrrp_state == "FAULT":
            problems.append(FAULT)
        if state.drift:
            problems.append(DRIFT)
    if host_key:
        problems.append(host_key)
    return problems


def problems_of_node(node, state, now=None):
    """node_problems for a Node instance, plus STALE when `now` is given and its status is
    older than the sweep's limit."""
    problems = node_problems(
        state,
        host_key_problem(node.host_key_fingerprint, node.offered_host_key_fingerprint, state),
        ever_pushed(node),
    )
    if now is not None and state is not None and is_stale(state.checked_at, now):
        problems.append(STALE)
    return problems


def is_trouble(problems):
    """A problem worth a red line: anything but "not checked yet"."""
    return any(p != NOT_CHECKED for p in problems)


def node_holds(state, address):
    """Whether a node holds the VIP `address`, by its NodeState (None: never probed): the
    address is among the ones its last probe saw. The one rule for holders (the cluster page,
    the API's status and the metrics)."""
    return state is not None and address in (state.holds or [])


def vip_status(state, holder, holders, pushed=True):
    """(status, text) for one VIP. `state` is its VipState or a row with split_brain and
    no_holder, None if never checked; `holder` the holder's name or ""; `holders` the nodes
    whose last probe saw the address (several only in a split brain); `pushed` False for a VIP
    never pushed, which nobody is expected to hold yet."""
    if not pushed:
        return "pending", PENDING
    if state is None:
        return "unknown", NOT_CHECKED
    if state.split_brain:
        return "split", "split brain: " + (", ".join(holders) or "several nodes")
    if state.no_holder:
        return "none", "no holder"
    if holder:
        return "ok", holder
    return "unknown", "holder unknown"


def vip_problems(state, pushed=True):
    """ "split brain" / "no holder" for a VipState (None: never checked, no problem yet); none
    for a VIP never pushed."""
    if state is None or not pushed:
        return []
    return [p for p, on in ((SPLIT_BRAIN, state.split_brain), (NO_HOLDER, state.no_holder)) if on]


@dataclass
class NodeHealth:
    node: object  # clusters.models.Node
    state: object  # its NodeState, None if never checked
    problems: list[str]
    pending: bool = False  # a change saved, not pushed (node_pending)


@dataclass
class VipHealth:
    vip: object  # clusters.models.VirtualIP
    state: object  # its VipState, None if never checked
    status: str  # "ok", "split", "none" or "unknown"
    text: str  # the holder's name, or what is wrong
    holders: list[str]  # the nodes whose last probe saw the address
    problems: list[str]

    @property
    def pending(self):
        return self.status == "pending"


@dataclass
class ClusterHealth:
    nodes: list[NodeHealth]
    vips: list[VipHealth]
    last_push_state: str  # "" if never pushed
    checked_at: object  # the oldest probe of a node, None if none was probed
    stale: bool

    @property
    def problems(self):
        """Every problem as "what: problem" lines; empty means healthy."""
        lines = [f"{h.node.name}: {p}" for h in self.nodes for p in h.problems if p != NOT_CHECKED]
        lines += [f"{h.vip.address}: {p}" for h in self.vips for p in h.problems]
        if self.last_push_state == ConfigPush.State.FAILED:
            lines.append("last push failed")
        return lines

    @property
    def pending(self):
        """What is saved but not pushed, as "what: pending push" lines (never a problem)."""
        lines = [f"{h.node.name}: {PENDING}" for h in self.nodes if h.pending]
        return lines + [f"{h.vip.address}: {PENDING}" for h in self.vips if h.pending]


def cluster_health(cluster, now=None):
    """A cluster's nodes and VIPs with their problems, in three queries: what the cluster page,
    the API's status and the metrics report."""
    now = now or timezone.now()
    nodes = []
    # Neither the pushed file nor a drifted one is needed here: not decrypted for every page,
    # API call and alert evaluation.
    rows = cluster.nodes.select_related("state").defer(
        "pushed_config", "notify_key", "state__drift_config"
    )
    for node in rows.order_by("-priority", "name"):
        state = _state(node)
        nodes.append(
            NodeHealth(node, state, problems_of_node(node, state, now), node_pending(node))
        )
    vips = []
    for vip in cluster.vips.select_related("state__holder").order_by("id"):
        pushed = not vip_pending(vip)
        # A VIP never pushed: whatever was observed of its address is not about it yet.
        state = _state(vip) if pushed else None
        holders = [h.node.name for h in nodes if node_holds(h.state, vip.address)]
        holder = state.holder.name if state is not None and state.holder_id else ""
        status, text = vip_status(state, holder, holders, pushed)
        vips.append(VipHealth(vip, state, status, text, holders, vip_problems(state, pushed)))
    last = cluster.pushes.order_by("-created", "-id").values_list("state", flat=True).first()
    times = [h.state.checked_at for h in nodes if h.state is not None]
    checked_at = min(times) if times else None
    return ClusterHealth(nodes, vips, last or "", checked_at, is_stale(checked_at, now))


def cluster_problems(cluster, now):
    """Every problem of a cluster, as "what: problem" lines. Empty means healthy.

    The same questions as clusters.querysets.with_problems: a node problem (not "not checked
    yet"), a stale status, a VIP in split brain or without holder, a failed last push.
    """
    return cluster_health(cluster, now).problems


def cluster_pending(cluster, now=None):
    """What of a cluster is saved but not pushed ("what: pending push" lines); the same
    question as the `pending` annotation of clusters.querysets.with_problems."""
    return cluster_health(cluster, now).pending


def _state(obj):
    """A Node's or VirtualIP's state, None if it was never checked."""
    try:
        return obj.state
    except ObjectDoesNotExist:
        return None
