"""The rolling push against the real lab: real sshd, real keepalived, real iptables."""

import pytest

from clusters.models import ConfigPush
from clusters.push import run_push
from clusters.services.errors import Refused as PushRefused
from clusters.services.maintenance import set_maintenance
from clusters.services.pushes import resume_push, start_push
from clusters.status import probe_cluster
from tests.lab import wait_until
from tests.lab_cluster import lab_vip, make_lab_cluster, place_configs

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def push_here(cluster):
    """Create a push and run it in this process (the Celery task is a thin wrapper)."""
    push = start_push(None, cluster, queue=False)
    run_push(push.pk)
    push.refresh_from_db()
    return push


def steps(push):
    return list(push.steps.order_by("position").values_list("node_name", "state"))


def test_first_push_starts_keepalived_everywhere_and_highest_priority_holds(clean_lab):
    cluster = make_lab_cluster(clean_lab)
    push = push_here(cluster)
    assert push.state == ConfigPush.State.SUCCEEDED, (push.detail, push.log)
    assert [s for _, s in steps(push)] == ["applied"] * 3
    vip = lab_vip(clean_lab).split("/")[0]
    assert [n.name for n in clean_lab.vip_holders(vip)] == [clean_lab[2].name]
    for node in clean_lab:
        assert node.keepalived_running()
        assert "VIPANEL-VRRP" in node.exec("iptables -S INPUT").stdout
    # The keys trusted up front stay as they were: a push pins nothing.
    pinned = dict(cluster.nodes.values_list("name", "host_key_fingerprint"))
    assert pinned == {n.name: n.fingerprint for n in clean_lab}


def test_a_bare_cluster_is_installed_at_once_with_one_election(clean_lab):
    """No node runs keepalived: all are installed together and one election is verified."""
    cluster = make_lab_cluster(clean_lab)
    push = push_here(cluster)
    assert push.state == ConfigPush.State.SUCCEEDED, (push.detail, push.log)
    assert "no node runs keepalived: installing every node at once" in push.log
    assert set(push.steps.values_list("detail", flat=True)) == {
        "Installed with every node at once; the election verified."
    }
    # One election: the three steps started together, not one after the other's VRRP wait.
    started = sorted(push.steps.values_list("started", flat=True))
    assert (started[-1] - started[0]).total_seconds() < 1


def test_a_cluster_where_one_node_serves_is_rolled_node_by_node(clean_lab):
    """One running keepalived already holds the VIP: never all at once."""
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    for node in clean_lab[:2]:
        node.kill_keepalived()
        node.exec(f"rm -f {cluster.config_path}")
    push = push_here(cluster)
    assert push.state == ConfigPush.State.SUCCEEDED, (push.detail, push.log)
    assert "every node at once" not in push.log
    assert steps(push)[-1] == (clean_lab[2].name, "unchanged")
    assert "Installed with every node at once; the election verified." not in set(
        push.steps.values_list("detail", flat=True)
    )
    vip = lab_vip(clean_lab).split("/")[0]
    assert [n.name for n in clean_lab.vip_holders(vip)] == [clean_lab[2].name]


def test_a_failed_first_install_puts_every_node_back_to_nothing(clean_lab):
    """keepalived -t fails on one node of a bare cluster: no node keeps a config, none runs
    keepalived, no VIP is up anywhere, and each step says why."""
    cluster = make_lab_cluster(clean_lab)
    cluster.nodes.filter(name=clean_lab[1].name).update(interface="eth9")
    push = push_here(cluster)
    assert push.state == ConfigPush.State.FAILED
    assert "First install failed" in push.detail and "put back" in push.detail
    failed = push.steps.get(node_name=clean_lab[1].name)
    assert failed.state == "failed" and "eth9" in failed.output
    vip = lab_vip(clean_lab).split("/")[0]
    for node in clean_lab:
        assert live_config(node, cluster) is None, node.name
        assert not node.keepalived_running(), node.name
        assert not node.holds(vip), node.name
    for step in push.steps.exclude(node_name=clean_lab[1].name):
        assert step.state == "failed" and step.detail.startswith("Put back as it was"), step.detail


