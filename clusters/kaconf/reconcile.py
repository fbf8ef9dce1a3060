"""One proposal for a cluster from the files and live state of its nodes (issue 12, item 3).

Input: each node's ParsedConfig and LiveState (whether keepalived runs, which addresses the node
holds now). Output: a Proposal with one InstanceProposal per VRRP instance, and Findings: every
point where the nodes disagree, or where vipanel will write something else than the files say,
with the values per node side by side, what vipanel will write, and why in plain words.

Rules, in order of trust:
1. What the nodes do now. The node that holds an instance's VIP (LiveState.addresses) is its
   holder; vipanel keeps it the holder, so the first push moves no VIP. Comments in the files
   ("the lower priority wins") and `state MASTER` lines are not evidence of who is master.
2. When several nodes hold the VIP at once (split brain, e.g. the how-to's different VRIDs),
   the one with the highest configured priority keeps it: that is the node an election by the
   proposed priorities picks, and its values (VRID, VIPs, auth, advert_int) are proposed.
3. When nobody holds it, the node with the highest configured priority is taken as the keeper.

Instances are matched across nodes by their VIP set first (the addresses are what the instance
is for; names are often copied or renamed by hand), then by name for the rest.
"""

import ipaddress
from dataclasses import dataclass, field

from clusters.kaconf.model import ParsedConfig, Script

PRIORITY_MIN = 1
PRIORITY_MAX = 254  # 255 is the address owner: kept if a node has it, never proposed
AUTH_PASS_MAX = 8


@dataclass
class LiveState:
    running: bool = True
    addresses: tuple[str, ...] = ()  # as `ip addr` shows them, with or without /prefix


@dataclass
class Finding:
    instance: str
    field: str
    values: dict  # node name -> value found there
    proposed: object
    reason: str


@dataclass
class InstanceProposal:
    name: str
    members: dict  # node name -> instance name in that node's file
    virtual_router_id: int | None
    vips: list[str]  # "address/prefix", advertised first
    auth_type: str | None
    auth_pass: str | None
    advert_int: float
    interfaces: dict  # node name -> interface
    priorities: dict  # node name -> proposed priority
    configured_priorities: dict
    holders: list[str]  # nodes holding a VIP of the instance now
    keeper: str | None  # the node that holds the VIPs after the first push
    unicast: bool
    state: str = "BACKUP"
    nopreempt: bool = False
    preempt_delay: int | None = None
    unicast_src_ips: dict = field(default_factory=dict)  # node name -> unicast_src_ip
    track_scripts: list[Script] = field(default_factory=list)  # the keeper's checks


@dataclass
class Proposal:
    instances: list[InstanceProposal]
    findings: list[Finding]

    def findings_for(self, instance, field_name=None):
        return [
            f
            for f in self.findings
            if f.instance == instance and (field_name is None or f.field == field_name)
        ]


def _ip(text):
    return str(ipaddress.ip_interface(text).ip)


def _vip_set(inst):
    return frozenset(_ip(v.address) for v in inst.vips)


def _match(nodes):
    """Groups of {node: Instance}, one per cluster instance."""
    groups = []  # list of (vipset, {node: inst})
    for node, parsed in nodes.items():
        for inst in parsed.instances:
            key = _vip_set(inst)
            for vipset, members in groups:
                if vipset == key and node not in members:
                    members[node] = inst
                    break
            else:
                groups.append((key, {node: inst}))
    # Then by name: a group that misses nodes takes a same-named instance of those nodes
    # from a group it does not overlap (the VIP lists differ, which becomes a finding).
    merged = True
    while merged:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                ma, mb = groups[a][1], groups[b][1]
                names_a = {i.name for i in ma.values()}
                names_b = {i.name for i in mb.values()}
                if names_a & names_b and not set(ma) & set(mb):
                    ma.update(mb)
                    del groups[b]
                    merged = True
                    break
            if merged:
                break
    return [members for _, members in groups]


def _sentence(text):
    return (text[:1].upper() + text[1:] + ".") if text else ""


def _preempt_words(nopreempt, delay):
    if nopreempt:
        return "nopreempt"
    return f"preempt_delay {delay}" if delay else "preempt"


def _side_by_side(members, attr):
    return {node: attr(inst) for node, inst in members.items()}


def _distinct_priorities(configured, keeper, order):
    """Distinct priorities keeping the order of `order` (keeper first), changing few values."""
    proposed = {}
    others = [n for n in order if n != keeper]
    top = configured[keeper]
    highest_other = max((configured[n] for n in others), default=0)
    if top != 255 and top <= highest_other:
        top = min(PRIORITY_MAX, highest_other + 1)
    proposed[keeper] = top
    previous = top
    for node in others:
        value = min(configured[node], previous - 1, PRIORITY_MAX)
        proposed[node] = value
        previous = value
    if previous < PRIORITY_MIN:
        # Not enough room below: raise the keeper just enough and step down by one.
        top = max(top, PRIORITY_MIN + len(others))
        proposed[keeper] = top
        for index, node in enumerate(others, start=1):
            proposed[node] = min(top - index, PRIORITY_MAX)
    return proposed


