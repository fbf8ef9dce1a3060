"""Probing nodes over SSH: is keepalived running, in which VRRP state, which VIPs does it hold.

All nodes of a probe are asked at once, each within its own deadline, so one slow or dead node
never delays the verdict on the others by more than that deadline. The probing itself touches
no database (it runs in threads); what it learned about host keys is recorded afterwards.
"""

import hashlib
import ipaddress
import shlex
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone

from clusters import constants, health, remote, ssh
from clusters.models import Cluster
from clusters.render import node_config

# NodeState.drift_config_sha of a drifted config file that is not there at all.
ABSENT = "-"


@dataclass
class NodeProbe:
    name: str
    node_id: int
    reachable: bool = False
    keepalived_running: bool | None = None
    vrrp_state: str = "UNKNOWN"
    holds: list[str] = field(default_factory=list)
    # health.config_drift: None when it cannot be told (unreachable, never pushed there).
    drift: bool | None = None
    # SHA-256 of the live config ("" when the file is absent; None: not read), and of what
    # vipanel renders for the node now (None: the cluster cannot be rendered yet).
    config_sha: str | None = None
    desired_sha: str | None = None
    # The live file, read when it drifted and differs from the copy already kept (else None).
    live_config: str | None = None
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
    pid = shlex.quote(constants.KEEPALIVED_PID_FILE)
    # One round trip: everything the verdict needs, one "key=value" per line, then `ip -o addr`.
    # No pipes or command substitutions: each would fork once more on the node, every sweep.
    # `[` is a shell builtin: whether the notify state was written after keepalived started.
    return (
        "if pidof keepalived >/dev/null 2>&1; then echo running=1; else echo running=0; fi; "
        f"printf state=; head -c 16 {state} 2>/dev/null; echo; "
        f"if [ {state} -nt {pid} ]; then echo state_since_start=1; fi; "
        f"if [ -f {path} ]; then printf config=; sha256sum < {path}; else echo config=; fi; "
        "echo addresses:; ip -o addr show"
    )


def parse_probe(stdout: str):
    """-> (running, state, config_sha256, set of ip addresses on the node)

    keepalived reports STOP to its notify script as it begins to stop, and takes a second or
    more to exit (priority-0 adverts, scripts, its children), while `pidof` still finds it.
    A STOP written since this keepalived started means it is stopping: not running. One from
    before it started (a stop, then a start that has not reported yet) says nothing.
    """
    running, state, config, addresses = False, "", "", set()
    since_start = False
    head, _, addr_lines = stdout.partition("addresses:\n")
    for line in head.splitlines():
        key, _, value = line.partition("=")
        if key == "running":
            running = value.strip() == "1"
        elif key == "state":
            state = value.strip().upper()
        elif key == "state_since_start":
            since_start = value.strip() == "1"
        elif key == "config":
            # sha256sum prints "HASH  -"
            config = value.split()[0] if value.split() else ""
    if state == "STOP" and since_start:
        running = False
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


def _probe_one(node_target, config_path, shas, vip_ips, deadline):
    """Runs in a thread: SSH only, no database. Returns (NodeProbe fields, conn/error).

    `deadline` (time.monotonic()) is the probe's end, counted from the start of the sweep, and
    bounds every step together (connect, key exchange, authentication, the command): a node
    that waited for a free thread gets only what is left, so a dead or hostile node costs the
    sweep no more than the probe's timeout. Any exception is this node's error, never the
    sweep's: the other nodes and clusters are probed all the same.
    """
    expected_sha, pushed_sha, captured_sha = shas
    result = {"reachable": False}
    conn = error = None
    try:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ssh.SSHError(f"{node_target.name}: no answer within the probe's deadline")
        # One command per probe, over the node's kept connection and in its kept shell when
        # it has them (ssh.Connection.run_kept): no session and no shell started per probe.
        with remote.pooled(node_target, deadline) as conn:
            left = max(0.1, deadline - time.monotonic())
            out = conn.run_kept(_probe_command(config_path), timeout=left)
            running, reported, sha, addresses = parse_probe(out.stdout)
            drift = health.config_drift(sha, pushed_sha, expected_sha)
            if drift and (sha or ABSENT) != captured_sha:
                # A file edited on the node: read it once, so its diff can be shown without
                # going back to the node (and after it becomes unreachable).
                if not sha:
                    result["live_config"] = ""  # removed on the node
                else:
                    left = max(0.1, deadline - time.monotonic())
                    path = shlex.quote(config_path)
                    read = conn.run(f"head -c {ssh.READ_LIMIT} {path}", timeout=left)
                    if read.exit_status == 0:
                        result["live_config"] = read.stdout
        holds = [vip for vip, ip in vip_ips.items() if ip in addresses]
        result.update(
            reachable=True,
            keepalived_running=running,
            vrrp_state=_vrrp_state(running, reported, bool(holds)),
            holds=holds,
            config_sha=sha,
            drift=drift,
        )
    except ssh.SSHError as e:
        conn, error = None, e
        result["error"] = e.message
        result["host_key_problem"] = isinstance(e, (ssh.HostKeyMismatch, ssh.HostKeyNotTrusted))
    except Exception as e:  # noqa: BLE001 - a fault of one node must not stop the sweep
        conn, error = None, e
        result["error"] = f"{node_target.name}: probe failed: {type(e).__name__}: {e}"
    return result, conn, error


