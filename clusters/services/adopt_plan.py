"""What adopting a running cluster will save: the nodes' readings and reconcile's proposal turned
into vipanel's model (issue 12). Pure: no database, no SSH; clusters.services.adopt reads the
nodes, applies the person's edits and saves.

The model's shape decides a few things the files leave open, each reported as a Finding:
- The first instance of the proposal is the cluster's main instance (the Cluster row); the
  others become VrrpInstance rows with NodePriority, and live sync groups become SyncGroup rows.
- keepalived's instance names are vipanel's (VI_<cluster>[_<name>]). Renaming changes nothing
  on a reload: keepalived 2.2.7 matches an instance across a reload by VRID, address family,
  interface and unicast source (vrrp.c, vrrp_exist()), not by name, so the master stays master.
- VIPs keep their prefix (keepalived's /32 or /128 where a line has none) and the list the nodes
  advertise now (VirtualIP.advertised), since a node whose advert list differs discards the
  others' adverts (vrrp.c, vrrp_check_packet()) and would take the VIP.
- One health check per cluster: the keeper's vrrp_script, as a typed check when its command is
  one (typed_check), else a free-form command that only an admin may adopt.
- What is not modelled is carried per node (clusters.models.CarriedBlock).
"""

import ipaddress
import posixpath
import re
import shlex
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from clusters import constants, validators
from clusters.kaconf import Unmodelled
from clusters.kaconf.reconcile import Finding, LiveState, Proposal, reconcile

# Lines of a vrrp_instance that kaconf reads but vipanel does not write: carried per node, so
# they keep running where they ran (notify scripts, tracked interfaces).
CARRIED_INSTANCE_KEYWORDS = (
    "notify",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "track_interface",
)
MAX_NODES = 16


@dataclass
class PlannedNode:
    key: str  # the address (and port) it was read at: "192.0.2.11" or "192.0.2.11:2222"
    name: str
    address: str
    ssh_port: int
    fingerprint: str
    priority: int
    interface: str
    running: bool
    # (context, instance key or None, group key or None, Unmodelled), in file order
    carried: list = field(default_factory=list)


@dataclass
class PlannedInstance:
    key: str  # the proposal's name for it (a live instance name)
    name: str  # vipanel's name for a further instance ("" for the main one)
    main: bool
    virtual_router_id: int | None
    advert_int: float
    auth_pass: str
    unicast: bool
    preempt: bool
    preempt_delay: int
    interface: str  # further instances: "" means each node's main interface
    network: str  # further instances: "" means the cluster's network
    vips: list  # [(address/prefix, advertised)]
    priorities: dict  # node key -> priority
    keeper: str | None
    holders: list
    live_names: dict  # node key -> the instance's name in that node's file
    track_check: bool = False

    @property
    def split_brain(self):
        return len(self.holders) > 1


@dataclass
class PlannedGroup:
    name: str
    members: list  # instance keys


@dataclass
class Plan:
    name: str
    network: str
    interface: str
    check_type: str = ""
    check_target: str = ""
    check_script: str = ""
    check_interval: int = 2
    check_weight: int = 0
    check_fall: int = 2
    check_rise: int = 2
    check_source: str = ""  # "vrrp_script NAME at file:line: `command`", for refusals
    reload_command: str = constants.DEFAULT_RELOAD_COMMAND
    nodes: list = field(default_factory=list)
    instances: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    # What stops this proposal from being saved as it stands, keyed like a ValidationError.
    errors: dict = field(default_factory=dict)
    proposal: Proposal | None = None

    def node(self, key):
        return next(n for n in self.nodes if n.key == key)

    def instance(self, key):
        return next(i for i in self.instances if i.key == key)

    @property
    def carried(self):
        return [(n, item) for n in self.nodes for _, _, _, item in n.carried]


# --- Typed checks ------------------------------------------------------------------------------
# A vrrp_script whose command is one of these becomes vipanel's typed check: the same test,
# rendered from one validated parameter (clusters/render.py CHECK_TEMPLATES), which an operator
# may set. Anything else runs what it says as root on every node: an admin's.
_BIN = r"(?:/usr)?(?:/s?bin/)?"
_PROCESS = [
    re.compile(rf"{_BIN}pgrep -x (\S+)"),
    re.compile(rf"{_BIN}killall -0 (\S+)"),
    re.compile(rf"{_BIN}pidof (\S+)"),
]
_TCP = [
    re.compile(rf"{_BIN}(?:nc|ncat|netcat) -z (?:127\.0\.0\.1|localhost) (\d+)"),
    re.compile(rf"{_BIN}bash -c (?:exec)?<>?/dev/tcp/127\.0\.0\.1/(\d+)"),
]
_HTTP = re.compile(
    rf"{_BIN}curl((?: (?:-[qfsSg]+|--fail|--silent|--show-error|-o /dev/null|--output /dev/null"
    r"|-m \d+|--max-time \d+))*) (\S+)"
)
_FILE = [
    re.compile(rf"{_BIN}test -[ef] (\S+)"),
    re.compile(r"/?(?:usr/)?(?:bin/)?\[ -[ef] (\S+) \]"),
]


