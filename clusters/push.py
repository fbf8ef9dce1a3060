"""The push engine: plan every node at once, roll only what changed, verify what matters.

A push is a ConfigPush row with one PushStep per node. clusters.services.pushes creates it
(refusing a second active push or drill of the same cluster, which the database also forbids) and
enqueues it on commit; this module is the engine and never imports the tasks. `run_push` is a
plain function the Celery task wraps, so tests call it directly too. Every
outcome is written as it happens, so a worker that dies leaves an honest record: the push is
found "interrupted" by the sweep and can be resumed from the step that did not finish.

One owner: the claim writes a fencing token (ConfigPush.owner); every later write is
conditional on it and on the push still running, and the heartbeat (on the database's clock)
stops the push when it cannot renew. A worker that lost its push stops and writes nothing more.

Plan first: every node is connected to (one SSH connection per node, kept for the whole push)
and probed at once; nodes already as rendered are "unchanged" at once and never roll. When no
node runs keepalived (nothing is served yet), all are installed together and one election is
waited for. Otherwise the changed nodes roll one at a time (no VIP first, lowest priority first,
the holder last), each in one exec (clusters.nodeexec): upload beside the target, `keepalived -t`
(with the new notify script), save what was there once per push (never overwritten by a resume),
rename over the target (atomic), iptables test and apply, reload. Then that node and the current
holders are verified; the whole cluster once at the end. Any failure after the rename puts the
saved files back in one exec, with keepalived reloaded or stopped as it was, and stops the push.
"""

import base64
import hashlib
import logging
import posixpath
import re
import secrets
import shlex
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Value
from django.db.models.functions import Concat, Now
from django.utils import timezone

from clusters import audit, constants, impact, nodeexec, notify, remote, signals, ssh
from clusters.convergence import settle_seconds, wait_until_settled
from clusters.models import ConfigPush, Node, PushStep, VirtualIP
from clusters.render import (
    advertised_vips,
    firewall_families,
    iptables_jump_command,
    iptables_list_command,
    iptables_restore_command,
    iptables_rule_lines,
    node_config,
    render_iptables,
)
from clusters.status import ClusterStatus, NodeProbe, _probe_command, _vrrp_state, parse_probe

log = logging.getLogger(__name__)

BACKUP_SUFFIX = ".vipanel-bak"
# The steps after which a node has what this push rendered for it (a skipped one has not).
WROTE_OR_FOUND = (PushStep.State.APPLIED, PushStep.State.UNCHANGED)


class StepFailed(Exception):
    def __init__(self, detail, exit_code=None, output=""):
        super().__init__(detail)
        self.detail = detail
        self.exit_code = exit_code
        self.output = output


class PushLost(Exception):
    """This worker no longer owns the push (marked interrupted, resumed elsewhere, or its
    heartbeat failed past the limit): it stops and writes nothing more."""


class Owner:
    """The fencing token of one claim of a push. Every write of the push's state is
    conditional on it, so a worker that lost the push can never overwrite its new owner's."""

    def __init__(self, push_id, token):
        self.push_id, self.token = push_id, token
        self.lost = threading.Event()

    def rows(self):
        return ConfigPush.objects.filter(
            pk=self.push_id, owner=self.token, state=ConfigPush.State.RUNNING
        )

    def check(self):
        if self.lost.is_set():
            raise PushLost(f"push #{self.push_id}: no longer ours")

    def update(self, **fields):
        self.check()
        if not self.rows().update(**fields):
            self.lost.set()
            raise PushLost(f"push #{self.push_id}: no longer ours")

    def update_step(self, step_id, **fields):
        self.check()
        # One conditional UPDATE: the step is written only while its push is still ours.
        owned = PushStep.objects.filter(
            pk=step_id, push__owner=self.token, push__state=ConfigPush.State.RUNNING
        )
        if not owned.update(**fields):
            self.lost.set()
            raise PushLost(f"push #{self.push_id}: no longer ours")


def _db_cutoff(now, seconds):
    """`seconds` ago on the database's clock (or before `now`, when a test gives one): every
    heartbeat is written with the database's NOW(), so no two hosts' clocks are compared."""
    delta = timezone.timedelta(seconds=seconds)
    if now is not None:
        return now - delta
    return ExpressionWrapper(Now() - Value(delta), output_field=DateTimeField())


def requeue_lost_pushes(enqueue, enqueue_drill, now=None):
    """Hand queued pushes and drills to Celery again (`enqueue(push_id)`, `enqueue_drill(id)`,
    given by the sweep task: the engine never imports the tasks) when their message may be lost
    (Redis restarted).

    Harmless if the message was not lost: the first worker claims the push, the other finds it
    no longer queued and does nothing. At most once per VIPANEL_PUSH_STALE_AFTER per push.
    """
    cutoff = _db_cutoff(now, settings.VIPANEL_PUSH_STALE_AFTER)
    requeued = 0
    queued = ConfigPush.objects.filter(state=ConfigPush.State.QUEUED, heartbeat__lt=cutoff)
    for pk, kind in queued.values_list("pk", "kind"):
        if ConfigPush.objects.filter(
            pk=pk, state=ConfigPush.State.QUEUED, heartbeat__lt=cutoff
        ).update(heartbeat=now or Now()):
            (enqueue_drill if kind == ConfigPush.Kind.DRILL else enqueue)(pk)
            requeued += 1
    return requeued


def mark_stale_pushes(now=None):
    """Running pushes (and drills) whose worker stopped renewing the heartbeat were interrupted."""
    cutoff = _db_cutoff(now, settings.VIPANEL_PUSH_STALE_AFTER)
    stale = ConfigPush.objects.filter(state=ConfigPush.State.RUNNING, heartbeat__lt=cutoff)
    count = 0
    for push in stale:
        before = count
        count += ConfigPush.objects.filter(
            pk=push.pk, state=ConfigPush.State.RUNNING, owner=push.owner, heartbeat__lt=cutoff
        ).update(
            state=ConfigPush.State.INTERRUPTED,
            finished=now or Now(),
            detail=f"The worker stopped reporting at {push.heartbeat:%H:%M:%S} (killed or "
            "restarted). Each node has its old or its new config; resume to continue.",
        )
        if count > before:  # ours: the interruption alerts now, not at the next sweep
            push.state = ConfigPush.State.INTERRUPTED
            signals.push_finished.send_robust(sender=ConfigPush, push=push)
    return count


