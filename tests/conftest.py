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
