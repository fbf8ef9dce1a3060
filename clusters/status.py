"""Probing nodes over SSH: is keepalived running, in which VRRP state, which VIPs does it hold.

All nodes of a probe are asked at once, each within its own deadline, so one slow or dead node
never delays the verdict on the others by more than that deadline. The probing itself touches
no database (it runs in threads); what it learned about host keys is recorded afterwards.
"""

import hashlib
import ipaddress
import shlex
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from clusters import constants, remote, ssh
from clusters.models import Cluster
from clusters.render import node_config


@dataclass
class NodeProbe:
    name: str
    node_id: int
    reachable: bool = False
    keepalived_running: bool | None = None
    vrrp_state: str = "UNKNOWN"
    holds: list[str] = field(default_factory=list)
    # None when it cannot be told (unreachable, or the cluster cannot be rendered yet).
    drift: bool | None = None
    error: str = ""
    host_key_problem: bool = False
    maintenance: bool = False


@dataclass
class ClusterStatus:
    cluster: str
    checked_at: datetime
    nodes: list[NodeProbe]
    # VIP address (as configured) -> names of the reachable nodes that hold it, keepalived running
    holders: dict[str, list[str]]
    # VIP address -> nodes whose keepalived is not running but still have the address (kill -9
    # leaves it on the interface): not a split brain, a stale address to remove.
    stale: dict[str, list[str]] = field(default_factory=dict)

    @property
    def split_brain_vips(self):
        return [vip for vip, names in self.holders.items() if len(names) > 1]

    @property
    def split_brain(self):
        return bool(self.split_brain_vips)

    @property
    def unreachable(self):
        return [n.name for n in self.nodes if not n.reachable]

    @property
    def no_holder_vips(self):
        # With a node unreachable the VIP may well be there: that is "unknown", not "no holder".
        if self.unreachable:
            return []
        return [vip for vip, names in self.holders.items() if not names]

    def holder(self, vip):
        names = self.holders.get(vip, [])
        return names[0] if len(names) == 1 else None

    def as_dict(self):
        return {
            "cluster": self.cluster,
            "checked_at": self.checked_at.isoformat(),
            "split_brain": self.split_brain,
            "vips": [
                {"address": vip, "holder": self.holder(vip), "holders": names}
                for vip, names in self.holders.items()
            ],
            "nodes": [asdict(n) for n in self.nodes],
        }


def _probe_command(config_path):
    path = shlex.quote(config_path)
    state = shlex.quote(constants.NOTIFY_STATE_FILE)
    # One round trip: everything the verdict needs, one "key=value" per line, then `ip -o addr`.
    return (
        "if pidof keepalived >/dev/null 2>&1; then echo running=1; else echo running=0; fi; "
        f"echo \"state=$(cat {state} 2>/dev/null | head -c 16)\"; "
        f"if [ -f {path} ]; then echo \"config=$(sha256sum < {path} | cut -c1-64)\"; "
        "else echo config=; fi; "
        "echo addresses:; ip -o addr show"
    )


def parse_probe(stdout: str):
    """-> (running, state, config_sha256, set of ip addresses on the node)"""
    running, state, config, addresses = False, "", "", set()
    head, _, addr_lines = stdout.partition("addresses:\n")
    for line in head.splitlines():
        key, _, value = line.partition("=")
        if key == "running":
            running = value.strip() == "1"
        elif key == "state":
            state = value.strip().upper()
        elif key == "config":
            config = value.strip()
    for line in addr_lines.splitlines():
        words = line.split()
        for i, word in enumerate(words[:-1]):
            if word in ("inet", "inet6"):
                try:
                    addresses.add(ipaddress.ip_interface(words[i + 1]).ip)
                except ValueError:
                    pass
    return running, state, config, addresses


def _vrrp_state(running, reported, holds_any):
    if not running:
        return "STOPPED"
    if reported in ("MASTER", "BACKUP", "FAULT"):
        return reported
    # No notify report yet (a config not pushed by vipanel): the addresses tell.
    return "MASTER" if holds_any else "BACKUP"