def _append_log(push_id, message, owner=None):
    line = f"{timezone.now():%H:%M:%S} {message}\n"
    rows = owner.rows() if owner is not None else ConfigPush.objects.filter(pk=push_id)
    rows.update(log=Concat("log", Value(line)))


def _beat(owner, stop, interval, retries):
    """The heartbeat loop: renew on the database's clock; a database error is retried (at the
    next beat) up to `retries` times in a row, then the push stops itself, as it does at once
    when the row says it is no longer ours."""
    failures = 0
    while not stop.wait(interval):
        try:
            if not owner.rows().update(heartbeat=Now()):
                owner.lost.set()
                return
            failures = 0
        except DatabaseError:
            failures += 1
            connection.close()  # a broken connection is not reused by the next try
            if failures > retries:
                log.error("push %s: heartbeat failed %s times; stopping", owner.push_id, failures)
                owner.lost.set()
                return


@contextmanager
def _heartbeat(owner):
    """Renew the push's heartbeat from a thread while the push runs."""
    stop = threading.Event()

    def beat():
        try:
            _beat(
                owner,
                stop,
                settings.VIPANEL_PUSH_HEARTBEAT,
                settings.VIPANEL_PUSH_HEARTBEAT_RETRIES,
            )
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"push-{owner.push_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def claim(push_id, kinds=None):
    """Claim a queued push (or drill) for this worker: -> Owner, or None if not ours to run."""
    token = uuid.uuid4().hex
    rows = ConfigPush.objects.filter(pk=push_id, state=ConfigPush.State.QUEUED)
    if kinds is not None:
        rows = rows.filter(kind__in=kinds)
    if not rows.update(state=ConfigPush.State.RUNNING, started=Now(), heartbeat=Now(), owner=token):
        return None
    return Owner(push_id, token)


def run_push(push_id):
    """Claim a queued push and run it; returns the push, or None if it was not ours to run."""
    owner = claim(push_id, kinds=[k for k in ConfigPush.Kind.values if k != ConfigPush.Kind.DRILL])
    if owner is None:
        # Redelivered, or someone else's: never run a push twice.
        return None
    push = ConfigPush.objects.select_related("cluster").get(pk=push_id)
    with _heartbeat(owner):
        try:
            Rollout(push, owner).run()
        except PushLost:
            log.warning("push %s: lost ownership; stopped without writing more", push_id)
        except BaseException as e:
            # A bug, or the task's time limit: record it so the push never stays "running".
            _finish(push, ConfigPush.State.FAILED, f"The push stopped unexpectedly: {e!r}", owner)
            raise
    push.refresh_from_db()
    return push


def _finish(push, state, detail="", owner=None, changes=None, summary=""):
    """The push's outcome, written only while `owner` still owns it; -> whether it was.
    `changes` and `summary` go into its audit entry (what the push did on which node)."""
    fields = {"state": state, "finished": Now(), "detail": detail}
    try:
        if owner is not None:
            owner.update(**fields)
        else:
            ConfigPush.objects.filter(pk=push.pk).update(**fields)
    except PushLost:
        return False
    _append_log(push.pk, f"{push.kind} {state}" + (f": {detail}" if detail else ""))
    push.state, push.detail = state, detail
    # update() sends no post_save: a failed push alerts now, not at the next sweep.
    signals.push_finished.send_robust(sender=ConfigPush, push=push)
    # The outcome is audited too, by the user who asked for the push.
    action = "drill.finish" if push.kind == ConfigPush.Kind.DRILL else "push.finish"
    result = state + (f": {summary}" if summary else "") + (f". {detail}" if detail else "")
    audit.record(
        push.requested_by,
        action,
        push.cluster,
        changes={"push": [None, push.pk], **(changes or {})},
        result=result,
    )
    return True


@dataclass
class Rendered:
    config: bytes
    rules: bytes
    notify: bytes | None
    # The node's notify signing key (clusters.notify.files_for), deployed beside the script.
    notify_key: bytes | None = None
    # A dual-stack node's rules for its other address family: ((family, rules), ...).
    other_rules: tuple = ()


@dataclass
class NodePlan:
    """What the plan probe found on one node, before anything was changed."""

    node_id: int
    name: str
    conn: object = None
    error: ssh.SSHError | None = None
    config: bytes | None = None
    running: bool = False
    state: str = ""
    holds: list = field(default_factory=list)
    rules: list | None = None
    notify_sha: str | None = None
    notify_key_sha: str | None = None
    # A dual-stack node's chain of its other address family: {family: lines or None}.
    other_rules: dict = field(default_factory=dict)


def _plan_command(node, config_path):
    path = shlex.quote(config_path)
    return (
        "if pidof keepalived >/dev/null 2>&1; then echo running=1; else echo running=0; fi; "
        f'echo "state=$(head -c 16 {shlex.quote(constants.NOTIFY_STATE_FILE)} 2>/dev/null)"; '
        f'if [ -f {path} ]; then echo "config=$(base64 -w0 < {path})"; else echo config=-; fi; '
        f"n={shlex.quote(notify.SCRIPT_PATH)}; "
        'if [ -f "$n" ]; then echo "notify=$(sha256sum < "$n" | cut -c1-64)"; '
        "else echo notify=-; fi; "
        f"k={shlex.quote(notify.KEY_PATH)}; "
        'if [ -f "$k" ]; then echo "notify_key=$(sha256sum < "$k" | cut -c1-64)"; '
        "else echo notify_key=-; fi; "
        f"echo rules:; {iptables_list_command(node)} 2>/dev/null || echo @@nochain; "
        + "".join(
            f"echo rules-v{family}:; {iptables_list_command(node, family)} 2>/dev/null "
            "|| echo @@nochain; "
            for family in firewall_families(node)[1:]
        )
        + "echo addresses:; ip -o addr show"
    )


