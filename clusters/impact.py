"""What an action will do to a cluster's VIPs, worked out before it runs (issue 17, item 2).

A push, maintenance in or out, a failover drill and a deletion all end in VRRP elections on the
nodes. This module predicts them: which nodes change, whether and where each VIP moves, and how
long it takes, from each node's keepalived.conf (the live file a preview or a push read, or
what vipanel renders), the holders as last observed, and what the action does to each node.
The panel's confirmations, the API's preview and a push's record all call it, so they say the
same thing. No SSH and no writes: the core works on plain values, so it is tested on hand-built
states; the functions at the end only read the database to build those values.

The election follows RFC 5798 as keepalived implements it: a backup stays backup while it hears
a master whose priority is at least its own, or any master when it has `nopreempt`; a master
yields to an advert of a higher priority (equal: the higher address). Two nodes hear each other
only when their adverts agree (VRID, advertised addresses, advert_int, authentication, unicast
peers): vipanel advertises only an instance's first VIP, so an added or removed VIP is heard by
old and new configs alike, but a change of that first VIP is not (split brain until the holder
has the new file too).

Timings, measured on the lab (keepalived 2.2.7, advert_int 1, priorities 100/110/120, the VIP
watched every 10 ms on each node):
- the holder stops cleanly (SIGTERM, as a drill does): keepalived sends a priority-0 advert and
  the next node takes over after its skew time, (256 - priority) / 256 x advert_int: 0.59-0.60 s
  for priority 110, with the VIP on no node for as long;
- the holder is outranked (maintenance, a changed priority, a restart with preempt): the backup
  discards the lower adverts and takes over after the master-down interval, 3 x advert_int +
  skew: 3.57-3.60 s for priority 110; the old holder keeps the address until then (no gap);
- with preempt_delay D the takeover came 7.8 s after a reload for D = 5: the estimate is
  D + 3 x advert_int + skew (8.6 s), an upper bound;
- with nopreempt, a holder lowered to priority 1 kept the VIP (nothing moved in 12 s);
- a node whose advertised VIP differs from the holder's became a second holder after 3.64 s.
These are the numbers used: SKEW for a clean stop, MASTER_DOWN for everything else.
"""

import dataclasses
import hashlib
import ipaddress
from dataclasses import dataclass, field

# --- What a node's file says about elections ------------------------------------------------


@dataclass(frozen=True)
class InstanceConfig:
    """One vrrp_instance of one node's file, as far as elections go."""

    priority: int
    preempt: bool = True
    preempt_delay: int = 0
    advert_int: float = 1.0
    # Host addresses (no prefix length), the advertised ones first, in file order.
    vips: tuple = ()
    advertised: tuple = ()
    vrid: int = 0
    # A digest of the authentication block: compared, never shown.
    auth: str = ""
    # Unicast peers' addresses; None: multicast.
    peers: tuple | None = None

    def advert_key(self):
        """What two nodes' adverts must share for either to accept the other's."""
        return (
            self.vrid,
            tuple(sorted(self.advertised)),
            self.advert_int,
            self.auth,
            self.peers is not None,
        )


def host(address):
    """'198.51.100.10/24' or '198.51.100.10' -> '198.51.100.10' (the VIP's identity here)."""
    try:
        return str(ipaddress.ip_interface(str(address).strip()).ip)
    except ValueError:
        return str(address)


def configs_from_text(text):
    """{instance name: InstanceConfig} of a keepalived.conf, or None when it cannot be parsed
    (then nothing can be said about that node's elections)."""
    from clusters import kaconf  # loaded when a file is read: the election core needs no parser

    try:
        parsed = kaconf.parse_string(text)
    except (kaconf.ParseError, ValueError):
        return None
    out = {}
    for inst in parsed.instances:
        auth = inst.authentication
        digest = ""
        if auth is not None and (auth.auth_type or auth.auth_pass):
            raw = f"{auth.auth_type or ''}\0{auth.auth_pass or ''}".encode()
            digest = hashlib.sha256(raw).hexdigest()[:16]
        unicast = bool(inst.unicast_peer or inst.unicast_src_ip)
        try:
            out[inst.name] = InstanceConfig(
                priority=inst.effective_priority,
                preempt=not inst.nopreempt,
                preempt_delay=inst.preempt_delay or 0,
                advert_int=float(inst.effective_advert_int),
                vips=tuple(v.ip for v in inst.vips),
                advertised=tuple(v.ip for v in inst.virtual_ipaddress),
                vrid=inst.virtual_router_id or 0,
                auth=digest,
                peers=tuple(sorted(host(p) for p in inst.unicast_peer)) if unicast else None,
            )
        except ValueError:
            return None
    return out


# --- The facts an action starts from ------------------------------------------------------


@dataclass(frozen=True)
class NodeFacts:
    name: str
    address: str = ""
    # {instance: InstanceConfig} as the node runs now; None: not known (file not read).
    config: dict | None = None
    # keepalived running now (None: not known).
    running: bool | None = True
    reachable: bool | None = True
    maintenance: bool = False
    # The node's main priority in vipanel: the push's order uses it.
    priority: int = 0