def typed_check(command):
    """(check_type, check_target) when `command` is one of vipanel's typed checks, else None.

    keepalived splits a script line on blanks (quotes group words) and runs it without a
    shell, so the words are compared, never the text run through a shell.
    """
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words or any(not re.fullmatch(r"[A-Za-z0-9._/:<>=\[\]-]+", w) for w in words):
        return None
    line = " ".join(words)
    for kind, patterns, check in (
        ("process", _PROCESS, validators.validate_check_process),
        ("tcp", _TCP, validators.validate_check_port),
        ("file", _FILE, validators.validate_check_file),
    ):
        for pattern in patterns:
            match = pattern.fullmatch(line)
            if match and _valid(check, match.group(1)):
                return kind, match.group(1)
    match = _HTTP.fullmatch(line)
    if match and _valid(validators.validate_check_url, match.group(2)):
        return "http", match.group(2)
    return None


def _valid(check, value):
    try:
        check(value)
    except ValidationError:
        return False
    return True


# --- Building the plan -------------------------------------------------------------------------


def _slug(text, limit):
    """text as a vipanel name (clusters.validators.name_validator), at most `limit` long."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:limit].strip("-._")
    return slug


def _with_prefix(address):
    """A VIP as vipanel stores it: with the prefix keepalived gives a bare address."""
    if "/" in address:
        return address
    return f"{address}/{128 if ':' in address else 32}"


def _network(nodes, vips):
    """The cluster's segment: the first VIP's network when it holds every node, else the
    smallest network holding them all."""
    addresses = [ipaddress.ip_address(n.address) for n in nodes]
    first = addresses[0]
    candidates = [ipaddress.ip_interface(v).network for v in vips[:1]]
    candidates.append(ipaddress.ip_network(f"{first}/{24 if first.version == 4 else 64}", False))
    candidates += [
        ipaddress.ip_network(f"{first}/{prefix}", strict=False)
        for prefix in range(first.max_prefixlen, 7, -1)
    ]
    return str(
        next(
            net
            for net in candidates
            if all(a.version == net.version and a in net for a in addresses)
        )
    )


def _finding(instance, field_name, values, proposed, reason):
    return Finding(instance, field_name, values, proposed, reason)


def build(readings, config_path, taken_names=()):
    """The Plan for `readings` ({key: survey.NodeReading}, every one parsed)."""
    parsed = {key: r.parsed for key, r in readings.items()}
    live = {key: LiveState(r.running, r.addresses) for key, r in readings.items()}
    proposal = reconcile(parsed, live)
    if not proposal.instances:
        return Plan(
            "",
            "",
            "",
            errors={"instances": "No vrrp_instance was found on any node: nothing to adopt."},
            proposal=proposal,
        )
    main = proposal.instances[0]
    plan = Plan(name="", network="", interface="", proposal=proposal)
    plan.findings = list(proposal.findings)

    _plan_nodes(plan, readings, main)
    _plan_instances(plan, proposal, readings, main)
    plan.network = _network(plan.nodes, [v for v, _ in plan.instances[0].vips])
    _plan_further_networks(plan)
    _plan_check(plan, proposal, readings)
    _plan_groups(plan, readings)
    _plan_carried(plan, readings, config_path)
    _check_unicast(plan, readings)
    _check_comments(plan, readings)
    base = _slug(f"adopted-{main.name}", 63) or "adopted"
    name, n = base, 2
    while name in taken_names:
        name, n = f"{base[:58]}-{n}", n + 1
    plan.name = name
    return plan


def _plan_nodes(plan, readings, main):
    names = set()
    for index, (key, reading) in enumerate(readings.items(), start=1):
        router_id = reading.parsed.global_defs.router_id or ""
        candidates = [router_id, reading.hostname.split(".")[0], f"node{index}"]
        name = next(
            (c for c in map(lambda c: _slug(c, 63), candidates) if c and c not in names),
            f"node{index}-{len(names)}",
        )
        if router_id and name != router_id:
            plan.findings.append(
                _finding(
                    "",
                    "router_id",
                    {key: router_id},
                    name,
                    f"vipanel names a node after its router_id, which must be a name of "
                    f"letters, digits, '.', '_' and '-' that no other node has; {key} is "
                    f"named {name}, and its router_id becomes that.",
                )
            )
        names.add(name)
        interface = main.interfaces.get(key) or ""
        plan.nodes.append(
            PlannedNode(
                key=key,
                name=name,
                address=reading.address,
                ssh_port=reading.port,
                fingerprint=reading.fingerprint,
                priority=main.priorities.get(key, 0),
                interface=interface,
                running=reading.running,
            )
        )
    interfaces = [n.interface for n in plan.nodes if n.interface]
    plan.interface = max(set(interfaces), key=interfaces.count) if interfaces else "eth0"
    for node in plan.nodes:
        node.interface = "" if node.interface == plan.interface else node.interface


def _lowest_free(used):
    for value in range(constants.PRIORITY_MAX - 1, constants.PRIORITY_MIN - 1, -1):
        if value not in used and value < min(used or [constants.PRIORITY_MAX + 1]):
            return value
    return constants.PRIORITY_MIN


def _plan_instances(plan, proposal, readings, main):
    used_names = set()
    for inst in proposal.instances:
        is_main = inst is main
        members = inst.members
        keeper_inst = readings[inst.keeper].parsed.instance(members[inst.keeper])
        auth_type, auth_pass = inst.auth_type, inst.auth_pass or ""
        if auth_type and auth_type.upper() != "PASS":
            plan.errors[f"instances.{inst.name}.authentication"] = (
                f"Instance {inst.name} uses auth_type {auth_type}; vipanel writes PASS or no "
                "authentication, and nodes with different types ignore each other. Change it "
                "on the nodes (or remove it) and read them again."
            )
        if auth_type is None:
            auth_pass = ""
        advertised_count = len(keeper_inst.virtual_ipaddress)
        vips = [
            (_with_prefix(address), index > 0 and index < advertised_count)
            for index, address in enumerate(inst.vips)
        ]
        priorities = dict(inst.priorities)
        missing = [n.key for n in plan.nodes if n.key not in priorities]
        for key in missing:
            priorities[key] = _lowest_free(set(priorities.values()))
        name = ""
        if not is_main:
            base = _slug(re.sub(r"^VI_", "", inst.name), 30) or "B"
            name, n = base, 2
            while name in used_names:
                name, n = f"{base[:27]}-{n}", n + 1
            used_names.add(name)
        interfaces = inst.interfaces
        interface = ""
        if not is_main:
            own = {k: v for k, v in interfaces.items() if v}
            mains = {n.key: n.interface or plan.interface for n in plan.nodes}
            if any(v != mains.get(k) for k, v in own.items()):
                values = set(own.values())
                if len(values) == 1:
                    interface = values.pop()
                else:
                    plan.errors[f"instances.{inst.name}.interface"] = (
                        f"Instance {inst.name} runs on {', '.join(sorted(set(own.values())))} "
                        "depending on the node, and not on each node's main interface; "
                        "vipanel writes one interface per further instance."
                    )
        elif len({v for v in interfaces.values() if v}) > 1:
            pass  # the main instance follows each node's interface (Node.interface)
        advert = inst.advert_int
        if advert != int(advert):
            plan.errors[f"instances.{inst.name}.advert_int"] = (
                f"Instance {inst.name} sends adverts every {advert:g} s; vipanel keeps whole "
                "seconds (VRRPv2). Change it on the nodes and read them again."
            )
        plan.instances.append(
            PlannedInstance(
                key=inst.name,
                name=name,
                main=is_main,
                virtual_router_id=inst.virtual_router_id,
                advert_int=int(advert),
                auth_pass=auth_pass,
                unicast=inst.unicast,
                preempt=not inst.nopreempt,
                preempt_delay=0 if inst.nopreempt else (inst.preempt_delay or 0),
                interface=interface,
                network="",
                vips=vips,
                priorities=priorities,
                keeper=inst.keeper,
                holders=list(inst.holders),
                live_names=dict(members),
            )
        )
        if inst.nopreempt and inst.preempt_delay:
            plan.findings.append(
                _finding(
                    inst.name,
                    "preempt_delay",
                    {inst.keeper: inst.preempt_delay},
                    0,
                    "preempt_delay means nothing with nopreempt; vipanel writes nopreempt alone.",
                )
            )
        if missing:
            plan.findings.append(
                _finding(
                    inst.name,
                    "priority",
                    {k: None for k in missing},
                    {k: priorities[k] for k in missing},
                    "vipanel runs every instance on every node of the cluster; the nodes "
                    "that do not run it now join it as backups with the lowest priorities, "
                    "so no VIP moves.",
                )
            )
        for key, reading in readings.items():
            live_inst = reading.parsed.instance(members.get(key, ""))
            for vip in live_inst.vips if live_inst else []:
                _vip_options(plan, inst.name, key, vip, live_inst.interface)
        if is_main:
            for node in plan.nodes:
                node.priority = priorities[node.key]


def _vip_options(plan, instance, key, vip, interface):
    dropped = []
    if vip.dev and vip.dev != interface:
        dropped.append(f"dev {vip.dev}")
    if vip.label:
        dropped.append(f"label {vip.label}")
    if vip.scope and vip.scope != "global":
        dropped.append(f"scope {vip.scope}")
    if vip.brd:
        dropped.append(f"brd {vip.brd}")
    dropped += vip.other
    if dropped:
        plan.findings.append(
            _finding(
                instance,
                "vip_options",
                {key: f"{vip.address} {' '.join(dropped)}"},
                f"{_with_prefix(vip.address)} dev {interface}",
                f"vipanel writes a VIP as address/prefix on the instance's interface, without "
                f"{', '.join(dropped)}. keepalived sees another address, so the node holding "
                "it removes and adds it again when it reloads: a moment without the VIP.",
            )
        )


def _plan_further_networks(plan):
    net = ipaddress.ip_network(plan.network)
    for inst in plan.instances:
        if inst.main or not inst.vips:
            continue
        vip_net = ipaddress.ip_interface(inst.vips[0][0]).network
        if vip_net.version != net.version or (inst.interface and not vip_net.overlaps(net)):
            inst.network = str(vip_net)


def _plan_check(plan, proposal, readings):
    main = plan.instances[0]
    keeper = readings[main.keeper].parsed
    tracked = keeper.instance(main.live_names[main.keeper]).track_script
    scripts = {s.name: s for s in keeper.scripts}
    chosen = next((t for t in tracked if t.name in scripts and scripts[t.name].script), None)
    if chosen is None:
        return
    script = scripts[chosen.name]
    plan.check_source = f"vrrp_script {script.name} at {script.where}: `{script.script}`"
    typed = typed_check(script.script)
    if typed:
        plan.check_type, plan.check_target = typed
    else:
        plan.check_type, plan.check_script = "command", script.script
    plan.check_weight = chosen.weight if chosen.weight is not None else (script.weight or 0)
    plan.check_interval = script.interval or 1
    plan.check_fall = script.fall or 1
    plan.check_rise = script.rise or 1
    others = [t.name for t in tracked if t is not chosen]
    if others or script.extra:
        what = [f"track_script {name}" for name in others]
        what += [item.text.split("\n")[0] for item in script.extra]
        plan.findings.append(
            _finding(
                main.key,
                "track_script",
                {main.keeper: what},
                chosen.name,
                "vipanel runs one health check per cluster; these are not written: "
                + "; ".join(what)
                + ".",
            )
        )
    for inst in plan.instances[1:]:
        parsed = readings[inst.keeper].parsed
        keeper_inst = parsed.instance(inst.live_names[inst.keeper])
        own = {s.name: s.script for s in parsed.scripts}
        inst.track_check = script.script in {own.get(t.name) for t in keeper_inst.track_script}


def _plan_groups(plan, readings):
    seen = {}
    for key, reading in readings.items():
        for group in reading.parsed.sync_groups:
            members = []
            for live_name in group.group:
                inst = next((i for i in plan.instances if i.live_names.get(key) == live_name), None)
                if inst is not None and inst.key not in members:
                    members.append(inst.key)
            frozen = frozenset(members)
            if len(members) >= 2 and frozen not in seen:
                seen[frozen] = (group.name, members)
    used = set()
    for name, members in seen.values():
        slug = _slug(re.sub(r"^VG_", "", name), 30) or "G"
        base, n = slug, 2
        while slug in used:
            slug, n = f"{base[:27]}-{n}", n + 1
        used.add(slug)
        plan.groups.append(PlannedGroup(slug, members))
    in_group = {}
    for group in plan.groups:
        for member in group.members:
            if member in in_group:
                plan.errors["sync_groups"] = (
                    f"Instance {member} is in sync groups {in_group[member]} and {group.name} "
                    "on different nodes; an instance belongs to one group. Make the nodes "
                    "agree and read them again."
                )
            in_group[member] = group.name


def _plan_carried(plan, readings, config_path):
    config_dir = posixpath.dirname(config_path)
    for node in plan.nodes:
        parsed = readings[node.key].parsed
        items = [("top", None, None, u) for u in parsed.unmodelled]
        defs = parsed.global_defs
        items += [("global_defs", None, None, u) for u in defs.extra]
        items += [
            ("global_defs", None, None, u)
            for u in _raw(parsed, "global_defs", None, ("enable_script_security", "script_user"))
        ]
        for inst in plan.instances:
            live_name = inst.live_names.get(node.key)
            live_inst = parsed.instance(live_name) if live_name else None
            if live_inst is None:
                continue
            nested = list(live_inst.extra)
            nested += _raw(parsed, "vrrp_instance", live_name, CARRIED_INSTANCE_KEYWORDS)
            items += [("instance", inst.key, None, u) for u in nested]
        for group in parsed.sync_groups:
            planned = _group_of(plan, node.key, group)
            if planned is not None:
                items += [("sync_group", None, planned.name, u) for u in group.extra]
        items.sort(key=lambda i: (i[3].file, i[3].line))
        node.carried = items
        for _, _, _, item in items:
            if re.search(r"^\s*include[rmwba]?\s+[^/\s]", item.text, re.MULTILINE) and (
                posixpath.dirname(item.file) != config_dir
            ):
                plan.errors["carried"] = (
                    f"{node.key}: {item.where}: {item.keyword} holds a relative include; "
                    f"vipanel writes carried blocks into {config_path}, where it would name "
                    "other files. Make the include absolute on the node and read it again."
                )
        for script in parsed.scripts:
            for item in script.extra:
                plan.findings.append(
                    _finding(
                        "",
                        "vrrp_script",
                        {node.key: item.text},
                        None,
                        f"{item.where}: inside vrrp_script {script.name}, not written: "
                        "vipanel writes its own check script.",
                    )
                )


def _group_of(plan, key, group):
    members = {i.key for i in plan.instances if i.live_names.get(key) in group.group}
    return next((g for g in plan.groups if set(g.members) == members), None)


def _raw(parsed, block, name, keywords):
    """Statements `keywords` of the `block` (named `name`) as Unmodelled, byte for byte."""
    out = []
    for node in parsed.config.nodes:
        if node.keyword != block or (name is not None and node.args[:1] != [name]):
            continue
        context = f"{block} {name}" if name else block
        for child in node.expanded():
            if child.keyword in keywords:
                out.append(
                    Unmodelled(
                        child.keyword, child.file, child.line, child.end_line, child.text, context
                    )
                )
    return out


def _check_unicast(plan, readings):
    for inst in plan.instances:
        if not inst.unicast:
            continue
        for node in plan.nodes:
            live_name = inst.live_names.get(node.key)
            live_inst = readings[node.key].parsed.instance(live_name) if live_name else None
            src = live_inst.unicast_src_ip if live_inst else None
            if src and src != node.address:
                plan.errors[f"nodes.{node.key}.address"] = (
                    f"{node.key} sends the unicast adverts of {inst.key} from {src}; vipanel "
                    "sends them from the address it reaches the node at, and keepalived would "
                    "restart the instance for a new source address (the VIP would move). "
                    f"Adopt the node by {src}."
                )
            peers = set(live_inst.unicast_peer if live_inst else [])
            others = {n.address for n in plan.nodes if n is not node}
            if peers and peers != others:
                plan.findings.append(
                    _finding(
                        inst.key,
                        "unicast_peer",
                        {node.key: sorted(peers)},
                        sorted(others),
                        "vipanel writes every other adopted node as a unicast peer, and only "
                        "those.",
                    )
                )


_LOWER_WINS = re.compile(r"[#!].*\blower\b.*\b(wins?|master|becomes)\b", re.IGNORECASE)


def _check_comments(plan, readings):
    """The how-to's comment that the lower priority wins, said wrong where it stands."""
    main = plan.instances[0]
    keeper = plan.node(main.keeper)
    for node in plan.nodes:
        for path, text in readings[node.key].files.items():
            for number, line in enumerate(text.splitlines(), start=1):
                if _LOWER_WINS.search(line):
                    plan.findings.append(
                        _finding(
                            main.key,
                            "comment",
                            {node.key: f"{path}:{number}: {line.strip()[:120]}"},
                            keeper.priority,
                            "This comment is wrong: in VRRP the highest priority wins. vipanel "
                            f"trusts what the nodes do, not comments: {keeper.key} (priority "
                            f"{keeper.priority}) keeps the VIP.",
                        )
                    )
