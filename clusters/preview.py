"""What a push would change on each node: a unified diff against the node's live files.

Secrets (auth_pass) are masked on both sides before diffing, so a preview never shows one.
"""

import difflib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from clusters import remote, ssh
from clusters.render import config_path, node_config

_AUTH_PASS = re.compile(r"^(\s*auth_pass\s+)\S+", re.MULTILINE)
MASK = "********"


def mask_secrets(text: str) -> str:
    return _AUTH_PASS.sub(lambda m: m.group(1) + MASK, text)


def cluster_secrets(cluster):
    """The values of `cluster` no text shown to anyone may contain."""
    return [cluster.auth_pass, cluster.notify_secret]


def scrub(text, secrets=()):
    """`text` (node output, a push log) with auth_pass lines masked and every one of `secrets`
    replaced: the one scrubber of the panel and the API."""
    text = mask_secrets(text or "")
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


@dataclass
class NodePreview:
    node: str
    node_id: int
    changed: bool | None  # None: the live file could not be read
    diff: str
    error: str = ""
    maintenance: bool = False

    def as_dict(self):
        return {
            "node": self.node,
            "node_id": self.node_id,
            "changed": self.changed,
            "diff": self.diff,
            "error": self.error,
            "maintenance": self.maintenance,
        }


def _fetch(node_target, path):
    with remote.connect(node_target) as conn:
        return conn.get(path), conn


def preview_cluster(cluster):
    """-> [NodePreview], in node order. Reads each node's config over SSH, concurrently."""
    return preview_nodes(cluster, cluster.nodes.select_related("credential", "cluster__credential"))


def preview_node(node):
    """-> NodePreview of one node: its live file against what a push would send it."""
    return preview_nodes(node.cluster, [node])[0]


def preview_nodes(cluster, nodes):
    nodes = list(nodes)
    rendered, targets, results = {}, {}, {}
    try:
        path = config_path(cluster)
    except ValueError as e:
        # Never read a file that is not keepalived's (a row saved without validation).
        return [NodePreview(n.name, n.pk, None, "", str(e), n.maintenance) for n in nodes]
    for node in nodes:
        try:
            rendered[node.pk] = node_config(node)
            targets[node.pk] = remote.target_for(node)
        except (ValueError, ssh.SSHError) as e:
            results[node.pk] = NodePreview(
                node.name, node.pk, None, "", str(getattr(e, "message", e))
            )
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(targets)))) as pool:
        futures = {pk: pool.submit(_fetch, t, path) for pk, t in targets.items()}
    for node in nodes:
        if node.pk in results:
            continue
        try:
            live, conn = futures[node.pk].result()
            if targets[node.pk].target.expected_fingerprint:
                # Only a pinned key is confirmed; a preview never pins one (a person trusts it,
                # clusters.services.hostkeys), so a first contact is not settled here.
                remote.settle(targets[node.pk], conn, None)
        except ssh.SSHError as e:
            remote.settle(targets[node.pk], None, e)
            results[node.pk] = NodePreview(
                node.name, node.pk, None, "", e.message, node.maintenance
            )
            continue
        old = mask_secrets((live or b"").decode(errors="replace"))
        new = mask_secrets(rendered[node.pk])
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"{node.name}:{cluster.config_path} (live)"
                if live is not None
                else "/dev/null",
                tofile=f"{node.name}:{cluster.config_path} (vipanel)",
            )
        )
        results[node.pk] = NodePreview(node.name, node.pk, bool(diff), diff, "", node.maintenance)
    return [results[n.pk] for n in nodes]
