"""The status probe against the lab: holders, split brain, dead nodes, changed host keys."""

import time

import pytest
from django.core.management import call_command

from clusters.models import ConfigPush
from clusters.push import run_push
from clusters.services.pushes import start_push
from clusters.status import probe_cluster
from tests.lab import wait_until
from tests.lab_cluster import lab_vip, make_lab_cluster, place_configs

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pushed(clean_lab):
    return place_configs(clean_lab, make_lab_cluster(clean_lab))


def test_blocked_vrrp_on_one_node_gives_a_split_brain_verdict(clean_lab, pushed):
    vip = pushed.vips.get().address
    clean_lab[0].block_vrrp()
    wait_until(lambda: probe_cluster(pushed).split_brain, timeout=30, message="no split brain seen")
    status = probe_cluster(pushed)
    assert status.split_brain_vips == [vip]
    assert sorted(status.holders[vip]) == sorted([clean_lab[0].name, clean_lab[2].name])
    clean_lab[0].unblock_vrrp()
    wait_until(
        lambda: not probe_cluster(pushed).split_brain, timeout=30, message="split brain stayed"
    )


def test_a_dead_sshd_is_unreachable_within_its_deadline_and_the_others_are_normal(
    clean_lab, pushed
):
    clean_lab[1].stop_sshd()
    started = time.monotonic()
    status = probe_cluster(pushed, timeout=2)
    elapsed = time.monotonic() - started
    by_name = {n.name: n for n in status.nodes}
    assert not by_name[clean_lab[1].name].reachable
    assert by_name[clean_lab[1].name].error
    assert by_name[clean_lab[0].name].reachable and by_name[clean_lab[2].name].reachable
    assert status.holder(pushed.vips.get().address) == clean_lab[2].name
    # Bounded by the deadline (connect, banner, auth and command phases), not by the dead node.
    assert elapsed < 4 * 2 + 2


def test_a_blackholed_node_costs_no_more_than_its_deadline(clean_lab, pushed):
    # Drop SSH packets silently: the connect can only time out.
    clean_lab[1].exec("iptables -I INPUT 1 -p tcp --dport 22 -j DROP")
    started = time.monotonic()
    status = probe_cluster(pushed, timeout=1)
    elapsed = time.monotonic() - started
    reachable = {n.name: n.reachable for n in status.nodes}
    assert reachable == {clean_lab[0].name: True, clean_lab[1].name: False, clean_lab[2].name: True}
    error = next(n.error for n in status.nodes if n.name == clean_lab[1].name)
    assert "timed out" in error.lower() or "timeout" in error.lower(), error
    assert elapsed < 4 * 1 + 2


def test_a_changed_host_key_is_refused_recorded_and_nothing_runs(clean_lab, pushed):
    node = pushed.nodes.get(name=clean_lab[0].name)
    pinned = node.host_key_fingerprint
    new = clean_lab[0].replace_host_key()
    status = probe_cluster(pushed)
    probe = next(n for n in status.nodes if n.name == clean_lab[0].name)
    assert not probe.reachable and probe.host_key_problem
    assert pinned in probe.error and new in probe.error
    node.refresh_from_db()
    assert node.host_key_fingerprint == pinned
    assert node.offered_host_key_fingerprint == new
    # A push refuses that node too, and does not touch its file.
    before = clean_lab[0].exec(f"cat {pushed.config_path}").stdout
    pushed.vips.create(address=lab_vip(clean_lab, offset=104))
    push = start_push(None, pushed, queue=False)
    run_push(push.pk)
    push.refresh_from_db()
    assert push.state == ConfigPush.State.FAILED
    assert push.steps.get(node_name=clean_lab[0].name).state == "failed"
    assert clean_lab[0].exec(f"cat {pushed.config_path}").stdout == before


def test_the_status_command_prints_json(clean_lab, pushed, capsys):
    import json

    call_command("status", pushed.name, "--json")
    data = json.loads(capsys.readouterr().out)
    assert data["split_brain"] is False
    assert data["vips"] == [
        {
            "address": pushed.vips.get().address,
            "holder": clean_lab[2].name,
            "holders": [clean_lab[2].name],
        }
    ]
    states = {n["name"]: n["vrrp_state"] for n in data["nodes"]}
    assert states == {
        clean_lab[0].name: "BACKUP",
        clean_lab[1].name: "BACKUP",
        clean_lab[2].name: "MASTER",
    }


def test_the_push_command_reports_progress_and_success(clean_lab, pushed, capsys):
    cluster = pushed
    cluster.vips.create(address=lab_vip(clean_lab, offset=108))
    call_command("push", cluster.name, "--here")
    out = capsys.readouterr().out
    assert "succeeded" in out
    assert out.count(": applied") == 3


def test_the_push_command_fails_with_the_reason(clean_lab, capsys):
    from django.core.management import CommandError

    cluster = make_lab_cluster(clean_lab)
    node = cluster.nodes.get(name=clean_lab[0].name)
    node.interface = "eth7"
    node.save()
    with pytest.raises(CommandError, match="failed"):
        call_command("push", cluster.name, "--here")
    assert "eth7" in capsys.readouterr().out
