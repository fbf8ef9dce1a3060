"""One node's keepalived.conf and iptables rules, as pure functions of the models.

Nothing here writes to the database or talks to a host: the same rows give the same bytes (no
dates, every list in a fixed order), so a push can compare, hash and diff what it would send.

Every value is checked again on the way out. The models validate on full_clean(), but a row
written with .save() alone or with queryset.update() skips that; a newline, brace, quote, '#' or
'!' in such a value must never become a keepalived keyword or an iptables argument, so render
refuses it with a ValueError naming the field.

keepalived.conf is built in Python rather than a Django template: the output must be exact to
the byte (goldens, hashes, `keepalived -t` with no warnings), and template tags on their own
lines leave blank lines behind, while here each line is written once, already indented.
"""

import hashlib
import ipaddress
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from clusters import constants, notify, validators
from clusters.models import Cluster

INDENT = "    "
SCRIPT_NAME = "vipanel_check"
INSTANCE_PREFIX = constants.INSTANCE_PREFIX
MANAGED_NOTE = "# Managed by vipanel: manual edits are replaced by the next push."

# The alphabets of clusters/validators.py. None of their characters ends a keepalived word or
# block, starts a comment ('#', '!') or a quoted string, splits an iptables argument (no space)
# or means anything to a shell; names and interfaces also lack iptables' wildcard '+'.
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_SAFE_PASSWORD = re.compile(r"[A-Za-z0-9%*+,\-./:=?@\[\]^_~]+")
# Addresses are checked for their own alphabet before parsing: ipaddress keeps an IPv6 zone id
# ('fe80::1%anything') in str(), whatever it holds.
_SAFE_ADDRESS = re.compile(r"[0-9A-Fa-f:.]+")
_SAFE_PREFIXED = re.compile(r"[0-9A-Fa-f:.]+/[0-9A-Fa-f:.]+")
# A script line, as validate_check_script allows it: an absolute path and arguments separated
# by single spaces (keepalived splits it on spaces and runs it without a shell).
_SAFE_COMMAND = re.compile(r"/[A-Za-z0-9._/-]+(?: [A-Za-z0-9._/:=,@%+-]+)*")
_ALLOWED = {
    _SAFE_NAME: "letters, digits, '.', '_' and '-'",
    _SAFE_PASSWORD: "letters, digits and % * + , - . / : = ? @ [ ] ^ _ ~",
    _SAFE_ADDRESS: "an IP address: hex digits, '.' and ':'",
    _SAFE_PREFIXED: "an IP address and prefix length: hex digits, '.', ':' and one '/'",
    _SAFE_COMMAND: "an absolute path and arguments of letters, digits and . _ / : = , @ % + -, "
    "separated by single spaces",
}