def test_a_push_to_a_node_nobody_trusted_fails_that_step_and_records_the_offered_key(clean_lab):
    cluster = make_lab_cluster(clean_lab)
    cluster.nodes.filter(name=clean_lab[0].name).update(host_key_fingerprint="")
    push = push_here(cluster)
    assert push.state != ConfigPush.State.SUCCEEDED
    step = push.steps.get(node_name=clean_lab[0].name)
    assert f"host key not trusted yet: {clean_lab[0].fingerprint}" in step.detail
    node = cluster.nodes.get(name=clean_lab[0].name)
    assert (node.host_key_fingerprint, node.offered_host_key_fingerprint) == (
        "",
        clean_lab[0].fingerprint,
    )


def live_config(node, cluster):
    result = node.exec(f"cat {cluster.config_path}", check=False)
    return result.stdout if result.returncode == 0 else None


def test_the_same_push_twice_reloads_nothing_the_second_time(clean_lab):
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    cluster.vips.create(address=lab_vip(clean_lab, offset=107))
    first = push_here(cluster)
    assert [s for _, s in steps(first)] == ["applied"] * 3, first.detail
    pids = {n.name: n.exec("cat /run/keepalived.pid").stdout for n in clean_lab}
    mtimes = {n.name: n.exec(f"stat -c %Y.%N {cluster.config_path}").stdout for n in clean_lab}
    second = push_here(cluster)
    assert second.state == ConfigPush.State.SUCCEEDED
    assert [s for _, s in steps(second)] == ["unchanged"] * 3
    assert {
        n.name: n.exec(f"stat -c %Y.%N {cluster.config_path}").stdout for n in clean_lab
    } == mtimes
    assert {n.name: n.exec("cat /run/keepalived.pid").stdout for n in clean_lab} == pids


def test_a_vip_change_rolls_through_with_the_holder_last(clean_lab):
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    new_vip = lab_vip(clean_lab, offset=101)
    cluster.vips.create(address=new_vip)
    push = push_here(cluster)
    assert push.state == ConfigPush.State.SUCCEEDED, push.detail
    # Nodes holding no VIP first, lowest priority first, the holder (priority 120) last.
    assert steps(push) == [
        (clean_lab[0].name, "applied"),
        (clean_lab[1].name, "applied"),
        (clean_lab[2].name, "applied"),
    ]
    assert [n.name for n in clean_lab.vip_holders(new_vip.split("/")[0])] == [clean_lab[2].name]
    for node in clean_lab:
        assert new_vip in live_config(node, cluster)


def test_a_config_failing_keepalived_t_stops_the_push_on_that_node(clean_lab):
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    before = {n.name: live_config(n, cluster) for n in clean_lab}
    # The second node in push order gets an interface it does not have: keepalived -t fails there.
    second = cluster.nodes.get(name=clean_lab[1].name)
    second.interface = "eth9"
    second.save()
    cluster.vips.create(address=lab_vip(clean_lab, offset=102))
    push = push_here(cluster)
    assert push.state == ConfigPush.State.FAILED
    assert steps(push) == [
        (clean_lab[0].name, "applied"),
        (clean_lab[1].name, "failed"),
        (clean_lab[2].name, "pending"),
    ]
    failed = push.steps.get(node_name=clean_lab[1].name)
    assert failed.exit_code not in (None, 0)
    assert "eth9" in failed.output
    assert clean_lab[1].name in push.detail
    # The failed node kept its file byte for byte and its keepalived; the third was untouched.
    assert live_config(clean_lab[1], cluster) == before[clean_lab[1].name]
    assert clean_lab[1].keepalived_running()
    assert live_config(clean_lab[2], cluster) == before[clean_lab[2].name]
    assert clean_lab[1].exec("ls -a /etc/keepalived").stdout.count("vipanel-tmp") == 0


def test_a_second_push_is_refused_while_one_is_active(clean_lab):
    cluster = make_lab_cluster(clean_lab)
    first = start_push(None, cluster, queue=False)
    with pytest.raises(PushRefused) as refused:
        start_push(None, cluster, queue=False)
    assert refused.value.active == first
    assert f"#{first.pk}" in str(refused.value)
    assert ConfigPush.objects.filter(cluster=cluster).count() == 1


@pytest.mark.parametrize("state", ["running", "succeeded", "failed", "interrupted"])
def test_a_redelivered_push_task_does_not_run_it_twice(cluster, state):
    # No lab: a push that is not queued is never claimed, so nothing reaches a node.
    push = start_push(None, cluster, queue=False)
    ConfigPush.objects.filter(pk=push.pk).update(state=state, log="before\n")
    assert run_push(push.pk) is None
    push.refresh_from_db()
    assert (push.state, push.log) == (state, "before\n")