def _one_instance(members, nodes, live):
    names = sorted({inst.name for inst in members.values()})
    name = names[0] if len(names) == 1 else members[min(members)].name
    findings = []

    def finding(field_name, values, proposed, reason):
        findings.append(Finding(name, field_name, values, proposed, reason))

    all_vips = set().union(*(_vip_set(i) for i in members.values()))
    holders = sorted(
        node
        for node in members
        if live.get(node, LiveState()).running
        and all_vips & {_ip(a) for a in live.get(node, LiveState()).addresses}
    )
    configured = {node: inst.effective_priority for node, inst in members.items()}
    candidates = holders or list(members)
    keeper = max(candidates, key=lambda n: (configured[n], n in holders, [-ord(c) for c in n]))
    chosen = members[keeper]

    if len(names) > 1:
        finding(
            "name",
            _side_by_side(members, lambda i: i.name),
            name,
            "The nodes name this instance differently; they were matched by their VIPs. "
            "vipanel writes one name on every node.",
        )

    # VRID
    vrids = _side_by_side(members, lambda i: i.virtual_router_id)
    if len(set(vrids.values())) > 1:
        why = (
            "VRRP needs one virtual_router_id for the instance on every node: a node only "
            "listens to adverts of its own VRID. With a different VRID on each node (as a "
            "popular how-to advises) the nodes never hear each other, so each one is master "
            "of its own VRID and holds the VIP at the same time: split brain."
        )
        if len(holders) > 1:
            why += f" Right now {', '.join(holders)} all hold the VIP."
        why += (
            f" vipanel writes VRID {chosen.virtual_router_id} (that of {keeper}, which keeps "
            "the VIP) on every node; the push ends the split brain."
        )
        finding("virtual_router_id", vrids, chosen.virtual_router_id, why)
    elif len(holders) > 1:
        finding(
            "holder",
            {n: n in holders for n in members},
            keeper,
            f"{', '.join(holders)} hold the VIP at the same time although they share a VRID: "
            "they do not hear each other's adverts (commonly a firewall dropping VRRP, IP "
            f"protocol 112). {keeper} has the highest priority and keeps the VIP; vipanel's "
            "firewall rules admit VRRP between the nodes.",
        )

    # VIPs
    vip_lists = _side_by_side(members, lambda i: [v.address for v in i.vips])
    if len({tuple(sorted(_ip(a) for a in v)) for v in vip_lists.values()}) > 1:
        finding(
            "vips",
            vip_lists,
            vip_lists[keeper],
            "The VIP lists differ between nodes; keepalived discards adverts whose address "
            "list differs from its own, so every node may become master. vipanel writes the "
            f"list of {keeper}, which serves the VIPs now, on every node.",
        )

    # Authentication
    def auth_of(inst):
        a = inst.authentication
        return (a.auth_type, a.auth_pass) if a else (None, None)

    auths = _side_by_side(members, auth_of)
    auth_type, auth_pass = auth_of(chosen)
    if len(set(auths.values())) > 1:
        masked = {n: (t, "***" if p else None) for n, (t, p) in auths.items()}
        finding(
            "authentication",
            masked,
            (auth_type, "***" if auth_pass else None),
            "The nodes use different authentication, so they reject each other's adverts. "
            f"vipanel writes the authentication of {keeper} on every node.",
        )
    if auth_pass and len(auth_pass) > AUTH_PASS_MAX:
        finding(
            "auth_pass",
            {n: "***" for n in members},
            "***",
            f"auth_pass is longer than {AUTH_PASS_MAX} characters; keepalived uses only the "
            f"first {AUTH_PASS_MAX}. vipanel writes those {AUTH_PASS_MAX}, which is what the "
            "nodes use now.",
        )
        auth_pass = auth_pass[:AUTH_PASS_MAX]

    # advert_int
    adverts = _side_by_side(members, lambda i: i.effective_advert_int)
    if len(set(adverts.values())) > 1:
        finding(
            "advert_int",
            adverts,
            chosen.effective_advert_int,
            "advert_int differs between nodes; keepalived drops adverts with another interval. "
            f"vipanel writes {chosen.effective_advert_int:g} s (that of {keeper}) on every node.",
        )

    # Priorities: distinct, the keeper highest, the others in their configured order.
    order = sorted(members, key=lambda n: (n != keeper, -configured[n], n))
    proposed = _distinct_priorities(configured, keeper, order)
    if proposed != configured:
        counts = {}
        for value in configured.values():
            counts[value] = counts.get(value, 0) + 1
        reasons = []
        collide = sorted(v for v, c in counts.items() if c > 1)
        if collide:
            reasons.append(
                f"priority {', '.join(map(str, collide))} is set on more than one node; the "
                "election then falls to the nodes' addresses, and keepalived's manual asks for "
                "distinct priorities"
            )
        if any(configured[n] >= configured[keeper] for n in members if n != keeper):
            reasons.append(
                f"{keeper} holds the VIP now but does not have the highest priority; it gets "
                "the highest so the first push moves no VIP"
            )
        finding(
            "priority",
            configured,
            proposed,
            _sentence("; ".join(reasons))
            + " The highest priority wins (whatever comments in the files say); vipanel "
            "keeps the order of the others.",
        )

    # Initial state
    states = _side_by_side(members, lambda i: (i.state or "BACKUP").upper())
    if any(s == "MASTER" for s in states.values()):
        finding(
            "state",
            states,
            "BACKUP",
            "vipanel starts every node as BACKUP and lets the election by priority pick the "
            "master; state MASTER on a node makes it claim the VIP at start before it has "
            "heard the others, and keeps nopreempt from working.",
        )

    # Unicast
    unicast = any(i.unicast_peer for i in members.values())
    if unicast and not all(i.unicast_peer for i in members.values()):
        finding(
            "unicast",
            _side_by_side(members, lambda i: list(i.unicast_peer)),
            "unicast",
            "Some nodes send adverts by unicast and others by multicast, so they do not hear "
            "each other. vipanel writes unicast with every other node as peer on every node.",
        )

    # Health checks
    def checks(inst, node):
        scripts = {s.name: s for s in nodes[node].scripts}
        return sorted(
            (t.name, scripts[t.name].script if t.name in scripts else None)
            for t in inst.track_script
        )

    check_values = {n: checks(i, n) for n, i in members.items()}
    if len({tuple(v) for v in check_values.values()}) > 1:
        finding(
            "track_script",
            check_values,
            check_values[keeper],
            "The nodes run different health checks for this instance; vipanel writes those of "
            f"{keeper} on every node.",
        )

    # Preemption
    preempts = _side_by_side(members, lambda i: (i.nopreempt, i.preempt_delay))
    if len(set(preempts.values())) > 1:
        finding(
            "preempt",
            {n: _preempt_words(*v) for n, v in preempts.items()},
            _preempt_words(chosen.nopreempt, chosen.preempt_delay),
            "The nodes disagree on preemption, so whether a returning node takes the VIP "
            f"back depends on which node it is. vipanel writes the setting of {keeper}.",
        )

    if not holders:
        finding(
            "holder",
            {n: live.get(n, LiveState()).running for n in members},
            keeper,
            f"No node holds the VIP now; {keeper} has the highest priority and will take it.",
        )

    return (
        InstanceProposal(
            name=name,
            members={n: i.name for n, i in members.items()},
            virtual_router_id=chosen.virtual_router_id,
            vips=[v.address for v in chosen.vips],
            auth_type=auth_type,
            auth_pass=auth_pass,
            advert_int=chosen.effective_advert_int,
            interfaces=_side_by_side(members, lambda i: i.interface),
            priorities=proposed,
            configured_priorities=configured,
            holders=holders,
            keeper=keeper,
            unicast=unicast,
            nopreempt=chosen.nopreempt,
            preempt_delay=chosen.preempt_delay,
            unicast_src_ips=_side_by_side(members, lambda i: i.unicast_src_ip),
            track_scripts=[
                s for t in chosen.track_script for s in nodes[keeper].scripts if s.name == t.name
            ],
        ),
        findings,
    )


def reconcile(nodes: dict[str, ParsedConfig], live: dict[str, LiveState]) -> Proposal:
    """One proposal for the cluster whose nodes' files and live state are given by node name."""
    instances, findings = [], []
    for members in _match(nodes):
        proposal, found = _one_instance(members, nodes, live)
        instances.append(proposal)
        findings += found
        missing = sorted(set(nodes) - set(members))
        if missing:
            findings.append(
                Finding(
                    proposal.name,
                    "members",
                    {n: (n in members) for n in sorted(nodes)},
                    sorted(members),
                    f"{', '.join(missing)} run no instance with these VIPs or this name; "
                    "vipanel proposes the instance on the nodes that have it.",
                )
            )
    for node in sorted(nodes):
        state = live.get(node)
        if state is not None and not state.running:
            findings.append(
                Finding(
                    "",
                    "running",
                    {node: False},
                    None,
                    f"keepalived is not running on {node}; it holds no VIP and its file is "
                    "taken as it stands.",
                )
            )
    return Proposal(instances, findings)
