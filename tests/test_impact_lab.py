"""Predictions and skips against the real lab (issue 17, items 2 and 7).

A push records what it will do before it touches a node (clusters.impact), and afterwards its
verdict compares that with the FailoverEvents of its window: here the nodes' notify scripts
report every VRRP change to a live server on the lab bridge, so each move is recorded within a
second. A node whose sshd is down (its keepalived still running: the case that makes skipping
delicate) is refused until skipped, then left untouched.
"""

import datetime as dt
import time

import pytest

from clusters import remote
from clusters.history import sweep_cluster
from clusters.models import AuditEntry, ConfigPush, FailoverEvent, PushStep
from clusters.push import run_push
from clusters.services import maintenance, pushes
from clusters.services.errors import Unreachable
from tests.lab import wait_until
from tests.lab_cluster import lab_vip, make_lab_cluster, place_configs
from tests.test_alerts_lab import notify_server  # noqa: F401 (fixture: notify reports)

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def run(push):
    run_push(push.pk)
    push.refresh_from_db()
    return push


def later(push):
    """The verdict once its window has passed (moves may still be reported until then)."""
    return pushes.verdict(push, now=push.finished + dt.timedelta(minutes=5))


def live(node, path):
    result = node.exec(f"cat {path}", check=False)
    return result.stdout if result.returncode == 0 else None


@pytest.fixture
def pushed(clean_lab, notify_server):
    """A lab cluster pushed once through vipanel (so each node has its notify script)."""
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    assert run(pushes.queue_push(cluster, queue=False)).state == ConfigPush.State.SUCCEEDED
    sweep_cluster(cluster)  # who holds the VIP, as the sweep records it
    return cluster


def test_a_maintenance_push_predicts_the_move_and_the_prediction_holds(clean_lab, pushed):
    n2, n3 = clean_lab[1].name, clean_lab[2].name
    vip = pushed.vips.get().address
    ip = vip.split("/")[0]
    push = run(maintenance.set_maintenance(None, pushed.nodes.get(name=n3), True, queue=False))
    assert push.state == ConfigPush.State.SUCCEEDED, push.detail
    prediction = push.prediction
    assert prediction["action"] == "maintenance"
    assert prediction["moves"] == [
        f"{n2} takes {ip} from {n3} within ~3.6 s of {n3}'s reload ({n3} keeps it until then: "
        f"no gap); {n2} outranks it (110 over 1)."
    ]
    assert {n["node"]: n["what"] for n in prediction["nodes"]} == {
        clean_lab[0].name: "unchanged",
        n2: "unchanged",
        n3: "changes",
    }
    assert push.observed == {vip: [n2]}
    wait_until(
        lambda: FailoverEvent.objects.filter(kind="failover", to_node=n2).exists(),
        timeout=30,
        message="the notify report of the move was not recorded",
    )
    verdict = later(push)
    assert verdict.status == "held", verdict.reasons
    moved = FailoverEvent.objects.get(kind="failover", to_node=n2)
    assert moved.from_node == n3 and moved.pk in verdict.expected
    # The audit log says what the push pushed, and to which nodes.
    finished = AuditEntry.objects.get(action="push.finish", changes__push=[None, push.pk])
    assert finished.changes["changes"] == [None, f"{n3}: priority 120 → 1 in VI_lab"]
    assert (
        "unchanged:" in finished.changes["nodes"][1]
        and f"applied: {n3}" in (finished.changes["nodes"][1])
    )


def test_a_move_the_prediction_did_not_foresee_is_named(clean_lab, pushed):
    """Honestly provoked: the push adds a VIP and foresees no move, but in its window the
    holder's keepalived is stopped and started again by hand, as an operator might."""
    n2, n3 = clean_lab[1].name, clean_lab[2].name
    pushed.vips.create(address=lab_vip(clean_lab, offset=111))
    push = run(pushes.queue_push(pushed, queue=False))
    assert push.state == ConfigPush.State.SUCCEEDED, push.detail
    added = lab_vip(clean_lab, offset=111).split("/")[0]
    assert push.prediction["moves"] == [
        f"{n3} takes {added} when {n3} is reloaded (added to its config)."
    ]
    clean_lab[2].kill_keepalived()
    wait_until(lambda: clean_lab[1].holds(added), timeout=15, message="n2 did not take over")
    clean_lab[2].start_keepalived()
    wait_until(
        lambda: FailoverEvent.objects.filter(kind="failover", from_node=n2, to_node=n3).exists(),
        timeout=30,
        message="the way back was not reported",
    )
    verdict = later(push)
    assert verdict.status == "not held"
    ip = pushed.vips.order_by("id").first().address.split("/")[0]
    assert f"Not foreseen: failover of {ip} ({n3} → {n2})." in verdict.reasons
    assert f"Not foreseen: failover of {ip} ({n2} → {n3})." in verdict.reasons
    assert verdict.unexpected and not verdict.expected


