"""The fixed cast of the test suite: users with each role, a credential, a two-node cluster."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from clusters.models import Cluster, Node, SSHCredential, VirtualIP
from tests.pushed import mark_pushed

# Fixtures of the lab and of a real Celery worker, for every test module that asks for them.
pytest_plugins = ["tests.lab.fixtures", "tests.worker"]


@pytest.fixture(autouse=True)
def _empty_ssh_pool():
    """Connections kept by clusters.remote.POOL belong to one test (and its fakes) only."""
    yield
    from clusters import remote

    remote.POOL.clear()


def make_private_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def credential(db):
    return SSHCredential.objects.create(name="ops", username="root", private_key=make_private_key())


@pytest.fixture
def cluster(db, credential):
    """A multicast cluster of two nodes with one VIP, pushed: web-1 (priority 120) and web-2
    (110)."""
    c = Cluster.objects.create(
        name="web",
        network="192.0.2.0/24",
        virtual_router_id=51,
        interface="eth0",
        credential=credential,
    )
    Node.objects.create(cluster=c, name="web-1", address="192.0.2.11", priority=120)
    Node.objects.create(cluster=c, name="web-2", address="192.0.2.12", priority=110)
    VirtualIP.objects.create(cluster=c, address="192.0.2.100/24", label="frontend")
    # As a push left it: nothing pending (tests of what is pending add or change something).
    return mark_pushed(c)


@pytest.fixture
def nodes_refuse_ssh():
    """Every SSH connection the panel opens is refused at once, as by a node without sshd.

    Adding a node tests SSH to it at once (clusters.nodecheck); the cast's addresses are
    documentation ranges, and 192.0.2.0/24 may be this machine's own segment: no test but the
    lab's may reach out. Patched at our own boundary (clusters.remote.connect), never paramiko.
    """
    from unittest import mock

    from clusters import ssh

    def refuse(node_target, deadline=None):
        raise ssh.SSHError(
            f"connection refused by {node_target.target.where} (is sshd running?)",
            stage="connect",
        )

    with mock.patch("clusters.remote.connect", side_effect=refuse) as connect:
        yield connect