def _safe(value, field, pattern=_SAFE_NAME):
    """Return value if it can be written into a config unchanged; raise ValueError otherwise."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        # The value is left out of the message: it may be a secret (auth_pass) or hostile text.
        raise ValueError(
            f"{field}: holds characters vipanel never writes into keepalived.conf or iptables "
            f"rules (it allows {_ALLOWED[pattern]}). It was saved without validation: edit it "
            "through a form or the API, which check it."
        )
    return value


_VRID = (constants.VRID_MIN, constants.VRID_MAX)
_PRIORITY = (constants.PRIORITY_MIN, constants.PRIORITY_MAX)
_ADVERT_INT = (constants.ADVERT_INT_MIN, constants.ADVERT_INT_MAX)
_PREEMPT_DELAY = (0, constants.PREEMPT_DELAY_MAX)
_INTERVAL = (constants.CHECK_INTERVAL_MIN, constants.CHECK_INTERVAL_MAX)
_WEIGHT = (constants.CHECK_WEIGHT_MIN, constants.CHECK_WEIGHT_MAX)
_FALL_RISE = (constants.CHECK_FALL_RISE_MIN, constants.CHECK_FALL_RISE_MAX)


def _number(value, field, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{field}: {value!r} is outside {lo}-{hi}.")
    return value


def _address(value, field):
    _safe(value, field, _SAFE_ADDRESS)
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not an IP address.") from None


def _vips(cluster, instance=None):
    """The VIPs of one instance (the cluster's main one by default) in id order, checked, with
    their one address family: [(ip_interface, advertised)] (VirtualIP.advertised: in the
    adverts beside the first one)."""
    vips = []
    rows = cluster.vips.filter(instance=instance).order_by("id")
    for value, advertised in rows.values_list("address", "advertised"):
        _safe(value, "vip.address", _SAFE_PREFIXED)
        try:
            vip = ipaddress.ip_interface(value)
        except ValueError:
            raise ValueError(
                f"vip.address: {value!r} is not an address with a prefix length."
            ) from None
        vips.append((vip, bool(advertised)))
    where = f"instance {instance.name}" if instance is not None else "the cluster"
    if not vips:
        raise ValueError(f"vips: {where} has no virtual IP; add at least one.")
    families = {v.version for v, _ in vips}
    if len(families) > 1:
        raise ValueError(
            f"vip.address: {where} mixes IPv4 and IPv6 VIPs; keepalived takes one family "
            "per instance."
        )
    return vips, families.pop()


@dataclass(frozen=True)
class _Instance:
    """One vrrp_instance block of a node's file, read from the models once and checked."""

    name: str  # as keepalived reports it: VI_<cluster> or VI_<cluster>_<instance>
    interface: str
    family: int
    vrid: int
    priority: int
    advert_int: int
    preempt: bool
    preempt_delay: int
    auth_pass: str
    unicast: bool
    address: str
    peers: tuple  # the other nodes' addresses, in address order
    vips: tuple  # "address/prefix", in id order
    track: bool  # tracks the cluster's health check
    advertised: tuple = ()  # further VIPs in the adverts (VirtualIP.advertised), in id order


@dataclass(frozen=True)
class _Facts:
    """Everything a node's files say: the main instance first, then the further ones."""

    cluster: str
    node: str
    instances: tuple
    sync_groups: tuple  # (name, (instance name, ...)), in name order
    check_script: str
    check_interval: int
    check_weight: int
    check_fall: int
    check_rise: int
    # Statements carried through from an adopted node's own file (CarriedBlock):
    # ((where, text), ...) in the order read; where is "top", "global_defs", or the
    # keepalived name of the instance or sync group they sit in.
    carried: tuple = ()

    @property
    def main(self):
        return self.instances[0]

    def carried_in(self, where):
        return [text for place, text in self.carried if place == where]


def _checked_interface(value, field):
    interface = _safe(value, field)
    if len(interface) > constants.INTERFACE_NAME_MAX:
        raise ValueError(f"{field}: longer than {constants.INTERFACE_NAME_MAX} characters.")
    return interface


def _instance(node, source, *, name, interface, field, vips, family, priority):
    """An _Instance of node from source (the Cluster row for the main instance, else a
    VrrpInstance); `field` is how messages name source ("cluster" or "instance")."""
    address = _address(node.address, "node.address")
    peers = []
    if source.unicast:
        others = node.cluster.nodes.exclude(pk=node.pk).values_list("address", flat=True)
        peers = sorted(
            (_address(a, "node.address") for a in others), key=lambda a: (a.version, int(a))
        )
        if not peers:
            raise ValueError(f"{field}.unicast: a unicast instance needs at least two nodes.")
        # keepalived drops every VIP whose family differs from the unicast addresses'.
        if any(a.version != family for a in [address, *peers]):
            raise ValueError(
                f"node.address: the nodes of a unicast instance need IPv{family} addresses, "
                "the family of its VIPs."
            )
    auth_pass = source.auth_pass
    if auth_pass:
        _safe(auth_pass, f"{field}.auth_pass", _SAFE_PASSWORD)
        if len(auth_pass) > constants.AUTH_PASS_MAX:
            raise ValueError(
                f"{field}.auth_pass: longer than {constants.AUTH_PASS_MAX} characters."
            )
        if family == 6:
            # keepalived 2.2.7: "VRRP version 3 does not support authentication. Ignoring."
            raise ValueError(
                f"{field}.auth_pass: IPv6 instances speak VRRPv3, which has no authentication; "
                "clear the password."
            )
    if not source.preempt and source.preempt_delay:
        raise ValueError(f"{field}.preempt_delay: a preempt delay needs preempt on.")
    return _Instance(
        name=name,
        interface=interface,
        family=family,
        vrid=_number(source.virtual_router_id, f"{field}.virtual_router_id", *_VRID),
        priority=priority,
        advert_int=_number(source.advert_int, f"{field}.advert_int", *_ADVERT_INT),
        preempt=bool(source.preempt),
        preempt_delay=_number(source.preempt_delay, f"{field}.preempt_delay", *_PREEMPT_DELAY),
        auth_pass=auth_pass,
        unicast=bool(source.unicast),
        address=str(address),
        peers=tuple(str(p) for p in peers),
        vips=tuple(str(v) for v, _ in vips),
        track=field == "cluster" or bool(source.track_check),
        advertised=tuple(str(v) for v, advertised in vips[1:] if advertised),
    )


def _facts(node, priority_override=None):
    cluster = node.cluster
    cluster_name = _safe(cluster.name, "cluster.name")
    field = "node.interface" if node.interface else "cluster.interface"
    node_interface = _checked_interface(node.effective_interface, field)

    def priority(value, name):
        if priority_override is not None:
            return _number(priority_override, "priority_override", *_PRIORITY)
        return _number(value, name, *_PRIORITY)

    vips, family = _vips(cluster)
    instances = [
        _instance(
            node,
            cluster,
            name=INSTANCE_PREFIX + cluster_name,
            interface=node_interface,
            field="cluster",
            vips=vips,
            family=family,
            priority=priority(node.priority, "node.priority"),
        )
    ]
    names = {}
    for inst in cluster.instances.order_by("id"):
        name = f"{INSTANCE_PREFIX}{cluster_name}_{_safe(inst.name, 'instance.name')}"
        if inst.interface:
            interface = _checked_interface(inst.interface, "instance.interface")
        else:
            interface = node_interface
        prio = inst.node_priorities.filter(node=node).values_list("priority", flat=True).first()
        if prio is None:
            raise ValueError(
                f"instance.priorities: node {node.name} has no priority in instance "
                f"{inst.name}; give it one."
            )
        inst_vips, inst_family = _vips(cluster, inst)
        instances.append(
            _instance(
                node,
                inst,
                name=name,
                interface=interface,
                field="instance",
                vips=inst_vips,
                family=inst_family,
                priority=priority(prio, "instance.priority"),
            )
        )
        names[inst.pk] = name
    groups = []
    for group in cluster.sync_groups.order_by("name"):
        members = [instances[0].name] if group.includes_main else []
        members += [names[pk] for pk in group.instances.order_by("id").values_list("pk", flat=True)]
        if len(members) < 2:
            raise ValueError(
                f"sync_group: group {group.name} has fewer than two instances; keepalived "
                "ignores it. Add an instance or delete the group."
            )
        group_name = f"VG_{cluster_name}_{_safe(group.name, 'sync_group.name')}"
        groups.append((group_name, tuple(members)))
        names[("group", group.pk)] = group_name

    check_script = check_command(cluster)
    return _Facts(
        cluster=cluster_name,
        node=_safe(node.name, "node.name"),
        instances=tuple(instances),
        sync_groups=tuple(groups),
        check_script=check_script,
        check_interval=_number(cluster.check_interval, "cluster.check_interval", *_INTERVAL),
        check_weight=_number(cluster.check_weight, "cluster.check_weight", *_WEIGHT),
        check_fall=_number(cluster.check_fall, "cluster.check_fall", *_FALL_RISE),
        check_rise=_number(cluster.check_rise, "cluster.check_rise", *_FALL_RISE),
        carried=_carried(node, instances[0].name, names),
    )


def _carried(node, main_name, names):
    """The node's CarriedBlock rows as ((where, text), ...); see _Facts.carried."""
    out = []
    rows = node.carried.order_by("position").values_list(
        "context", "instance_id", "sync_group_id", "source", "text"
    )
    for context, instance_id, group_id, source, text in rows:
        if context == "instance":
            where = names.get(instance_id) if instance_id else main_name
        elif context == "sync_group":
            where = names.get(("group", group_id))
        else:
            where = context
        if where is None:
            raise ValueError(f"carried: the block read at {source} belongs to nothing here.")
        out.append((where, _carried_text(text, source)))
    return tuple(out)


def _carried_text(text, source):
    """A carried statement as read from the node, checked to be one whole statement: its
    braces (outside quotes and comments, as keepalived reads them) balance, so it cannot end
    the block it is written into, and it holds no NUL. The text itself is the node's own (it
    came from that node's file and goes back to it only), so it is not held to vipanel's
    alphabets; it is never editable in vipanel (clusters.models.CarriedBlock)."""
    if not isinstance(text, str) or not text.strip() or "\x00" in text:
        raise ValueError(f"carried: the block read at {source} is empty or not text.")
    depth = 0
    for line in text.splitlines():
        quoted = False
        for char in line:
            if char == '"':
                quoted = not quoted
            elif quoted:
                continue
            elif char in "#!":
                break
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth < 0:
                    break
        if depth < 0:
            break
    if depth != 0:
        raise ValueError(
            f"carried: the block read at {source} does not close its braces; it was saved "
            "without the adopt flow."
        )
    return text


# The typed health checks: a fixed command per type, its one parameter checked again here (the
# validators of clusters/validators.py) and appended as a single word. keepalived splits the
# script line on spaces and runs it without a shell, so no parameter can add a word or an option
# (each alphabet starts with a letter, digit or '/'). Programs are named by absolute path, and
# curl's -q (first) ignores root's ~/.curlrc. The TCP check is bash's /dev/tcp (bash is on every
# node; nc is not): one word, "exec<>/dev/tcp/127.0.0.1/PORT", opens the port or fails.
CHECK_TEMPLATES = {
    "process": "/usr/bin/pgrep -x {}",
    "tcp": "/bin/bash -c exec<>/dev/tcp/127.0.0.1/{}",
    "http": "/usr/bin/curl -q -fsS -g -o /dev/null -m 3 {}",
    "file": "/usr/bin/test -e {}",
}


def check_command(cluster) -> str:
    """The command keepalived runs as the cluster's health check ('' for none)."""
    kind = cluster.check_type or ("command" if cluster.check_script else "")
    if kind == "":
        return ""
    if kind == "command":
        return _safe(cluster.check_script, "cluster.check_script", _SAFE_COMMAND)
    if kind not in CHECK_TEMPLATES:
        raise ValueError(f"cluster.check_type: unknown check type {kind!r}.")
    target = cluster.check_target
    try:
        if not isinstance(target, str):
            raise ValidationError("not text")
        Cluster.CHECK_TARGET_VALIDATORS[kind](target)
    except ValidationError:
        # The value is left out: it may be hostile text.
        raise ValueError(
            f"cluster.check_target: not a valid {kind} check target. It was saved without "
            "validation: edit it through a form or the API, which check it."
        ) from None
    return CHECK_TEMPLATES[kind].format(target)


def _block(name, body):
    """A keepalived block; nested blocks come out indented one level more (a carried
    statement's later lines, _Verbatim, stay as they were)."""
    return [
        f"{name} {{",
        *(line if isinstance(line, _Verbatim) else f"{INDENT}{line}" for line in body),
        "}",
    ]


def _with_header(facts, body):
    """Prefix the header naming cluster and node, with a hash of everything below it.

    The hash covers the body's bytes exactly, so a file whose body no longer matches its header
    was edited by hand.
    """
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    return (
        f"# vipanel: cluster {facts.cluster}, node {facts.node}, sha256:{digest}\n"
        f"{MANAGED_NOTE}\n"
        "\n"
        f"{body}"
    )


def _instance_body(inst, track, notify, carried=()):
    # Every node starts BACKUP: the election picks the highest priority, and nopreempt and
    # preempt_delay only work from BACKUP.
    body = [
        "state BACKUP",
        f"interface {inst.interface}",
        f"virtual_router_id {inst.vrid}",
        f"priority {inst.priority}",
        f"advert_int {inst.advert_int}",
    ]
    if not inst.preempt:
        body.append("nopreempt")
    if inst.preempt_delay:
        body.append(f"preempt_delay {inst.preempt_delay}")
    if inst.auth_pass:
        body += _block("authentication", ["auth_type PASS", f"auth_pass {inst.auth_pass}"])
    if inst.unicast:
        body.append(f"unicast_src_ip {inst.address}")
        body += _block("unicast_peer", inst.peers)
    # Only the first VIP (the "anchor") goes into the adverts; the rest are excluded from them.
    # keepalived discards adverts whose address list differs from its own (issue #1515), so
    # while a push rolls an added or removed VIP through the nodes, old and new configs would
    # otherwise disagree and every node would become master. Excluded VIPs move all the same.
    # An adopted instance keeps advertising what its nodes advertised (VirtualIP.advertised).
    anchor, *rest = inst.vips
    listed = [anchor, *inst.advertised]
    others = [vip for vip in rest if vip not in inst.advertised]
    body += _block("virtual_ipaddress", [f"{vip} dev {inst.interface}" for vip in listed])
    if others:
        body += _block(
            "virtual_ipaddress_excluded", [f"{vip} dev {inst.interface}" for vip in others]
        )
    if track:
        body += _block("track_script", [SCRIPT_NAME])
    if notify:
        body.append(f'notify "{notify}"')
    return body + _carried_lines(carried)


def _carried_lines(texts):
    """Carried statements as lines of a block body: each first line is indented like the
    rest of the body, the lines after it stay exactly as they were in the node's file."""
    lines = []
    for text in texts:
        first, *rest = text.split("\n")
        lines.append(first)
        lines += [_Verbatim(line) for line in rest]
    return lines


class _Verbatim(str):
    """A line _block writes without indenting it (the continuation of a carried statement)."""


def render_keepalived(node, *, priority_override=None, notify_script=None) -> str:
    """keepalived.conf for one node.

    priority_override replaces the node's priority (a push lowers a node in maintenance with it).
    notify_script, an absolute path optionally followed by arguments, is run by keepalived on
    every state change of the instance (keepalived appends TYPE NAME STATE PRIORITY).
    """
    f = _facts(node, priority_override)
    notify = None
    if notify_script is not None:
        notify = _safe(notify_script, "notify_script", _SAFE_COMMAND)
    # keepalived runs no script (check or notify) unless script security is on and it has a
    # user to run it as; without both, `keepalived -t` reports a SECURITY VIOLATION (exit 6).
    scripts = bool(f.check_script or notify)

    global_defs = [f"router_id {f.node}"]
    if scripts:
        global_defs += ["enable_script_security", "script_user root"]
    carried_defs = f.carried_in("global_defs")
    if scripts:
        # vipanel's own script settings stand; the node's are for its carried scripts only.
        carried_defs = [
            text
            for text in carried_defs
            if text.split(None, 1)[0] not in ("enable_script_security", "script_user")
        ]
    lines = _block("global_defs", global_defs + _carried_lines(carried_defs))
    for text in f.carried_in("top"):
        lines += [""] + text.split("\n")

    if f.check_script:
        lines += [""] + _block(
            f"vrrp_script {SCRIPT_NAME}",
            [
                f'script "{f.check_script}"',
                f"interval {f.check_interval}",
                f"weight {f.check_weight}",
                f"fall {f.check_fall}",
                f"rise {f.check_rise}",
            ],
        )

    for inst in f.instances:
        lines += [""] + _block(
            f"vrrp_instance {inst.name}",
            _instance_body(
                inst, bool(f.check_script and inst.track), notify, f.carried_in(inst.name)
            ),
        )
    for name, members in f.sync_groups:
        body = _block("group", list(members)) + _carried_lines(f.carried_in(name))
        lines += [""] + _block(f"vrrp_sync_group {name}", body)

    return _with_header(f, "\n".join(lines) + "\n")


def advertised_vips(config: str) -> list[str]:
    """The addresses a rendered (or live) keepalived.conf puts in its adverts, every
    instance's in file order."""
    blocks = re.finditer(r"^\s*virtual_ipaddress \{\n(.*?)^\s*\}", config, re.MULTILINE | re.DOTALL)
    return [line.split()[0] for block in blocks for line in block.group(1).splitlines()]


def instance_name(node) -> str:
    """The main vrrp_instance's name, as keepalived reports it to notify scripts and in its
    logs."""
    return INSTANCE_PREFIX + _safe(node.cluster.name, "cluster.name")


def vip_instance_name(vip) -> str:
    """The name of the vrrp_instance a VIP is rendered in, as a label for events and metrics.
    Not checked like the names written into a config (a label never raises)."""
    return vip.cluster.instance_name if vip.instance_id is None else vip.instance.keepalived_name


def instance_names(cluster) -> list[str]:
    """Every vrrp_instance name of the cluster's files, the main one first."""
    main = INSTANCE_PREFIX + _safe(cluster.name, "cluster.name")
    return [main] + [
        f"{main}_{_safe(name, 'instance.name')}"
        for name in cluster.instances.order_by("id").values_list("name", flat=True)
    ]


# Which tools and which multicast group belong to each address family: the only place that
# decides between iptables and ip6tables. VRRP travels in the VIPs' family (unicast too: _facts
# checks that the node addresses share it).
_FIREWALL = {
    4: ("iptables", "iptables-restore", constants.VRRP_MULTICAST_V4, 32),
    6: ("ip6tables", "ip6tables-restore", constants.VRRP_MULTICAST_V6, 128),
}


def firewall_families(node) -> list[int]:
    """The address families VRRP uses on node (4, 6 or both, dual-stack), the main instance's
    first: one iptables-restore input per family."""
    f = _facts(node)
    families = [f.main.family]
    families += sorted({i.family for i in f.instances} - {f.main.family})
    return families


def _firewall(node, family=None):
    return _FIREWALL[family or _vips(node.cluster)[1]]


def render_iptables(node, family=None) -> str:
    """iptables-restore input for vipanel's own chain on one node, for one address family
    (the main instance's unless given; see firewall_families for a dual-stack node).

    Apply it with iptables_restore_command(node, family), whose --noflush leaves every other
    chain and rule alone, then run iptables_jump_command(node, family). Each instance of the
    family adds its rules: multicast per interface, unicast per peer (duplicates once).

    Declaring the chain (":VIPANEL-VRRP - [0:0]") makes iptables-restore flush that one chain
    even with --noflush, so every apply replaces its rules instead of appending copies. Checked
    on Debian 12 (iptables 1.8.9, nf_tables backend) in a network namespace: a rule added to
    the chain by hand was gone after the next restore, two restores left one copy of each rule,
    other chains and INPUT's rules were untouched; without the declaration each restore
    appended the rules again. tests/test_render.py repeats this on every run.
    """
    f = _facts(node)
    family = family or f.main.family
    _, _, group, host = _FIREWALL[family]
    chain = constants.IPTABLES_CHAIN
    rules = []
    # In the order `iptables -S` prints rules (which shows "-p 112" as "-p vrrp" where
    # /etc/protocols names it), so the live chain can be compared with this file line by line.
    for inst in f.instances:
        if inst.family != family:
            continue
        accept = f"-i {inst.interface} -p {constants.VRRP_PROTOCOL} -j ACCEPT"
        if inst.unicast:
            new = [f"-A {chain} -s {peer}/{host} {accept}" for peer in inst.peers]
        else:
            new = [f"-A {chain} -d {group}/{host} {accept}"]
        rules += [rule for rule in new if rule not in rules]
    if not rules:
        raise ValueError(f"family: node {f.node} has no IPv{family} instance.")
    lines = ["*filter", f":{chain} - [0:0]", *rules, f"-A {chain} -j RETURN", "COMMIT"]
    return _with_header(f, "\n".join(lines) + "\n")


def iptables_restore_command(node, family=None) -> str:
    """The command that applies render_iptables(node, family) from stdin: iptables-restore or
    ip6tables-restore, with -w (wait for the xtables lock) and --noflush (keep other chains).
    Append --test to only check the input."""
    return f"{_firewall(node, family)[1]} -w --noflush"


def iptables_jump_command(node, family=None) -> str:
    """A shell line that adds INPUT's jump to vipanel's chain unless it is already there.

    Run it after the restore, which creates the chain. It cannot live in the restore file:
    there, "-A INPUT -j VIPANEL-VRRP" adds another copy on every push, and a "-D" of a jump that
    is not there yet (the first push) fails the whole restore.
    """
    tool = _firewall(node, family)[0]
    chain = constants.IPTABLES_CHAIN
    return f"{tool} -w -C INPUT -j {chain} 2>/dev/null || {tool} -w -I INPUT 1 -j {chain}"


def iptables_list_command(node, family=None) -> str:
    """Lists vipanel's chain as `iptables -S` prints it (exit non-zero when it does not exist)."""
    return f"{_firewall(node, family)[0]} -w -S {constants.IPTABLES_CHAIN}"


def iptables_rule_lines(rules: str) -> list[str]:
    """The "-A" lines of render_iptables output, comparable with iptables_list_command's."""
    return [line for line in rules.splitlines() if line.startswith("-A ")]


def node_config(node) -> str:
    """keepalived.conf exactly as a push sends it to `node`: with the notify script when notify
    reports are on, and with the lowest priority while the node is in maintenance (so the VIPs
    move off it by election). Push, status (drift) and preview all use this one rule."""
    return render_keepalived(
        node,
        notify_script=notify.script_path_for(node),
        priority_override=constants.PRIORITY_MIN if node.maintenance else None,
    )


def config_path(cluster) -> str:
    """The cluster's config_path, checked again before any read or write on a node.

    The model allows only a .conf file in VIPANEL_CONFIG_DIRS; a row written without
    full_clean() (queryset.update(), an old database) must still never make a preview read, or a
    push replace, /etc/shadow or /dev/zero.
    """
    value = cluster.config_path
    try:
        if not isinstance(value, str):
            raise ValidationError("not text")
        validators.validate_config_path(value)
    except ValidationError as e:
        raise ValueError(f"cluster.config_path: {' '.join(e.messages)}") from None
    return value
