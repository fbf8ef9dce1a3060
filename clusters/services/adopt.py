"""Adopting a cluster that already runs keepalived (issue 12): three steps, each a use case.

1. `scan_host_keys`: each node's offered SHA256 fingerprint, for a person to compare with the
   node's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console). Only the key
   exchange is made. A fingerprint given up front is compared here too.
2. `read_cluster`: with the confirmed fingerprints, every node's live config (includes resolved on
   the node) and live state, one proposal (kaconf.reconcile) and what vipanel will save
   (adopt_plan.Plan), with every finding, and a digest of what was read. Nothing is changed on
   a node or in the database.
3. `adopt_cluster`: reads the nodes again and saves the plan with the person's edits, if the
   digest is still the one the person reviewed: Cluster, Nodes (keys pinned), instances, VIPs,
   priorities, sync groups and the carried blocks, in one transaction with its audit entry, every
   row through full_clean. The first push then takes the cluster over (clusters/push.py).

State between the steps: none on the server. The person's side (the panel's hidden form fields,
an API client, the command) carries the addresses, ports, credential, fingerprints and the
digest; step 3 reads the nodes again rather than trusting anything sent back, so carried text
and every live value come from the nodes themselves, never from a client, and a node changed
since the review is refused instead of adopted unseen.

Who may adopt: an operator, as for creating a cluster, with the admin's fields kept an admin's
(clusters.roles): a config_path or reload_command other than the default, and a health check
that is not one of the typed checks. The carried blocks (LVS virtual_server with its checks,
notify lines, vrrp_track_process...) run as root on their node, but they were already running
there, written by that node's root: vipanel stores them per node, never shows them in a form or
the API for editing, writes them back only into the file of the node they came from, and an
operator cannot re-address a node that has them (clusters.roles.readdress_violation). So
adopting gives nobody a command on a host that did not already run it. A vrrp_script is
different: the keeper's check becomes the cluster's check and so runs on every node, which is
why only a typed check (the same test, rendered from one validated parameter) is an operator's.
"""

import copy
import difflib
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clusters import audit, constants, preview, render, roles, ssh, survey, validators
from clusters.models import (
    CarriedBlock,
    Cluster,
    Node,
    NodePriority,
    SyncGroup,
    VirtualIP,
    VrrpInstance,
)
from clusters.services import _rules
from clusters.services import clusters as cluster_services
from clusters.services.adopt_plan import MAX_NODES, Plan, build
from clusters.services.errors import Forbidden, Refused

# What a person may change in the proposal before it is saved. Everything else is what the
# nodes run now: changing it would move VIPs, so it is changed after adopting, by a push.
EDITABLE = [
    "name",
    "network",
    "reload_command",
    *(name for name in cluster_services.FIELDS if name.startswith("check_")),
]
NODE_EDITABLE = ["name", "priority"]


@dataclass(frozen=True)
class Target:
    """A node as the person named it: address, SSH port, and the fingerprint they trust."""

    address: str
    ssh_port: int = 22
    fingerprint: str = ""

    @property
    def key(self):
        return self.address if self.ssh_port == 22 else f"{self.address}:{self.ssh_port}"


@dataclass
class KeyOffer:
    key: str
    address: str
    ssh_port: int
    offered: str = ""
    given: str = ""
    error: str = ""

    @property
    def matches(self):
        """True/False when a fingerprint was given up front, None when the person must look."""
        return (self.offered == self.given) if self.given and self.offered else None


@dataclass
class Reading:
    """Step 2's answer: what every node runs, and what vipanel will save."""

    targets: list
    config_path: str
    readings: dict = field(default_factory=dict)  # key -> survey.NodeReading
    errors: dict = field(default_factory=dict)  # key -> why it could not be read
    plan: Plan | None = None
    digest: str = ""

    @property
    def ok(self):
        return not self.errors and self.plan is not None and not self.plan.errors


