"""'Test SSH now': connect to a node as a push would, run a harmless probe, say what was found.

Nothing changes on the node: the probe only reads (is keepalived there and running, is the
config file there). Nothing is pinned: the connection uses the pinned key, and a node whose key
nobody has trusted yet only shows the key it offers (recorded by clusters.remote.settle, as
every connection does, so the Trust button can offer it to a person). A new connection every
time, never the sweep's pooled one: the point is to try the whole way in again.

Connecting touches no database, so several nodes are checked at once (a new cluster's nodes);
what a connection learned about a host key is recorded afterwards, in the calling thread.
"""

import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings

from clusters import remote, ssh
from clusters.render import config_path

OK, BAD, NOT_TRIED = "ok", "bad", "not tried"

# The steps in the order a connection takes them; each says what it found.
STEPS = (
    ("credential", "SSH credential"),
    ("connect", "Reachable"),
    ("host_key", "Host key"),
    ("auth", "Logged in"),
    ("keepalived", "keepalived"),
    ("config", "Config file"),
)


# How the summary says that a step failed.
_FAILED = {
    "credential": "no usable SSH credential",
    "connect": "not reachable",
    "host_key": "host key refused",
    "auth": "SSH login failed",
}


@dataclass
class Step:
    key: str
    label: str
    outcome: str = NOT_TRIED
    text: str = ""

    @property
    def ok(self):
        return self.outcome == OK


@dataclass
class SSHCheck:
    """What testing one node found, step by step."""

    node: str
    node_id: int
    steps: list = field(default_factory=list)
    # The key the node offers when none is trusted yet, or instead of the pinned one.
    offered: str = ""
    untrusted: bool = False
    changed: bool = False
    seconds: float = 0.0

    def step(self, key):
        return next(s for s in self.steps if s.key == key)

    def set(self, key, outcome, text):
        step = self.step(key)
        step.outcome, step.text = outcome, text

    @property
    def logged_in(self):
        return self.step("auth").ok

    @property
    def summary(self):
        """One sentence: what a person reads in a message after adding a node."""
        if self.untrusted:
            return (
                f"{self.node}: reachable; host key not trusted yet: {self.offered}. Compare it "
                "with the node's own and press Trust."
            )
        failed = next((s for s in self.steps if s.outcome == BAD), None)
        if failed is not None and not self.logged_in:
            return f"{self.node}: {_FAILED[failed.key]}: {failed.text}"
        found = "; ".join(s.text for s in self.steps if s.key in ("keepalived", "config"))
        return f"{self.node}: SSH works ({self.step('auth').text}); {found}."


def _probe_command(path):
    """Reads only. `keepalived --version` prints its version and exits (on stderr in 2.2);
    `path` is the cluster's config_path, checked by render.config_path (None: not asked)."""
    command = (
        "printf 'user='; id -un; "
        "if command -v keepalived >/dev/null 2>&1; then printf 'version='; "
        "keepalived --version 2>&1 | head -n 1; else echo version=; fi; "
        "if pidof keepalived >/dev/null 2>&1; then echo running=1; else echo running=0; fi"
    )
    if path is not None:
        quoted = shlex.quote(path)
        command += f"; if [ -f {quoted} ]; then echo config=1; else echo config=0; fi"
    return command


def _parse(stdout):
    values = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("user", "version", "running", "config") and key not in values:
            values[key] = value.strip()[:200]
    return values


# Where each stage of ssh.connect shows its failure (a failed key exchange: not reachable).
_STEP_OF_STAGE = {"credential": "credential", "host_key": "host_key", "auth": "auth"}


