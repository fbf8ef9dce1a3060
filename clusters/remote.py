"""Nodes as SSH targets: which key and address to use, and the host-key pinning rules.

clusters.ssh speaks SSH and knows nothing of the database; this module turns a Node into an
ssh.Target and records what a connection learned about the host key. Connecting happens
without the database (so it can run in threads); recording happens afterwards, in one place.
"""

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


def target_for(node: Node, command_timeout: float | None = None) -> NodeTarget:
    credential = node.ssh_credential
    if credential is None:
        raise ssh.SSHError(
            f"{node.name}: no SSH credential; set one on the node or its cluster", permanent=True
        )
    return NodeTarget(
        node_id=node.pk,
        name=node.name,
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


def record_first_contact(node_id: int, fingerprint: str) -> None:
    """Pin the host key seen on first contact; a key pinned meanwhile is never overwritten."""
    Node.objects.filter(pk=node_id, host_key_fingerprint="").update(
        host_key_fingerprint=fingerprint, offered_host_key_fingerprint=""
    )


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


def connect(node_target: NodeTarget) -> ssh.Connection:
    """Connect without touching the database; the caller records the outcome with `settle`."""
    return ssh.connect(node_target.target)


def settle(node_target: NodeTarget, conn: ssh.Connection | None, error: Exception | None) -> None:
    """Record in the database what a connection attempt learned about the host key."""
    if isinstance(error, ssh.HostKeyMismatch):
        record_mismatch(node_target.node_id, error.offered)
    elif conn is not None:
        if not node_target.target.expected_fingerprint:
            record_first_contact(node_target.node_id, conn.fingerprint)
        else:
            clear_mismatch(node_target.node_id, conn.fingerprint)


def open_node(node: Node, command_timeout: float | None = None) -> ssh.Connection:
    """Connect to a node from code that holds the database (a push step): pin or refuse."""
    node_target = target_for(node, command_timeout)
    try:
        conn = connect(node_target)
    except ssh.SSHError as e:
        settle(node_target, None, e)
        raise
    settle(node_target, conn, None)
    if not node.host_key_fingerprint:
        node.host_key_fingerprint = conn.fingerprint
    return conn


def repin(node: Node, fingerprint: str) -> None:
    """An operator accepted the key the node now offers (after comparing both fingerprints)."""
    Node.objects.filter(pk=node.pk).update(
        host_key_fingerprint=fingerprint, offered_host_key_fingerprint=""
    )
    node.host_key_fingerprint = fingerprint
    node.offered_host_key_fingerprint = ""
