"""A keepalived lab on one Linux machine: nodes made of namespaces, joined by one bridge.

Each node is a network namespace (eth0 on the bridge), with its own PID, mount and UTS
namespaces, its own /run (a tmpfs) and its own /etc/keepalived (``/etc/netns/NS/keepalived``,
bind-mounted by ``ip netns exec``). A tiny init is PID 1 of each node, so sshd and keepalived can
be stopped and started without the node going away. Real OpenSSH sshd listens on the node's
address; real keepalived runs when a command started over SSH (or ``Node.exec``) starts it.

Everything is named after one prefix (links, namespaces, /etc/netns folders, the state
directory, the metric of the unreachable route), so a lab left by a crashed run is found and
removed by ``down(prefix)``, which ``up`` calls first. The facts this builds on are in
/work/shared/LAB.md.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

DEFAULT_PREFIX = "vpl"
# RFC 2544 benchmarking space: never a subnet of a real network. The unreachable route covers all
# of it, so with the bridge gone nothing aimed at a lab address leaves the machine.
LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")
USER = "root"
PORT = 22
INTERFACE = "eth0"
# keepalived daemonizes and writes /run/keepalived.pid; /run is the node's own, so this starts
# keepalived on a node where it is not running and reloads it where it is.
RELOAD_COMMAND = 'kill -HUP "$(cat /run/keepalived.pid 2>/dev/null)" 2>/dev/null || keepalived'
SSHD = "/usr/sbin/sshd"
INIT_MARKER = "vipanel-lab-init"
EMPTY_BASHRC = "empty-bashrc"
NODE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
}
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
# Node N has address .(10+N) of the lab's /24, so at most 244 nodes (the bench uses 200).
MAX_NODES = 244


def max_nodes(prefix: str) -> int:
    """How many nodes fit: link names PREFIX-hN must fit in the kernel's 15 characters."""
    return min(MAX_NODES, 10 ** (15 - len(prefix) - len("-h")) - 1)


# PID 1 of a node: gives the node its own /run and host name, hides the host's ~/.bashrc (see
# QUIET_BASHRC), then reaps orphans (sshd and
# keepalived daemonize, so they are re-parented here) until it is killed with SIGKILL.
_INIT = r"""
import os, socket, subprocess, sys, time
name, ready, empty = sys.argv[2], sys.argv[3], sys.argv[4]  # argv[1]: the marker down() seeks
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run"], check=True)
# The node's own mount namespace: the host's file is untouched.
if os.path.exists("/root/.bashrc"):
    subprocess.run(["mount", "--bind", empty, "/root/.bashrc"], check=True)
os.mkdir("/run/sshd", 0o755)
socket.sethostname(name)
with open(ready, "w") as f:
    f.write("ready\n")
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        time.sleep(0.1)
"""


