"""Alerts from the real lab to a real HTTP receiver: a failover (notify on) within 2 s, and one
opening and one closing message for a split brain that lasts several sweeps.

The failover's message goes through a real Celery worker serving the "alerts" queue; the other
tests run deliveries eagerly in this process (on commit of what recorded the event). The panel's
notify endpoint is a live server on the lab bridge, as in tests/test_push_worker.py.
"""

import time

import pytest
from pytest_django.live_server_helper import LiveServer

from alerts.models import Channel, EventKind, Incident
from clusters.history import sweep_cluster
from clusters.models import ConfigPush, FailoverEvent, VipState
from clusters.push import run_push
from clusters.services.pushes import queue_push as start_push
from tests.lab import wait_until
from tests.lab_cluster import make_lab_cluster, place_configs
from tests.receiver import eager_alerts, receiver  # noqa: F401

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def notify_server(lab, settings):
    server = LiveServer(f"{lab.bridge_address}:0")
    settings.VIPANEL_NOTIFY_URL = server.url
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, lab.bridge_address]
    yield server
    server.stop()


def test_a_failover_reaches_the_webhook_within_two_seconds(
    clean_lab, notify_server, receiver, start_worker
):
    """From the moment the VIP is on the next node (watched on the node itself) to the webhook
    at the receiver: the notify report, the event, the incident and a real Celery worker
    serving the "alerts" queue, which sends through apprise."""
    import ipaddress

    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    push = start_push(cluster, queue=False)  # adds the notify script on every node
    run_push(push.pk)
    assert ConfigPush.objects.get(pk=push.pk).state == ConfigPush.State.SUCCEEDED
    Channel.objects.create(name="hook", url=receiver.url(), kinds=[EventKind.FAILOVER])
    worker = start_worker(queues="alerts")
    sweep_cluster(cluster)  # the baseline of who holds the VIP
    ip = str(ipaddress.ip_interface(cluster.vips.get().address).ip)
    clean_lab[2].kill_keepalived()
    wait_until(lambda: clean_lab[1].holds(ip), timeout=30, interval=0.01, message="no takeover")
    took_over = time.time()
    [(_, path, body, arrived)] = receiver.wait_for(1, timeout=30)
    event = FailoverEvent.objects.get(cluster=cluster, kind="failover")
    assert event.detected_by == "notify"
    print(
        f"takeover seen -> webhook received: {arrived - took_over:.3f}s; "
        f"event recorded -> webhook: {arrived - event.at.timestamp():.3f}s"
    )
    assert arrived - took_over < 2, worker.tail()
    assert body["title"] == (
        f"[vipanel] Failover of {event.vip_address}: {clean_lab[2].name} -> {clean_lab[1].name}"
    )
    assert path == "/hook"


def test_a_split_brain_over_several_sweeps_is_one_opening_and_one_closing(
    clean_lab, receiver, eager_alerts, settings
):
    settings.VIPANEL_ALERT_MIN_DURATION = 2
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    Channel.objects.create(name="everything", url=receiver.url())  # every kind of event
    state = VipState.objects.filter(vip__cluster=cluster)
    wait_until(
        lambda: (
            sweep_cluster(cluster).holders
            and state.filter(holder__isnull=False, split_brain=False).exists()
        ),
        timeout=20,
        message="no holder",
    )
    clean_lab[0].block_vrrp()
    sweeps_in_split = 0

    def split_seen():
        nonlocal sweeps_in_split
        sweep_cluster(cluster)
        sweeps_in_split += state.filter(split_brain=True).exists()
        return sweeps_in_split >= 5 and Incident.objects.filter(state="open").exists()

    wait_until(split_seen, timeout=30, interval=0.5, message="the split brain did not alert")
    receiver.wait_for(1)
    clean_lab[0].unblock_vrrp()
    wait_until(
        lambda: sweep_cluster(cluster) and state.filter(split_brain=False).exists(),
        timeout=20,
        interval=0.5,
        message="the split brain did not end",
    )
    for _ in range(3):
        sweep_cluster(cluster)
    receiver.wait_for(2)
    time.sleep(0.5)  # a third message would arrive in this time: there must be none
    vip = cluster.vips.get().address
    assert receiver.titles() == [
        f"[vipanel] PROBLEM: Split brain: several nodes hold {vip}",
        f"[vipanel] RESOLVED: Split brain: several nodes hold {vip}",
    ], f"after {sweeps_in_split} sweeps in split brain"
    [incident] = Incident.objects.filter(kind=EventKind.SPLIT_BRAIN)
    assert incident.state == "resolved"
    assert [d.state for d in incident.deliveries.order_by("id")] == ["sent", "sent"]


def test_a_drill_sends_its_result_and_its_failovers_are_expected(
    clean_lab, notify_server, receiver, eager_alerts
):
    from clusters import drill

    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    push = start_push(cluster, queue=False)
    run_push(push.pk)
    assert ConfigPush.objects.get(pk=push.pk).state == ConfigPush.State.SUCCEEDED
    Channel.objects.create(name="everything", url=receiver.url())
    sweep_cluster(cluster)
    drill.run_drill_record(drill.create_drill(cluster).pk)  # as the drill task does
    [(_, _, body, _)] = receiver.wait_for(1, timeout=5)
    assert body["title"] == f"[vipanel] Drill passed on {cluster.name}", body
    # The notify reports recorded the drill's failover (and the way back): no message for them.
    failovers = Incident.objects.filter(kind=EventKind.FAILOVER)
    assert failovers.exists()
    assert set(failovers.values_list("expected", flat=True)) == {"during a drill"}
    time.sleep(0.5)
    assert len(receiver.messages) == 1, receiver.titles()