def _chain_lines(text):
    """The chain's "-A" lines as iptables -S prints them, or None when it does not exist."""
    if "@@nochain" in text:
        return None
    # iptables prints protocol 112 by its /etc/protocols name where it has one.
    return [line.replace(" -p vrrp ", " -p 112 ") for line in iptables_rule_lines(text)]


def _parse_plan(plan, stdout, vip_ips):
    head, _, rest = stdout.partition("rules:\n")
    rules_text, _, addr_text = rest.partition("addresses:\n")
    for line in head.splitlines():
        key, _, value = line.partition("=")
        if key == "running":
            plan.running = value.strip() == "1"
        elif key == "state":
            plan.state = value.strip().upper()
        elif key == "config":
            plan.config = None if value.strip() == "-" else base64.b64decode(value.strip())
        elif key == "notify":
            plan.notify_sha = None if value.strip() == "-" else value.strip()
        elif key == "notify_key":
            plan.notify_key_sha = None if value.strip() == "-" else value.strip()
    # The main family's chain, then "rules-vN:" and each other family's (dual-stack).
    sections = re.split(r"^rules-v(\d):\n", rules_text, flags=re.M)
    plan.rules = _chain_lines(sections[0])
    for family, text in zip(sections[1::2], sections[2::2], strict=True):
        plan.other_rules[int(family)] = _chain_lines(text)
    _, _, _, addresses = parse_probe("addresses:\n" + addr_text)
    plan.holds = [vip for vip, ip in vip_ips.items() if ip in addresses]


def _plan_one(node_target, command, vip_ips):
    """In a thread, no database: connect (kept open for the push) and probe in one exec."""
    plan = NodePlan(node_target.node_id, node_target.name)
    try:
        plan.conn = remote.connect(node_target)
        result = plan.conn.run(command)
        if result.exit_status != 0:
            raise ssh.SSHError(
                f"probing failed (exit {result.exit_status}): "
                f"{(result.stderr or result.stdout).strip()[:500]}"
            )
        _parse_plan(plan, result.stdout, vip_ips)
    except ssh.SSHError as e:
        plan.error = e
    return plan


def _in_parallel(fn, items):
    """fn(item) for every item at once (SSH only, no database); -> results in order."""
    items = list(items)
    if not items:
        return []
    workers = min(len(items), settings.VIPANEL_PROBE_CONCURRENCY)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


