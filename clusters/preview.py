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
    nodes = list(cluster.nodes.select_related("credential", "cluster__credential"))
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
        diff = masked_diff(
            (live or b"").decode(errors="replace"),
            rendered[node.pk],
            f"{node.name}:{cluster.config_path} (live)" if live is not None else "/dev/null",
            f"{node.name}:{cluster.config_path} (vipanel)",
        )
        results[node.pk] = NodePreview(node.name, node.pk, bool(diff), diff, "", node.maintenance)
    return [results[n.pk] for n in nodes]


def masked_diff(old, new, fromfile, tofile):
    """A unified diff of two texts with their secrets masked on both sides ("" when equal)."""
    return "".join(
        difflib.unified_diff(
            mask_secrets(old).splitlines(keepends=True),
            mask_secrets(new).splitlines(keepends=True),
            fromfile=fromfile,
            tofile=tofile,
        )
    )


@dataclass
class Drift:
    """What was edited on a node: the file vipanel last pushed there against the live one the
    probe read (no SSH here: the sweep kept it). `against` says what the live file is compared
    with: "pushed", or "rendered" when vipanel has no copy of what it pushed (a node an upgrade
    adopted with a file vipanel would not render)."""

    diff: str
    against: str
    checked_at: object


def drift_of(node, state):
    """-> Drift, or None when the last probe found no drift. A drift whose file the sweep has
    not kept yet (an older release's record, or the read failed) has no diff: against="unread"."""
    if state is None or not state.drift:
        return None
    if not state.drift_config_sha:
        return Drift("", "unread", state.checked_at)
    path = node.cluster.config_path
    live = f"{node.name}:{path} (live, edited on the node)"
    if node.pushed_config:
        pushed = f"{node.name}:{path} (pushed by vipanel"
        pushed += f" {node.pushed_at:%Y-%m-%d %H:%M:%S %Z})" if node.pushed_at else ")"
        return Drift(
            masked_diff(node.pushed_config, state.drift_config, pushed, live),
            "pushed",
            state.checked_at,
        )
    try:
        rendered = node_config(node)
    except ValueError as e:
        rendered = f"# vipanel cannot render this node's config now: {e}\n"
    return Drift(
        masked_diff(rendered, state.drift_config, f"{node.name}:{path} (vipanel now)", live),
        "rendered",
        state.checked_at,
    )
