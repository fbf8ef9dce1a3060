"""From the keepalived.conf tree (parser.py) to plain dataclasses vipanel understands.

What is modelled: global_defs (router_id, enable_script_security, script_user), vrrp_instance
(state, interface, VRID, priority, advert_int, authentication, virtual_ipaddress with dev / label
/ scope / brd, virtual_ipaddress_excluded, unicast_src_ip / unicast_peer, nopreempt /
preempt_delay, track_script / track_interface, notify*), vrrp_script and vrrp_sync_group.

Everything else is CARRIED THROUGH VERBATIM, not refused. Each such statement becomes an
Unmodelled item with its file, line and exact source text, at the top level (virtual_server,
vrrp_track_process, static_ipaddress, static_routes, unknown keywords) and inside modelled
blocks (garp_*, use_vmac, a vrrp_script's timeout...). Why carry rather than refuse:
- Refusing shuts out the fleets adoption is for: real files have LVS blocks, track_process,
  garp tuning and vmac next to their VRRP instances. The peer panel that refuses such files
  leaves its users retyping, which is the mistake adoption exists to avoid.
- keepalived keeps its own meaning for what we do not understand only if it sees the same bytes:
  render_verbatim() writes the items back exactly as read (tests/test_keepalived_conf.py checks
  byte identity and that keepalived -t accepts the result), never re-formatted from a guess.
- Nothing is hidden: the list of carried items with file:line is part of the result, for the
  adopt page to show ("these blocks are kept as they are; vipanel does not manage them").
The one thing refused outright is syntax keepalived itself would refuse (ParseError) and the
parser's stated limits (parameter definitions, oversize files, include loops).

Values are checked only as far as keepalived's grammar goes (a priority is a whole number); the
model's own validation (ranges, uniqueness) applies when the adopt flow saves them.
"""

import ipaddress
from dataclasses import dataclass, field

from clusters.kaconf.parser import Config, ParseError, Skipped, parse, parse_text

# keepalived's defaults (keepalived.conf(5)), used where a file leaves a value out.
DEFAULT_PRIORITY = 100
DEFAULT_ADVERT_INT = 1.0


@dataclass
class Unmodelled:
    """A statement vipanel does not model, kept byte for byte."""

    keyword: str
    file: str
    line: int
    end_line: int
    text: str
    context: str = ""  # "" at the top level, else e.g. "vrrp_instance VI_1"

    @property
    def where(self):
        return f"{self.file}:{self.line}"

    def describe(self):
        inside = f" inside {self.context}" if self.context else ""
        return (
            f"{self.where}: {self.keyword}{inside} is kept as written (vipanel does not manage it)"
        )


@dataclass
class GlobalDefs:
    router_id: str | None = None
    enable_script_security: bool = False
    script_user: str | None = None
    script_group: str | None = None
    where: str = ""
    extra: list[Unmodelled] = field(default_factory=list)


@dataclass
class VirtualAddress:
    """One line of virtual_ipaddress: the address as written and its options."""

    address: str
    dev: str | None = None
    label: str | None = None
    scope: str | None = None
    brd: str | None = None
    other: list[str] = field(default_factory=list)  # options not named above, in order
    where: str = ""

    @property
    def ip(self):
        """The address without its prefix length, normalised ('10.0.0.1', '2001:db8::1')."""
        return str(ipaddress.ip_interface(self.address).ip)


@dataclass
class Authentication:
    auth_type: str | None = None
    auth_pass: str | None = None


@dataclass
class Track:
    """An entry of track_script or track_interface, with its optional weight."""

    name: str
    weight: int | None = None


@dataclass
class Instance:
    name: str
    where: str = ""
    state: str | None = None
    interface: str | None = None
    virtual_router_id: int | None = None
    priority: int | None = None
    advert_int: float | None = None
    authentication: Authentication | None = None
    virtual_ipaddress: list[VirtualAddress] = field(default_factory=list)
    virtual_ipaddress_excluded: list[VirtualAddress] = field(default_factory=list)
    unicast_src_ip: str | None = None
    unicast_peer: list[str] = field(default_factory=list)
    nopreempt: bool = False
    preempt_delay: int | None = None
    track_script: list[Track] = field(default_factory=list)
    track_interface: list[Track] = field(default_factory=list)
    notify: str | None = None
    notify_master: str | None = None
    notify_backup: str | None = None
    notify_fault: str | None = None
    notify_stop: str | None = None
    extra: list[Unmodelled] = field(default_factory=list)

    @property
    def effective_priority(self):
        return DEFAULT_PRIORITY if self.priority is None else self.priority

    @property
    def effective_advert_int(self):
        return DEFAULT_ADVERT_INT if self.advert_int is None else self.advert_int

    @property
    def vips(self):
        """Every address the instance moves, advertised ones first."""
        return [*self.virtual_ipaddress, *self.virtual_ipaddress_excluded]


