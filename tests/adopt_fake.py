"""Fake nodes for the adopt tests: clusters.ssh.connect patched (our boundary, never paramiko) to
hand out connections that serve files from a dict and record every command and file access."""

import posixpath

import pytest

from clusters import ssh, survey


class FakeNode:
    def __init__(self, files, fingerprint, *, running=True, holds=(), hostname="", kinds=None):
        self.files = {path: (t.encode() if isinstance(t, str) else t) for path, t in files.items()}
        self.fingerprint = fingerprint
        self.running = running
        self.holds = list(holds)
        self.hostname = hostname
        self.kinds = dict(kinds or {})  # path -> "executable", "other", "dir"
        self.commands = []
        self.reads = []


class FakeConn:
    def __init__(self, node, address):
        self.node, self.address = node, address
        self.fingerprint = node.fingerprint

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        pass

    def run(self, command, timeout=None, stdin=None):
        self.node.commands.append(command)
        if command != survey.STATE_COMMAND:
            raise AssertionError(f"adoption ran something else on a node: {command!r}")
        lines = [f"running={int(self.node.running)}", f"hostname={self.node.hostname}"]
        lines.append("addresses:")
        lines.append(f"2: eth0    inet {self.address}/24 brd x scope global eth0")
        lines += [f"2: eth0    inet {a} scope global secondary eth0" for a in self.node.holds]
        return ssh.Result(0, "\n".join(lines) + "\n", "")

    def _dirs(self):
        out = set()
        for path in self.node.files:
            parent = posixpath.dirname(path)
            while parent not in out:
                out.add(parent)
                if parent == "/":
                    break
                parent = posixpath.dirname(parent)
        return out

    def file_kind(self, path):
        if path in self.node.kinds:
            return self.node.kinds[path]
        if path in self.node.files:
            return "file"
        return "dir" if path in self._dirs() else None

    def listdir(self, path, limit=4096):
        if path not in self._dirs():
            return None
        names = {
            p[len(path.rstrip("/")) + 1 :].split("/")[0]
            for p in [*self.node.files, *self._dirs()]
            if p.startswith(path.rstrip("/") + "/") and p != path
        }
        return sorted(names)

    def get(self, path, limit=ssh.READ_LIMIT):
        self.node.reads.append(path)
        data = self.node.files.get(path)
        if data is not None and len(data) > limit:
            raise ssh.SSHError(f"{path} is larger than {limit} bytes", permanent=True)
        return data


@pytest.fixture
def fake_nodes(monkeypatch):
    """{address: FakeNode}; fill it in the test. clusters.ssh.connect answers from it."""
    nodes = {}

    def connect(target, deadline=None):
        node = nodes.get(target.host)
        if node is None:
            raise ssh.SSHError(f"connection refused by {target.where} (is sshd running?)")
        expected = target.expected_fingerprint
        if not expected:
            raise ssh.HostKeyNotTrusted(target.where, node.fingerprint)
        if expected != node.fingerprint:
            raise ssh.HostKeyMismatch(target.where, expected, node.fingerprint)
        return FakeConn(node, target.host)

    monkeypatch.setattr(ssh, "connect", connect)
    return nodes