@dataclass(frozen=True)
class Change:
    """What an action does to one node: its config afterwards (None: keepalived stopped), and
    how: "reload" (SIGHUP, or a start where it was not running), "stop" (SIGTERM: a priority-0
    advert first) or "start"."""

    node: str
    config: dict | None
    how: str = "reload"


@dataclass(frozen=True)
class Phase:
    """Changes made one at a time, in order (a rolling push), or all at once (`together`: the
    first install, one election)."""

    title: str
    changes: tuple = ()
    together: bool = False


# --- What comes out ---------------------------------------------------------------------------


def skew(priority, advert_int):
    return (256 - priority) * advert_int / 256


def master_down(priority, advert_int):
    return 3 * advert_int + skew(priority, advert_int)


def seconds(value):
    """~3.6 s, as the panel writes an estimate."""
    return f"~{value:.1f} s"


@dataclass
class Move:
    """One expected change of who holds a VIP."""

    vip: str
    instance: str
    phase: int
    # The node whose change causes it ("" for none).
    cause: str
    cause_how: str
    before: tuple
    after: tuple
    # "move", "up" (held again or for the first time), "down" (held by none), "split", "merge"
    kind: str
    within: float | None = None
    # Seconds with no node answering for the VIP (None: not served before).
    outage: float | None = None
    reason: str = ""

    def sentence(self):
        after = ", ".join(self.after)
        before = ", ".join(self.before)
        # "within ~3.6 s of n3's reload" with an estimate; "when n3 is reloaded" without.
        when = (
            f"within {seconds(self.within)} {_event(self.cause, self.cause_how, 'of')}"
            if self.within is not None
            else _event(self.cause, self.cause_how, "when")
        )
        reason = f" ({self.reason})" if self.reason else ""
        if self.kind == "move":
            text = f"{after} takes {self.vip} from {before} {when}"
            if self.outage:
                text += f" (no node answers for {seconds(self.outage)})"
            elif self.outage == 0:
                text += f" ({before} keeps it until then: no gap)"
            return text + (f"; {self.reason}" if self.reason else "") + "."
        if self.kind == "up":
            return f"{after} takes {self.vip} {when}{reason}."
        if self.kind == "down":
            return f"{self.vip} leaves {before} {when}{reason}."
        if self.kind == "split":
            extra = [n for n in self.after if n not in self.before]
            return f"Split brain: {', '.join(extra)} takes {self.vip} too {when}{reason}."
        return f"The split brain over {self.vip} ends {when}: {after} keeps it."

    def as_dict(self):
        out = dataclasses.asdict(self) | {"text": self.sentence()}
        return out | {"before": list(self.before), "after": list(self.after)}


def _event(node, how, form):
    """The cause of a move: form "of" ("of n3's reload") or "when" ("when n3 is reloaded")."""
    if how == "install":
        return "of the first start" if form == "of" else "at the first start"
    if form == "of":
        return {
            "stop": f"of keepalived stopping on {node}",
            "start": f"of keepalived starting again on {node}",
        }.get(how, f"of {node}'s reload")
    return {
        "stop": f"when keepalived stops on {node}",
        "start": f"when keepalived starts again on {node}",
    }.get(how, f"when {node} is reloaded")


@dataclass
class VipImpact:
    vip: str
    instance: str
    before: tuple
    after: tuple
    moves: list = field(default_factory=list)

    @property
    def moved(self):
        return any(m.kind in ("move", "up", "down") for m in self.moves)

    def as_dict(self):
        return {
            "vip": self.vip,
            "instance": self.instance,
            "before": list(self.before),
            "after": list(self.after),
            "moves": [m.as_dict() for m in self.moves],
        }


@dataclass
class NodeImpact:
    node: str
    # "changes", "unchanged", "not read", "skipped", "left alone", "stopped", "deleted",
    # "not touched"
    what: str
    details: list = field(default_factory=list)

    def as_dict(self):
        return {"node": self.node, "what": self.what, "details": list(self.details)}


@dataclass
class Impact:
    """The prediction of one action on one cluster: what the panel shows before asking, what
    the API's preview returns, what a push keeps on its record (as_dict)."""

    action: str
    cluster: str
    when: str = "now"
    nodes: list = field(default_factory=list)
    vips: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    phases: list = field(default_factory=list)

    @property
    def moves(self):
        return [m for v in self.vips for m in v.moves]

    @property
    def changing_nodes(self):
        return [n.node for n in self.nodes if n.what == "changes"]

    def summary(self):
        """One line: what changes and what moves (the audit log and the confirm button's
        neighbour)."""
        changing = self.changing_nodes
        parts = [
            (
                f"{len(changing)} node{'s' if len(changing) != 1 else ''} change: "
                + ", ".join(changing)
            )
            if changing
            else "no node's config changes"
        ]
        # A VIP taken where nobody served it (a first start) is said too: "no VIP moves" beside
        # "n3 takes the VIP" on the push page read as a contradiction.
        moving = [m.sentence() for m in self.moves if m.kind in ("move", "up", "down", "split")]
        parts.append(" ".join(moving) if moving else "no VIP moves")
        return "; ".join(parts)

    def as_dict(self):
        return {
            "action": self.action,
            "cluster": self.cluster,
            "when": self.when,
            "phases": list(self.phases),
            "nodes": [n.as_dict() for n in self.nodes],
            "vips": [v.as_dict() for v in self.vips],
            "moves": [m.sentence() for m in self.moves],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "summary": self.summary(),
            "timing": TIMING_RULE,
        }


