"""The rolling push: one node at a time, each config checked by keepalived on its node first.

A push is a ConfigPush row with one PushStep per node. clusters.services.pushes creates it
(refusing a second active push of the same cluster, which the database also forbids) and
enqueues it on commit; this module is the engine and never imports the tasks. `run_push` is a
plain function the Celery task wraps, so tests call it directly too. Every
outcome is written as it happens, so a worker that dies leaves an honest record: the push is
found "interrupted" by the sweep and can be resumed from the step that did not finish.

Per node: render; compare with the node's files (identical and keepalived running: "unchanged",
nothing reloaded); upload beside the target; `keepalived -t -f TEMP` on the node; keep a backup;
rename over the target (atomic: the live file is old or new, never half); apply vipanel's
iptables chain (tested first); reload; verify within the VRRP timeout. Any failure puts the
backup back, reloads, and stops the push there.
"""

import posixpath
import shlex
import threading
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils import timezone

from clusters import audit, constants, notify, remote, ssh
from clusters.models import ConfigPush, Node, PushStep
from clusters.render import (
    advertised_vips,
    iptables_jump_command,
    iptables_list_command,
    iptables_restore_command,
    iptables_rule_lines,
    node_config,
    render_iptables,
)
from clusters.status import probe_cluster

BACKUP_SUFFIX = ".vipanel-bak"


class StepFailed(Exception):
    def __init__(self, detail, exit_code=None, output=""):
        super().__init__(detail)
        self.detail = detail
        self.exit_code = exit_code
        self.output = output


def requeue_lost_pushes(enqueue, now=None):
    """Hand queued pushes to Celery again (`enqueue(push_id)`, given by the sweep task: the
    engine never imports the tasks) when their message may be lost (Redis restarted).

    Harmless if the message was not lost: the first worker claims the push, the other finds it
    no longer queued and does nothing. At most once per VIPANEL_PUSH_STALE_AFTER per push.
    """
    now = now or timezone.now()
    cutoff = now - timezone.timedelta(seconds=settings.VIPANEL_PUSH_STALE_AFTER)
    requeued = 0
    for pk in ConfigPush.objects.filter(state=ConfigPush.State.QUEUED, heartbeat__lt=cutoff).values_list(
        "pk", flat=True
    ):
        if ConfigPush.objects.filter(pk=pk, state=ConfigPush.State.QUEUED, heartbeat__lt=cutoff).update(
            heartbeat=now
        ):
            enqueue(pk)
            requeued += 1
    return requeued


def mark_stale_pushes(now=None):
    """Running pushes whose worker stopped renewing the heartbeat were interrupted."""
    now = now or timezone.now()
    cutoff = now - timezone.timedelta(seconds=settings.VIPANEL_PUSH_STALE_AFTER)
    stale = ConfigPush.objects.filter(state=ConfigPush.State.RUNNING, heartbeat__lt=cutoff)
    count = 0
    for push in stale:
        count += ConfigPush.objects.filter(pk=push.pk, state=ConfigPush.State.RUNNING,
                                           heartbeat__lt=cutoff).update(
            state=ConfigPush.State.INTERRUPTED,
            finished=now,
            detail=f"The worker stopped reporting at {push.heartbeat:%H:%M:%S} (killed or "
            "restarted). Each node has its old or its new config; resume to continue.",
        )
    return count


def _append_log(push_id, message):
    line = f"{timezone.now():%H:%M:%S} {message}\n"
    ConfigPush.objects.filter(pk=push_id).update(log=Concat("log", Value(line)))


@contextmanager
def _heartbeat(push_id):
    """Renew the push's heartbeat from a thread while the push runs."""
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(settings.VIPANEL_PUSH_HEARTBEAT):
                ConfigPush.objects.filter(pk=push_id, state=ConfigPush.State.RUNNING).update(
                    heartbeat=timezone.now()
                )
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"push-{push_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_push(push_id):
    """Claim a queued push and run it; returns the push, or None if it was not ours to run."""
    now = timezone.now()
    claimed = ConfigPush.objects.filter(pk=push_id, state=ConfigPush.State.QUEUED).update(
        state=ConfigPush.State.RUNNING, started=now, heartbeat=now
    )
    if not claimed:
        # Redelivered, or someone else's: never run a push twice.
        return None
    push = ConfigPush.objects.select_related("cluster").get(pk=push_id)
    with _heartbeat(push_id):
        try:
            Rollout(push).run()
        except BaseException as e:
            # A bug, or the task's time limit: record it so the push never stays "running".
            _finish(push, ConfigPush.State.FAILED, f"The push stopped unexpectedly: {e!r}")
            raise
    push.refresh_from_db()
    return push