def parse_targets(nodes):
    """[Target] from [{"address", "ssh_port", "host_key_fingerprint"}], or ValidationError keyed
    "nodes" naming the node and the fix."""
    if not nodes:
        raise ValidationError({"nodes": "Name at least one node to adopt."})
    if len(nodes) > MAX_NODES:
        raise ValidationError({"nodes": f"Adopt at most {MAX_NODES} nodes at a time."})
    targets, problems = [], []
    for index, item in enumerate(nodes, start=1):
        address = str(item.get("address") or "").strip()
        port = item.get("ssh_port") or 22
        fingerprint = str(item.get("host_key_fingerprint") or "").strip()
        try:
            ip = validators.parse_address(address)
            validators.validate_node_address(str(ip))
        except (ValueError, ValidationError):
            problems.append(
                f"node {index}: {address[:60]!r} is not a node's own IP address (e.g. 192.0.2.11)."
            )
            continue
        if isinstance(port, bool) or not str(port).isdigit() or not 1 <= int(port) <= 65535:
            problems.append(f"node {index} ({address}): the SSH port must be 1-65535.")
            continue
        if fingerprint:
            try:
                validators.fingerprint_validator(fingerprint)
            except ValidationError:
                problems.append(
                    f"node {index} ({address}): write the fingerprint as `ssh-keygen -lf` "
                    "prints it, SHA256: followed by 43 characters."
                )
                continue
        target = Target(str(ip), int(port), fingerprint)
        if any(t.address == target.address for t in targets):
            problems.append(f"node {index}: {target.address} is named twice.")
            continue
        targets.append(target)
    if problems:
        raise ValidationError({"nodes": problems})
    taken = dict(
        Node.objects.filter(address__in=[t.address for t in targets]).values_list(
            "address", "cluster__name"
        )
    )
    if taken:
        raise ValidationError(
            {
                "nodes": [
                    f"{address} is already a node of cluster '{name}'; each host is one node."
                    for address, name in sorted(taken.items())
                ]
            }
        )
    return targets


def _ssh_target(target, credential):
    if credential is None:
        raise ValidationError({"credential": "Pick the SSH credential to log in to the nodes."})
    return ssh.Target(
        host=target.address,
        port=target.ssh_port,
        username=credential.username,
        private_key=credential.private_key,
        passphrase=credential.passphrase,
        expected_fingerprint=target.fingerprint,
        connect_timeout=settings.VIPANEL_SSH_CONNECT_TIMEOUT,
        command_timeout=settings.VIPANEL_SSH_COMMAND_TIMEOUT,
    )


def _in_parallel(fn, items):
    items = list(items)
    with ThreadPoolExecutor(max_workers=max(1, min(len(items), 8))) as pool:
        return list(pool.map(fn, items))


def _check_config_path(user, config_path):
    try:
        validators.validate_config_path(config_path)
    except ValidationError as e:
        raise ValidationError({"config_path": e.messages}) from None
    cluster_services.check_admin_fields(user, Cluster(), {"config_path": config_path})


def scan_host_keys(user, nodes, credential):
    """Step 1: [KeyOffer], the key each node offers (and whether it is the one given)."""
    _rules.require(user, roles.OPERATOR)
    targets = parse_targets(nodes)
    ssh_targets = [_ssh_target(t, credential) for t in targets]

    def offer(pair):
        target, ssh_target = pair
        result = KeyOffer(target.key, target.address, target.ssh_port, given=target.fingerprint)
        try:
            result.offered = survey.offered_fingerprint(ssh_target)
        except ssh.SSHError as e:
            result.error = e.message
        return result

    return _in_parallel(offer, zip(targets, ssh_targets, strict=True))


def read_cluster(user, nodes, credential, config_path=constants.DEFAULT_CONFIG_PATH):
    """Step 2: read every node (fingerprints required) -> Reading with the plan to save."""
    _rules.require(user, roles.OPERATOR)
    _check_config_path(user, config_path)
    targets = parse_targets(nodes)
    unconfirmed = [t.key for t in targets if not t.fingerprint]
    if unconfirmed:
        raise ValidationError(
            {
                "nodes": f"Confirm the host key of {', '.join(unconfirmed)} first: nothing is "
                "read from a node whose key nobody has trusted."
            }
        )
    ssh_targets = [_ssh_target(t, credential) for t in targets]

    def read(pair):
        target, ssh_target = pair
        try:
            return target.key, survey.read_node(ssh_target, config_path), ""
        except ssh.HostKeyMismatch as e:
            return (
                target.key,
                None,
                (
                    f"the node offers {e.offered}, not the confirmed {e.expected}; nothing was "
                    "read. Compare the fingerprints again."
                ),
            )
        except ssh.SSHError as e:
            return target.key, None, e.message

    reading = Reading(targets=targets, config_path=config_path)
    for key, node_reading, error in _in_parallel(read, zip(targets, ssh_targets, strict=True)):
        if node_reading is not None and node_reading.error:
            error = node_reading.error
        if error:
            reading.errors[key] = error
        if node_reading is not None:
            reading.readings[key] = node_reading
    digest_parts = [config_path] + [r.digest() for r in reading.readings.values()]
    reading.digest = hashlib.sha256("\0".join(digest_parts).encode()).hexdigest()
    if not reading.errors:
        reading.plan = build(
            reading.readings,
            config_path,
            taken_names=set(Cluster.objects.values_list("name", flat=True)),
        )
    return reading