TIMING_RULE = (
    "A node stopped cleanly (SIGTERM) hands over after the next node's skew time, (256 - "
    "priority) / 256 x advert_int; any other move after the master-down interval, 3 x "
    "advert_int + skew (plus preempt_delay), with the old holder keeping the address until then. "
    "Measured on the lab: 0.6 s and 3.6 s for priority 110 with advert_int 1."
)


# --- The election -----------------------------------------------------------------------------


def _rank(name, cfg, addresses):
    try:
        ip = int(ipaddress.ip_address(addresses.get(name, "0.0.0.0")))
    except ValueError:
        ip = 0
    return (cfg.priority, ip)


def _hears(receiver, sender, cfgs, addresses):
    """Whether `receiver` accepts the adverts `sender` sends."""
    a, b = cfgs[receiver], cfgs[sender]
    if a.advert_key() != b.advert_key():
        return False
    if b.peers is not None and addresses.get(receiver) not in b.peers:
        return False  # unicast: adverts go only to the sender's peers
    return True


def elect(cfgs, masters, addresses=None):
    """The masters of one instance once VRRP has settled: `cfgs` {node: InstanceConfig} of
    the nodes running it, `masters` those holding it now. Rounds where every node acts on the
    others' last state, until nothing changes."""
    addresses = addresses or {}
    masters = {m for m in masters if m in cfgs}
    for _ in range(2 * len(cfgs) + 4):
        following = set()
        for node, cfg in cfgs.items():
            heard = [m for m in masters if m != node and _hears(node, m, cfgs, addresses)]
            if node in masters:
                mine = _rank(node, cfg, addresses)
                if not any(_rank(m, cfgs[m], addresses) > mine for m in heard):
                    following.add(node)
            elif not any(cfgs[m].priority >= cfg.priority or not cfg.preempt for m in heard):
                following.add(node)
        if following == masters:
            break
        masters = following
    return masters


def _instances(nodes, phases):
    names = []
    for facts in nodes.values():
        names += list((facts.config or {}).keys())
    for phase in phases:
        for change in phase.changes:
            names += list((change.config or {}).keys())
    return list(dict.fromkeys(names))


def _holding(masters, cfgs):
    """{vip: sorted nodes} for the masters of an instance, each holding its own file's VIPs."""
    out = {}
    for m in sorted(masters):
        for vip in cfgs[m].vips:
            out.setdefault(vip, []).append(m)
    return out


def simulate(nodes, holders, phases, warnings=None):
    """-> [VipImpact]: each VIP's holders before and after, and the moves between, in order.

    `nodes` {name: NodeFacts}, `holders` {vip: [node names]} as last observed, `phases` the
    action. A node's file counts only while keepalived runs there. The observed holders are
    where each instance starts; when they are not where the configured priorities would put
    them (a failing health check lowers a priority), `warnings` gets a line saying so.
    """
    addresses = {n.name: n.address for n in nodes.values()}
    impacts = {}
    for inst in _instances(nodes, phases):
        cfgs = {
            name: f.config[inst]
            for name, f in nodes.items()
            if f.running and f.config is not None and inst in f.config
        }
        observed = set()
        for cfg in cfgs.values():
            for vip in cfg.advertised[:1] or cfg.vips[:1]:
                observed |= set(holders.get(vip, ())) & set(cfgs)
        settled = elect(cfgs, observed, addresses)
        if observed and settled != observed and warnings is not None:
            warnings.append(
                f"{inst} is held by {', '.join(sorted(observed))} now, not where its priorities "
                f"put it ({', '.join(sorted(settled)) or 'no node'}): a failing health check "
                "lowers a priority. The prediction assumes every check passes."
            )
        masters = observed or settled
        state = _holding(masters, cfgs)
        for vip, names in state.items():
            impacts.setdefault(vip, VipImpact(vip, inst, tuple(names), tuple(names)))
        for index, phase in enumerate(phases):
            steps = [phase.changes] if phase.together else [(c,) for c in phase.changes]
            for step in steps:
                if not step:
                    continue
                before_masters, before_cfgs = masters, dict(cfgs)
                for change in step:
                    cfg = (change.config or {}).get(inst)
                    if cfg is None:
                        cfgs.pop(change.node, None)
                    else:
                        cfgs[change.node] = cfg
                masters = elect(cfgs, masters, addresses)
                after = _holding(masters, cfgs)
                cause = step[0] if len(step) == 1 else Change("", None, "install")
                for vip in list(dict.fromkeys([*state, *after])):
                    old, new = tuple(state.get(vip, ())), tuple(after.get(vip, ()))
                    impact = impacts.setdefault(vip, VipImpact(vip, inst, old, old))
                    if old != new:
                        impact.moves.append(
                            _move(
                                vip, inst, index, cause, old, new, before_masters, before_cfgs, cfgs
                            )
                        )
                    impact.after = new
                state = after
    return list(impacts.values())


