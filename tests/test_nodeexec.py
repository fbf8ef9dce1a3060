"""clusters.nodeexec: the script it builds, run by a real local `sh -s` (what sshd runs on a
node), and the parse of what it printed."""

import os
import subprocess

from clusters import nodeexec
from clusters.nodeexec import Step


def run_locally(steps):
    proc = subprocess.run(
        ["sh", "-s"], input=nodeexec.script(steps).encode(), capture_output=True, check=False
    )
    return nodeexec.parse(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def test_each_step_keeps_its_exit_code_and_output():
    outcome = run_locally([Step("one", "echo hello; echo err >&2"), Step("two", "printf 'a\\nb'")])
    assert outcome.ok and outcome.exit_status == 0
    assert [(s.name, s.exit_code, s.output) for s in outcome.steps] == [
        ("one", 0, "hello\nerr"),
        ("two", 0, "a\nb"),
    ]


def test_the_first_failing_step_stops_the_script_and_the_exit_code_names_it():
    outcome = run_locally(
        [Step("ok", "true"), Step("bad", "echo nope; exit 7"), Step("never", "echo ran")]
    )
    assert not outcome.ok
    assert outcome.exit_status == nodeexec.FIRST_STEP_EXIT + 1
    failed = outcome.failed
    assert (failed.name, failed.exit_code, failed.output) == ("bad", 7, "nope")
    assert outcome.step("never") is None


def test_a_step_reading_stdin_cannot_eat_the_rest_of_the_script():
    outcome = run_locally([Step("greedy", "cat"), Step("after", "echo still here")])
    assert outcome.ok
    assert outcome.step("after").output == "still here"


def test_upload_writes_the_exact_bytes_with_the_mode(tmp_path):
    target = tmp_path / "secret.conf"
    data = bytes(range(256)) + b"\nauth_pass 'x'\n$HOME `id`\n"
    outcome = run_locally([Step("upload", nodeexec.upload_command({str(target): (data, 0o600)}))])
    assert outcome.ok, outcome.failed
    assert target.read_bytes() == data
    assert os.stat(target).st_mode & 0o777 == 0o600


def test_a_broken_script_is_reported_on_a_pseudo_step():
    outcome = nodeexec.parse(137, "", "Killed")
    assert not outcome.ok and outcome.failed.name == "script" and outcome.failed.output == "Killed"