class LabError(Exception):
    pass


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = ""):
    """Poll ``predicate`` until it returns something truthy; return that, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(message or f"condition not met within {timeout:g}s")
        time.sleep(interval)


def _check_prefix(prefix: str) -> None:
    if not _PREFIX_RE.match(prefix):
        raise LabError(
            f"bad lab prefix {prefix!r}: 1-10 lowercase letters or digits, a letter first"
        )


def state_dir(prefix: str) -> Path:
    # Not under /run: each node mounts its own /run, and sshd inside must read its config,
    # host key and authorized_keys from here.
    return Path(f"/tmp/vipanel-lab-{prefix}")


def _subnet_index(prefix: str) -> int:
    """Which /24 of 198.18.0.0/15 a prefix uses: 77 for the default, a stable hash otherwise."""
    if prefix == DEFAULT_PREFIX:
        return 77
    index = zlib.crc32(prefix.encode()) % 512
    return index if index != 77 else 78


def lab_network(prefix: str) -> ipaddress.IPv4Network:
    return list(LAB_RANGE.subnets(new_prefix=24))[_subnet_index(prefix)]


def _route_metric(prefix: str) -> int:
    # One unreachable route per lab, told apart by its metric, so taking down one lab never
    # removes the protection of another one running with a different prefix.
    return 3000 + _subnet_index(prefix)


def _run(args, check=True, input=None, timeout=30, env=None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(
            args, check=False, input=input, capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired as e:
        raise LabError(f"{' '.join(map(str, args))}: timed out after {timeout}s") from e
    if check and proc.returncode != 0:
        raise LabError(
            f"{' '.join(map(str, args))}: exit {proc.returncode}: "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def _fingerprint_of_pub(pub_path: Path) -> str:
    """OpenSSH's SHA256 fingerprint of a public key file (the form `ssh-keygen -lf` prints)."""
    blob = base64.b64decode(pub_path.read_text().split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _keygen(path: Path, comment: str) -> None:
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def _alive(pid: int) -> bool:
    """True while a process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _ns_pids(pid: int) -> list[int]:
    """The NSpid line of a process: its pid in each PID namespace, outermost first."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return []


def _netns_pids(netns: str) -> list[int]:
    proc = _run(["ip", "netns", "pids", netns], check=False)
    return [int(x) for x in proc.stdout.split()]


def _kill_and_wait(pids, timeout: float = 5.0) -> None:
    pids = [p for p in set(pids) if p != os.getpid()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(
        lambda: not any(_alive(p) for p in pids),
        timeout,
        message=f"processes {sorted(pids)} survived SIGKILL",
    )


def _stray_pids(prefix: str) -> list[int]:
    """Processes of a lab with this prefix that are in no named namespace any more."""
    needles = (
        f"{INIT_MARKER}\0{prefix}-n".encode(),
        f"{state_dir(prefix)}/".encode(),
    )
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if any(n in cmdline for n in needles):
            found.append(int(entry.name))
    return found


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def _owner(prefix: str) -> int:
    """The live process (not this one) that built the lab with this prefix, or 0."""
    try:
        data = json.loads((state_dir(prefix) / "lab.json").read_text())
        pid, started = int(data["owner_pid"]), data["owner_started"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    if pid != os.getpid() and _alive(pid) and _start_time(pid) == started:
        return pid
    return 0


def down(prefix: str = DEFAULT_PREFIX) -> None:
    """Remove every trace of the lab with this prefix; harmless when there is none."""
    _check_prefix(prefix)
    netns_re = re.compile(rf"^{prefix}-n\d+$")
    link_re = re.compile(rf"^{prefix}-(h\d+|br)$")

    names = [
        line.split()[0]
        for line in _run(["ip", "netns", "list"]).stdout.splitlines()
        if line.strip() and netns_re.match(line.split()[0])
    ]
    pids = [pid for ns in names for pid in _netns_pids(ns)] + _stray_pids(prefix)
    _kill_and_wait(pids)
    for ns in names:
        _run(["ip", "netns", "del", ns], check=False)

    for line in _run(["ip", "-o", "link", "show"]).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if link_re.match(name):
            _run(["ip", "link", "del", name], check=False)

    etc_netns = Path("/etc/netns")
    if etc_netns.is_dir():
        for entry in etc_netns.iterdir():
            if netns_re.match(entry.name):
                shutil.rmtree(entry, ignore_errors=True)
        if not any(etc_netns.iterdir()):
            etc_netns.rmdir()

    route = ["unreachable", str(LAB_RANGE), "metric", str(_route_metric(prefix))]
    while _run(["ip", "route", "del", *route], check=False).returncode == 0:
        pass

    shutil.rmtree(state_dir(prefix), ignore_errors=True)


def _wait_for_ssh(address: str, port: int, timeout: float = 10.0) -> None:
    def banner():
        try:
            with socket.create_connection((address, port), timeout=0.5) as s:
                return s.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    wait_until(banner, timeout, interval=0.02, message=f"sshd on {address}:{port} did not answer")


def _port_closed(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


class Node:
    """One lab node. ``exec`` runs a command inside it from the host, without SSH."""

    def __init__(self, lab: Lab, index: int, init_pid: int = 0, fingerprint: str = ""):
        self.lab = lab
        self.index = index
        self.name = f"{lab.prefix}-n{index}"
        self.netns = self.name
        self.host_veth = f"{lab.prefix}-h{index}"
        self.address = str(lab.network.network_address + 10 + index)
        self.port = PORT
        self.user = USER
        self.interface = INTERFACE
        self.reload_command = RELOAD_COMMAND
        self.dir = lab.state_dir / self.name
        self.sshd_config = self.dir / "sshd_config"
        self.host_key = self.dir / "ssh_host_ed25519_key"
        self.original_host_key = self.dir / "ssh_host_ed25519_key.orig"
        self.config_dir = Path("/etc/netns") / self.netns / "keepalived"
        self.init_pid = init_pid
        self.original_fingerprint = fingerprint
        self.fingerprint = fingerprint

    def __repr__(self):
        return f"<Node {self.name} {self.address}>"

    @property
    def key_path(self) -> Path:
        return self.lab.key_path

    @property
    def private_key(self) -> str:
        return self.lab.private_key

    def info(self) -> dict:
        return {
            "name": self.name,
            "hostname": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "key_path": str(self.key_path),
            "private_key": self.private_key,
            "fingerprint": self.original_fingerprint,
            "netns": self.netns,
            "interface": self.interface,
            "reload_command": self.reload_command,
            "config_dir": str(self.config_dir),
            "init_pid": self.init_pid,
        }

    def target(self, **overrides):
        """A clusters.ssh.Target for this node, pinned to its current host key."""
        from clusters.ssh import Target

        fields = {
            "host": self.address,
            "port": self.port,
            "username": self.user,
            "private_key": self.private_key,
            "expected_fingerprint": self.fingerprint,
        }
        return Target(**{**fields, **overrides})

    # Running things inside the node

    def _nsenter(self, command: str) -> list[str]:
        # Joining init's mount namespace gives the node's /run and its /etc/keepalived.
        ns = ["-n", "-p", "-m", "-u"]
        return ["nsenter", "-t", str(self.init_pid), *ns, "--", "sh", "-c", command]

    def exec(self, command: str, check: bool = True, input: str | None = None, timeout=30):
        """Run ``sh -c command`` inside the node's network, PID, mount and UTS namespaces."""
        args = self._nsenter(command)
        proc = _run(args, check=False, input=input, timeout=timeout, env=NODE_ENV)
        if check and proc.returncode != 0:
            raise LabError(
                f"{self.name}: {command!r}: exit {proc.returncode}: {proc.stderr.strip()}"
            )
        return proc

    def _start_daemon(self, command: str) -> None:
        # A daemon that forgets to close stdout would keep the pipe open, so none is given.
        args = self._nsenter(command)
        try:
            proc = subprocess.run(
                args,
                check=False,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=15,
                env=NODE_ENV,
            )
        except subprocess.TimeoutExpired as e:
            raise LabError(f"{self.name}: {command!r} did not return") from e
        if proc.returncode != 0:
            raise LabError(
                f"{self.name}: {command!r}: exit {proc.returncode}: {proc.stderr.strip()}"
            )

    def pids(self) -> list[int]:
        """Host pids of every process in the node's PID namespace except its init."""
        try:
            own = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        except OSError:
            return []
        found = []
        for pid in _netns_pids(self.netns):
            if pid == self.init_pid:
                continue
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") == own:
                    found.append(pid)
            except OSError:
                pass
        return found

    # sshd

    def sshd_pid(self) -> int | None:
        proc = self.exec("cat /run/sshd.pid", check=False)
        pid = proc.stdout.strip()
        if (
            proc.returncode == 0
            and pid.isdigit()
            and self.exec(f"kill -0 {pid}", check=False).returncode == 0
        ):
            return int(pid)
        return None

    def start_sshd(self) -> None:
        if self.sshd_pid() is None:
            self._start_daemon(f"exec {SSHD} -f {self.sshd_config} -E {self.dir / 'sshd.log'}")
        _wait_for_ssh(self.address, self.port)

    def stop_sshd(self) -> None:
        """Stop the listening sshd (sessions already open go on); new connections are refused."""
        pid = self.sshd_pid()
        if pid is not None:
            self.exec(f"kill {pid}", check=False)
            wait_until(
                lambda: self.exec(f"kill -0 {pid}", check=False).returncode != 0,
                message=f"{self.name}: sshd {pid} did not stop",
            )
        wait_until(
            lambda: _port_closed(self.address, self.port), message=f"{self.name}: port still open"
        )

    def replace_host_key(self) -> str:
        """Give sshd a new host key (as a reinstalled host would have); return its fingerprint."""
        new = self.dir / "ssh_host_ed25519_key.new"
        _keygen(new, self.name)
        os.replace(
            new.with_name(new.name + ".pub"), self.host_key.with_name(self.host_key.name + ".pub")
        )
        os.replace(new, self.host_key)
        self.stop_sshd()
        self.start_sshd()
        self.fingerprint = _fingerprint_of_pub(self.host_key.with_name(self.host_key.name + ".pub"))
        return self.fingerprint

    # keepalived

    def keepalived_running(self) -> bool:
        return self.exec("pgrep -x keepalived", check=False).returncode == 0

    def start_keepalived(self) -> None:
        """Start keepalived with the node's /etc/keepalived/keepalived.conf (the reload command)."""
        self._start_daemon(self.reload_command)
        wait_until(self.keepalived_running, message=f"{self.name}: keepalived did not start")

    def kill_keepalived(self, hard: bool = False) -> None:
        """Stop keepalived. SIGTERM by default: it drops its VIPs and the next node takes over at
        once. ``hard=True`` sends SIGKILL, like a crash: the VIPs stay on eth0 until reset()."""
        sig = "KILL" if hard else "TERM"
        if hard:
            # Frozen first, like a crash: killed one by one, a child outliving its parent for a
            # moment gets keepalived's parent-death SIGTERM and removes the VIPs gracefully
            # (seen under load), which is no crash at all.
            self.exec("pkill -STOP -x keepalived", check=False)
        self.exec(f"pkill -{sig} -x keepalived", check=False)
        wait_until(
            lambda: not self.keepalived_running(),
            message=f"{self.name}: keepalived survived SIG{sig}",
        )

    # VRRP and addresses

    def block_vrrp(self) -> None:
        """Drop incoming VRRP (IP protocol 112), as a careless firewall would: split brain."""
        self.exec("iptables -I INPUT 1 -p 112 -j DROP")

    def unblock_vrrp(self) -> None:
        while self.exec("iptables -D INPUT -p 112 -j DROP", check=False).returncode == 0:
            pass

    def ipv4_addresses(self) -> list[str]:
        """Addresses on eth0 as "a.b.c.d/len", the node's own first."""
        out = self.exec(f"ip -o -4 addr show dev {self.interface}").stdout
        return [line.split()[3] for line in out.splitlines() if line.strip()]

    def holds(self, vip: str) -> bool:
        ip = vip.split("/")[0]
        return any(a.split("/")[0] == ip for a in self.ipv4_addresses())

    # Back to normal

    def reset(self) -> None:
        """Back to a fresh node: only init and sshd (original host key) running, keepalived
        stopped, /etc/keepalived and /run emptied, no extra address, no iptables rule."""
        # SIGKILL everything but init: a graceful keepalived stop takes a second per node, and
        # what it would clean up (VIPs, firewall rules) is removed below anyway.
        pids = self.pids()
        if pids:
            _kill_and_wait(pids)
        net = self.lab.network.prefixlen
        for addr in self.ipv4_addresses():
            if addr != f"{self.address}/{net}":
                self.exec(f"ip addr del {addr} dev {self.interface}", check=False)
        self.exec(
            "iptables -F && iptables -X && iptables -P INPUT ACCEPT"
            " && iptables -P FORWARD ACCEPT && iptables -P OUTPUT ACCEPT"
            " && { ! command -v nft >/dev/null || nft flush ruleset; }"
        )
        self.exec(
            "find /run -mindepth 1 -maxdepth 1 ! -name sshd -exec rm -rf {} + ; "
            f"hostname {self.name}"
        )
        for entry in self.config_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        if self.fingerprint != self.original_fingerprint:
            shutil.copyfile(self.original_host_key, self.host_key)
            shutil.copyfile(
                self.original_host_key.with_name(self.original_host_key.name + ".pub"),
                self.host_key.with_name(self.host_key.name + ".pub"),
            )
            self.fingerprint = self.original_fingerprint
        self.start_sshd()


class Lab:
    """A running lab. Build one with ``Lab.up(n)``; ``Lab.load(prefix)`` finds a running one."""

    def __init__(self, prefix: str = DEFAULT_PREFIX):
        _check_prefix(prefix)
        self.prefix = prefix
        self.network = lab_network(prefix)
        self.bridge = f"{prefix}-br"
        self.bridge_address = str(self.network.network_address + 1)
        self.state_dir = state_dir(prefix)
        self.key_path = self.state_dir / "client_ed25519_key"
        self.private_key = ""
        self.nodes: list[Node] = []
        self._children: list[subprocess.Popen] = []

    def __repr__(self):
        return f"<Lab {self.prefix} {self.network} {len(self.nodes)} nodes>"

    def __getitem__(self, i: int) -> Node:
        return self.nodes[i]

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)

    @property
    def json_path(self) -> Path:
        return self.state_dir / "lab.json"

    def info(self) -> dict:
        return {
            "prefix": self.prefix,
            "bridge": self.bridge,
            "bridge_address": self.bridge_address,
            "network": str(self.network),
            "state_dir": str(self.state_dir),
            "key_path": str(self.key_path),
            "nodes": [n.info() for n in self.nodes],
        }

    @classmethod
    def up(cls, nodes: int = 3, prefix: str = DEFAULT_PREFIX) -> Lab:
        if os.geteuid() != 0:
            raise LabError("the lab needs root (namespaces, links, routes)")
        limit = max_nodes(prefix)
        if not 1 <= nodes <= limit:
            raise LabError(f"between 1 and {limit} nodes with prefix {prefix!r}, not {nodes}")
        lab = cls(prefix)
        owner = _owner(prefix)
        if owner:
            raise LabError(
                f"lab {prefix!r} belongs to running process {owner} (another test session?); "
                "use another prefix (VIPANEL_LAB_PREFIX) or remove it: python -m tests.lab down"
            )
        down(prefix)
        try:
            lab._build(nodes)
        except BaseException:
            lab.down()
            raise
        return lab

    @classmethod
    def load(cls, prefix: str = DEFAULT_PREFIX) -> Lab:
        lab = cls(prefix)
        try:
            data = json.loads(lab.json_path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab {prefix!r} is running ({lab.json_path} is missing)") from None
        lab.private_key = lab.key_path.read_text()
        for n in data["nodes"]:
            index = int(n["name"].rsplit("-n", 1)[1])
            lab.nodes.append(Node(lab, index, n["init_pid"], n["fingerprint"]))
        for node in lab.nodes:
            node.fingerprint = _fingerprint_of_pub(
                node.host_key.with_name(node.host_key.name + ".pub")
            )
        return lab

    def _build(self, count: int) -> None:
        for line in _run(["ip", "-o", "-4", "addr", "show"]).stdout.splitlines():
            addr = ipaddress.ip_interface(line.split()[3])
            if addr.network.overlaps(self.network):
                raise LabError(
                    f"{self.network} is already in use here: {line.split()[1]} has {addr}"
                )

        self.state_dir.mkdir(mode=0o700, parents=True)
        _keygen(self.key_path, f"vipanel-lab-{self.prefix}")
        self.private_key = self.key_path.read_text()
        authorized_keys = self.state_dir / "authorized_keys"
        shutil.copyfile(self.key_path.with_name(self.key_path.name + ".pub"), authorized_keys)

        _run(
            [
                "ip",
                "route",
                "add",
                "unreachable",
                str(LAB_RANGE),
                "metric",
                str(_route_metric(self.prefix)),
            ]
        )
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        # Bridged frames skip the host's iptables (br_netfilter), so a host firewall dropping
        # forwarded traffic cannot silently break VRRP between nodes.
        _run(
            ["ip", "link", "set", self.bridge, "type", "bridge", "nf_call_iptables", "0"],
            check=False,
        )
        _run(
            [
                "ip",
                "addr",
                "add",
                f"{self.bridge_address}/{self.network.prefixlen}",
                "dev",
                self.bridge,
            ]
        )
        _run(["ip", "link", "set", self.bridge, "up"])

        for i in range(1, count + 1):
            node = Node(self, i)
            self.nodes.append(node)
            self._make_node(node, authorized_keys)
        for node in self.nodes:
            ready = node.dir / "ready"
            wait_until(
                ready.exists, message=f"{node.name}: init did not start ({node.dir / 'init.log'})"
            )
            node.init_pid = self._find_init(node)
            node.start_sshd()
        # The owner is the process that built the lab: a test session holds it until it ends,
        # while the CLI exits at once and so leaves a lab anyone may replace.
        description = {
            **self.info(),
            "owner_pid": os.getpid(),
            "owner_started": _start_time(os.getpid()),
        }
        self.json_path.touch(mode=0o600)
        self.json_path.write_text(json.dumps(description, indent=2) + "\n")

    def _make_node(self, node: Node, authorized_keys: Path) -> None:
        ns = node.netns
        _run(["ip", "netns", "add", ns])
        _run(
            [
                "ip",
                "link",
                "add",
                node.host_veth,
                "type",
                "veth",
                "peer",
                "name",
                INTERFACE,
                "netns",
                ns,
            ]
        )
        _run(["ip", "link", "set", node.host_veth, "master", self.bridge, "up"])
        inside = ["ip", "netns", "exec", ns]
        _run(
            [
                *inside,
                "ip",
                "addr",
                "add",
                f"{node.address}/{self.network.prefixlen}",
                "dev",
                INTERFACE,
            ]
        )
        _run([*inside, "ip", "link", "set", INTERFACE, "up"])
        _run([*inside, "ip", "link", "set", "lo", "up"])
        node.config_dir.mkdir(parents=True)

        node.dir.mkdir()
        _keygen(node.host_key, node.name)
        shutil.copyfile(node.host_key, node.original_host_key)
        shutil.copyfile(
            node.host_key.with_name(node.host_key.name + ".pub"),
            node.original_host_key.with_name(node.original_host_key.name + ".pub"),
        )
        os.chmod(node.original_host_key, 0o600)
        node.fingerprint = node.original_fingerprint = _fingerprint_of_pub(
            node.host_key.with_name(node.host_key.name + ".pub")
        )
        node.sshd_config.write_text(
            f"""\
ListenAddress {node.address}
Port {node.port}
HostKey {node.host_key}
PidFile /run/sshd.pid
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 100
MaxSessions 100
Subsystem sftp internal-sftp
"""
        )
        init = self.state_dir / "init.py"
        if not init.exists():
            init.write_text(_INIT)
            # Lab nodes share the host's /root, and bash reads ~/.bashrc for every command sshd
            # starts; on a developer machine that file may run `pyenv init` (0.1 s of CPU per
            # SSH command), which no real keepalived host pays. Each node sees an empty one.
            (self.state_dir / EMPTY_BASHRC).write_text("")
        # ip netns exec mounts /etc/netns/NS/keepalived over /etc/keepalived for init and every
        # process that later joins its mount namespace (sshd, SSH sessions, Node.exec).
        with open(node.dir / "init.log", "wb") as log:
            self._children.append(
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        "unshare",
                        "--pid",
                        "--fork",
                        "--mount-proc",
                        "--uts",
                        sys.executable,
                        str(init),
                        INIT_MARKER,
                        node.name,
                        str(node.dir / "ready"),
                        str(self.state_dir / EMPTY_BASHRC),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    env=NODE_ENV,
                )
            )

    def _find_init(self, node: Node) -> int:
        def find():
            for pid in _netns_pids(node.netns):
                ns_pids = _ns_pids(pid)
                if len(ns_pids) >= 2 and ns_pids[-1] == 1:
                    return pid
            return 0

        return wait_until(find, message=f"{node.name}: no init process found")

    def down(self) -> None:
        down(self.prefix)
        for child in self._children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._children.clear()

    def reset(self) -> None:
        for node in self.nodes:
            node.reset()

    def vip_holders(self, vip: str) -> list[Node]:
        return [n for n in self.nodes if n.holds(vip)]


def up(nodes: int = 3, prefix: str = DEFAULT_PREFIX) -> Lab:
    return Lab.up(nodes, prefix)