def _move(vip, inst, index, cause, old, new, before_masters, before_cfgs, cfgs):
    move = Move(vip, inst, index, cause.node, cause.how, old, new, "move")
    if not new:
        move.kind = "down"
        if cause.how == "stop":
            move.reason = "no other node runs keepalived to take it"
        elif cause.node in cfgs and vip not in cfgs[cause.node].vips:
            move.reason = "removed from its config"
        elif cause.node in before_cfgs and cause.node not in cfgs:
            move.reason = "its instance is removed"
        return move
    if not old:
        move.kind = "up"
        taker = cfgs[new[0]]
        if not before_masters:
            move.within = master_down(taker.priority, taker.advert_int)
            move.reason = "nothing served it before"
        elif vip not in before_cfgs.get(new[0], _EMPTY).vips:
            move.reason = "added to its config"
        return move
    if len(new) > 1:
        move.kind = "split"
        extra = [n for n in new if n not in old] or list(new)
        taker = cfgs[extra[0]]
        move.within = master_down(taker.priority, taker.advert_int)
        move.reason = (
            "their adverts differ (the advertised VIP, VRID, advert_int or authentication), so "
            "each ignores the other until both have the same file"
        )
        return move
    if len(old) > 1:
        move.kind = "merge"
        return move
    taker = cfgs[new[0]]
    if old[0] not in cfgs:  # the holder stopped, or its instance was removed
        move.within = skew(taker.priority, taker.advert_int)
        move.outage = move.within
        move.reason = f"{old[0]} sends a priority-0 advert as it stops"
    else:
        move.within = taker.preempt_delay + master_down(taker.priority, taker.advert_int)
        move.outage = 0
        if cfgs[old[0]].priority < taker.priority:
            move.reason = f"{new[0]} outranks it ({taker.priority} over {cfgs[old[0]].priority})"
            if taker.preempt_delay:
                move.reason += f", after its preempt_delay of {taker.preempt_delay} s"
    return move


def final_configs(nodes, phases):
    """{node: its config once every phase is done} (None: stopped or unknown)."""
    out = {n: (f.config if f.running else None) for n, f in nodes.items()}
    for phase in phases:
        for change in phase.changes:
            out[change.node] = change.config
    return out


_EMPTY = InstanceConfig(priority=0)


# --- Per-node changes ---------------------------------------------------------------------


# The settings a change of which is said "old → new" (describe_change).
_SETTINGS = (
    ("priority", "priority"),
    ("preempt_delay", "preempt_delay"),
    ("advert_int", "advert_int"),
    ("vrid", "VRID"),
)