@dataclass
class Script:
    name: str
    where: str = ""
    script: str | None = None
    interval: int | None = None
    weight: int | None = None
    fall: int | None = None
    rise: int | None = None
    extra: list[Unmodelled] = field(default_factory=list)


@dataclass
class SyncGroup:
    name: str
    where: str = ""
    group: list[str] = field(default_factory=list)
    extra: list[Unmodelled] = field(default_factory=list)


@dataclass
class ParsedConfig:
    path: str
    global_defs: GlobalDefs
    instances: list[Instance]
    scripts: list[Script]
    sync_groups: list[SyncGroup]
    unmodelled: list[Unmodelled]  # top-level statements, carried through verbatim
    skipped: list[Skipped]  # @name lines for other hosts
    warnings: list[str]
    config: Config = field(repr=False)

    def instance(self, name):
        return next((i for i in self.instances if i.name == name), None)

    def all_unmodelled(self):
        """Every carried statement, nested ones included, in file order."""
        nested = [u for i in self.instances for u in i.extra]
        nested += [u for s in self.scripts for u in s.extra]
        nested += [u for g in self.sync_groups for u in g.extra]
        nested += self.global_defs.extra
        return sorted([*self.unmodelled, *nested], key=lambda u: (u.file, u.line))

    def report(self):
        """Plain-English lines: what is carried through, what was skipped, warnings."""
        lines = [u.describe() for u in self.all_unmodelled()]
        lines += [
            f"{s.file}:{s.line}: applies to another host (@ condition), not read here"
            for s in self.skipped
        ]
        return lines + list(self.warnings)


# --- Reading values ----------------------------------------------------------------------------


def _one(node, what="a value"):
    if len(node.args) != 1:
        raise ParseError(node.file, node.line, f"{node.keyword} takes {what}.")
    return node.args[0]


def _int(node, value=None):
    text = _one(node, "one whole number") if value is None else value
    try:
        return int(text, 10)
    except ValueError:
        raise ParseError(
            node.file, node.line, f"{node.keyword}: {text!r} is not a whole number."
        ) from None


def _float(node):
    text = _one(node, "one number")
    try:
        return float(text)
    except ValueError:
        raise ParseError(
            node.file, node.line, f"{node.keyword}: {text!r} is not a number."
        ) from None


def _rest(node):
    """A script line: the words after the keyword (one quoted word, or several unquoted)."""
    if not node.args:
        raise ParseError(node.file, node.line, f"{node.keyword} needs a script.")
    return " ".join(node.args)


def _need_block(node):
    if not node.is_block:
        raise ParseError(
            node.file, node.line, f"{node.keyword} needs a block: {node.keyword} ... {{ ... }}."
        )


def _carry(node, context=""):
    return Unmodelled(node.keyword, node.file, node.line, node.end_line, node.text, context)


_VIP_OPTIONS = ("dev", "label", "scope", "brd")


def _vip(node):
    words = [node.keyword, *node.args]
    try:
        ipaddress.ip_interface(words[0])
    except ValueError:
        raise ParseError(
            node.file, node.line, f"{words[0]!r} is not an IP address (with an optional /prefix)."
        ) from None
    vip = VirtualAddress(address=words[0], where=node.where)
    i = 1
    while i < len(words):
        option = words[i]
        if option in _VIP_OPTIONS and i + 1 < len(words):
            setattr(vip, option, words[i + 1])
            i += 2
        else:
            vip.other.append(option)
            i += 1
    return vip


def _tracks(node):
    _need_block(node)
    tracks = []
    for child in node.expanded():
        weight = None
        if child.args:
            if child.args[0] != "weight" or len(child.args) < 2:
                raise ParseError(
                    child.file, child.line, f"{child.keyword}: expected 'weight N' after the name."
                )
            weight = _int(child, child.args[1])
        tracks.append(Track(child.keyword, weight))
    return tracks


def _authentication(node, context):
    _need_block(node)
    auth = Authentication()
    for child in node.expanded():
        if child.keyword == "auth_type":
            auth.auth_type = _one(child)
        elif child.keyword == "auth_pass":
            auth.auth_pass = _one(child)
        else:
            raise ParseError(
                child.file, child.line, f"unknown keyword {child.keyword} in {context}."
            )
    return auth


def _words(node):
    _need_block(node)
    words = []
    for child in node.expanded():
        words += [child.keyword, *child.args]
    return words