def _finish(push, state, detail=""):
    ConfigPush.objects.filter(pk=push.pk).update(state=state, finished=timezone.now(), detail=detail)
    _append_log(push.pk, f"push {state}" + (f": {detail}" if detail else ""))
    push.state, push.detail = state, detail
    # The outcome is audited too, by the user who asked for the push.
    audit.record(push.requested_by, "push.finish", push.cluster,
                 changes={"push": [None, push.pk]}, result=f"{state}: {detail}" if detail else state)


class Rollout:
    def __init__(self, push):
        self.push = push
        self.cluster = push.cluster

    def log(self, message):
        _append_log(self.push.pk, message)

    def run(self):
        steps = list(self.push.steps.select_related("node"))
        if all(s.state == PushStep.State.PENDING for s in steps):
            steps = self.order(steps)
        self.log(f"push started: {', '.join(s.node_name for s in steps)}")
        applied = False
        for step in steps:
            if step.is_done:
                continue
            node = step.node
            if node is None:
                self.finish_step(step, PushStep.State.SKIPPED, "The node was deleted.")
                continue
            node = Node.objects.select_related("cluster", "credential", "cluster__credential").get(pk=node.pk)
            if node.maintenance and self.push.kind == ConfigPush.Kind.PUSH:
                self.finish_step(step, PushStep.State.SKIPPED, "In maintenance: left as it is.")
                continue
            if not self.run_step(step, node):
                _finish(self.push, ConfigPush.State.FAILED,
                        f"{node.name}: {step.detail} Later nodes were not touched.")
                return
            applied = applied or step.state == PushStep.State.APPLIED
        if applied:
            problem = wait_until_settled(self.cluster, final=True)
            if problem:
                _finish(self.push, ConfigPush.State.FAILED,
                        f"Every node is updated, but the cluster did not settle: {problem}.")
                return
        _finish(self.push, ConfigPush.State.SUCCEEDED)

    def order(self, steps):
        """Nodes holding no VIP first, lowest priority first, the current holder last."""
        status = probe_cluster(self.cluster)
        holding = {p.node_id for p in status.nodes if p.holds}
        steps.sort(key=lambda s: (s.node_id in holding, s.node.priority if s.node else 0, s.pk))
        with transaction.atomic():
            # Two passes, since positions are unique within a push.
            for i, step in enumerate(steps, start=1):
                PushStep.objects.filter(pk=step.pk).update(position=1000 + i)
            for i, step in enumerate(steps, start=1):
                PushStep.objects.filter(pk=step.pk).update(position=i)
                step.position = i
        return steps

    def finish_step(self, step, state, detail, exit_code=None, output=""):
        step.state, step.detail, step.exit_code, step.output = state, detail, exit_code, output
        step.finished = timezone.now()
        step.save(update_fields=["state", "detail", "exit_code", "output", "finished"])
        self.log(f"{step.node_name}: {state}. {detail}")

    def run_step(self, step, node):
        # A step found "running" was interrupted: its file may already be new while keepalived
        # was never reloaded, so "the file is identical" proves nothing and it is applied again.
        interrupted = step.state == PushStep.State.RUNNING
        step.state, step.started, step.detail = PushStep.State.RUNNING, timezone.now(), ""
        step.save(update_fields=["state", "started", "detail"])
        self.log(f"{node.name}: started")
        try:
            config = node_config(node).encode()
            rules = render_iptables(node).encode()
            notify_body = notify.render_script(node).encode() if notify.enabled() else None
        except ValueError as e:
            self.finish_step(step, PushStep.State.FAILED, f"Cannot render the config: {e}")
            return False
        try:
            conn = remote.open_node(node)
        except ssh.SSHError as e:
            self.finish_step(step, PushStep.State.FAILED, f"Cannot connect: {e.message}")
            return False
        try:
            state, detail = NodeApply(self, node, conn, config, rules, notify_body).apply(
                force=interrupted
            )
        except StepFailed as e:
            self.finish_step(step, PushStep.State.FAILED, e.detail, e.exit_code, e.output)
            return False
        except ssh.SSHError as e:
            self.finish_step(step, PushStep.State.FAILED, f"SSH failed: {e.message}")
            return False
        finally:
            conn.close()
        self.finish_step(step, state, detail)
        return True


