"""clusters.ssh against real sshd in the lab: pinning, deadlines, big output, files."""

import dataclasses
import os
import resource
import socket
import subprocess
import threading

import paramiko
import pytest

from clusters import ssh
from clusters.ssh import HostKeyMismatch, SSHError, Target, connect


def keygen(tmp_path, kind, *extra, passphrase=""):
    path = tmp_path / f"key-{kind}-{len(list(tmp_path.iterdir()))}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "test", "-f", str(path), *extra],
        check=True,
    )
    return path


def sshd_log(node):
    return (node.dir / "sshd.log").read_text()


# Keys and fingerprints: no lab needed


def test_fingerprint_is_the_one_ssh_keygen_prints(tmp_path):
    path = keygen(tmp_path, "ed25519")
    printed = subprocess.run(
        ["ssh-keygen", "-lf", f"{path}.pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert ssh.fingerprint(paramiko.Ed25519Key.from_private_key_file(str(path))) == printed


@pytest.mark.parametrize(
    "kind, extra, cls",
    [
        ("ed25519", [], paramiko.Ed25519Key),
        ("ecdsa", [], paramiko.ECDSAKey),
        ("rsa", ["-b", "2048"], paramiko.RSAKey),
        ("rsa", ["-b", "2048", "-m", "PEM"], paramiko.RSAKey),
        ("ecdsa", ["-m", "PEM"], paramiko.ECDSAKey),
    ],
)
def test_it_loads_ed25519_ecdsa_and_rsa_keys(tmp_path, kind, extra, cls):
    path = keygen(tmp_path, kind, *extra)
    assert isinstance(ssh.load_private_key(path.read_text()), cls)


def test_an_encrypted_key_needs_its_passphrase(tmp_path):
    text = keygen(tmp_path, "ed25519", passphrase="s3cret-pass").read_text()
    assert isinstance(ssh.load_private_key(text, "s3cret-pass"), paramiko.Ed25519Key)
    with pytest.raises(SSHError, match="encrypted and no passphrase") as missing:
        ssh.load_private_key(text)
    with pytest.raises(SSHError, match="wrong passphrase") as wrong:
        ssh.load_private_key(text, "not-it")
    assert missing.value.permanent and wrong.value.permanent


def test_a_bad_private_key_is_a_permanent_error_that_does_not_quote_it():
    garbage = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "c2VjcmV0IGJ1dCBicm9rZW4=\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    )
    target = Target("198.18.77.11", 22, "root", private_key=garbage)
    with pytest.raises(SSHError) as e:
        connect(target)
    assert e.value.permanent and e.value.stage == "credential"
    assert "private key" in e.value.message
    assert "c2VjcmV0" not in e.value.message
    assert garbage not in repr(target)


@pytest.mark.parametrize(
    "change",
    [
        {"host": "192.0.2.12"},
        {"port": 2222},
        {"username": "admin"},
        {"private_key": "another key"},
        {"passphrase": "another passphrase"},
        {"expected_fingerprint": "SHA256:" + "B" * 43},
    ],
)
def test_the_pool_reconnects_when_anything_a_connection_was_made_for_changes(monkeypatch, change):
    made = []

    class Kept:
        active = True

        def close(self):
            self.active = False

    def connect(target, deadline=None):
        made.append(target)
        return Kept()

    monkeypatch.setattr(ssh, "connect", connect)
    pool = ssh.Pool(idle_seconds=60)
    target = Target(
        host="192.0.2.11",
        port=22,
        username="root",
        private_key="a key",
        expected_fingerprint="SHA256:" + "A" * 43,
    )
    with pool.connection(1, target) as first:
        pass
    with pool.connection(1, target) as again:
        assert again is first  # the same target: kept
    with pool.connection(1, dataclasses.replace(target, **change)) as other:
        assert other is not first and not first.active  # the old one is closed
    assert len(made) == 2 and pool.stats.dropped == 1


def test_a_silent_server_hits_the_banner_deadline(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    thread.start()
    key = keygen(tmp_path, "ed25519").read_text()
    target = Target("127.0.0.1", server.getsockname()[1], "root", key, connect_timeout=1)
    try:
        with pytest.raises(SSHError) as e:
            connect(target)
        assert not e.value.permanent and e.value.stage == "handshake"
        assert "127.0.0.1" in e.value.message
    finally:
        server.close()
        for conn, _ in accepted:
            conn.close()


# Against the lab


@pytest.mark.lab
def test_it_runs_commands_on_one_reused_connection(lab):
    node = lab[0]
    with connect(node.target()) as conn:
        assert conn.run("hostname").stdout.strip() == node.name
        failed = conn.run("echo oops >&2; exit 3")
        assert (failed.exit_status, failed.stderr, failed.ok) == (3, "oops\n", False)
        assert conn.run("cat", stdin=b"fed through stdin").stdout == "fed through stdin"
        assert conn.run("wc -c", stdin=b"y" * 3_000_000).stdout.strip() == "3000000"


@pytest.mark.lab
def test_a_kept_shell_runs_each_command_in_one_shell_on_the_node(lab):
    node = lab[0]
    with connect(node.target()) as conn:
        first = conn.run_kept("echo $$; hostname")
        shell_pid, name = first.stdout.split()
        assert (first.exit_status, name) == (0, node.name)
        # The same shell each time: no session or shell started per command.
        assert conn.run_kept("echo $$").stdout.split() == [shell_pid]
        failed = conn.run_kept("echo oops >&2; printf 'no newline'; false  # a comment")
        assert (failed.exit_status, failed.stdout, failed.stderr) == (1, "no newline", "")
        # A command reads nothing meant for the shell (its stdin is /dev/null).
        assert conn.run_kept("cat; echo after").stdout == "after\n"
        # `exit` ends the kept shell: an error for that call, and the next starts another.
        with pytest.raises(SSHError, match="ended while a command ran"):
            conn.run_kept("exit 4")
        again = conn.run_kept("echo $$")
        assert again.exit_status == 0 and again.stdout.split() != [shell_pid]


@pytest.mark.lab
def test_a_kept_shell_past_its_deadline_is_closed_and_the_next_call_gets_a_new_one(lab):
    node = lab[0]
    with connect(node.target()) as conn:
        shell_pid = conn.run_kept("echo $$").stdout.strip()
        with pytest.raises(SSHError) as e:
            conn.run_kept("sleep 30", timeout=1)
        assert not e.value.permanent
        assert e.value.message == f"command timed out after 1s on {node.address}"
        # The late command's output never answers the next call.
        after = conn.run_kept("echo $$; echo fresh")
        assert after.stdout.split()[1:] == ["fresh"] and after.stdout.split()[0] != shell_pid


@pytest.mark.lab
def test_commands_run_with_more_than_a_thousand_descriptors_open(lab):
    """A sweep worker keeps a connection per node it met: past about a thousand nodes its
    descriptors pass select()'s limit of 1024, which must not make every command fail."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), max(hard, 4096)))
    pipes = [os.pipe() for _ in range(600)]
    try:
        with connect(lab[0].target()) as conn:
            result = conn.run("echo far")
            assert result.stdout == "far\n"
            assert conn.run_kept("echo kept").stdout == "kept\n"
    finally:
        for r, w in pipes:
            os.close(r)
            os.close(w)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.lab
def test_an_untrusted_host_is_refused_before_authentication_with_its_offered_key(lab):
    node = lab[1]
    log_before = len(sshd_log(node))
    with pytest.raises(ssh.HostKeyNotTrusted) as e:
        connect(node.target(expected_fingerprint=""))
    assert e.value.permanent and e.value.offered == node.original_fingerprint
    assert e.value.stage == "host_key"
    assert e.value.message == f"host key not trusted yet: {node.original_fingerprint}"
    assert e.value.offered.startswith("SHA256:") and not e.value.offered.endswith("=")
    attempt = sshd_log(node)[log_before:]
    assert "Accepted" not in attempt and "publickey" not in attempt, attempt


@pytest.mark.lab
def test_a_wrong_pinned_key_is_refused_before_authentication(lab):
    node = lab[0]
    wrong = "SHA256:" + "A" * 43
    log_before = len(sshd_log(node))
    target = node.target(expected_fingerprint=wrong)
    with pytest.raises(HostKeyMismatch) as e, connect(target) as conn:
        conn.run("touch /tmp/vipanel-test-must-not-exist")
    assert e.value.permanent and e.value.stage == "host_key"
    assert (e.value.expected, e.value.offered) == (wrong, node.fingerprint)
    assert node.address in e.value.message and wrong in e.value.message
    assert node.exec("test -e /tmp/vipanel-test-must-not-exist", check=False).returncode == 1
    # sshd saw a key exchange and a hang-up, never a login attempt.
    attempt = sshd_log(node)[log_before:]
    assert "Accepted" not in attempt and "publickey" not in attempt, attempt


@pytest.mark.lab
def test_after_a_host_key_change_the_old_pin_is_refused(clean_lab):
    node = clean_lab[2]
    old = node.fingerprint
    new = node.replace_host_key()
    assert new != old
    with pytest.raises(HostKeyMismatch) as e:
        connect(node.target(expected_fingerprint=old))
    assert e.value.offered == new
    with connect(node.target(expected_fingerprint=new)) as conn:
        assert conn.run("true").ok


@pytest.mark.lab
def test_ten_megabytes_of_output_arrive_and_only_the_tail_is_kept(lab):
    with connect(lab[0].target()) as conn:
        result = conn.run(r"head -c 10000000 /dev/zero | tr '\0' x; echo done >&2")
    assert result.ok and result.stderr == "done\n"
    assert result.stdout_dropped == 10_000_000 - ssh.MAX_OUTPUT_BYTES
    assert result.truncated
    header, kept = result.stdout.split("\n", 1)
    assert f"{result.stdout_dropped} bytes dropped" in header
    assert kept == "x" * ssh.MAX_OUTPUT_BYTES


@pytest.mark.lab
def test_both_streams_are_read_while_the_command_runs(lab):
    # More than paramiko's 2 MB window on each stream: unread, either would stall the command.
    with connect(lab[1].target()) as conn:
        result = conn.run(
            r"head -c 3000000 /dev/zero | tr '\0' e >&2; head -c 900000 /dev/zero | tr '\0' o"
        )
    assert result.ok
    assert result.stdout == "o" * 900_000 and result.stdout_dropped == 0
    assert result.stderr_dropped == 2_000_000 and result.stderr.endswith("e" * ssh.MAX_OUTPUT_BYTES)


@pytest.mark.lab
def test_a_command_past_its_deadline_is_a_temporary_error(lab):
    node = lab[0]
    with connect(node.target()) as conn:
        with pytest.raises(SSHError) as e:
            conn.run("sleep 30", timeout=2)
        assert not e.value.permanent
        assert e.value.message == f"command timed out after 2s on {node.address}"
        assert conn.run("echo still usable").stdout == "still usable\n"


@pytest.mark.lab
def test_a_stopped_sshd_is_a_temporary_error(clean_lab):
    node = clean_lab[1]
    node.stop_sshd()
    with pytest.raises(SSHError) as e:
        connect(node.target())
    assert not e.value.permanent and e.value.stage == "connect"
    assert "refused" in e.value.message and node.address in e.value.message


@pytest.mark.lab
def test_an_address_nobody_answers_is_a_temporary_error(lab):
    absent = str(lab.network.network_address + 99)
    target = lab[0].target(host=absent, connect_timeout=1)
    with pytest.raises(SSHError) as e:
        connect(target)
    assert not e.value.permanent and absent in e.value.message
    assert e.value.stage == "connect"


@pytest.mark.lab
def test_a_key_the_host_does_not_accept_is_a_permanent_error(lab, tmp_path):
    stranger = keygen(tmp_path, "ed25519").read_text()
    with pytest.raises(SSHError) as e:
        connect(lab[0].target(private_key=stranger))
    assert e.value.permanent and e.value.stage == "auth"
    assert "authentication failed for root@" in e.value.message


@pytest.mark.lab
@pytest.mark.parametrize("kind, extra", [("ecdsa", []), ("rsa", ["-b", "2048", "-m", "PEM"])])
def test_ecdsa_and_rsa_client_keys_log_in(lab, tmp_path, kind, extra):
    path = keygen(tmp_path, kind, *extra)
    authorized = lab.state_dir / "authorized_keys"
    original = authorized.read_text()
    authorized.write_text(original + (tmp_path / f"{path.name}.pub").read_text())
    try:
        with connect(lab[0].target(private_key=path.read_text())) as conn:
            assert conn.run("id -un").stdout == "root\n"
    finally:
        authorized.write_text(original)


@pytest.mark.lab
def test_put_replaces_a_file_atomically_with_its_mode(clean_lab):
    node = clean_lab[0]
    path = "/etc/keepalived/keepalived.conf"
    with connect(node.target()) as conn:
        assert conn.get(path) is None
        conn.put(path, b"first\n", mode=0o600)
        inode = node.exec(f"stat -c %i {path}").stdout
        conn.put(path, b"second\n", mode=0o640)
        assert conn.get(path) == b"second\n"
        assert conn.stat_mode(path) == 0o640
        assert node.exec(f"stat -c %a {path}").stdout.strip() == "640"
        assert node.exec(f"stat -c %i {path}").stdout != inode  # renamed over, not rewritten
        assert (node.config_dir / "keepalived.conf").read_bytes() == b"second\n"
        assert sorted(p.name for p in node.config_dir.iterdir()) == ["keepalived.conf"]


@pytest.mark.lab
def test_put_temp_then_rename(clean_lab):
    node = clean_lab[1]
    path = "/etc/keepalived/keepalived.conf"
    with connect(node.target()) as conn:
        conn.put(path, b"live\n")
        temp = conn.put_temp(path, b"candidate\n", mode=0o600)
        assert temp.startswith("/etc/keepalived/.keepalived.conf.vipanel-tmp-")
        assert conn.get(path) == b"live\n"
        assert conn.get(temp) == b"candidate\n" and conn.stat_mode(temp) == 0o600
        conn.rename(temp, path)
        assert conn.get(path) == b"candidate\n"
        assert conn.get(temp) is None


@pytest.mark.lab
def test_file_errors_name_the_host_and_path(lab):
    node = lab[0]
    with connect(node.target()) as conn, pytest.raises(SSHError) as e:
        conn.put("/no/such/dir/file", b"x")
    assert e.value.permanent
    assert node.address in e.value.message and "/no/such/dir/" in e.value.message