class Rollout:
    def __init__(self, push, owner=None):
        self.push = push
        self.cluster = push.cluster
        self.owner = owner
        self.plans = {}
        self.nodes = {}
        self.split = {}
        self.steps = []
        self.last_status = None
        # Nodes the operator chose to leave untouched: {name: who}. Never connected to.
        self.skipped = {s.get("node"): s.get("by", "") for s in push.skipped if isinstance(s, dict)}

    def log(self, message):
        _append_log(self.push.pk, message, self.owner)

    def fail(self, detail):
        _finish(self.push, ConfigPush.State.FAILED, detail, self.owner, *self.outcome(self.steps))

    def outcome(self, steps):
        """(audit changes, one-line summary): each node's step, and what the prediction said
        would change (the audit entry of the push names the nodes and the changes)."""
        by_state = {}
        for step in steps:
            by_state.setdefault(step.state, []).append(step.node_name)
        nodes = "; ".join(f"{state}: {', '.join(names)}" for state, names in by_state.items())
        changes = {"nodes": [None, nodes]}
        prediction = self.push.prediction or {}
        details = [
            f"{n['node']}: {', '.join(n['details'])}"
            for n in prediction.get("nodes", [])
            if n.get("what") == "changes" and n.get("details")
        ]
        if details:
            changes["changes"] = [None, "; ".join(details)]
        if prediction.get("summary"):
            changes["predicted"] = [None, prediction["summary"]]
        return changes, nodes

    def run(self):
        steps = self.steps = list(self.push.steps.select_related("node"))
        fresh = all(s.state == PushStep.State.PENDING for s in steps)
        for step in steps:
            if step.node_id is None and not step.is_done:
                self.finish_step(step, PushStep.State.SKIPPED, "The node was deleted.")
            elif step.node_name in self.skipped and not step.is_done:
                who = self.skipped[step.node_name]
                self.finish_step(
                    step,
                    PushStep.State.SKIPPED,
                    f"Skipped{f' by {who}' if who else ''}: left as it is, never connected to.",
                )
        self.nodes = {
            n.pk: n
            for n in Node.objects.filter(
                pk__in=[s.node_id for s in steps if s.node_id and s.node_name not in self.skipped]
            ).select_related("cluster", "credential", "cluster__credential")
        }
        for step in steps:
            if (
                step.node_id
                and step.node_id not in self.nodes
                and step.node_name not in self.skipped
            ):
                self.finish_step(step, PushStep.State.SKIPPED, "The node was deleted.")
        todo = [s for s in steps if not s.is_done]
        # The VIPs this push carries: rendered now, so one added meanwhile is not among them.
        self.vip_ids = list(self.cluster.vips.values_list("pk", flat=True))
        rendered = {}
        for step in todo:
            try:
                rendered[step.node_id] = self.render(self.nodes[step.node_id])
            except ValueError as e:
                self.finish_step(step, PushStep.State.FAILED, f"Cannot render the config: {e}")
                self.fail(f"{step.node_name}: cannot render the config: {e} No node was touched.")
                return
        try:
            self.plan()
            if fresh:
                steps = self.steps = self.order(steps)
                todo = [s for s in steps if not s.is_done]
            if not self.reachable(todo) or not self.predict(steps, rendered):
                return
            self.log(f"push started: {', '.join(s.node_name for s in steps)}")
            roll = []
            for step in todo:
                node, plan = self.nodes[step.node_id], self.plans[step.node_id]
                if self.left_alone(node):
                    self.finish_step(step, PushStep.State.SKIPPED, "In maintenance: left as it is.")
                # A step found "running", or started before and failed, was interrupted: its
                # file may already be new while keepalived was never reloaded, so "identical"
                # proves nothing: it is applied again.
                elif (
                    step.state != PushStep.State.RUNNING
                    and step.started is None
                    and self.unchanged(plan, rendered[node.pk])
                ):
                    self.finish_step(
                        step,
                        PushStep.State.UNCHANGED,
                        "Config, rules and keepalived already as rendered.",
                        config=rendered[node.pk].config,
                    )
                else:
                    roll.append(step)
            if roll and fresh and self.bare():
                ok = self.install_bare(roll, rendered)
            else:
                ok = all(self.roll_one(step, rendered[step.node_id]) for step in roll)
            if not ok:
                return
            if roll and not self.verify_all():
                return
            self.succeed()
        finally:
            for plan in self.plans.values():
                if plan.conn is not None:
                    plan.conn.close()

    def render(self, node):
        return Rendered(
            config=node_config(node).encode(),
            rules=render_iptables(node).encode(),
            notify=notify.render_script(node).encode() if notify.enabled() else None,
            notify_key=node.notify_key.encode() if notify.enabled() else None,
            other_rules=tuple(
                (family, render_iptables(node, family).encode())
                for family in firewall_families(node)[1:]
            ),
        )

    def left_alone(self, node):
        """A node in maintenance keeps what it has in a normal push (a maintenance push, which
        lowers its priority, is what changes it)."""
        return node.maintenance and self.push.kind == ConfigPush.Kind.PUSH

    def reachable(self, todo):
        """Refuse to start while a node the push must change cannot be reached: nothing has
        been touched yet, and the operator may resume skipping it (clusters.services.pushes).
        -> whether the push may go on."""
        missing = [
            s
            for s in todo
            if not self.left_alone(self.nodes[s.node_id])
            and self.plans[s.node_id].error is not None
        ]
        for step in missing:
            self.finish_step(step, PushStep.State.FAILED, self.plans[step.node_id].error.message)
        if not missing:
            return True
        names = ", ".join(s.node_name for s in missing)
        verb = "is" if len(missing) == 1 else "are"
        self.fail(
            f"{names} could not be reached, so no node was changed. Resume skipping {names} "
            f"to push the others, or resume once {'it' if len(missing) == 1 else 'they'} "
            f"{verb} back."
        )
        return False

    def predict(self, steps, rendered):
        """Record what this push will do (clusters.impact) from the live files and holders the
        plan just read, before any node is touched; refuse a skip that would split the brain.
        -> whether the push may go on."""
        nodes = []
        for step in steps:
            node = self.nodes.get(step.node_id)
            if step.node_name in self.skipped:
                who = self.skipped[step.node_name]
                nodes.append(
                    impact.PushNode(
                        name=step.node_name,
                        readable=False,
                        rendered=None,
                        running=None,
                        left=f"skipped{f' by {who}' if who else ''}",
                        assumed=self.assumed.get(step.node_name),
                    )
                )
                continue
            if node is None:
                continue
            plan = self.plans[node.pk]
            live = plan.config.decode(errors="replace") if plan.config is not None else None
            sent = rendered.get(node.pk)
            left = "in maintenance: left as it is" if self.left_alone(node) else ""
            nodes.append(
                impact.PushNode(
                    name=node.name,
                    address=node.address,
                    priority=node.priority,
                    live=live,
                    readable=plan.error is None,
                    rendered=None if left else (sent.config.decode() if sent else live),
                    running=plan.running if plan.error is None else None,
                    maintenance=node.maintenance,
                    left=left,
                )
            )
        holders = self.plan_holders()
        problem = impact.skip_problem(nodes)
        prediction = impact.predict_push(
            self.cluster.name,
            nodes,
            holders,
            action=self.push.kind,
            order=[s.node_name for s in steps],
        )
        self.push.prediction = prediction.as_dict()
        fields = {"prediction": self.push.prediction}
        if self.owner is not None:
            self.owner.update(**fields)
        else:
            ConfigPush.objects.filter(pk=self.push.pk).update(**fields)
        self.log(f"predicted: {prediction.summary()}")
        if problem:
            self.fail(f"{problem} No node was changed.")
            return False
        return True

    def plan_holders(self):
        """{vip: [names]} as the plan's probe saw them; a VIP no probed node holds keeps the
        holder last recorded when that is a skipped node (it may still hold it)."""
        holders = {}
        for plan in self.plans.values():
            for vip in plan.holds:
                holders.setdefault(impact.host(vip), []).append(plan.name)
        for vip, names in impact.observed_holders(self.cluster).items():
            if not holders.get(vip) and any(n in self.skipped for n in names):
                holders[vip] = [n for n in names if n in self.skipped]
        return holders

    @property
    def assumed(self):
        """What a skipped node is assumed to run: vipanel's file for it as the database has it
        (the prediction says so; it is never read)."""
        out = {}
        for node in Node.objects.filter(cluster=self.cluster, name__in=list(self.skipped)):
            try:
                out[node.name] = node_config(node)
            except ValueError:
                pass
        return out

    def observe(self, status):
        """Who holds each VIP as the push ends (its verdict compares it with the prediction).
        A VIP no probed node holds is left out while nodes are skipped: it may be on one."""
        if status is None:
            holders = {}
            for plan in self.plans.values():
                for vip in plan.holds:
                    holders.setdefault(vip, []).append(plan.name)
            held = {v.address: holders.get(v.address, []) for v in self.cluster.vips.all()}
        else:
            held = dict(status.holders)
        if self.skipped:
            held = {vip: names for vip, names in held.items() if names}
        self.push.observed = {vip: sorted(names) for vip, names in held.items()}
        if self.owner is not None:
            self.owner.update(observed=self.push.observed)
        else:
            ConfigPush.objects.filter(pk=self.push.pk).update(observed=self.push.observed)

    def plan(self):
        """Every node connected and probed at once; the connections stay open for the push."""
        vip_ips = {v.address: v.ip for v in self.cluster.vips.all()}
        jobs = []
        for node in self.nodes.values():
            try:
                command = _plan_command(node, self.cluster.config_path)
                jobs.append((remote.target_for(node), command))
            except ssh.SSHError as e:
                self.plans[node.pk] = NodePlan(node.pk, node.name, error=e)
        for plan, (node_target, _) in zip(
            _in_parallel(lambda job: _plan_one(job[0], job[1], vip_ips), jobs), jobs, strict=True
        ):
            self.plans[plan.node_id] = plan
            remote.settle(node_target, plan.conn, plan.error)
            if plan.conn is not None and not self.nodes[plan.node_id].host_key_fingerprint:
                self.nodes[plan.node_id].host_key_fingerprint = plan.conn.fingerprint
        self.holders = {p.node_id for p in self.plans.values() if p.holds}
        # VIPs held by several nodes before anything changed (a split brain this push ends,
        # e.g. an adopted cluster with a VRID per node): see convergence.settle_problem.
        names = {p.node_id: p.name for p in self.plans.values()}
        held = {}
        for plan in self.plans.values():
            for vip in plan.holds:
                held.setdefault(vip, []).append(names[plan.node_id])
        self.split = {vip: sorted(nodes) for vip, nodes in held.items() if len(nodes) > 1}
        if self.split:
            self.log(
                "split brain before the push: "
                + "; ".join(f"{vip} on {', '.join(n)}" for vip, n in sorted(self.split.items()))
            )

    def order(self, steps):
        """Nodes holding no VIP first, then by how many VIPs a node holds (of every instance),
        fewest first; ties by lowest priority. The node holding the most goes last: with
        active/active every node holds something, so each reload moves as few addresses as
        possible and the busiest node is changed after all others were verified."""
        held = {p.node_id: len(p.holds) for p in self.plans.values()}

        def key(s):
            node = self.nodes.get(s.node_id)
            rank = impact.rollout_key(held.get(s.node_id, 0), node.priority if node else 0)
            return (*rank, s.pk)

        steps.sort(key=key)
        with transaction.atomic():
            # Two passes, since positions are unique within a push.
            for i, step in enumerate(steps, start=1):
                PushStep.objects.filter(pk=step.pk).update(position=1000 + i)
            for i, step in enumerate(steps, start=1):
                PushStep.objects.filter(pk=step.pk).update(position=i)
                step.position = i
        return steps

    def unchanged(self, plan, rendered):
        return (
            plan.error is None
            and plan.config == rendered.config
            and plan.running
            and plan.rules == iptables_rule_lines(rendered.rules.decode())
            and all(
                plan.other_rules.get(family) == iptables_rule_lines(rules.decode())
                for family, rules in rendered.other_rules
            )
            and (
                rendered.notify is None
                or plan.notify_sha == hashlib.sha256(rendered.notify).hexdigest()
            )
            and (
                rendered.notify_key is None
                or plan.notify_key_sha == hashlib.sha256(rendered.notify_key).hexdigest()
            )
        )

    def bare(self):
        """Nothing is served yet: every node answered, none runs keepalived, none holds a VIP."""
        plans = [self.plans[pk] for pk in self.nodes]
        return bool(plans) and all(p.error is None and not p.running and not p.holds for p in plans)

    def succeed(self):
        """The push's success (with who holds each VIP now, for its verdict); the VIPs it
        carried are pushed from now on (their first holder is observed, not a failover; until
        now they were configuration only)."""
        self.observe(self.last_status)
        outcome = self.outcome(self.steps)
        if _finish(self.push, ConfigPush.State.SUCCEEDED, "", self.owner, *outcome):
            VirtualIP.objects.filter(pk__in=self.vip_ids, pushed_at__isnull=True).update(
                pushed_at=timezone.now()
            )

    def finish_step(
        self, step, state, detail, exit_code=None, output="", commands=None, config=None
    ):
        """Record a step's outcome; `config`, for a step that wrote the node's config or found
        it identical, is what vipanel has now pushed there (drift and pending compare with it).
        A failed or restored step leaves the last pushed one as it was."""
        step.state, step.detail, step.exit_code, step.output = state, detail, exit_code, output
        step.finished = timezone.now()
        fields = {
            "state": state,
            "detail": detail,
            "exit_code": exit_code,
            "output": output,
            "finished": step.finished,
        }
        if commands is not None:
            step.commands = fields["commands"] = commands
        if self.owner is not None:
            self.owner.update_step(step.pk, **fields)
        else:
            PushStep.objects.filter(pk=step.pk).update(**fields)
        if config is not None and step.node_id and state in WROTE_OR_FOUND:
            Node.objects.filter(pk=step.node_id).update(
                pushed_config_sha=hashlib.sha256(config).hexdigest(),
                pushed_config=config.decode(),
                pushed_at=step.finished,
                adopt_live_config=False,
            )
        self.log(f"{step.node_name}: {state}. {detail}")

    def start_step(self, step):
        step.state, step.started, step.detail = PushStep.State.RUNNING, timezone.now(), ""
        fields = {"state": step.state, "started": step.started, "detail": ""}
        if self.owner is not None:
            self.owner.update_step(step.pk, **fields)
        else:
            PushStep.objects.filter(pk=step.pk).update(**fields)
        self.log(f"{step.node_name}: started")

    def node_apply(self, step, rendered):
        node = self.nodes[step.node_id]
        return NodeApply(self, node, self.plans[node.pk], rendered)

    def roll_one(self, step, rendered):
        if self.owner is not None:
            self.owner.check()
        self.start_step(step)
        plan = self.plans[step.node_id]
        if plan.conn is None:
            error = plan.error.message if plan.error else "not connected"
            self.finish_step(step, PushStep.State.FAILED, error)
            self.fail(f"{step.node_name} could not be reached; later nodes were not touched.")
            return False
        apply = self.node_apply(step, rendered)
        try:
            apply.apply()
            apply.verify()
        except StepFailed as e:
            self.finish_step(
                step, PushStep.State.FAILED, e.detail, e.exit_code, e.output, apply.commands
            )
            self.fail(f"{step.node_name}: {e.detail} Later nodes were not touched.")
            return False
        self.finish_step(
            step,
            PushStep.State.APPLIED,
            "New config tested, in place, reloaded and verified.",
            commands=apply.commands,
            config=rendered.config,
        )
        return True

    def install_bare(self, roll, rendered):
        """No node serves anything: install every node at once and wait for one election."""
        self.log("no node runs keepalived: installing every node at once")
        for step in roll:
            self.start_step(step)
        applies = [self.node_apply(step, rendered[step.node_id]) for step in roll]

        def apply_one(apply):
            try:
                apply.apply(restore_on_failure=False)
            except StepFailed as e:
                return e
            return None

        errors = _in_parallel(apply_one, applies)
        problem = next((e for e in errors if e is not None), None)
        if problem is None:
            problem = wait_until_settled(
                self.cluster, final=True, probe=self.probe, unseen=list(self.skipped)
            )
            if problem:
                problem = StepFailed(
                    f"The cluster did not elect within {settle_seconds(self.cluster)}s: {problem}."
                )
        if problem is None:
            for step, apply in zip(roll, applies, strict=True):
                self.finish_step(
                    step,
                    PushStep.State.APPLIED,
                    "Installed with every node at once; the election verified.",
                    commands=apply.commands,
                    config=rendered[step.node_id].config,
                )
            self.succeed()
            return False  # finished here: nothing more to verify
        # Nothing was served before: every node goes back to that, not only the one that failed.
        _in_parallel(lambda a: a.restore(), applies)
        for step, apply, error in zip(roll, applies, errors, strict=True):
            if error is not None:
                self.finish_step(
                    step,
                    PushStep.State.FAILED,
                    error.detail,
                    error.exit_code,
                    error.output,
                    apply.commands,
                )
            else:
                self.finish_step(
                    step,
                    PushStep.State.FAILED,
                    "Put back as it was (no config, keepalived stopped): "
                    + (problem.detail if error is None else ""),
                    None,
                    "",
                    apply.commands,
                )
        self.fail(f"First install failed: {problem.detail} Every node was put back as it was.")
        return False

    def probe(self, node_ids=None, prefix=""):
        """A ClusterStatus of `node_ids` (default: all), over the push's open connections;
        `prefix`: a shell command run first in the same exec."""
        vip_ips = {v.address: v.ip for v in self.cluster.vips.all()}
        ids = list(self.nodes) if node_ids is None else [i for i in self.nodes if i in node_ids]
        command = prefix + _probe_command(self.cluster.config_path)

        def one(pk):
            node, plan = self.nodes[pk], self.plans[pk]
            probe = NodeProbe(name=node.name, node_id=pk, maintenance=node.maintenance)
            if plan.conn is None:
                probe.error = plan.error.message if plan.error else "not connected"
                return probe
            try:
                out = plan.conn.run(command, timeout=settings.VIPANEL_PROBE_TIMEOUT)
            except ssh.SSHError as e:
                probe.error = e.message
                return probe
            running, reported, _, addresses = parse_probe(out.stdout)
            probe.holds = [vip for vip, ip in vip_ips.items() if ip in addresses]
            probe.reachable, probe.keepalived_running = True, running
            probe.vrrp_state = _vrrp_state(running, reported, bool(probe.holds))
            return probe

        probes = _in_parallel(one, ids)
        holders = {vip: [p.name for p in probes if vip in p.holds] for vip in vip_ips}
        self.holders = {p.node_id for p in probes if p.holds} | (
            set() if node_ids is None else self.holders - set(ids)
        )
        status = ClusterStatus(
            cluster=self.cluster.name, checked_at=timezone.now(), nodes=probes, holders=holders
        )
        if node_ids is None:
            self.last_status = status
        return status

    def verify_all(self):
        """The whole cluster once at the end. Every node is updated by now, so nothing will be
        restored: the push's backups are dropped in the same exec as the first probe."""
        drop = f"rm -rf {shlex.quote(backup_dir(self.cluster.config_path, self.push.pk))}; "
        first = [True]

        def probe():
            prefix, first[0] = (drop if first[0] else ""), False
            return self.probe(prefix=prefix)

        problem = wait_until_settled(
            self.cluster, final=True, probe=probe, unseen=list(self.skipped)
        )
        if problem:
            self.fail(f"Every node is updated, but the cluster did not settle: {problem}.")
            return False
        return True


