"""Incidents from what sweeps record: one message to open, one to resolve, flaps damped,
expected problems silent; deliveries to a real HTTP receiver, with retries and their reasons."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import incidents, tasks
from alerts.models import Channel, Delivery, EventKind, Incident
from clusters import history
from clusters.convergence import settle_seconds
from clusters.models import ConfigPush, FailoverEvent
from clusters.status import ClusterStatus, NodeProbe
from tests.receiver import eager_alerts, receiver  # noqa: F401

pytestmark = pytest.mark.django_db
START = timezone.now()


@pytest.fixture
def channel(receiver):
    return Channel.objects.create(name="hook", url=receiver.url(), masked_url="json://...")


@pytest.fixture
def sweep(cluster, django_capture_on_commit_callbacks, eager_alerts):
    """sweep(seconds, holders=[names], unreachable=[], drift=[]): record what a sweep saw
    `seconds` after START, as history.record_status does, with its on-commit work run."""

    def run(seconds, holders=("web-1",), unreachable=(), drift=()):
        vip = cluster.vips.get().address
        nodes = []
        for node in cluster.nodes.all():
            reachable = node.name not in unreachable
            nodes.append(
                NodeProbe(
                    name=node.name,
                    node_id=node.pk,
                    reachable=reachable,
                    keepalived_running=reachable,
                    vrrp_state="MASTER" if node.name in holders else "BACKUP",
                    holds=[vip] if node.name in holders else [],
                    drift=(node.name in drift) if reachable else None,
                    error="" if reachable else "connect timed out",
                )
            )
        status = ClusterStatus(
            cluster=cluster.name,
            checked_at=START + timedelta(seconds=seconds),
            nodes=nodes,
            holders={vip: [n for n in holders]},
        )
        with django_capture_on_commit_callbacks(execute=True):
            history.record_status(cluster, status)

    return run


def incidents_of(kind):
    return list(Incident.objects.filter(kind=kind).order_by("id"))


def test_a_split_brain_over_many_sweeps_sends_one_opening_and_one_closing(
    sweep, channel, receiver, settings
):
    settings.VIPANEL_ALERT_MIN_DURATION = 5
    sweep(0)
    for t in range(5, 45, 5):
        sweep(t, holders=("web-1", "web-2"))
    sweep(45)
    sweep(50)
    [incident] = incidents_of(EventKind.SPLIT_BRAIN)
    assert incident.state == Incident.State.RESOLVED
    assert incident.started == START + timedelta(seconds=5)
    assert incident.opened == START + timedelta(seconds=10)
    assert incident.resolved == START + timedelta(seconds=45)
    titles = [t for t in receiver.titles()]
    assert len(titles) == 2, titles
    assert titles[0].startswith("[vipanel] PROBLEM: Split brain")
    assert titles[1].startswith("[vipanel] RESOLVED: Split brain")
    assert "40s" in receiver.messages[1][2]["message"]
    assert [d.state for d in incident.deliveries.order_by("id")] == ["sent", "sent"]


def test_a_flap_shorter_than_the_minimum_sends_nothing(sweep, channel, receiver, settings):
    settings.VIPANEL_ALERT_MIN_DURATION = 10
    sweep(0)
    sweep(5, holders=())  # no holder, seen once
    sweep(10)
    [incident] = incidents_of(EventKind.NO_HOLDER)
    assert incident.state == Incident.State.RESOLVED and incident.opened is None
    assert not incident.deliveries.exists()
    assert receiver.messages == []


def test_an_unreachable_node_in_maintenance_is_expected_and_silent_until_it_leaves(
    sweep, channel, receiver, cluster, settings
):
    settings.VIPANEL_ALERT_MIN_DURATION = 0
    node = cluster.nodes.get(name="web-2")
    node.maintenance = True
    node.save()
    sweep(0, unreachable=["web-2"])
    sweep(5, unreachable=["web-2"])
    [incident] = incidents_of(EventKind.NODE_UNREACHABLE)
    assert incident.state == Incident.State.OPEN and incident.expected == "node in maintenance"
    assert receiver.messages == []
    node.maintenance = False
    node.save()
    sweep(10, unreachable=["web-2"])
    receiver.wait_for(1)
    assert receiver.titles() == ["[vipanel] PROBLEM: Node web-2 is unreachable"]
    sweep(15)
    receiver.wait_for(2)
    assert receiver.titles()[1] == "[vipanel] RESOLVED: Node web-2 is unreachable"


def test_problems_during_a_push_wait_for_its_end(sweep, channel, receiver, cluster, settings):
    settings.VIPANEL_ALERT_MIN_DURATION = 0
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.RUNNING)
    sweep(0, drift=["web-1"])
    sweep(5)  # the push fixed it
    [incident] = incidents_of(EventKind.DRIFT)
    assert incident.state == Incident.State.RESOLVED
    assert incident.expected == f"during push #{push.pk}"
    sweep(10, drift=["web-2"])
    ConfigPush.objects.filter(pk=push.pk).update(state=ConfigPush.State.SUCCEEDED)
    sweep(15, drift=["web-2"])  # outlasted the push: now it alerts
    assert receiver.titles() == ["[vipanel] PROBLEM: Config drift on web-2"]


def test_a_failed_push_alerts_once_and_resolves_when_a_push_succeeds(
    sweep, channel, receiver, cluster, settings
):
    settings.VIPANEL_ALERT_MIN_DURATION = 0
    failed = ConfigPush.objects.create(
        cluster=cluster,
        state=ConfigPush.State.FAILED,
        detail="web-2: keepalived -t refused the config",
    )
    sweep(0)
    sweep(5)
    assert receiver.titles() == [f"[vipanel] PROBLEM: Push #{failed.pk} of web failed"]
    assert "refused the config" in receiver.messages[0][2]["message"]
    ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.SUCCEEDED)
    sweep(10)
    assert receiver.titles()[1:] == [f"[vipanel] RESOLVED: Push #{failed.pk} of web failed"]


def test_the_engine_ending_a_push_alerts_at_once_without_a_sweep(
    cluster, channel, receiver, settings, django_capture_on_commit_callbacks, eager_alerts
):
    """_finish and mark_stale_pushes write with update() (no post_save): the engine's
    clusters.signals.push_finished reaches the alerts, so no sweep is needed to notice."""
    from clusters import push as engine

    settings.VIPANEL_ALERT_MIN_DURATION = 0
    failed = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        assert engine._finish(failed, ConfigPush.State.FAILED, "web-2: refused")
    assert receiver.titles() == [f"[vipanel] PROBLEM: Push #{failed.pk} of web failed"]


def test_an_interrupted_push_alerts_at_once_without_a_sweep(
    cluster, channel, receiver, settings, django_capture_on_commit_callbacks, eager_alerts
):
    from clusters import push as engine

    settings.VIPANEL_ALERT_MIN_DURATION = 0
    stale = ConfigPush.objects.create(
        cluster=cluster,
        state=ConfigPush.State.RUNNING,
        heartbeat=timezone.now() - timedelta(hours=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert engine.mark_stale_pushes() == 1
        assert engine.mark_stale_pushes() == 0  # not ours twice: no second signal
    assert receiver.titles() == [f"[vipanel] PROBLEM: Push #{stale.pk} of web interrupted"]


def test_a_failover_is_one_message_unless_during_a_push_or_drill(
    cluster, channel, receiver, django_capture_on_commit_callbacks, eager_alerts
):
    vip = cluster.vips.get()

    def failover(at=None, **extra):
        with django_capture_on_commit_callbacks(execute=True):
            return FailoverEvent.objects.create(
                cluster=cluster,
                vip=vip,
                vip_address=vip.address,
                from_node="web-1",
                to_node="web-2",
                at=at or timezone.now(),
                kind=FailoverEvent.Kind.FAILOVER,
                detected_by="notify",
                **extra,
            )

    failover()
    assert receiver.titles() == ["[vipanel] Failover of 192.0.2.100/24: web-1 -> web-2"]
    failover(detail="During push #7. ")
    drill = ConfigPush.objects.create(
        cluster=cluster, kind=ConfigPush.Kind.DRILL, state=ConfigPush.State.RUNNING
    )
    failover()
    finished = timezone.now()
    ConfigPush.objects.filter(pk=drill.pk).update(
        state=ConfigPush.State.SUCCEEDED, finished=finished
    )
    failover(finished + timedelta(seconds=1))  # the failback, reported just after: the drill's
    # Once VRRP has had time to settle after the drill: a failover like any other.
    failover(finished + timedelta(seconds=settle_seconds(cluster) + 1))
    assert len(receiver.messages) == 2
    assert [i.expected for i in incidents_of(EventKind.FAILOVER)] == [
        "",
        "during push #7",
        "during a drill",
        "during a drill",
        "",
    ]
    with django_capture_on_commit_callbacks(execute=True):
        FailoverEvent.objects.create(
            cluster=cluster,
            vip=vip,
            vip_address=vip.address,
            at=timezone.now(),
            kind=FailoverEvent.Kind.DRILL,
            detected_by="drill",
            detail="Passed. Moved in 3.1s.",
        )
    assert receiver.titles()[2] == "[vipanel] Drill passed on web"
    assert receiver.messages[2][2]["type"] == "success"


def test_channels_get_only_their_kinds_and_clusters(sweep, receiver, cluster, settings):
    settings.VIPANEL_ALERT_MIN_DURATION = 0
    other = Channel.objects.create(name="elsewhere", url=receiver.url("other"), all_clusters=False)
    drills_only = Channel.objects.create(
        name="drills", url=receiver.url("drills"), kinds=[EventKind.DRILL]
    )
    mine = Channel.objects.create(name="mine", url=receiver.url("mine"), all_clusters=False)
    mine.clusters.set([cluster])
    assert other and drills_only
    sweep(0, holders=("web-1", "web-2"))
    receiver.wait_for(1)
    assert [m[1] for m in receiver.messages] == ["/mine"]


def test_a_refused_delivery_is_retried_with_back_off_and_its_reason_recorded(
    cluster, receiver, settings, monkeypatch
):
    settings.VIPANEL_ALERT_RETRY_BACKOFF = 10
    receiver.status = 503
    channel = Channel.objects.create(name="hook", url=receiver.url("t0ps3cret"))
    delivery = Delivery.objects.create(channel=channel, channel_name="hook", purpose="test")
    assert tasks.deliver(delivery.pk) == 10
    assert tasks.deliver(delivery.pk) == 20
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.RETRYING and delivery.attempts == 2
    assert "503" in delivery.error and "retrying in 20s" in delivery.error
    assert tasks.deliver(delivery.pk, last_attempt=True) is None
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.FAILED and delivery.attempts == 3
    assert "t0ps3cret" not in delivery.error
    receiver.status = 200
    assert tasks.deliver(delivery.pk) is None  # given up: a redelivered message does nothing
    assert receiver.messages == []


def test_the_task_retries_through_celery_then_sends(cluster, receiver, eager_alerts, monkeypatch):
    receiver.status = 500
    channel = Channel.objects.create(name="hook", url=receiver.url())
    delivery = Delivery.objects.create(channel=channel, channel_name="hook", purpose="test")
    calls = []
    real = tasks.deliver

    def flaky(pk, last_attempt=False):
        calls.append(last_attempt)
        if len(calls) == 3:
            receiver.status = 200  # the receiver is back for the third attempt
        return real(pk, last_attempt)

    monkeypatch.setattr(tasks, "deliver", flaky)
    tasks.deliver_task.delay(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SENT and delivery.attempts == 3
    assert calls == [False, False, False]
    assert len(receiver.messages) == 1


def test_a_deleted_channel_fails_its_delivery_with_the_reason(cluster, receiver):
    channel = Channel.objects.create(name="hook", url=receiver.url())
    delivery = Delivery.objects.create(channel=channel, channel_name="hook", purpose="test")
    channel.delete()
    tasks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.FAILED and "deleted" in delivery.error


def test_a_sweep_evaluates_its_cluster_once_and_a_healthy_one_not_at_all(
    sweep, cluster, monkeypatch
):
    calls = []
    monkeypatch.setattr(incidents, "evaluate", lambda c, now=None: calls.append(c.pk))
    sweep(0, unreachable=("web-2",))
    assert calls == [cluster.pk]
    # Healthy, with no incident open or pending and no failed push: nothing to evaluate.
    sweep(5)
    assert calls == [cluster.pk]
    Incident.objects.create(
        kind="node_unreachable",
        cluster=cluster,
        key="node:x",
        subject="web-2",
        title="x",
        started=START,
        last_seen=START,
    )
    sweep(10)  # healthy again, but an incident is pending: it must be resolved
    assert calls == [cluster.pk, cluster.pk]


def test_the_alerts_cost_a_sweep_few_queries(sweep, cluster, django_assert_max_num_queries):
    sweep(0, unreachable=("web-2",))  # a problem (a healthy sweep evaluates nothing)
    # record_status alone: 17 for 2 nodes and a VIP (6 of them savepoints); the signals add
    # the node's cluster, the cluster's node and VIP ids (3), the coverage span (2), and one
    # evaluation (9, the health rule's three reads among them) however many rows the sweep
    # wrote, and the unreachable node's incident kept up to date (2); the VIP's instance (1,
    # several VRRP instances per cluster).
    with django_assert_max_num_queries(34):
        sweep(5, unreachable=("web-2",))


def test_a_vip_never_pushed_alerts_nothing_even_with_nobody_holding_it(
    sweep, channel, receiver, cluster, settings
):
    settings.VIPANEL_ALERT_MIN_DURATION = 0
    from clusters.models import VipState

    cluster.vips.update(pushed_at=None)
    VipState.objects.all().delete()
    for t in range(0, 30, 5):
        sweep(t, holders=())
    assert not Incident.objects.exists() and receiver.messages == []
    # Once pushed, a VIP nobody holds is an outage again.
    cluster.vips.update(pushed_at=START)
    sweep(35, holders=())
    assert [i.kind for i in Incident.objects.all()] == [EventKind.NO_HOLDER]


def test_a_drift_incident_says_what_drift_is(sweep, channel, settings):
    settings.VIPANEL_ALERT_MIN_DURATION = 0
    sweep(0, drift=("web-2",))
    [incident] = incidents_of(EventKind.DRIFT)
    assert "is not what vipanel last pushed there: it was edited on the node" in incident.detail
