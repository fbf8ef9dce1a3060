"""Several shell steps on a node in one exec: one round trip, each step's exit code and output.

A push step used to cost a dozen round trips (read, pidof, list, upload, test, backup, rename,
iptables test, apply, jump, reload); each is a network latency plus a session set-up on the
node. Here the steps become one POSIX sh script sent on stdin to ``sh -s`` (never on the command
line: it carries the config and its secrets, which would be readable in /proc/*/cmdline), files
travel inside it as base64 here-documents (upload_command), and the script stops at the first
failing step.

    steps = [Step("upload", upload_command({"/x": (b"...", 0o640)})),
             Step("test", "keepalived -t -f /x")]
    outcome = nodeexec.run(conn, steps)
    outcome.ok, outcome.failed, outcome.step("test").output, outcome.exit_status

Each step runs with stdin from /dev/null (so no command can eat the rest of the script) and its
stdout and stderr captured together. The exit status of the whole exec is 0, or
``FIRST_STEP_EXIT + index`` of the failing step, so even a truncated output says which step
failed. Built on clusters.ssh.Connection.run only; it opens and pins nothing itself.
"""

from __future__ import annotations

import base64
import re
import shlex
from dataclasses import dataclass, field

FIRST_STEP_EXIT = 100
_MARK = "@@vipanel-step"
_MARK_RE = re.compile(rf"{_MARK} (\S+) (-?\d+)@@\n")


@dataclass(frozen=True)
class Step:
    """A named shell fragment; it fails when its last command (or an `exit N`) is non-zero."""

    name: str
    command: str


@dataclass
class StepResult:
    name: str
    exit_code: int
    output: str


@dataclass
class Outcome:
    exit_status: int
    steps: list[StepResult] = field(default_factory=list)
    # Whatever the script printed outside any step (a shell error before the first step).
    stray: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and all(s.exit_code == 0 for s in self.steps)

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.exit_code != 0), None)

    def step(self, name: str) -> StepResult | None:
        return next((s for s in self.steps if s.name == name), None)


def upload_command(files: dict[str, tuple[bytes, int]]) -> str:
    """Shell lines writing each (content, mode) to its path; the mode is set before the content
    is written, so a secret is never readable by others, not even for a moment."""
    lines = []
    for path, (data, mode) in files.items():
        q = shlex.quote(path)
        encoded = base64.encodebytes(data).decode()
        lines.append(
            f"rm -f {q} && : > {q} && chmod {mode:o} {q} && base64 -d > {q} <<'VIPANEL_EOF'"
        )
        lines.append(encoded.rstrip("\n"))
        lines.append("VIPANEL_EOF")
        lines.append(f"[ -f {q} ] || exit 1")
    return "\n".join(lines)


def script(steps: list[Step]) -> str:
    """The sh script that runs `steps` in order and stops at the first that fails."""
    names = [s.name for s in steps]
    if len(set(names)) != len(names) or any(not re.fullmatch(r"[a-z0-9_.-]+", n) for n in names):
        raise ValueError(f"step names must be unique words: {names}")
    out = ["vp_out=$(mktemp) || exit 99", "trap 'rm -f \"$vp_out\"' EXIT"]
    for i, step in enumerate(steps):
        out.append(f'( {step.command}\n) </dev/null >"$vp_out" 2>&1')
        out.append("vp_rc=$?")
        out.append(f"printf '\\n{_MARK} %s %d@@\\n' {step.name} \"$vp_rc\"")
        out.append('cat "$vp_out"')
        out.append(f'[ "$vp_rc" -eq 0 ] || exit {FIRST_STEP_EXIT + i}')
    out.append("exit 0")
    return "\n".join(out) + "\n"


def parse(exit_status: int, stdout: str, stderr: str = "") -> Outcome:
    parts = _MARK_RE.split(stdout)
    # split() gives [before, name, rc, body, name, rc, body, ...]
    outcome = Outcome(exit_status=exit_status, stray=(parts[0].rstrip("\n") + stderr).strip())
    for i in range(1, len(parts) - 2, 3):
        body = parts[i + 2]
        if i + 3 < len(parts):
            body = body[:-1] if body.endswith("\n") else body  # the newline before the next mark
        outcome.steps.append(StepResult(parts[i], int(parts[i + 1]), body.strip()))
    if exit_status != 0 and outcome.failed is None:
        # The script itself broke (killed, or a step's shell error): say so on a pseudo-step.
        outcome.steps.append(StepResult("script", exit_status, outcome.stray))
    return outcome


def run(conn, steps: list[Step], timeout: float | None = None) -> Outcome:
    """Run `steps` over `conn` (an ssh.Connection) in one exec. SSHError only when the link
    fails or the deadline passes; a failing step is an Outcome, never an exception."""
    result = conn.run("sh -s", timeout=timeout, stdin=script(steps).encode())
    return parse(result.exit_status, result.stdout, result.stderr)