def _plain(value):
    return value is None or isinstance(value, (str, int))


def _apply_edits(plan, edits):
    if edits is None:
        edits = {}
    if not isinstance(edits, dict):
        raise ValidationError({"edits": "Send the changes as an object of fields."})
    edits = dict(edits)
    node_edits = edits.pop("nodes", None) or {}
    unknown = sorted(set(edits) - set(EDITABLE))
    if unknown:
        raise ValidationError({name: "This field cannot be set here." for name in unknown})
    odd = sorted(name for name, value in edits.items() if not _plain(value))
    if odd or not isinstance(node_edits, dict):
        raise ValidationError(
            {name: "Give a string or a whole number." for name in odd or ["nodes"]}
        )
    for name, value in edits.items():
        setattr(plan, name, "" if value is None and name != "check_weight" else value)
    for key, values in node_edits.items():
        node = next((n for n in plan.nodes if n.key == key), None)
        if node is None:
            raise ValidationError({f"nodes.{key}": "No such node in this proposal."})
        if not isinstance(values, dict) or not all(_plain(v) for v in values.values()):
            raise ValidationError({f"nodes.{key}": "Give an object of name and priority."})
        extra = sorted(set(values) - set(NODE_EDITABLE))
        if extra:
            raise ValidationError(
                {f"nodes.{key}.{n}": "This field cannot be set here." for n in extra}
            )
        for name, value in values.items():
            setattr(node, name, value)
            if name == "priority":
                plan.instances[0].priorities[key] = value
    main = plan.instances[0]
    keeper = next((n for n in plan.nodes if n.key == main.keeper), None)
    above = [
        n
        for n in plan.nodes
        if keeper is not None
        and n is not keeper
        and isinstance(n.priority, int)
        and isinstance(keeper.priority, int)
        and n.priority > keeper.priority
    ]
    if main.preempt and above:
        raise ValidationError(
            {
                f"nodes.{above[0].key}.priority": f"{above[0].key} would outrank {keeper.key}, "
                "which holds the VIPs now: the first push would move them. Adopt with the "
                "keeper on top and change priorities afterwards, with a push of their own."
            }
        )


def _prefixed(error, prefix):
    if not hasattr(error, "error_dict"):
        return ValidationError({prefix or "__all__": error.messages})
    return ValidationError(
        {
            (f"{prefix}.{name}" if prefix else name): messages
            for name, messages in error.message_dict.items()
        }
    )


def _clean(obj, prefix=""):
    try:
        obj.full_clean()
    except ValidationError as e:
        raise _prefixed(e, prefix) from None


def adopt_cluster(
    user,
    nodes,
    credential,
    digest,
    edits=None,
    config_path=constants.DEFAULT_CONFIG_PATH,
):
    """Step 3: read the nodes again and save what the person accepted -> the new Cluster."""
    _rules.require(user, roles.OPERATOR)
    reading = read_cluster(user, nodes, credential, config_path)
    if reading.errors:
        raise ValidationError(
            {f"nodes.{key}": message for key, message in sorted(reading.errors.items())}
        )
    if reading.digest != digest:
        error = Refused(
            {
                "__all__": "The nodes changed since you read them (a config file, the VIPs "
                "they hold or keepalived's state): review the new proposal before adopting."
            }
        )
        _rules.refused(user, "cluster.adopt", None, error)
        raise error
    plan = reading.plan
    if plan.errors:
        raise ValidationError(plan.errors)
    _apply_edits(plan, edits)
    _check_roles_for(user, plan, config_path)
    with transaction.atomic():
        cluster = _save(plan, credential, config_path)
        audit.record(
            user,
            "cluster.adopt",
            cluster,
            changes=_audit_changes(plan, reading),
            result=f"adopted from {len(plan.nodes)} running nodes",
        )
    return cluster


def _check_roles_for(user, plan, config_path):
    if user is None or roles.can_admin(user):
        return
    if plan.check_type == "command":
        source = plan.check_source or f"the check command `{plan.check_script}`"
        raise Forbidden(
            f"{source} is not one of vipanel's typed checks (process running, TCP port, "
            "HTTP URL, file exists): adopted as it is, it would run as root on every node of "
            "the cluster. Only an admin may adopt a free-form check. Pick a typed check or no "
            "check in the proposal (or ask an admin)."
        )
    cluster_services.check_admin_fields(
        user,
        Cluster(),
        {
            "reload_command": plan.reload_command,
            "config_path": config_path,
            "check_type": plan.check_type,
            "check_target": plan.check_target,
        },
    )


