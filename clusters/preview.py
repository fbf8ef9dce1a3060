"""What a push would change on each node: a unified diff against the node's live files.

Secrets (auth_pass) are masked on both sides before diffing, so a preview never shows one.
"""

import difflib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from clusters import impact, remote, ssh
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
    # What the push would send, secrets masked: shown whole when the live file cannot be read.
    rendered: str = ""
    # Left out by the operator (skip): not connected to, nothing sent.
    skipped: bool = False
    # Not sent by this push (in maintenance during a normal push).
    left: str = ""

    @property
    def unreachable(self):
        """Could not be read, and the push would have to change it."""
        return self.changed is None and not self.skipped and not self.left and bool(self.error)

    def as_dict(self):
        return {
            "node": self.node,
            "node_id": self.node_id,
            "changed": self.changed,
            "diff": self.diff,
            "error": self.error,
            "maintenance": self.maintenance,
            "rendered": self.rendered if self.changed is None else "",
            "skipped": self.skipped,
        }


@dataclass
class Preview:
    """What a push would do: each node's diff, and the prediction (clusters.impact)."""

    nodes: list
    impact: object
    # Why the skip asked for is unsafe ("" when it is not, or nothing is skipped).
    skip_problem: str = ""

    @property
    def unreachable(self):
        return [p.node for p in self.nodes if p.unreachable]

    @property
    def changed(self):
        return sum(1 for p in self.nodes if p.changed)

    @property
    def blocked(self):
        """Why a push of this preview would be refused now ("" when it would start)."""
        if self.skip_problem:
            return self.skip_problem
        if self.unreachable:
            names = ", ".join(self.unreachable)
            return (
                f"{names} could not be read. A push is refused while a node it must change is "
                f"unreachable: skip {names} (left as it is, never connected to) or bring it back."
            )
        return ""


def _fetch(node_target, path):
    with remote.connect(node_target) as conn:
        return conn.get(path), conn


def preview_cluster(cluster, maintenance=None, skip=(), action="push"):
    """-> Preview, nodes in node order. Reads each node's config over SSH, concurrently, except
    the `skip`ped ones (names). `maintenance` {node id: flag} previews a maintenance switch
    before it is made (its push renders with the flag)."""
    maintenance = maintenance or {}
    nodes = list(cluster.nodes.select_related("credential", "cluster__credential", "state"))
    for node in nodes:
        node.maintenance = maintenance.get(node.pk, node.maintenance)
    # A normal push leaves nodes in maintenance as they are; a maintenance push sends them all.
    leave_alone = action == "push"
    rendered, targets, results, live = {}, {}, {}, {}
    try:
        path = config_path(cluster)
    except ValueError as e:
        # Never read a file that is not keepalived's (a row saved without validation).
        previews = [NodePreview(n.name, n.pk, None, "", str(e), n.maintenance) for n in nodes]
        return Preview(previews, impact.Impact(action=action, cluster=cluster.name))
    for node in nodes:
        if node.name in skip:
            results[node.pk] = NodePreview(
                node.name, node.pk, None, "", "", node.maintenance, skipped=True
            )
            continue
        try:
            rendered[node.pk] = node_config(node)
            targets[node.pk] = remote.target_for(node)
        except (ValueError, ssh.SSHError) as e:
            results[node.pk] = NodePreview(
                node.name, node.pk, None, "", str(getattr(e, "message", e)), node.maintenance
            )
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(targets) or 1))) as pool:
        futures = {pk: pool.submit(_fetch, t, path) for pk, t in targets.items()}
    for node in nodes:
        left = "in maintenance: left as it is" if leave_alone and node.maintenance else ""
        if node.pk in results:
            results[node.pk].left = left
            results[node.pk].rendered = mask_secrets(rendered.get(node.pk, ""))
            continue
        try:
            text, conn = futures[node.pk].result()
            if targets[node.pk].target.expected_fingerprint:
                # Only a pinned key is confirmed; a preview never pins one (a person trusts it,
                # clusters.services.hostkeys), so a first contact is not settled here.
                remote.settle(targets[node.pk], conn, None)
        except ssh.SSHError as e:
            remote.settle(targets[node.pk], None, e)
            results[node.pk] = NodePreview(
                node.name,
                node.pk,
                None,
                "",
                e.message,
                node.maintenance,
                rendered=mask_secrets(rendered[node.pk]),
                left=left,
            )
            continue
        live[node.pk] = text
        diff = masked_diff(
            (text or b"").decode(errors="replace"),
            rendered[node.pk],
            f"{node.name}:{cluster.config_path} (live)" if text is not None else "/dev/null",
            f"{node.name}:{cluster.config_path} (vipanel)",
        )
        results[node.pk] = NodePreview(
            node.name, node.pk, bool(diff), diff, "", node.maintenance, left=left
        )
    previews = [results[n.pk] for n in nodes]
    push_nodes = [_push_node(n, results[n.pk], live, rendered) for n in nodes]
    holders = impact.observed_holders(cluster)
    return Preview(
        previews,
        impact.predict_push(cluster.name, push_nodes, holders, action=action),
        impact.skip_problem(push_nodes),
    )


def preview_node(node):
    """-> NodePreview of one node (its page's live diff): its live file against what a push
    would send it. Only that node is read: the others are left out as skipped."""
    others = list(node.cluster.nodes.exclude(pk=node.pk).values_list("name", flat=True))
    preview = preview_cluster(node.cluster, skip=others)
    return next(p for p in preview.nodes if p.node_id == node.pk)


def _push_node(node, preview, live, rendered):
    """The prediction's view of one node (clusters.impact.PushNode)."""
    state = impact.state_of(node)
    readable = node.pk in live
    text = live.get(node.pk)
    sent = rendered.get(node.pk)
    if preview.skipped:
        left = "skipped (unreachable)"
    else:
        left = preview.left
    return impact.PushNode(
        name=node.name,
        address=node.address,
        priority=node.priority,
        live=text.decode(errors="replace") if text is not None else None,
        readable=readable,
        rendered=None if left or sent is None else sent,
        # As last probed; never probed: running if it has a file (a first push finds none).
        running=(
            state.keepalived_running
            if state is not None and state.reachable
            else (text is not None if readable else None)
        ),
        maintenance=node.maintenance,
        left=left,
        error=preview.error,
        assumed=sent if not readable else None,
    )


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