class NodeApply:
    """The commands of one node's step, over one SSH connection."""

    def __init__(self, rollout, node, conn, config, rules, notify_body):
        self.rollout, self.node, self.conn = rollout, node, conn
        self.cluster = node.cluster
        self.config, self.rules, self.notify_body = config, rules, notify_body
        self.path = self.cluster.config_path
        self.backup = self.path + BACKUP_SUFFIX
        self.restore_cmd = iptables_restore_command(node)

    def run(self, command, timeout=None, stdin=None):
        return self.conn.run(command, timeout=timeout, stdin=stdin)

    def log(self, message):
        self.rollout.log(f"{self.node.name}: {message}")

    def apply(self, force=False):
        self.remove_leftover_temps()
        current = self.conn.get(self.path)
        running = self.run("pidof keepalived >/dev/null 2>&1").exit_status == 0
        rules_now = self.current_rules()
        notify_now = self.conn.get(notify.SCRIPT_PATH) if self.notify_body is not None else None
        unchanged = (
            current == self.config
            and running
            and rules_now == self.expected_rules()
            and notify_now == self.notify_body
        )
        if unchanged and not force:
            return PushStep.State.UNCHANGED, "Config, rules and keepalived already as rendered."

        if self.notify_body is not None and notify_now != self.notify_body:
            self.put_in_place(notify.SCRIPT_PATH, self.notify_body, 0o700)
        temp = self.conn.put_temp(self.path, self.config, 0o640)
        self.log("uploaded; testing with keepalived -t")
        tested = self.run(f"test -s {shlex.quote(temp)} && keepalived -t -f {shlex.quote(temp)}")
        if tested.exit_status != 0:
            self.run(f"rm -f {shlex.quote(temp)}")
            raise StepFailed(
                f"keepalived -t rejected the new config (exit {tested.exit_status}); the node "
                "still runs its old one.",
                tested.exit_status,
                (tested.stderr + tested.stdout).strip(),
            )
        had_file = current is not None
        if had_file:
            self.check(self.run(f"cp -p {shlex.quote(self.path)} {shlex.quote(self.backup)}"),
                       "could not back up the live config")
        self.conn.rename(temp, self.path)
        self.log("config in place; applying iptables rules and reloading")
        try:
            self.apply_rules(self.rules)
            self.reload()
            self.verify(advert_change=had_file and advertised_vips(current.decode(errors="replace"))
                        != advertised_vips(self.config.decode()))
        except (StepFailed, ssh.SSHError) as e:
            detail = e.detail if isinstance(e, StepFailed) else f"SSH failed: {e.message}"
            self.restore(had_file, rules_now)
            raise StepFailed(
                f"{detail} The previous config was put back and reloaded.",
                getattr(e, "exit_code", None),
                getattr(e, "output", ""),
            ) from e
        return PushStep.State.APPLIED, "New config tested, in place, reloaded and verified."

    def check(self, result, what):
        if result.exit_status != 0:
            raise StepFailed(f"{what} (exit {result.exit_status}).", result.exit_status,
                             (result.stderr + result.stdout).strip())
        return result

    def remove_leftover_temps(self):
        # A worker killed between upload and rename leaves a temp file; it never becomes live.
        directory, name = posixpath.split(self.path)
        self.run(f"rm -f {shlex.quote(directory)}/.{shlex.quote(name)}.vipanel-tmp-*")

    def put_in_place(self, path, body, mode):
        temp = self.conn.put_temp(path, body, mode)
        self.conn.rename(temp, path)

    def current_rules(self):
        """The "-A" lines of vipanel's chain on the node, or None when there is no chain."""
        result = self.run(f"{iptables_list_command(self.node)} 2>/dev/null")
        if result.exit_status != 0:
            return None
        # iptables prints protocol 112 by its /etc/protocols name where it has one.
        return [line.replace(" -p vrrp ", " -p 112 ") for line in iptables_rule_lines(result.stdout)]

    def expected_rules(self):
        return iptables_rule_lines(self.rules.decode())

    def apply_rules(self, rules: bytes):
        self.check(self.run(f"{self.restore_cmd} --test", stdin=rules),
                   "iptables-restore --test rejected the rules")
        self.check(self.run(self.restore_cmd, stdin=rules), "iptables-restore failed")
        self.check(self.run(iptables_jump_command(self.node)), "could not add the jump to the chain")

    def restore(self, had_file, rules_before):
        self.log("restoring the previous config")
        try:
            if had_file:
                self.run(f"mv -f {shlex.quote(self.backup)} {shlex.quote(self.path)}")
            else:
                self.run(f"rm -f {shlex.quote(self.path)}")
            if rules_before is not None:
                restore = "".join(
                    line + "\n"
                    for line in ["*filter", f":{constants.IPTABLES_CHAIN} - [0:0]", *rules_before, "COMMIT"]
                )
                self.run(self.restore_cmd, stdin=restore.encode())
            if had_file:
                self.run(self.cluster.reload_command, timeout=settings.VIPANEL_SSH_COMMAND_TIMEOUT)
        except ssh.SSHError as e:
            self.log(f"restoring failed too: {e.message}")

    def reload(self):
        result = self.run(self.cluster.reload_command, timeout=settings.VIPANEL_SSH_COMMAND_TIMEOUT)
        if result.exit_status != 0:
            raise StepFailed(
                f"The reload command failed (exit {result.exit_status}).",
                result.exit_status,
                (result.stderr + result.stdout).strip(),
            )

    def verify(self, advert_change):
        if advert_change:
            # The adverts' address list changed: until the holder has the new config too, old
            # and new nodes ignore each other's adverts. Check that keepalived took the config
            # and move on quickly; the push checks the whole cluster once every node is done.
            result = self.run("pidof keepalived >/dev/null 2>&1")
            if result.exit_status != 0:
                raise StepFailed("keepalived is not running after the reload.")
            return
        problem = wait_until_settled(self.cluster, node=self.node)
        if problem:
            raise StepFailed(f"Not settled within {settle_seconds(self.cluster)}s: {problem}.")