def _fill_from_error(check, error, pinned):
    """Mark the steps before the one that failed as passed; the rest stay "not tried"."""
    failed = _STEP_OF_STAGE.get(getattr(error, "stage", ""), "connect")
    passed = {
        "credential": "readable",
        "connect": "the SSH port answers",
        "host_key": f"the pinned key {pinned}",
    }
    for key, _ in STEPS:
        if key == failed:
            break
        check.set(key, OK, passed[key])
    if isinstance(error, ssh.HostKeyNotTrusted):
        check.untrusted, check.offered = True, error.offered
        check.set(
            "host_key",
            BAD,
            f"not trusted yet: the node offers {error.offered}. Compare it with what ssh-keygen "
            "-lf /etc/ssh/ssh_host_ed25519_key.pub prints on its console, then trust it.",
        )
    elif isinstance(error, ssh.HostKeyMismatch):
        check.changed, check.offered = True, error.offered
        check.set(
            "host_key",
            BAD,
            f"changed: pinned {error.expected}, the node offers {error.offered}. Nothing was "
            "sent to it.",
        )
    else:
        check.set(failed, BAD, str(getattr(error, "message", error)))


def _check_one(node_target, path, config_error, deadline):
    """Runs in a thread: SSH only, no database. -> (SSHCheck, conn or None, error or None)."""
    check = SSHCheck(node_target.name, node_target.node_id, [Step(k, v) for k, v in STEPS])
    started = time.monotonic()
    conn = error = None
    try:
        conn = remote.connect(node_target, deadline)
    except ssh.SSHError as e:
        error = e
        _fill_from_error(check, e, node_target.target.expected_fingerprint)
    if conn is not None:
        check.set("credential", OK, "readable")
        check.set("connect", OK, "the SSH port answers")
        check.set("host_key", OK, f"the pinned key {conn.fingerprint}")
        check.set("auth", OK, f"as {node_target.target.username}")
        if path is None:
            check.set("config", BAD, config_error)
        try:
            left = max(1.0, deadline - time.monotonic())
            values = _parse(conn.run(_probe_command(path), timeout=left).stdout)
        except ssh.SSHError as e:
            check.set("keepalived", BAD, f"the probe did not finish: {e.message}")
        else:
            _fill_from_probe(check, values, path)
        finally:
            conn.close()
    check.seconds = time.monotonic() - started
    return check, conn, error


def _fill_from_probe(check, values, path):
    if values.get("user"):
        check.set("auth", OK, f"as {values['user']}")
    version = values.get("version", "")
    if not version:
        check.set("keepalived", BAD, "not installed (no keepalived on the PATH)")
    elif values.get("running") == "1":
        check.set("keepalived", OK, f"running ({version})")
    else:
        check.set(
            "keepalived",
            BAD,
            f"installed ({version}) but not running; a push starts it with the cluster's "
            "reload command",
        )
    if path is not None:
        if values.get("config") == "1":
            check.set("config", OK, f"{path} is there")
        else:
            check.set("config", BAD, f"{path} is not there yet; the first push writes it")


def check_nodes(nodes):
    """Test SSH to each node at once: [SSHCheck] in the order given. Each node gets the
    connect timeout for each connection step and a few seconds for the probe, all bounded by
    one deadline, so an unreachable node costs no more than that."""
    nodes = list(nodes)
    timeout = settings.VIPANEL_SSH_CONNECT_TIMEOUT
    deadline = time.monotonic() + 2 * timeout + 5
    results, jobs = {}, {}
    for node in nodes:
        try:
            node_target = remote.target_for(node, command_timeout=timeout)
        except ssh.SSHError as e:
            check = SSHCheck(node.name, node.pk, [Step(k, v) for k, v in STEPS])
            check.set("credential", BAD, e.message)
            results[node.pk] = check
            continue
        try:
            path, config_error = config_path(node.cluster), ""
        except ValueError as e:
            path, config_error = None, str(e)
        jobs[node.pk] = (node_target, path, config_error)
    if jobs:
        with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
            futures = {
                pk: (job[0], pool.submit(_check_one, *job, deadline)) for pk, job in jobs.items()
            }
        for pk, (node_target, future) in futures.items():
            check, conn, error = future.result()
            # The database, afterwards and in this thread: the key offered, or a mismatch gone.
            remote.settle(node_target, conn, error)
            results[pk] = check
    return [results[n.pk] for n in nodes]
