"""Nodes as SSH targets: which key and address to use, the host-key rules, the connection pool.

clusters.ssh speaks SSH and knows nothing of the database; this module turns a Node into an
ssh.Target and records what a connection learned about the host key. Connecting happens
without the database (so it can run in threads); recording happens afterwards, in one place.

Host keys are trusted by a person only (clusters.services.hostkeys, the node form, the API):
nothing here ever pins one. A node with no pinned key answers every connection with
ssh.HostKeyNotTrusted, and the key it offered is recorded for that person to compare.

POOL keeps one authenticated connection per node between sweeps (``pooled``); pushes and drills
may use it too, or ``open_node`` for a connection of their own.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from clusters import ssh
from clusters.models import Node


@dataclass(frozen=True)
class NodeTarget:
    """Everything needed to reach one node, read from the database up front."""

    node_id: int
    name: str
    target: ssh.Target
    # The key the node offered instead of the pinned one, as the row said when this was read:
    # a healthy connection clears it, and has nothing to write when there is none (a sweep
    # would otherwise write every node's row every few seconds).
    offered: str = ""


def target_for(node: Node, command_timeout: float | None = None) -> NodeTarget:
    credential = node.ssh_credential
    if credential is None:
        raise ssh.SSHError(
            f"{node.name}: no SSH credential; set one on the node or its cluster", permanent=True
        )
    return NodeTarget(
        node_id=node.pk,
        name=node.name,
        offered=node.offered_host_key_fingerprint,
        target=ssh.Target(
            host=node.address,
            port=node.ssh_port,
            username=credential.username,
            private_key=credential.private_key,
            passphrase=credential.passphrase,
            expected_fingerprint=node.host_key_fingerprint,
            connect_timeout=settings.VIPANEL_SSH_CONNECT_TIMEOUT,
            command_timeout=command_timeout or settings.VIPANEL_SSH_COMMAND_TIMEOUT,
        ),
    )


def record_offered(node_id: int, offered: str) -> None:
    """Remember the key an untrusted node offers, for a person to compare and trust."""
    Node.objects.filter(pk=node_id, host_key_fingerprint="").exclude(
        offered_host_key_fingerprint=offered
    ).update(offered_host_key_fingerprint=offered)


def record_mismatch(node_id: int, offered: str) -> None:
    """Remember the key a node offered instead of the pinned one, to show it for a re-pin."""
    Node.objects.filter(pk=node_id).exclude(offered_host_key_fingerprint=offered).update(
        offered_host_key_fingerprint=offered
    )


def clear_mismatch(node_id: int, fingerprint: str) -> None:
    """The pinned key answered again: a stale "offered" key is no longer a problem."""
    Node.objects.filter(pk=node_id, host_key_fingerprint=fingerprint).exclude(
        Q(offered_host_key_fingerprint="")
    ).update(offered_host_key_fingerprint="")


def connect(node_target: NodeTarget, deadline: float | None = None) -> ssh.Connection:
    """Connect without touching the database; the caller records the outcome with `settle`."""
    return ssh.connect(node_target.target, deadline)


# One per process (each Celery worker process has its own): connections are kept between sweeps.
POOL = ssh.Pool(idle_seconds=settings.VIPANEL_SSH_POOL_IDLE)


@contextmanager
def pooled(node_target: NodeTarget, deadline: float | None = None) -> Iterator[ssh.Connection]:
    """A pooled connection to the node (no database); see ssh.Pool for when it is dropped.
    Record the outcome with `settle` as for `connect`."""
    with POOL.connection(node_target.node_id, node_target.target, deadline) as conn:
        yield conn


def settle(node_target: NodeTarget, conn: ssh.Connection | None, error: Exception | None) -> None:
    """Record in the database what a connection attempt learned about the host key."""
    if isinstance(error, ssh.HostKeyMismatch):
        record_mismatch(node_target.node_id, error.offered)
    elif isinstance(error, ssh.HostKeyNotTrusted):
        record_offered(node_target.node_id, error.offered)
    elif conn is not None and node_target.offered:
        clear_mismatch(node_target.node_id, conn.fingerprint)


def open_node(node: Node, command_timeout: float | None = None) -> ssh.Connection:
    """A new connection to a node from code that holds the database (a push step, a drill).
    Raises ssh.HostKeyNotTrusted when nobody has trusted the node's key yet; pins nothing."""
    node_target = target_for(node, command_timeout)
    try:
        conn = connect(node_target)
    except ssh.SSHError as e:
        settle(node_target, None, e)
        raise
    settle(node_target, conn, None)
    return conn


def repin(node: Node, fingerprint: str) -> None:
    """An operator accepted the key the node now offers (after comparing both fingerprints)."""
    Node.objects.filter(pk=node.pk).update(
        host_key_fingerprint=fingerprint, offered_host_key_fingerprint=""
    )
    node.host_key_fingerprint = fingerprint
    node.offered_host_key_fingerprint = ""
    POOL.discard(node.pk)