def _said(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_change(before, after):
    """What differs between two of a node's files, as far as elections and VIPs go."""
    if before is None or after is None:
        return []
    lines = []
    for name in after:
        if name not in before:
            lines.append(f"{name} added ({', '.join(after[name].vips)})")
    for name in before:
        if name not in after:
            lines.append(f"{name} removed ({', '.join(before[name].vips)} leave)")
    for name in after:
        if name not in before:
            continue
        old, new = before[name], after[name]
        for attr, label in _SETTINGS:
            was, now = getattr(old, attr), getattr(new, attr)
            if was != now:
                lines.append(f"{label} {_said(was)} → {_said(now)} in {name}")
        if old.preempt != new.preempt:
            lines.append(f"{'preempt' if new.preempt else 'nopreempt'} in {name}")
        for attr, label in (("auth", "authentication"), ("peers", "unicast peers")):
            if getattr(old, attr) != getattr(new, attr):  # values not shown (a digest, a list)
                lines.append(f"{label} changed in {name}")
        added = [v for v in new.vips if v not in old.vips]
        removed = [v for v in old.vips if v not in new.vips]
        if added:
            lines.append(f"VIP {', '.join(added)} added to {name}")
        if removed:
            lines.append(f"VIP {', '.join(removed)} removed from {name}")
        if old.advertised != new.advertised:
            lines.append(
                f"advertised VIP {', '.join(old.advertised) or '-'} → "
                f"{', '.join(new.advertised) or '-'} in {name}"
            )
    return lines


def advert_changes(before, after):
    """The instances whose adverts change between two files of one node (then a node left on
    the old file and one on the new one ignore each other)."""
    if before is None or after is None:
        return []
    return [
        name
        for name in after
        if name in before and before[name].advert_key() != after[name].advert_key()
    ]


def rollout_key(held, priority):
    """The push's order (clusters.push.Rollout.order): nodes holding no VIP first, then by how
    many they hold, fewest first; ties by lowest priority. The busiest holder goes last."""
    return (held, priority)


# --- Predictions of each action ---------------------------------------------------------------


@dataclass(frozen=True)
class PushNode:
    """One node as a push (or its preview) sees it."""

    name: str
    address: str = ""
    priority: int = 0
    # The live keepalived.conf; None when there is none (readable) or it was not read.
    live: str | None = None
    readable: bool = True
    # What the push sends; None when it sends nothing there.
    rendered: str | None = None
    running: bool | None = True
    maintenance: bool = False
    # Why nothing is sent: "" (it is sent), or the reason shown.
    left: str = ""
    error: str = ""
    # For a node that cannot be read: the file it is assumed to run (vipanel's), used only
    # when it was last seen holding a VIP (it may still hold it).
    assumed: str | None = None


def _facts_of_push_node(n, holders):
    running = n.running if n.readable else None
    if not n.readable:
        config = None
        if n.assumed and any(n.name in names for names in holders.values()):
            config, running = configs_from_text(n.assumed), True
    elif n.live is None:
        config = {}
    else:
        config = configs_from_text(n.live)
    return NodeFacts(
        name=n.name,
        address=n.address,
        config=config,
        running=running,
        reachable=n.readable,
        maintenance=n.maintenance,
        priority=n.priority,
    )


def predict_push(cluster, nodes, holders, action="push", order=None):
    """A push (kind push or maintenance) of `cluster` (its name): `nodes` [PushNode],
    `holders` {vip: [names]} as last observed, `order` the node names in the push's order when
    it is known already (the push's own record), else the rollout rule."""
    impact = Impact(action=action, cluster=cluster, phases=["the push"])
    holders = {host(v): list(n) for v, n in holders.items()}
    facts = {n.name: _facts_of_push_node(n, holders) for n in nodes}
    new = {n.name: configs_from_text(n.rendered) if n.rendered is not None else None for n in nodes}
    bare = all(f.reachable and f.running is False for f in facts.values()) and bool(facts)
    sent = []
    for n in nodes:
        f = facts[n.name]
        if n.rendered is None:
            what = "skipped" if "skip" in n.left else "left alone"
            impact.nodes.append(NodeImpact(n.name, what, [n.left] if n.left else []))
            if not n.readable:
                impact.warnings.append(_unknown_node_warning(n.name, holders))
            continue
        if not n.readable:
            # Its error is shown once, with its file (clusters.preview): not repeated here.
            impact.nodes.append(NodeImpact(n.name, "not read", ["its live file could not be read"]))
            sent.append(n)
            continue
        if f.running and n.live == n.rendered:
            impact.nodes.append(NodeImpact(n.name, "unchanged"))
            continue
        details = describe_change(f.config, new[n.name]) if n.live is not None else []
        if n.live is None:
            details = ["no keepalived.conf yet: the whole file is new"]
        elif not details and n.live != n.rendered:
            details = ["the file changes, no VRRP setting does (reload only)"]
        if not f.running:
            details.append("keepalived is not running: the push starts it")
        impact.nodes.append(NodeImpact(n.name, "changes", details))
        sent.append(n)
        for inst in advert_changes(f.config, new[n.name]):
            impact.notes.append(
                f"{n.name}: the adverts of {inst} change; until every node has the new file, "
                "nodes with the old and the new one ignore each other."
            )
    impact.notes = list(dict.fromkeys(impact.notes))
    held = {n.name: sum(1 for names in holders.values() if n.name in names) for n in nodes}
    if order is None:
        sent.sort(key=lambda n: rollout_key(held[n.name], n.priority))
    else:
        position = {name: i for i, name in enumerate(order)}
        sent.sort(key=lambda n: position.get(n.name, len(position)))
    changes = tuple(
        Change(n.name, new[n.name], "start" if not facts[n.name].running else "reload")
        for n in sent
    )
    phase = Phase("the push", changes, together=bare)
    if bare and changes:
        impact.notes.append(
            "No node runs keepalived yet: the push installs every node at once and one "
            "election follows."
        )
    for n in nodes:
        if n.readable is False and n.rendered is not None:
            impact.warnings.append(
                f"{n.name} cannot be read, so what it runs now is unknown: the prediction "
                "leaves it out until it has the new file."
            )
    impact.vips = simulate(facts, holders, [phase], impact.warnings)
    _nopreempt_warnings(impact, facts, [phase])
    return impact


def skip_problem(nodes):
    """Why skipping the nodes left out of a push (PushNode.left starting "skipped") would be
    unsafe ("" when it is not): a skipped node's keepalived may well still run with its old
    file (only SSH may be down). If the push changes an instance's adverts on the other nodes
    (its advertised VIP, VRID, advert_int, authentication), the skipped node and the others
    would ignore each other and both hold the VIPs: split brain. So that push waits for the
    node, or for the node to be deleted from the cluster (and stopped by hand)."""
    skipped = [n.name for n in nodes if n.rendered is None and n.left.startswith("skipped")]
    if not skipped:
        return ""
    changed = []
    for n in nodes:
        if n.rendered is None or not n.readable or n.live is None:
            continue
        changed += advert_changes(configs_from_text(n.live), configs_from_text(n.rendered))
    changed = list(dict.fromkeys(changed))
    if not changed:
        return ""
    names = ", ".join(skipped)
    return (
        f"Skipping {names} is refused: this push changes the adverts of {', '.join(changed)} "
        f"(its advertised VIP, VRID, advert_int or authentication). If keepalived still runs "
        f"on {names} with its old file, it would ignore the other nodes' adverts and they its: "
        f"both would hold the VIPs (split brain). Bring {names} back, or delete it from the "
        "cluster if it is gone for good (and stop keepalived on it)."
    )


def _unknown_node_warning(name, holders):
    held = sorted(v for v, names in holders.items() if name in names)
    if held:
        return (
            f"{name} is not changed and cannot be read; it was last seen holding "
            f"{', '.join(held)}. If its keepalived still runs it keeps its old file and stays in "
            "the elections with it."
        )
    return (
        f"{name} is not changed and cannot be read: the prediction assumes its keepalived is "
        "down. If it still runs, it keeps its old file and stays in the elections with it."
    )


def _nopreempt_warnings(impact, facts, phases):
    """An outranked holder keeps its VIPs under nopreempt: say so where the operator expects
    them to move (maintenance, a lowered priority)."""
    final = final_configs(facts, phases)
    for v in impact.vips:
        if len(v.after) != 1:
            continue
        holder = v.after[0]
        mine = (final.get(holder) or {}).get(v.instance)
        higher = [
            cfg[v.instance]
            for name, cfg in final.items()
            if name != holder
            and cfg
            and v.instance in cfg
            and mine
            and cfg[v.instance].priority > mine.priority
        ]
        if mine and higher and all(not o.preempt for o in higher):
            impact.warnings.append(
                f"{v.instance} has nopreempt: {holder} keeps {v.vip} although another node "
                f"outranks it (its priority is {mine.priority}). The VIP moves only when "
                f"keepalived on {holder} stops (a failover drill, or a stop by hand)."
            )
    impact.warnings = list(dict.fromkeys(impact.warnings))


def predict_drill(cluster, nodes, holders, instance):
    """A failover drill of `instance` (its keepalived name): keepalived stops on its holder,
    the checks run, and it starts again. `nodes` {name: NodeFacts} with vipanel's files."""
    impact = Impact(action="drill", cluster=cluster, phases=[])
    holders = {host(v): list(n) for v, n in holders.items()}
    anchor = None
    for f in nodes.values():
        cfg = (f.config or {}).get(instance)
        if cfg and cfg.vips:
            anchor = (cfg.advertised or cfg.vips)[0]
            break
    names = holders.get(anchor, []) if anchor else []
    if len(names) != 1:
        impact.warnings.append(
            f"No single node holds the VIPs of {instance} now"
            + (f" ({', '.join(names)})" if names else "")
            + ": the drill would find nothing to stop and fail at once."
        )
        impact.nodes = [NodeImpact(n, "not touched") for n in nodes]
        return impact
    holder = names[0]
    stop = Phase(f"keepalived stops on {holder}", (Change(holder, None, "stop"),))
    start = Phase(
        f"keepalived starts again on {holder}",
        (Change(holder, nodes[holder].config, "start"),),
    )
    impact.phases = [stop.title, start.title]
    impact.nodes = [
        NodeImpact(
            n,
            "stopped" if n == holder else "not touched",
            ["keepalived stops (SIGTERM), then starts again after the check"]
            if n == holder
            else [],
        )
        for n in nodes
    ]
    others = [i for i in (nodes[holder].config or {}) if i != instance]
    if others:
        impact.notes.append(
            f"Stopping keepalived on {holder} stops every instance there: "
            f"{', '.join(others)} move too."
        )
    impact.vips = simulate(nodes, holders, [stop, start], impact.warnings)
    return impact


def _next_push(nodes, holders, title, transform, keep=()):
    """Phase of the next push after a deletion: every node's file transformed, in the push's
    order; `keep` nodes are not pushed any more (a deleted node keeps what it runs)."""
    held = {n: sum(1 for names in holders.values() if n in names) for n in nodes}
    changes = []
    for f in sorted(nodes.values(), key=lambda f: rollout_key(held[f.name], f.priority)):
        if f.name in keep or f.config is None or not f.running:
            continue
        after = transform(f)
        if after != f.config:
            changes.append(Change(f.name, after))
    return Phase(title, tuple(changes))


def _node_lines(impact, nodes, phase, keep=()):
    changed = {c.node: c for c in phase.changes}
    for f in nodes.values():
        if f.name in keep:
            continue
        if f.name in changed:
            impact.nodes.append(
                NodeImpact(f.name, "changes", describe_change(f.config, changed[f.name].config))
            )
        else:
            impact.nodes.append(NodeImpact(f.name, "unchanged"))


DELETE_NOW = (
    "Deleting changes nothing on the nodes now; the moves below happen at the next push "
    "(this change alone: other unpushed changes are in the push's preview)."
)


def predict_delete_vip(cluster, nodes, holders, vip):
    vip = host(vip)
    impact = Impact(action="delete vip", cluster=cluster, when="at the next push")
    impact.notes.append(DELETE_NOW)

    def without(f):
        out = {}
        for name, cfg in f.config.items():
            if vip in cfg.vips:
                vips = tuple(v for v in cfg.vips if v != vip)
                advertised = tuple(v for v in cfg.advertised if v != vip) or vips[:1]
                cfg = dataclasses.replace(cfg, vips=vips, advertised=advertised)
            out[name] = cfg
        return out

    phase = _next_push(nodes, holders, "the next push", without)
    impact.phases = [phase.title]
    _node_lines(impact, nodes, phase)
    for f in nodes.values():
        for name, cfg in (f.config or {}).items():
            if cfg.advertised[:1] == (vip,) and len(cfg.vips) > 1:
                impact.notes.append(
                    f"{vip} is the VIP {name} advertises: the next one, "
                    f"{[v for v in cfg.vips if v != vip][0]}, takes its place in the adverts."
                )
            if cfg.vips == (vip,):
                impact.warnings.append(
                    f"{vip} is the last VIP of {name}: the cluster cannot be pushed until "
                    "that instance has another one (or is deleted)."
                )
    impact.notes = list(dict.fromkeys(impact.notes))
    impact.warnings = list(dict.fromkeys(impact.warnings))
    impact.vips = simulate(nodes, holders, [phase])
    return impact


def predict_delete_instance(cluster, nodes, holders, instance):
    impact = Impact(action="delete instance", cluster=cluster, when="at the next push")
    impact.notes.append(DELETE_NOW)
    phase = _next_push(
        nodes,
        holders,
        "the next push",
        lambda f: {k: v for k, v in f.config.items() if k != instance},
    )
    impact.phases = [phase.title]
    _node_lines(impact, nodes, phase)
    impact.vips = simulate(nodes, holders, [phase])
    return impact


def predict_delete_node(cluster, nodes, holders, node):
    """The node leaves vipanel, not the network: its keepalived runs on with its last file.
    The next push drops it from the others' unicast peers; stopping it is the operator's."""
    impact = Impact(action="delete node", cluster=cluster, when="at the next push")
    gone = nodes[node]
    address = gone.address

    def without(f):
        out = {}
        for name, cfg in f.config.items():
            if cfg.peers is not None and address in cfg.peers:
                cfg = dataclasses.replace(cfg, peers=tuple(p for p in cfg.peers if p != address))
            out[name] = cfg
        return out

    push = _next_push(nodes, holders, "the next push", without, keep={node})
    stop = Phase(f"when keepalived on {node} is stopped", (Change(node, None, "stop"),))
    impact.phases = [push.title, stop.title]
    impact.nodes.append(
        NodeImpact(
            node,
            "deleted",
            [
                "vipanel never connects to it again; keepalived there keeps running with its last "
                "file and still takes part in the elections until you stop it"
            ],
        )
    )
    _node_lines(impact, nodes, push, keep={node})
    held = sorted(v for v, names in holders.items() if node in names)
    if held:
        impact.warnings.append(
            f"{node} holds {', '.join(held)} now and keeps it after the deletion: vipanel will "
            f"no longer watch it. Stop keepalived on {node} first (or run a drill) if it is "
            "leaving."
        )
    if push.changes:
        impact.notes.append(
            f"The next push removes {node} from the other nodes' unicast peers; {node} still "
            "sends its adverts to them while it runs."
        )
    impact.vips = (
        simulate(nodes, holders, [push, stop]) if gone.running else simulate(nodes, holders, [push])
    )
    return impact


def predict_delete_cluster(cluster, nodes, holders):
    impact = Impact(action="delete cluster", cluster=cluster, when="now")
    impact.nodes = [NodeImpact(n, "not touched") for n in nodes]
    impact.notes.append(
        "Nothing changes on the nodes: keepalived keeps running with the files last pushed, and "
        "every VIP stays where it is. vipanel stops watching them and deletes the cluster's "
        "nodes, VIPs, pushes and failover history (the audit log keeps its entries)."
    )
    impact.notes.append("To take the VIPs down, stop keepalived on the nodes first.")
    impact.vips = simulate(nodes, holders, [])
    return impact


# --- Whether a push's prediction held ---------------------------------------------------------


@dataclass
class Verdict:
    # "held", "not held", "not judged" (the push did not succeed), "pending" (too early)
    status: str
    reasons: list = field(default_factory=list)
    # Event ids the prediction foresaw, and those it did not.
    expected: set = field(default_factory=set)
    unexpected: set = field(default_factory=set)

    @property
    def held(self):
        return self.status == "held"

    def as_dict(self):
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "expected_events": sorted(self.expected),
            "unexpected_events": sorted(self.unexpected),
        }