@pytest.fixture
def n2_unreachable(clean_lab, pushed):
    """n2's sshd stops; its keepalived runs on. A sweep records it unreachable."""
    clean_lab[1].stop_sshd()
    remote.POOL.clear()  # a kept session would still answer: as after a restart of vipanel
    wait_until(
        lambda: sweep_cluster(pushed).unreachable == [clean_lab[1].name],
        timeout=30,
        message="the sweep did not find n2 unreachable",
    )
    return clean_lab[1]


def test_a_push_is_refused_until_the_unreachable_node_is_skipped_and_then_leaves_it_alone(
    clean_lab, pushed, n2_unreachable
):
    name = n2_unreachable.name
    path = pushed.config_path
    pushed.vips.create(address=lab_vip(clean_lab, offset=112))
    before = live(n2_unreachable, path)
    with pytest.raises(Unreachable) as refused:
        pushes.start_push(None, pushed)
    assert refused.value.nodes == [name] and f"skip {name}" in refused.value.text
    push = run(pushes.start_push(None, pushed, queue=False, skip=[name]))
    assert push.state == ConfigPush.State.SUCCEEDED, push.detail
    step = push.steps.get(node_name=name)
    assert step.state == PushStep.State.SKIPPED
    assert step.detail == "Skipped by system: left as it is, never connected to."
    assert live(n2_unreachable, path) == before  # untouched
    assert n2_unreachable.keepalived_running()
    added = lab_vip(clean_lab, offset=112).split("/")[0]
    assert clean_lab[2].holds(added)
    assert push.skipped == [{"node": name, "by": "system"}]
    assert {n["node"]: n["what"] for n in push.prediction["nodes"]}[name] == "skipped"
    started = AuditEntry.objects.get(action="push.start", changes__push=[None, push.pk])
    assert started.changes["skipped"] == [None, f"{name} (unreachable)"]
    finished = AuditEntry.objects.get(action="push.finish", changes__push=[None, push.pk])
    assert f"skipped: {name}" in finished.changes["nodes"][1]


def test_skipping_is_refused_when_the_push_changes_what_the_nodes_advertise(
    clean_lab, pushed, n2_unreachable
):
    """n2's keepalived still runs with the old file: with another advertised VIP on the other
    nodes, each side would ignore the other's adverts and both would hold the VIPs."""
    path = pushed.config_path
    before = [live(n, path) for n in clean_lab]
    pushed.vips.create(address=lab_vip(clean_lab, offset=113))
    pushed.vips.order_by("id").first().delete()  # the advertised VIP goes: the next one is
    push = run(pushes.start_push(None, pushed, queue=False, skip=[n2_unreachable.name]))
    assert push.state == ConfigPush.State.FAILED
    assert push.detail.startswith(f"Skipping {n2_unreachable.name} is refused")
    assert push.detail.endswith("No node was changed.")
    assert [live(n, path) for n in clean_lab] == before
    time.sleep(0.1)


def test_a_drill_predicts_its_moves_and_the_prediction_holds(clean_lab, pushed, monkeypatch):
    """The drill's record keeps the prediction it was confirmed with; real keepalived moves the
    VIP to the next priority when the holder stops and back when it starts again (preempt), and
    the verdict judges that against what notify and the drill recorded."""
    from clusters import drill, tasks
    from clusters.services import drills

    monkeypatch.setattr(tasks.drill_task, "delay", lambda pk: None)  # run here, below
    n2, n3 = clean_lab[1].name, clean_lab[2].name
    ip = pushed.vips.get().address.split("/")[0]
    record = drills.start_drill(None, pushed)
    moves = record.prediction["moves"]
    assert moves and moves[0].startswith(f"{n2} takes {ip} from {n3} within ~0.6 s"), moves
    event = drill.run_drill_record(record.pk)
    assert event.detail.startswith("Passed."), event.detail
    assert (event.from_node, event.to_node) == (n3, n2)
    wait_until(
        lambda: FailoverEvent.objects.filter(kind="failover", to_node=n3, from_node=n2).exists(),
        timeout=30,
        message=f"the VIP's return to {n3} was not reported",
    )
    record.refresh_from_db()
    verdict = later(record)
    assert verdict.status == "held", (moves, verdict.reasons)