def _save(plan, credential, config_path):
    main = plan.instances[0]
    cluster = Cluster(
        name=plan.name,
        network=plan.network,
        interface=plan.interface,
        virtual_router_id=main.virtual_router_id,
        advert_int=main.advert_int,
        auth_pass=main.auth_pass,
        unicast=main.unicast,
        preempt=main.preempt,
        preempt_delay=main.preempt_delay,
        check_type=plan.check_type,
        check_target=plan.check_target,
        check_script=plan.check_script if plan.check_type == "command" else "",
        check_interval=plan.check_interval,
        check_weight=plan.check_weight,
        check_fall=plan.check_fall,
        check_rise=plan.check_rise,
        config_path=config_path,
        reload_command=plan.reload_command,
        credential=credential,
    )
    _clean(cluster)
    cluster.save()
    nodes = {}
    for planned in plan.nodes:
        node = Node(
            cluster=cluster,
            name=planned.name,
            address=planned.address,
            ssh_port=planned.ssh_port,
            priority=planned.priority,
            interface=planned.interface,
            host_key_fingerprint=planned.fingerprint,
        )
        _clean(node, f"nodes.{planned.key}")
        node.save()
        nodes[planned.key] = node
    for address, advertised in main.vips:
        _save_vip(cluster, None, address, advertised, main.key)
    instances = {}
    for planned in plan.instances[1:]:
        instance = VrrpInstance(
            cluster=cluster,
            name=planned.name,
            virtual_router_id=planned.virtual_router_id,
            interface=planned.interface,
            network=planned.network,
            advert_int=planned.advert_int,
            auth_pass=planned.auth_pass,
            unicast=planned.unicast,
            preempt=planned.preempt,
            preempt_delay=planned.preempt_delay,
            track_check=planned.track_check and bool(plan.check_type),
        )
        prefix = f"instances.{planned.key}"
        _clean(instance, prefix)
        instance.save()
        for key, priority in planned.priorities.items():
            row = NodePriority(instance=instance, node=nodes[key], priority=priority)
            _clean(row, f"{prefix}.priorities.{key}")
            row.save()
        for address, advertised in planned.vips:
            _save_vip(cluster, instance, address, advertised, planned.key)
        _clean(instance, prefix)
        instances[planned.key] = instance
    groups = {}
    for planned in plan.groups:
        group = SyncGroup(
            cluster=cluster, name=planned.name, includes_main=main.key in planned.members
        )
        _clean(group, f"sync_groups.{planned.name}")
        group.save()
        for member in planned.members:
            if member in instances:
                instance = instances[member]
                instance.sync_group = group
                _clean(instance, f"instances.{member}")
                instance.save(update_fields=["sync_group"])
        groups[planned.name] = group
    for planned in plan.nodes:
        for position, (context, instance_key, group_name, item) in enumerate(planned.carried):
            block = CarriedBlock(
                node=nodes[planned.key],
                context=context,
                instance=instances.get(instance_key) if context == "instance" else None,
                sync_group=groups.get(group_name) if context == "sync_group" else None,
                keyword=item.keyword[:100],
                source=item.where[:300],
                text=item.text,
                position=position,
            )
            _clean(block, f"nodes.{planned.key}.carried")
            block.save()
    # The cluster again, now with its nodes: check weight against the priorities, multicast
    # nodes inside the network, unicast with enough nodes.
    _clean(cluster)
    # Already on the nodes and served: what each node runs is taken as its last push at its
    # next probe (so a later hand edit is drift, and vipanel's first push is "pending push"),
    # and the VIPs are live, watched and counted from now (clusters.health).
    Node.objects.filter(cluster=cluster).update(adopt_live_config=True)
    VirtualIP.objects.filter(cluster=cluster).update(pushed_at=timezone.now())
    return cluster


def _save_vip(cluster, instance, address, advertised, key):
    vip = VirtualIP(cluster=cluster, instance=instance, address=address, advertised=advertised)
    _clean(vip, f"instances.{key}.vips.{address}")
    vip.save()


def _audit_changes(plan, reading):
    return {
        "nodes": [None, ", ".join(f"{n.name} ({n.key})" for n in plan.nodes)],
        "instances": [
            None,
            ", ".join(
                f"{i.key} (VRID {i.virtual_router_id}, VIPs {' '.join(v for v, _ in i.vips)}, "
                f"keeper {i.keeper})"
                for i in plan.instances
            ),
        ],
        "host_key_fingerprint": [None, ", ".join(f"{n.key} {n.fingerprint}" for n in plan.nodes)],
        "carried": [None, ", ".join(f"{n.key} {item.where}" for n, item in plan.carried)],
        "digest": [None, reading.digest[:16]],
    }