def judge(prediction, observed, events, finished=True, succeeded=True):
    """Did a push's prediction (Impact.as_dict) hold?

    `observed` {vip: [names]} holders the push saw at its end; `events` the FailoverEvents of
    the push's window as dicts (id, kind, vip, from_node, to_node). A move the prediction names
    may be too quick for a sweep to see (then only its end is checked); an event it does not
    foresee, or a different end, means it did not hold.
    """
    if not prediction or not prediction.get("vips") and not prediction.get("nodes"):
        return Verdict("not judged", ["This push has no prediction (made before they existed)."])
    if not finished:
        return Verdict("pending", ["The push is still running."])
    if not succeeded:
        return Verdict(
            "not judged",
            [
                "The push did not succeed: nodes were put back as they were, so its prediction "
                "is not judged."
            ],
        )
    verdict = Verdict("held")
    predicted = {v["vip"]: v for v in prediction.get("vips", [])}
    for event in events:
        vip = host(event["vip"])
        v = predicted.get(vip)
        kinds = {m["kind"] for m in v["moves"]} if v else set()
        pairs = [(m["before"], m["after"]) for m in v["moves"]] if v else []
        ok = event["kind"] == "drill"  # a drill's own record of its outcome
        if v is not None and not ok:
            if event["kind"] == "failover":
                ok = any(event["from_node"] in b and a == [event["to_node"]] for b, a in pairs) or (
                    # a gap seen by a sweep: the move is reported after it as a failover
                    "move" in kinds and [event["to_node"]] == v["after"]
                )
            elif event["kind"] in ("split_brain", "split_brain_end"):
                ok = "split" in kinds
            elif event["kind"] in ("no_holder", "no_holder_end"):
                ok = any(
                    m["kind"] in ("down", "up") or (m.get("outage") or 0) > 0 for m in v["moves"]
                ) or ("split" in kinds)
        (verdict.expected if ok else verdict.unexpected).add(event["id"])
        if not ok:
            verdict.reasons.append(
                f"Not foreseen: {event['kind'].replace('_', ' ')} of {vip}"
                + (
                    f" ({event['from_node'] or '-'} → {event['to_node'] or '-'})"
                    if event["kind"] == "failover"
                    else ""
                )
                + "."
            )
    if observed is not None:
        seen = {host(v): sorted(n) for v, n in observed.items()}
        for vip, v in predicted.items():
            if vip in seen and sorted(v["after"]) != seen[vip]:
                verdict.reasons.append(
                    f"{vip}: expected on {', '.join(v['after']) or 'no node'}, found on "
                    f"{', '.join(seen[vip]) or 'no node'} at the end of the push."
                )
    if verdict.reasons:
        verdict.status = "not held"
    else:
        moved = [v for v in predicted.values() if v["moves"]]
        verdict.reasons.append(
            f"Every VIP ended where predicted ({len(moved)} moved as foreseen)."
            if moved
            else "No VIP moved, as predicted."
        )
    return verdict


