"""Failover history from probe results: each change of a VIP's holder becomes one event."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.history import record_notify, record_status
from clusters.models import ConfigPush, FailoverEvent, NodeState, VipState
from clusters.status import ClusterStatus, NodeProbe

pytestmark = pytest.mark.django_db


def observe(cluster, at, held_by=(), unreachable=()):
    """A ClusterStatus in which the nodes named in `held_by` hold the cluster's one VIP."""
    vip = cluster.vips.get().address
    nodes = [
        NodeProbe(
            name=n.name,
            node_id=n.pk,
            reachable=n.name not in unreachable,
            keepalived_running=True,
            holds=[vip] if n.name in held_by else [],
        )
        for n in cluster.nodes.all()
    ]
    return ClusterStatus(
        cluster=cluster.name,
        checked_at=at,
        nodes=nodes,
        holders={vip: [n for n in held_by if n not in unreachable]},
    )


def kinds(cluster):
    return list(
        FailoverEvent.objects.filter(cluster=cluster)
        .order_by("at", "id")
        .values_list("kind", "from_node", "to_node")
    )


def test_it_records_no_event_for_the_first_observation(cluster):
    record_status(cluster, observe(cluster, timezone.now(), ["web-1"]))
    assert kinds(cluster) == []
    assert VipState.objects.get().holder.name == "web-1"


def test_a_node_seen_as_before_has_only_its_time_moved_and_a_change_is_saved(
    cluster, django_assert_num_queries
):
    """The steady state of every sweep: healthy nodes as they were get one UPDATE of
    checked_at between them; a node that changed, or has a problem, is saved in full."""
    t0 = timezone.now()
    record_status(cluster, observe(cluster, t0, ["web-1"]))
    again = t0 + timedelta(seconds=5)
    status = observe(cluster, again, ["web-1"])
    # nodes, the one UPDATE for both, the VIP and its state (read, save), the panel's
    # coverage (read, extend: alerts), a savepoint and its release
    with django_assert_num_queries(9) as ctx:
        record_status(cluster, status)
    written = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].startswith(("UPDATE", "INSERT")) and '"clusters_nodestate"' in q["sql"]
    ]
    assert len(written) == 1 and "WHERE" in written[0], written
    assert set(NodeState.objects.values_list("checked_at", flat=True)) == {again}
    # web-2 unreachable: its row is saved in full (and saved again next sweep, a problem).
    later = again + timedelta(seconds=5)
    record_status(cluster, observe(cluster, later, ["web-1"], unreachable=["web-2"]))
    states = {s.node.name: s for s in NodeState.objects.select_related("node")}
    assert states["web-2"].reachable is False and states["web-2"].checked_at == later
    assert states["web-1"].reachable is True and states["web-1"].checked_at == later
    # web-1 takes a second address: not as before either.
    vip = cluster.vips.get().address
    status = observe(cluster, later + timedelta(seconds=5), ["web-1"])
    status.nodes[0].holds = [vip, "192.0.2.99/24"]
    record_status(cluster, status)
    assert NodeState.objects.get(node__name="web-1").holds == [vip, "192.0.2.99/24"]


def test_it_records_a_failover_with_both_nodes(cluster):
    t = timezone.now()
    record_status(cluster, observe(cluster, t, ["web-1"]))
    events = record_status(cluster, observe(cluster, t + timedelta(seconds=5), ["web-2"]))
    assert [e.kind for e in events] == ["failover"]
    assert kinds(cluster) == [("failover", "web-1", "web-2")]
    assert FailoverEvent.objects.get().detected_by == "sweep"


def test_it_records_split_brain_and_its_end(cluster):
    t = timezone.now()
    record_status(cluster, observe(cluster, t, ["web-1"]))
    record_status(cluster, observe(cluster, t + timedelta(seconds=5), ["web-1", "web-2"]))
    record_status(cluster, observe(cluster, t + timedelta(seconds=10), ["web-1", "web-2"]))
    record_status(cluster, observe(cluster, t + timedelta(seconds=15), ["web-1"]))
    assert kinds(cluster) == [
        ("split_brain", "web-1", "web-1, web-2"),
        ("split_brain_end", "", "web-1"),
    ]
    assert not VipState.objects.get().split_brain