def test_the_probe_sees_the_holder_and_a_failover(clean_lab):
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    vip = cluster.vips.get().address
    status = probe_cluster(cluster)
    assert status.holders == {vip: [clean_lab[2].name]}
    assert not status.split_brain
    assert [n.drift for n in status.nodes] == [False, False, False]
    clean_lab[2].kill_keepalived()
    wait_until(lambda: probe_cluster(cluster).holders == {vip: [clean_lab[1].name]}, timeout=30)


def test_maintenance_moves_the_vip_off_the_holder_and_back(clean_lab):

    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    vip = lab_vip(clean_lab).split("/")[0]
    holder = cluster.nodes.get(name=clean_lab[2].name)
    push = set_maintenance(None, holder, True)
    push_id = push.pk
    run_push(push_id)
    push.refresh_from_db()
    assert push.kind == ConfigPush.Kind.MAINTENANCE
    assert push.state == ConfigPush.State.SUCCEEDED, push.detail
    assert [n.name for n in clean_lab.vip_holders(vip)] == [clean_lab[1].name]
    # Still running keepalived, with the lowest priority: it would take over only if alone.
    assert clean_lab[2].keepalived_running()
    assert "priority 1\n" in live_config(clean_lab[2], cluster)
    # A normal push leaves a node in maintenance alone.
    normal = push_here(cluster)
    assert dict(steps(normal))[clean_lab[2].name] == "skipped"
    back = set_maintenance(None, holder, False)
    run_push(back.pk)
    back.refresh_from_db()
    assert back.state == ConfigPush.State.SUCCEEDED, back.detail
    assert [n.name for n in clean_lab.vip_holders(vip)] == [clean_lab[2].name]


def test_maintenance_is_not_set_when_its_push_cannot_start(clean_lab):

    cluster = make_lab_cluster(clean_lab)
    start_push(None, cluster, queue=False)
    node = cluster.nodes.first()
    with pytest.raises(PushRefused):
        set_maintenance(None, node, True)
    node.refresh_from_db()
    assert not node.maintenance


def test_a_failover_drill_moves_the_vip_and_records_the_outcome(clean_lab):
    from clusters.drill import run_drill

    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    event = run_drill(cluster)
    assert event.kind == "drill"
    assert (event.from_node, event.to_node) == (clean_lab[2].name, clean_lab[1].name)
    assert event.detail.startswith("Passed."), event.detail
    # keepalived runs again on the old holder, which took the VIP back (preempt).
    assert clean_lab[2].keepalived_running()
    vip = lab_vip(clean_lab).split("/")[0]
    wait_until(
        lambda: [n.name for n in clean_lab.vip_holders(vip)] == [clean_lab[2].name], timeout=30
    )


def test_a_failed_reload_puts_the_backup_back(clean_lab):
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    before = {n.name: live_config(n, cluster) for n in clean_lab}
    cluster.vips.create(address=lab_vip(clean_lab, offset=105))
    cluster.reload_command = "echo reload refused >&2; exit 3"
    cluster.save()
    push = push_here(cluster)
    assert push.state == ConfigPush.State.FAILED
    first = push.steps.get(position=1)
    assert first.state == "failed" and first.exit_code == 3
    assert "reload refused" in first.output
    assert "put back" in first.detail
    # The new file was in place and tested; after the failure the old one is back, byte for byte.
    for node in clean_lab:
        assert live_config(node, cluster) == before[node.name]
        assert node.keepalived_running()
        assert "vipanel-bak" not in node.exec("ls -a /etc/keepalived").stdout


def test_a_failed_push_resumes_from_the_failed_node(clean_lab):

    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    second = cluster.nodes.get(name=clean_lab[1].name)
    second.interface = "eth9"
    second.save()
    cluster.vips.create(address=lab_vip(clean_lab, offset=106))
    push = push_here(cluster)
    assert push.state == ConfigPush.State.FAILED
    first_finished = push.steps.get(position=1).finished
    second.interface = ""
    second.save()
    resume_push(None, push)
    run_push(push.pk)
    push.refresh_from_db()
    assert push.state == ConfigPush.State.SUCCEEDED, push.detail
    assert [s for _, s in steps(push)] == ["applied"] * 3
    # The first node's finished step was not run again.
    assert push.steps.get(position=1).finished == first_finished
    assert "resumed" in push.log