def _instance(node):
    if len(node.args) != 1 or not node.is_block:
        raise ParseError(node.file, node.line, "vrrp_instance needs a name and a block.")
    inst = Instance(node.args[0], where=node.where)
    context = f"vrrp_instance {inst.name}"
    for child in node.expanded():
        kw = child.keyword
        if kw == "state":
            inst.state = _one(child)
        elif kw == "interface":
            inst.interface = _one(child)
        elif kw == "virtual_router_id":
            inst.virtual_router_id = _int(child)
        elif kw == "priority":
            inst.priority = _int(child)
        elif kw == "advert_int":
            inst.advert_int = _float(child)
        elif kw == "authentication":
            inst.authentication = _authentication(child, context)
        elif kw == "virtual_ipaddress":
            _need_block(child)
            inst.virtual_ipaddress = [_vip(c) for c in child.expanded()]
        elif kw == "virtual_ipaddress_excluded":
            _need_block(child)
            inst.virtual_ipaddress_excluded = [_vip(c) for c in child.expanded()]
        elif kw == "unicast_src_ip":
            inst.unicast_src_ip = _one(child)
        elif kw == "unicast_peer":
            # A peer line may carry options (min_ttl, max_ttl); the address is its first word.
            _need_block(child)
            inst.unicast_peer = [c.keyword for c in child.expanded()]
        elif kw == "nopreempt" and not child.args:
            inst.nopreempt = True
        elif kw == "preempt_delay":
            inst.preempt_delay = _int(child)
        elif kw == "track_script":
            inst.track_script = _tracks(child)
        elif kw == "track_interface":
            inst.track_interface = _tracks(child)
        elif kw in ("notify", "notify_master", "notify_backup", "notify_fault", "notify_stop"):
            setattr(inst, kw, _rest(child))
        else:
            inst.extra.append(_carry(child, context))
    return inst


def _script(node):
    if len(node.args) != 1 or not node.is_block:
        raise ParseError(node.file, node.line, "vrrp_script needs a name and a block.")
    script = Script(node.args[0], where=node.where)
    for child in node.expanded():
        kw = child.keyword
        if kw == "script":
            script.script = _rest(child)
        elif kw in ("interval", "fall", "rise"):
            setattr(script, kw, _int(child))
        elif kw == "weight" and len(child.args) == 1:
            script.weight = _int(child)
        else:
            # "weight -20 reverse", timeout, user, init_fail...: kept as written.
            script.extra.append(_carry(child, f"vrrp_script {script.name}"))
    return script


def _sync_group(node):
    if len(node.args) != 1 or not node.is_block:
        raise ParseError(node.file, node.line, "vrrp_sync_group needs a name and a block.")
    group = SyncGroup(node.args[0], where=node.where)
    for child in node.expanded():
        if child.keyword == "group":
            group.group = _words(child)
        else:
            group.extra.append(_carry(child, f"vrrp_sync_group {group.name}"))
    return group


def _global_defs(node, defs):
    _need_block(node)
    defs.where = defs.where or node.where
    for child in node.expanded():
        kw = child.keyword
        if kw == "router_id":
            defs.router_id = _one(child)
        elif kw == "enable_script_security" and not child.args:
            defs.enable_script_security = True
        elif kw == "script_user" and 1 <= len(child.args) <= 2:
            defs.script_user = child.args[0]
            defs.script_group = child.args[1] if len(child.args) > 1 else None
        else:
            defs.extra.append(_carry(child, "global_defs"))


def from_config(config: Config) -> ParsedConfig:
    defs = GlobalDefs()
    instances, scripts, groups, unmodelled = [], [], [], []
    for node in config.nodes:
        if node.keyword == "global_defs":
            _global_defs(node, defs)  # keepalived merges several global_defs blocks
        elif node.keyword == "vrrp_instance":
            instances.append(_instance(node))
        elif node.keyword == "vrrp_script":
            scripts.append(_script(node))
        elif node.keyword == "vrrp_sync_group":
            groups.append(_sync_group(node))
        else:
            unmodelled.append(_carry(node))
    seen = {}
    for inst in instances:
        if inst.name in seen:
            file, line = inst.where.rsplit(":", 1)
            raise ParseError(
                file,
                int(line),
                f"vrrp_instance {inst.name} is defined twice (first at "
                f"{seen[inst.name]}); keepalived refuses that.",
            )
        seen[inst.name] = inst.where
    return ParsedConfig(
        path=config.root.path,
        global_defs=defs,
        instances=instances,
        scripts=scripts,
        sync_groups=groups,
        unmodelled=unmodelled,
        skipped=config.skipped,
        warnings=config.warnings,
        config=config,
    )


def parse_file(path, read, glob, *, config_id=None) -> ParsedConfig:
    """Parse path and its includes (see parser.parse) and map them to dataclasses."""
    return from_config(parse(path, read, glob, config_id=config_id))


def parse_string(text, path="keepalived.conf", *, config_id=None) -> ParsedConfig:
    return from_config(parse_text(text, path, config_id=config_id))


def render_verbatim(items: list[Unmodelled]) -> str:
    """The carried statements written back exactly as read, one blank line between them.

    Each item's text is the source's bytes from its first character to its closing brace
    (comments inside included); a nested item belongs inside its block, so pass top-level
    items here (ParsedConfig.unmodelled) and write nested ones into their blocks.
    """
    return "".join(f"{item.text}\n\n" for item in items).rstrip("\n") + "\n" if items else ""