# --- Facts from the database (no SSH) ---------------------------------------------------------
# The predictions above take plain values; these read them from what vipanel stores: the files
# it renders, and the holders and node states its sweeps and notify reports last recorded.


def state_of(obj):
    """obj.state (a NodeState or VipState), or None when there is none yet."""
    try:
        return obj.state
    except obj._meta.model.state.RelatedObjectDoesNotExist:
        return None


def observed_holders(cluster):
    """{vip host address: [node names]} as last observed: the nodes whose last probe saw the
    address; when no reachable node has it, the holder last recorded (it may be on a node that
    cannot be reached now)."""
    nodes = list(cluster.nodes.select_related("state"))
    out = {}
    for vip in cluster.vips.select_related("state__holder"):
        names = []
        for node in nodes:
            state = state_of(node)
            if state is not None and state.reachable and vip.address in (state.holds or []):
                names.append(node.name)
        vstate = state_of(vip)
        if not names and vstate is not None and vstate.holder and not vstate.no_holder:
            names = [vstate.holder.name]
        out[host(vip.address)] = sorted(names)
    return out


def node_facts(cluster, maintenance=None):
    """{name: NodeFacts} with the files vipanel renders for each node (what it pushed, when
    nothing is pending) and keepalived's state as last probed. `maintenance` {node id: flag}
    overrides nodes' flags (a maintenance switch not made yet)."""
    # The core of this module is pure (plain values in, plain values out): Django's models and
    # the renderer load only for the helpers that read the database.
    from clusters.render import node_config

    maintenance = maintenance or {}
    out = {}
    for node in cluster.nodes.select_related("state", "cluster").order_by("-priority"):
        node.maintenance = maintenance.get(node.pk, node.maintenance)
        try:
            config = configs_from_text(node_config(node))
        except ValueError:
            config = None
        state = state_of(node)
        probed = state is not None and state.reachable
        out[node.name] = NodeFacts(
            name=node.name,
            address=node.address,
            config=config,
            running=state.keepalived_running if probed else None,
            reachable=state.reachable if state is not None else None,
            maintenance=node.maintenance,
            priority=node.priority,
        )
    return out