def settle_seconds(cluster):
    """3 x advert_int, plus a skew of at most one advert_int, plus a margin for SSH: a backup
    that hears no master takes over after that long, so by then VRRP has settled."""
    return 4 * cluster.advert_int + settings.VIPANEL_VERIFY_MARGIN


def wait_until_settled(cluster, node=None, final=False):
    """Probe until the cluster looks right; -> None, or what was still wrong at the deadline."""
    deadline = time.monotonic() + settle_seconds(cluster)
    while True:
        problem = settle_problem(cluster, probe_cluster(cluster), node, final)
        if problem is None or time.monotonic() > deadline:
            return problem
        time.sleep(0.25)


def settle_problem(cluster, status, node=None, final=False):
    """What is wrong with the cluster right after `node` was reloaded (None: nothing).

    Mid-push, a VIP just added is held by nobody until the holder (pushed last) has it, so
    only the advertised VIP must have exactly one holder; no VIP may have two. At the end
    (`final`), every VIP must have exactly one holder.
    """
    if node is not None:
        me = next((p for p in status.nodes if p.node_id == node.pk), None)
        if me is None or not me.reachable:
            return "the node did not answer the probe"
        if not me.keepalived_running:
            return "keepalived is not running after the reload"
        if me.vrrp_state == "FAULT":
            return "keepalived is in FAULT state"
    anchor = next(iter(status.holders), None)
    for vip, holders in status.holders.items():
        if len(holders) > 1:
            return f"{vip} is held by {len(holders)} nodes ({', '.join(holders)})"
        if not holders and (final or vip == anchor):
            return f"{vip} is held by no node"
    if cluster.preempt and anchor is not None:
        nodes = {n.name: n for n in cluster.nodes.all()}
        running = [p.name for p in status.nodes if p.keepalived_running and p.name in nodes]
        candidates = [n for n in running if not nodes[n].maintenance] or running
        if candidates:
            expected = max(candidates, key=lambda n: nodes[n].priority)
            checked = status.holders if final else {anchor: status.holders[anchor]}
            for vip, holders in checked.items():
                if holders != [expected]:
                    return f"{vip} is on {holders[0]}, expected on {expected} (highest priority running)"
    return None