def _has_state(node):
    try:
        node.state  # noqa: B018 - reading it is the question: was the node probed before?
    except ObjectDoesNotExist:
        return False
    return True


def expected_config_sha(node):
    try:
        return hashlib.sha256(node_config(node).encode()).hexdigest()
    except ValueError:
        return None


def _status_of(cluster, nodes, vips, probes, checked_at) -> ClusterStatus:
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


def probe_clusters(
    clusters, timeout: float | None = None, on_done=None
) -> dict[int, ClusterStatus]:
    """Probe every node of these clusters at once (one thread pool, one deadline for all):
    cluster id -> ClusterStatus. The database is read before and written after, never from
    the probing threads. ``on_done(cluster, status)`` is called (in this thread) as soon as
    each cluster's nodes have all answered, so a dead node delays only its own cluster."""
    timeout = timeout or settings.VIPANEL_PROBE_TIMEOUT
    plans, jobs = [], {}
    checked_at = timezone.now()
    for cluster in clusters:
        # The pushed file is only read to show a drift's diff: not decrypted every sweep.
        nodes = list(
            cluster.nodes.select_related("credential", "cluster__credential", "state").defer(
                "pushed_config", "notify_key", "state__drift_config"
            )
        )
        vips = list(cluster.vips.all())
        plans.append((cluster, nodes, vips))
    width = sum(len(nodes) for _, nodes, _ in plans)
    pool = ThreadPoolExecutor(max_workers=max(1, min(width, settings.VIPANEL_PROBE_CONCURRENCY)))
    probes, pending, statuses = {}, {}, {}
    deadline = time.monotonic() + timeout

    def finish(plan):
        cluster, nodes, vips = plan
        statuses[cluster.pk] = _status_of(cluster, nodes, vips, probes, checked_at)
        if on_done is not None:
            on_done(cluster, statuses[cluster.pk])

    try:
        for plan in plans:
            cluster, nodes, vips = plan
            ready = None  # asked only for a node whose desired hash was never stored
            vip_ips = {v.address: v.ip for v in vips}
            pending[cluster.pk] = 0
            for node in nodes:
                probes[node.pk] = NodeProbe(
                    name=node.name, node_id=node.pk, maintenance=node.maintenance
                )
                try:
                    # What vipanel would send is stored (clusters.desired, kept current on every
                    # change and by a periodic refresh): rendering it for every node of every
                    # sweep was the biggest part of a sweep's CPU. Rendered here only when it
                    # was never stored (and then only for a cluster that can be rendered).
                    expected = node.desired_config_sha or None
                    if expected is None:
                        if ready is None:
                            ready = not cluster.readiness_errors()
                        expected = expected_config_sha(node) if ready else None
                    probes[node.pk].desired_sha = expected
                    node_target = remote.target_for(node, command_timeout=timeout)
                except ssh.SSHError as e:
                    probes[node.pk].error = e.message
                    continue
                except Exception as e:  # noqa: BLE001 - one node's fault stays that node's
                    probes[node.pk].error = f"{node.name}: {type(e).__name__}: {e}"
                    continue
                node_target = replace(
                    node_target, target=replace(node_target.target, connect_timeout=timeout)
                )
                state = node.state if _has_state(node) else None
                shas = (
                    expected,
                    node.pushed_config_sha,
                    state.drift_config_sha if state is not None else "",
                )
                future = pool.submit(
                    _probe_one, node_target, cluster.config_path, shas, vip_ips, deadline
                )
                jobs[future] = (node, node_target, plan)
                pending[cluster.pk] += 1
        for plan in plans:
            if not pending[plan[0].pk]:
                finish(plan)  # nothing to wait for (no node could even be tried)

        def take(future):
            node, node_target, plan = jobs.pop(future)
            fields, conn, error = future.result()
            for key, value in fields.items():
                setattr(probes[node.pk], key, value)
            try:
                remote.settle(node_target, conn, error)
            except Exception as e:  # noqa: BLE001 - recorded as the node's error
                probes[node.pk].error = probes[node.pk].error or f"recording host key: {e}"
            pending[plan[0].pk] -= 1
            if not pending[plan[0].pk]:
                finish(plan)

        # Every probe bounds itself by the deadline; the margin covers closing a socket.
        margin = 1.0
        try:
            for future in as_completed(
                list(jobs), timeout=max(0.0, deadline - time.monotonic()) + margin
            ):
                take(future)
        except FuturesTimeout:
            pass
        for future in list(jobs):
            if future.done():
                take(future)
            else:
                future.cancel()
                node = jobs.pop(future)[0]
                probes[node.pk].error = f"{node.name}: no answer within {timeout + margin:g}s"
        for plan in plans:
            if plan[0].pk not in statuses:
                finish(plan)
    finally:
        # Not waiting here is the point: a stuck probe must not hold up the verdict.
        pool.shutdown(wait=False, cancel_futures=True)
    return statuses


def probe_cluster(cluster: Cluster, timeout: float | None = None) -> ClusterStatus:
    return probe_clusters([cluster], timeout)[cluster.pk]