def _not_probed(impact, facts):
    unknown = [f.name for f in facts.values() if f.running is None]
    if unknown:
        impact.warnings.append(
            f"keepalived's state on {', '.join(unknown)} is not known (never probed, or not "
            "reachable at the last probe): the prediction leaves "
            + ("it" if len(unknown) == 1 else "them")
            + " out of the elections."
        )
    return impact


def drill_impact(cluster, instance=None):
    """A drill of `instance` (a VrrpInstance; None: the cluster's main instance)."""
    facts = node_facts(cluster)
    name = cluster.instance_name if instance is None else instance.keepalived_name
    impact = predict_drill(cluster.name, facts, observed_holders(cluster), name)
    return _not_probed(impact, facts)


def delete_impact(cluster, obj=None):
    """Deleting `obj` (a Node, VirtualIP or VrrpInstance of `cluster`), or the cluster itself."""
    from clusters.models import Node, VirtualIP, VrrpInstance  # as above: only when reading rows

    facts = node_facts(cluster)
    holders = observed_holders(cluster)
    if obj is None:
        impact = predict_delete_cluster(cluster.name, facts, holders)
    elif isinstance(obj, Node):
        impact = predict_delete_node(cluster.name, facts, holders, obj.name)
    elif isinstance(obj, VirtualIP):
        impact = predict_delete_vip(cluster.name, facts, holders, obj.address)
    elif isinstance(obj, VrrpInstance):
        impact = predict_delete_instance(cluster.name, facts, holders, obj.keepalived_name)
    else:
        raise TypeError(f"nothing to predict for deleting {obj!r}")
    return _not_probed(impact, facts)
