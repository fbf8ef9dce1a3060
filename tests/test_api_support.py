"""The API tests' cast: a token per role, a client that sends it, and a fake SSH boundary.

Fixtures only (no tests); the API test modules import them. Users get no password: an API
token is all they need, and hashing passwords would cost most of the run time.
"""

import json
from dataclasses import dataclass, field

import pytest
from django.test import Client

from clusters import roles, ssh
from clusters.models import ApiToken
from tests.cast import make_user, operator, viewer  # noqa: F401 (fixtures shared with the views' tests)

PASSPHRASE = "correct horse battery"
AUTH_PASS = "vrrp9Pw"
FINGERPRINT = "SHA256:" + "A" * 43
OTHER_FINGERPRINT = "SHA256:" + "B" * 43


class Api:
    """A test client that sends `Authorization: Token KEY` (or nothing) and JSON bodies."""

    def __init__(self, key=None, client=None):
        self.client = client or Client()
        self.headers = {"Authorization": f"Token {key}"} if key else {}

    def request(self, method, path, data=None, raw=None, **params):
        kwargs = {"headers": self.headers}
        if method == "GET":
            return self.client.get(path, params, **kwargs)
        body = raw if raw is not None else ("" if data is None else json.dumps(data))
        return self.client.generic(method, path, body, content_type="application/json", **kwargs)

    def get(self, path, **params):
        return self.request("GET", path, **params)

    def post(self, path, data=None, **kw):
        return self.request("POST", path, data, **kw)

    def patch(self, path, data=None, **kw):
        return self.request("PATCH", path, data, **kw)

    def delete(self, path):
        return self.request("DELETE", path)


def token_for(user):
    return ApiToken.issue(user)[1]


@pytest.fixture
def admin_user(db):
    return make_user("ada", roles.ADMIN)


@pytest.fixture
def viewer_api(viewer):
    return Api(token_for(viewer))


@pytest.fixture
def operator_api(operator):
    return Api(token_for(operator))


@pytest.fixture
def admin_api(admin_user):
    return Api(token_for(admin_user))


@pytest.fixture
def anon_api(db):
    return Api()


# --- A fake SSH boundary (clusters.ssh.connect) -----------------------------------------------


@dataclass
class FakeHost:
    running: bool = True
    state: str = "BACKUP"
    addresses: list = field(default_factory=list)
    files: dict = field(default_factory=dict)
    fingerprint: str = FINGERPRINT
    down: bool = False


class FakeConnection:
    def __init__(self, host: FakeHost, target):
        self.host, self.target = host, target
        self.fingerprint = host.fingerprint

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        pass

    @property
    def active(self):
        return not self.host.down

    def get(self, path):
        return self.host.files.get(path)

    def run_kept(self, command, timeout=None):  # the sweep's probe (ssh.Connection)
        return self.run(command, timeout)

    def run(self, command, timeout=None, stdin=None):
        lines = [
            f"running={1 if self.host.running else 0}",
            f"state={self.host.state}",
            "config=",
            "addresses:",
        ]
        lines += [f"2: eth0    inet {a} scope global eth0" for a in self.host.addresses]
        return ssh.Result(exit_status=0, stdout="\n".join(lines) + "\n", stderr="")


@pytest.fixture
def fake_ssh(monkeypatch):
    """Hosts by address; a host not listed (or down) refuses the connection."""
    hosts = {}

    def connect(target, deadline=None):
        host = hosts.get(target.host)
        if host is None or host.down:
            raise ssh.SSHError(f"{target.host}: connection refused")
        if not target.expected_fingerprint:
            raise ssh.HostKeyNotTrusted(target.host, host.fingerprint)
        if target.expected_fingerprint != host.fingerprint:
            raise ssh.HostKeyMismatch(target.host, target.expected_fingerprint, host.fingerprint)
        return FakeConnection(host, target)

    monkeypatch.setattr(ssh, "connect", connect)
    return hosts
