"""The push and the sweep through real Celery processes over real Redis, against the lab."""

import pytest
from django.utils import timezone
from pytest_django.live_server_helper import LiveServer

from clusters.history import sweep_cluster
from clusters.models import ConfigPush, FailoverEvent, NodeState, PushStep
from clusters.push import mark_stale_pushes
from clusters.services.pushes import resume_push, start_push
from tests.lab import wait_until
from tests.lab_cluster import lab_vip, make_lab_cluster, place_configs

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def wait_for_push(push, timeout=90):
    try:
        wait_until(lambda: not ConfigPush.objects.get(pk=push.pk).is_active, timeout=timeout)
    except TimeoutError:
        push.refresh_from_db()
        raise AssertionError(
            f"push #{push.pk} still {push.state} after {timeout}s:\n{push.log}"
        ) from None
    push.refresh_from_db()
    return push


def test_a_worker_runs_the_push_enqueued_on_commit(clean_lab, start_worker):
    worker = start_worker()
    cluster = make_lab_cluster(clean_lab)
    push = wait_for_push(start_push(None, cluster))
    assert push.state == ConfigPush.State.SUCCEEDED, (push.detail, worker.tail())
    assert set(push.steps.values_list("state", flat=True)) == {"applied"}
    assert [n.name for n in clean_lab.vip_holders(lab_vip(clean_lab).split("/")[0])] == [
        clean_lab[2].name
    ]


def test_a_worker_killed_mid_push_leaves_old_or_new_files_and_the_push_resumes(
    clean_lab, start_worker
):
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    worker = start_worker()
    old = {n.name: n.exec(f"cat {cluster.config_path}").stdout for n in clean_lab}
    cluster.vips.create(address=lab_vip(clean_lab, offset=103))
    push = start_push(None, cluster)
    # Kill the worker while the second node's step runs.
    wait_until(
        lambda: push.steps.filter(position=2, state=PushStep.State.RUNNING).exists(),
        timeout=60,
        interval=0.01,
        message="the second step never started",
    )
    worker.kill()
    for node in clean_lab:
        live = node.exec(f"cat {cluster.config_path}").stdout
        assert live == old[node.name] or lab_vip(clean_lab, offset=103) in live, node.name
    # Nothing renews the heartbeat now: the sweep finds the push interrupted.
    assert mark_stale_pushes(now=timezone.now() + timezone.timedelta(hours=1)) == 1
    push.refresh_from_db()
    assert push.state == ConfigPush.State.INTERRUPTED
    start_worker()
    resume_push(None, push)
    push = wait_for_push(push)
    assert push.state == ConfigPush.State.SUCCEEDED, push.detail
    for node in clean_lab:
        assert lab_vip(clean_lab, offset=103) in node.exec(f"cat {cluster.config_path}").stdout
        assert "vipanel-tmp" not in node.exec("ls -a /etc/keepalived").stdout


def test_beat_sweeps_and_records_a_failover(clean_lab, start_worker):
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    start_worker()
    start_worker("beat")
    wait_until(
        lambda: NodeState.objects.filter(node__cluster=cluster).count() == 3,
        timeout=30,
        message="beat's sweep did not record the nodes",
    )
    clean_lab[2].kill_keepalived()
    wait_until(
        lambda: FailoverEvent.objects.filter(cluster=cluster, kind="failover").exists(),
        timeout=30,
        message="no failover recorded",
    )
    event = FailoverEvent.objects.get(cluster=cluster, kind="failover")
    assert (event.from_node, event.to_node) == (clean_lab[2].name, clean_lab[1].name)
    assert event.detected_by == "sweep"


@pytest.fixture
def notify_server(lab, settings):
    """The panel served on the lab bridge, where the nodes' notify scripts can reach it."""
    server = LiveServer(f"{lab.bridge_address}:0")
    settings.VIPANEL_NOTIFY_URL = server.url
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, lab.bridge_address]
    yield server
    server.stop()


def test_a_notify_report_records_the_failover_within_a_second(
    clean_lab, start_worker, notify_server
):
    # Placed without notify first; the push then adds the notify script everywhere.
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    start_worker(VIPANEL_NOTIFY_URL=notify_server.url)
    assert wait_for_push(start_push(None, cluster)).state == ConfigPush.State.SUCCEEDED
    # The sweep sets the baseline of who holds the VIP; then only notify reports run.
    sweep_cluster(cluster)
    killed_at = timezone.now()
    clean_lab[2].kill_keepalived()
    after_kill = FailoverEvent.objects.filter(cluster=cluster, kind="failover", at__gte=killed_at)
    wait_until(after_kill.exists, timeout=30, message="no notify report recorded the failover")
    event = after_kill.get()
    assert (event.from_node, event.to_node, event.detected_by) == (
        clean_lab[2].name,
        clean_lab[1].name,
        "notify",
    )