def _probe_one(node_target, config_path, expected_sha, vip_ips, timeout, deadline):
    """Runs in a thread: SSH only, no database. Returns (NodeProbe fields, conn/error).

    `deadline` (time.monotonic()) is the probe's end, counted from the start of the sweep: a
    node that waited for a free thread gets only what is left, so a dead node queued behind
    the others still costs the sweep no more than `timeout`.
    """
    result = {"reachable": False}
    conn = error = None
    try:
        left = min(timeout, deadline - time.monotonic())
        if left <= 0:
            raise ssh.SSHError(f"{node_target.name}: no answer within {timeout:g}s")
        target = replace(node_target.target, connect_timeout=left)
        node_target = replace(node_target, target=target)
        conn = remote.connect(node_target)
        out = conn.run(_probe_command(config_path), timeout=timeout)
        running, reported, sha, addresses = parse_probe(out.stdout)
        holds = [vip for vip, ip in vip_ips.items() if ip in addresses]
        result.update(
            reachable=True,
            keepalived_running=running,
            vrrp_state=_vrrp_state(running, reported, bool(holds)),
            holds=holds,
            drift=None if expected_sha is None else sha != expected_sha,
        )
    except ssh.SSHError as e:
        error = e
        result["error"] = e.message
        result["host_key_problem"] = isinstance(e, ssh.HostKeyMismatch)
    finally:
        if conn is not None:
            conn.close()
    return result, conn, error


def expected_config_sha(node):
    try:
        return hashlib.sha256(node_config(node).encode()).hexdigest()
    except ValueError:
        return None


def probe_cluster(cluster: Cluster, timeout: float | None = None) -> ClusterStatus:
    timeout = timeout or settings.VIPANEL_PROBE_TIMEOUT
    nodes = list(cluster.nodes.select_related("credential", "cluster__credential"))
    vips = list(cluster.vips.all())
    vip_ips = {v.address: v.ip for v in vips}
    probes, jobs = {}, {}
    checked_at = timezone.now()
    ready = not cluster.readiness_errors()
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(nodes), settings.VIPANEL_PROBE_CONCURRENCY)))
    deadline = time.monotonic() + timeout
    try:
        for node in nodes:
            probes[node.pk] = NodeProbe(name=node.name, node_id=node.pk, maintenance=node.maintenance)
            try:
                node_target = remote.target_for(node, command_timeout=timeout)
            except ssh.SSHError as e:
                probes[node.pk].error = e.message
                continue
            # The connect deadline is the probe's too: a dead node costs at most `timeout`.
            node_target = replace(
                node_target, target=replace(node_target.target, connect_timeout=timeout)
            )
            expected = expected_config_sha(node) if ready else None
            jobs[pool.submit(
                _probe_one, node_target, cluster.config_path, expected, vip_ips, timeout, deadline
            )] = (
                node,
                node_target,
            )
        # Every probe bounds itself (connect and command deadlines); the margin covers
        # the SSH handshake that follows the TCP connect.
        done, not_done = wait(jobs, timeout=3 * timeout + 2)
        for future in not_done:
            future.cancel()
            node, _ = jobs[future]
            probes[node.pk].error = f"{node.name}: no answer within {3 * timeout + 2:.0f}s"
        for future in done:
            node, node_target = jobs[future]
            fields, conn, error = future.result()
            for key, value in fields.items():
                setattr(probes[node.pk], key, value)
            remote.settle(node_target, conn, error)
    finally:
        # Not waiting here is the point: a stuck probe must not hold up the verdict.
        pool.shutdown(wait=False, cancel_futures=True)
    holders = {v.address: [] for v in vips}
    stale = {v.address: [] for v in vips}
    for node in nodes:
        probe = probes[node.pk]
        for vip in probe.holds:
            # Only a running keepalived holds a VIP; an address a dead one left behind is stale.
            (holders if probe.keepalived_running else stale)[vip].append(node.name)
    return ClusterStatus(
        cluster=cluster.name,
        checked_at=checked_at,
        nodes=[probes[n.pk] for n in nodes],
        holders=holders,
        stale={vip: names for vip, names in stale.items() if names},
    )


def stale_address_message(node_name, vip, interface):
    """How a stale address is told to people (events, node problems): what it is, not a split
    brain, and what to do."""
    return (
        f"keepalived stopped on {node_name}, the address {vip} is still on {interface}: start "
        "keepalived there, or remove the stale address."
    )