def dry_run(reading, credential, edits=None):
    """What saving the proposal (with `edits`) would write on each node, before anything is
    saved: ({node key: unified diff of its live config against vipanel's, secrets masked},
    {field: [messages]} that saving would refuse). The rows are saved in a transaction that is
    always rolled back, so this is exactly what adopt_cluster would save and render."""
    plan = copy.deepcopy(reading.plan)
    diffs, errors = {}, {}
    try:
        _apply_edits(plan, edits)
        with transaction.atomic():
            cluster = _save(plan, credential, reading.config_path)
            keys = {(n.address, n.ssh_port): n.key for n in plan.nodes}
            for node in cluster.nodes.all():
                key = keys[(node.address, node.ssh_port)]
                try:
                    new = render.node_config(node)
                except ValueError as e:
                    errors[f"nodes.{key}"] = [str(e)]
                    continue
                live = reading.readings[key].files.get(reading.config_path, "")
                diffs[key] = "".join(
                    difflib.unified_diff(
                        preview.mask_secrets(live).splitlines(keepends=True),
                        preview.mask_secrets(new).splitlines(keepends=True),
                        fromfile=f"{key}:{reading.config_path} (live)",
                        tofile=f"{key}:{reading.config_path} (vipanel)",
                    )
                )
            transaction.set_rollback(True)
    except ValidationError as e:
        errors = e.message_dict if hasattr(e, "error_dict") else {"__all__": e.messages}
    return diffs, errors


def split_brain(plan):
    """[(instance key, holders, keeper)] for the instances held by several nodes now."""
    return [(i.key, i.holders, i.keeper) for i in plan.instances if i.split_brain]


def describe(reading):
    """A Reading as plain data (the API's answer, the command's and the panel's source): every
    node's outcome, the findings side by side, what will be saved, the carried blocks by
    file:line. No secret: auth_pass is only said to be set."""
    plan = reading.plan
    out = {
        "digest": reading.digest,
        "config_path": reading.config_path,
        "errors": dict(reading.errors),
        "problems": dict(plan.errors) if plan else {},
        "split_brain": [
            {"instance": key, "holders": holders, "keeper": keeper}
            for key, holders, keeper in (split_brain(plan) if plan else [])
        ],
        "cluster": None,
        "nodes": [],
        "instances": [],
        "sync_groups": [],
        "findings": [],
    }
    if plan is None:
        return out
    out["cluster"] = {name: getattr(plan, name) for name in EDITABLE}
    out["cluster"]["interface"] = plan.interface
    for node in plan.nodes:
        node_reading = reading.readings[node.key]
        out["nodes"].append(
            {
                "key": node.key,
                "address": node.address,
                "ssh_port": node.ssh_port,
                "host_key_fingerprint": node.fingerprint,
                "name": node.name,
                "priority": node.priority,
                "interface": node.interface or plan.interface,
                "running": node.running,
                "files": list(node_reading.files),
                "warnings": list(node_reading.parsed.report()) if node_reading.parsed else [],
                "carried": [
                    {
                        "where": item.where,
                        "keyword": item.keyword,
                        "context": context,
                        "instance": instance or "",
                        "sync_group": group or "",
                        "text": item.text,
                    }
                    for context, instance, group, item in node.carried
                ],
            }
        )
    for inst in plan.instances:
        out["instances"].append(
            {
                "key": inst.key,
                "name": inst.name,
                "main": inst.main,
                "virtual_router_id": inst.virtual_router_id,
                "advert_int": inst.advert_int,
                "auth_pass_set": bool(inst.auth_pass),
                "unicast": inst.unicast,
                "preempt": inst.preempt,
                "preempt_delay": inst.preempt_delay,
                "interface": inst.interface,
                "network": inst.network,
                "vips": [{"address": a, "advertised": adv} for a, adv in inst.vips],
                "priorities": dict(inst.priorities),
                "keeper": inst.keeper or "",
                "holders": list(inst.holders),
                "track_check": inst.track_check,
            }
        )
    out["sync_groups"] = [{"name": g.name, "members": list(g.members)} for g in plan.groups]
    out["findings"] = [
        {
            "instance": f.instance,
            "field": f.field,
            "values": {k: _jsonable(v) for k, v in f.values.items()},
            "proposed": _jsonable(f.proposed),
            "reason": f.reason,
        }
        for f in plan.findings
    ]
    return out


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