def backup_dir(config_path, push_id):
    """Where a push keeps what it found on a node before changing it: once per push and node."""
    return posixpath.join(posixpath.dirname(config_path), f".vipanel-bak-{push_id}")


class NodeApply:
    """One node's step: one exec to apply (upload, test, back up, rename, rules, reload), one
    to restore. Each command's exit code and output lands in `commands` for the push record."""

    def __init__(self, rollout, node, plan, rendered):
        self.rollout, self.node, self.plan, self.rendered = rollout, node, plan, rendered
        self.cluster = node.cluster
        self.conn = plan.conn
        self.path = self.cluster.config_path
        self.backup = backup_dir(self.path, rollout.push.pk)
        directory, name = posixpath.split(self.path)
        self.temps = f"{directory}/.{name}.vipanel-tmp-*"
        self.commands = []
        self.restore_cmd = iptables_restore_command(node)

    def log(self, message):
        self.rollout.log(f"{self.node.name}: {message}")

    def record(self, outcome):
        self.commands += [
            {"name": s.name, "exit_code": s.exit_code, "output": s.output[-4000:]}
            for s in outcome.steps
        ]

    def exec(self, steps, timeout=None):
        try:
            outcome = nodeexec.run(self.conn, steps, timeout=timeout)
        except ssh.SSHError as e:
            self.commands.append({"name": "ssh", "exit_code": None, "output": e.message})
            raise StepFailed(f"SSH failed: {e.message}") from e
        self.record(outcome)
        return outcome

    def apply_steps(self):
        q = shlex.quote
        path, bak, tag = q(self.path), q(self.backup), secrets.token_hex(6)
        directory, name = posixpath.split(self.path)
        temp = f"{directory}/.{name}.vipanel-tmp-{tag}"
        rules_temp, test_temp = temp + ".rules", temp + ".test"
        files = {temp: (self.rendered.config, 0o640), rules_temp: (self.rendered.rules, 0o600)}
        notify_path = notify_temp = None
        if self.rendered.notify is not None:
            notify_path = notify.SCRIPT_PATH
            d, n = posixpath.split(notify_path)
            notify_temp = f"{d}/.{n}.vipanel-tmp-{tag}"
            files[notify_temp] = (self.rendered.notify, notify.SCRIPT_MODE)
        key_path = key_temp = None
        if self.rendered.notify_key is not None:
            key_path = notify.KEY_PATH
            d, n = posixpath.split(key_path)
            key_temp = f"{d}/.{n}.vipanel-tmp-{tag}"
            # Written 0600 from the start: the key is never readable by anyone but root.
            files[key_temp] = (self.rendered.notify_key, notify.KEY_MODE)
        other_rules = self.other_rules_steps(files, rules_temp)
        clean = "rm -f " + " ".join(q(f) for f in [*files, test_temp])
        # keepalived -t runs on a copy that calls the new notify script, so the script is
        # tested with the config before either replaces the live one.
        tested = temp
        test = ""
        if notify_temp:
            tested = test_temp
            test = (
                f"sed 's#{notify_path}#{notify_temp}#g' {q(temp)} > {q(test_temp)} && "
                f"sh -n {q(notify_temp)} && "
            )
        test += f"test -s {q(tested)} && keepalived -t -f {q(tested)}"
        save = [
            f"mkdir -m 700 {bak}",
            f"if [ -e {path} ]; then cp -p {path} {bak}/config; else : > {bak}/config.absent; fi",
            f"if pidof keepalived >/dev/null 2>&1; then echo 1; else echo 0; fi > {bak}/running",
            f"{iptables_list_command(self.node)} > {bak}/rules 2>/dev/null || rm -f {bak}/rules",
            *(
                f"{{ {iptables_list_command(self.node, family)} > {bak}/rules-v{family} "
                f"2>/dev/null || rm -f {bak}/rules-v{family}; }}"
                for family, _ in self.rendered.other_rules
            ),
        ]
        if notify_path:
            save.append(
                f"if [ -e {q(notify_path)} ]; then cp -p {q(notify_path)} {bak}/notify; "
                f"else : > {bak}/notify.absent; fi"
            )
        if key_path:
            save.append(
                f"if [ -e {q(key_path)} ]; then cp -p {q(key_path)} {bak}/notify_key; "
                f"else : > {bak}/notify_key.absent; fi"
            )
        save.append(f": > {bak}/saved")
        rename = f"mv -f {q(temp)} {path}"
        if notify_temp:
            rename = f"mv -f {q(notify_temp)} {q(notify_path)} && " + rename
        if key_temp:
            rename = f"mv -f {q(key_temp)} {q(key_path)} && " + rename
        return [
            nodeexec.Step("cleanup", f"rm -f {self.temps} {self.temps}.*"),
            nodeexec.Step("upload", f"{nodeexec.upload_command(files)} || {{ {clean}; exit 1; }}"),
            nodeexec.Step("test", f"{test} || {{ rc=$?; {clean}; exit $rc; }}"),
            # Saved once per push and node: a resume finds it and never overwrites it with
            # a live file that may already be the new one.
            nodeexec.Step(
                "backup",
                f"[ -e {bak}/saved ] || {{ rm -rf {bak} && "
                + " && ".join(save)
                + "; } || { "
                + clean
                + "; exit 1; }",
            ),
            nodeexec.Step("rename", f"rm -f {q(test_temp)}; {rename}"),
            nodeexec.Step("rules-test", f"{self.restore_cmd} --test < {q(rules_temp)}"),
            nodeexec.Step(
                "rules",
                f"{self.restore_cmd} < {q(rules_temp)} && rm -f {q(rules_temp)}"
                f" && {{ {iptables_jump_command(self.node)}; }}",
            ),
            *other_rules,
            nodeexec.Step("reload", self.cluster.reload_command),
        ]

    def other_rules_steps(self, files, rules_temp):
        """A dual-stack node's second family (ip6tables or iptables), applied like the first;
        compared by the plan, saved by the backup and put back by a restore like the first."""
        q = shlex.quote
        steps = []
        for family, rules in self.rendered.other_rules:
            path = f"{rules_temp}.v{family}"
            files[path] = (rules, 0o600)
            restore = iptables_restore_command(self.node, family)
            steps += [
                nodeexec.Step(f"rules-test-v{family}", f"{restore} --test < {q(path)}"),
                nodeexec.Step(
                    f"rules-v{family}",
                    f"{restore} < {q(path)} && rm -f {q(path)}"
                    f" && {{ {iptables_jump_command(self.node, family)}; }}",
                ),
            ]
        return steps

    def apply(self, restore_on_failure=True):
        try:
            outcome = self.exec(
                self.apply_steps(), timeout=settings.VIPANEL_SSH_COMMAND_TIMEOUT * 2
            )
        except StepFailed as e:
            # The link failed mid-script: which step ran is unknown, so put back what was saved
            # (nothing, if the backup step never ran), if the link still lets us.
            if restore_on_failure:
                self.restore()
            raise StepFailed(
                f"{e.detail} The node has its old or its new config; resume to continue."
            ) from e
        failed = outcome.failed
        if failed is None:
            return
        output = failed.output
        if failed.name in ("cleanup", "upload", "test", "backup"):
            what = {
                "test": "keepalived -t rejected the new config",
                "upload": "could not upload the new config",
                "backup": "could not back up the live config",
                "cleanup": "could not remove leftover temporary files",
            }[failed.name]
            raise StepFailed(
                f"{what} (exit {failed.exit_code}); the node still runs its old one.",
                failed.exit_code,
                output,
            )
        what = {
            "rename": "could not put the config in place",
            "rules-test": "iptables-restore --test rejected the rules",
            "rules": "could not apply the iptables rules",
            "reload": "The reload command failed",
        }.get(failed.name, f"{failed.name} failed")
        detail = f"{what} (exit {failed.exit_code})."
        if restore_on_failure:
            self.restore()
            detail += " The previous config was put back and reloaded."
        raise StepFailed(detail, failed.exit_code, output)

    def restore_steps(self):
        q = shlex.quote
        path, bak = q(self.path), q(self.backup)
        chain = constants.IPTABLES_CHAIN
        lines = [
            f"[ -e {bak}/saved ] || exit 0",
            f"if [ -e {bak}/config ]; then cp -p {bak}/config {path}.vipanel-tmp-r && "
            f"mv -f {path}.vipanel-tmp-r {path}; else rm -f {path}; fi",
        ]
        if self.rendered.notify is not None:
            n = q(notify.SCRIPT_PATH)
            lines.append(
                f"if [ -e {bak}/notify ]; then cp -p {bak}/notify {n}.vipanel-tmp-r && "
                f"mv -f {n}.vipanel-tmp-r {n}; elif [ -e {bak}/notify.absent ]; "
                f"then rm -f {n}; fi"
            )
        if self.rendered.notify_key is not None:
            k = q(notify.KEY_PATH)
            lines.append(
                f"if [ -e {bak}/notify_key ]; then cp -p {bak}/notify_key "
                f"{k}.vipanel-tmp-r && mv -f {k}.vipanel-tmp-r {k}; "
                f"elif [ -e {bak}/notify_key.absent ]; then rm -f {k}; fi"
            )
        families = [(None, "rules"), *((f, f"rules-v{f}") for f, _ in self.rendered.other_rules)]
        for family, saved in families:
            # The chain as it was (or none, when there was none), for each address family.
            tool = iptables_list_command(self.node, family).split()[0]
            restore = iptables_restore_command(self.node, family)
            lines.append(
                f"if [ -e {bak}/{saved} ]; then {{ echo '*filter'; echo ':{chain} - [0:0]'; "
                f"grep '^-A ' {bak}/{saved} | sed 's/ -p vrrp / -p 112 /'; echo COMMIT; }} "
                f"| {restore}; else {tool} -w -D INPUT -j {chain} 2>/dev/null; "
                f"{tool} -w -F {chain} 2>/dev/null; {tool} -w -X {chain} 2>/dev/null; fi; true"
            )
        # keepalived as it was: reloaded with the old file, or stopped if it was not running.
        lines.append(
            f'if [ "$(cat {bak}/running)" = 1 ]; then {self.cluster.reload_command}; '
            f"else {STOP_KEEPALIVED}; fi"
        )
        return [
            nodeexec.Step("restore", " && ".join(lines[:1]) + "\n" + "\n".join(lines[1:-1])),
            # The files are back whatever keepalived says: the backup is dropped either way.
            nodeexec.Step(
                "restore-keepalived",
                f"[ -e {bak}/running ] || exit 0\n"
                f"( {lines[-1]}\n); rc=$?; rm -rf {bak} {self.temps} {self.temps}.*; "
                "exit $rc",
            ),
        ]

    def restore(self):
        """Back to what the node had before this push, in one exec."""
        self.log("restoring the previous config")
        try:
            outcome = self.exec(self.restore_steps(), timeout=settings.VIPANEL_SSH_COMMAND_TIMEOUT)
        except StepFailed as e:
            self.log(f"restoring failed too: {e.detail}")
            return False
        if not outcome.ok:
            self.log(f"restoring failed too: {outcome.failed.name} exit {outcome.failed.exit_code}")
        return outcome.ok

    def verify(self):
        """That node running, not FAULT, in its expected state, and its instance's current
        holders; the whole cluster is checked once at the end."""
        live = self.plan.config
        advert_change = live is not None and advertised_vips(
            live.decode(errors="replace")
        ) != advertised_vips(self.rendered.config.decode())
        ids = {self.node.pk} | set(self.rollout.holders)
        # Each instance's advertised VIP (the first of its VIPs).
        anchors = [i.vips[0].address for i in self.cluster.vrrp_instances() if i.vips]
        if advert_change:
            # The adverts' address list changed: until the holder has the new config too, old
            # and new nodes ignore each other's adverts. Check that keepalived took the config
            # and move on; the push checks the whole cluster once every node is done.
            status = self.rollout.probe({self.node.pk})
            me = status.nodes[0] if status.nodes else None
            problem = None
            if me is None or not me.reachable:
                problem = "the node did not answer the probe"
            elif not me.keepalived_running:
                problem = "keepalived is not running after the reload"
        else:

            def probe():
                status = self.rollout.probe(ids)
                if any(not status.holders.get(a, True) for a in anchors):
                    # An advertised VIP moved off the nodes we watch: look at every node, so
                    # the verdict names where it went (or that nobody has it).
                    status = self.rollout.probe()
                return status

            problem = wait_until_settled(
                self.cluster,
                node=self.node,
                probe=probe,
                split=self.rollout.split,
                unseen=list(self.rollout.skipped),
            )
        if problem:
            self.restore()
            raise StepFailed(
                f"Not settled within {settle_seconds(self.cluster)}s: {problem}. "
                "The previous config was put back and reloaded."
            )


# keepalived writes its pid here by default; SIGTERM makes it give up its VIPs at once.
STOP_KEEPALIVED = (
    'p=$(cat /run/keepalived.pid 2>/dev/null); [ -z "$p" ] || kill -TERM "$p" 2>/dev/null; '
    "i=0; while pidof keepalived >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); "
    "done; ! pidof keepalived >/dev/null 2>&1"
)