def test_it_records_no_holder_and_its_end(cluster):
    t = timezone.now()
    record_status(cluster, observe(cluster, t, ["web-1"]))
    record_status(cluster, observe(cluster, t + timedelta(seconds=5), []))
    record_status(cluster, observe(cluster, t + timedelta(seconds=10), ["web-2"]))
    # Back on another node than before the gap: the gap was a takeover, so a failover too.
    assert kinds(cluster) == [
        ("no_holder", "web-1", ""),
        ("no_holder_end", "", "web-2"),
        ("failover", "web-1", "web-2"),
    ]


def test_a_gap_that_ends_on_the_same_node_is_no_failover(cluster):
    t = timezone.now()
    record_status(cluster, observe(cluster, t, ["web-1"]))
    record_status(cluster, observe(cluster, t + timedelta(seconds=5), []))
    record_status(cluster, observe(cluster, t + timedelta(seconds=10), ["web-1"]))
    assert kinds(cluster) == [("no_holder", "web-1", ""), ("no_holder_end", "", "web-1")]


def test_an_unreachable_node_makes_the_holder_unknown_not_missing(cluster):
    t = timezone.now()
    record_status(cluster, observe(cluster, t, ["web-1"]))
    record_status(
        cluster, observe(cluster, t + timedelta(seconds=5), ["web-1"], unreachable=["web-1"])
    )
    assert kinds(cluster) == []
    assert VipState.objects.get().holder.name == "web-1"


def test_an_older_sweep_does_not_undo_a_newer_notify_report(cluster):
    t = timezone.now()
    record_status(cluster, observe(cluster, t, ["web-1"]))
    web2 = cluster.nodes.get(name="web-2")
    record_notify(cluster, web2, "MASTER", at=t + timedelta(seconds=10))
    # A sweep that started before the report, and still saw web-1, finishes after it.
    record_status(cluster, observe(cluster, t + timedelta(seconds=9), ["web-1"]))
    assert kinds(cluster) == [("failover", "web-1", "web-2")]
    assert FailoverEvent.objects.get().detected_by == "notify"
    assert VipState.objects.get().holder == web2


def test_a_notify_report_of_backup_moves_nothing(cluster):
    t = timezone.now()
    record_status(cluster, observe(cluster, t, ["web-1"]))
    record_notify(cluster, cluster.nodes.get(name="web-2"), "BACKUP", at=t + timedelta(seconds=1))
    assert kinds(cluster) == []


def test_events_during_a_push_say_so(cluster):
    t = timezone.now()
    record_status(cluster, observe(cluster, t, ["web-1"]))
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.RUNNING)
    record_status(cluster, observe(cluster, t + timedelta(seconds=5), ["web-2"]))
    assert FailoverEvent.objects.get().detail.startswith(f"During push #{push.pk}.")


def test_a_takeover_reported_after_a_no_holder_sweep_ends_it(cluster):
    t = timezone.now()
    record_status(cluster, observe(cluster, t, ["web-1"]))
    record_status(cluster, observe(cluster, t + timedelta(seconds=1), []))
    record_notify(cluster, cluster.nodes.get(name="web-2"), "MASTER", at=t + timedelta(seconds=2))
    assert kinds(cluster) == [("no_holder", "web-1", ""), ("no_holder_end", "", "web-2")]
    state = VipState.objects.get()
    assert state.holder.name == "web-2" and not state.no_holder


def test_the_sweep_requeues_a_push_whose_message_was_lost(cluster, settings):
    from clusters.push import requeue_lost_pushes
    from clusters.services.pushes import start_push

    sent = []
    queued = start_push(None, cluster, queue=False)
    now = timezone.now()
    assert (
        requeue_lost_pushes(sent.append, sent.append, now=now) == 0
    )  # just queued: its message is there
    later = now + timedelta(seconds=settings.VIPANEL_PUSH_STALE_AFTER + 1)
    assert requeue_lost_pushes(sent.append, sent.append, now=later) == 1
    assert sent == [queued.pk]
    # Not again until another stale period has passed, and never once it is claimed.
    assert requeue_lost_pushes(sent.append, sent.append, now=later) == 0
    ConfigPush.objects.filter(pk=queued.pk).update(state=ConfigPush.State.RUNNING)
    assert requeue_lost_pushes(sent.append, sent.append, now=later + timedelta(hours=1)) == 0
