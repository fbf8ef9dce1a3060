"""One owner per push (issue 15.4): the fencing token, the heartbeat, the database's clock, and
the drill as a record sharing the one-operation-per-cluster rule. No lab: nothing here reaches
a node (a claim is refused or the push is fenced before any SSH)."""

import threading

import pytest
from django.db import DatabaseError
from django.db.models.functions import Now
from django.utils import timezone

from clusters import drill
from clusters import push as engine
from clusters.models import ConfigPush
from clusters.push import mark_stale_pushes
from clusters.services.errors import Refused as PushRefused
from clusters.services.pushes import queue_push as start_push
from clusters.services.pushes import requeue_push as resume_push

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_claim_writes_a_fencing_token_and_a_second_claim_gets_nothing(cluster):
    push = start_push(cluster, queue=False)
    owner = engine.claim(push.pk)
    push.refresh_from_db()
    assert push.state == ConfigPush.State.RUNNING
    assert push.owner == owner.token and len(owner.token) == 32
    assert engine.claim(push.pk) is None


def test_a_worker_that_lost_its_push_cannot_finish_it(cluster):
    # Reproduction: the sweep marked the push interrupted while its worker ran, a resume gave
    # it to a second worker, and the first one's _finish overwrote the state.
    push = start_push(cluster, queue=False)
    first = engine.claim(push.pk)
    assert mark_stale_pushes(now=timezone.now() + timezone.timedelta(hours=1)) == 1
    resume_push(push, queue=False)
    second = engine.claim(push.pk)
    assert second is not None and second.token != first.token
    assert engine._finish(push, ConfigPush.State.FAILED, "stale worker", first) is False
    push.refresh_from_db()
    assert (push.state, push.owner) == (ConfigPush.State.RUNNING, second.token)
    with pytest.raises(engine.PushLost):
        first.update_step(push.steps.first().pk, detail="stale")
    assert push.steps.first().detail == ""
    assert engine._finish(push, ConfigPush.State.SUCCEEDED, "", second) is True
    push.refresh_from_db()
    assert push.state == ConfigPush.State.SUCCEEDED


def test_staleness_is_judged_on_the_databases_clock(cluster):
    push = start_push(cluster, queue=False)
    engine.claim(push.pk)
    # A heartbeat written by the database just now is fresh whatever this host's clock says.
    assert mark_stale_pushes() == 0
    ConfigPush.objects.filter(pk=push.pk).update(heartbeat=Now() - timezone.timedelta(seconds=3600))
    assert mark_stale_pushes() == 1
    push.refresh_from_db()
    assert push.state == ConfigPush.State.INTERRUPTED


class FlakyRows:
    """The push's row through a database that fails `failures` times, then answers."""

    def __init__(self, failures):
        self.failures = failures
        self.calls = 0

    def update(self, **fields):
        self.calls += 1
        if self.calls <= self.failures:
            raise DatabaseError("server closed the connection unexpectedly")
        return 1


def beat(owner, rows, retries, beats):
    owner.rows = lambda: rows
    stop = threading.Event()
    # Stops after `beats` renewals so the loop ends when the database recovers.
    original = rows.update

    def update(**fields):
        result = original(**fields)
        if rows.calls >= beats:
            stop.set()
        return result

    rows.update = update
    engine._beat(owner, stop, 0.001, retries)


def test_heartbeat_errors_are_retried(cluster):
    push = start_push(cluster, queue=False)
    owner = engine.claim(push.pk)
    rows = FlakyRows(failures=2)
    beat(owner, rows, retries=3, beats=4)
    assert rows.calls == 4
    assert not owner.lost.is_set()


def test_past_the_retry_limit_the_push_stops_itself(cluster):
    push = start_push(cluster, queue=False)
    owner = engine.claim(push.pk)
    rows = FlakyRows(failures=100)
    beat(owner, rows, retries=3, beats=1000)
    assert rows.calls == 4
    assert owner.lost.is_set()
    with pytest.raises(engine.PushLost):
        owner.check()


def test_a_heartbeat_that_finds_the_push_no_longer_ours_stops_it(cluster):
    push = start_push(cluster, queue=False)
    owner = engine.claim(push.pk)
    ConfigPush.objects.filter(pk=push.pk).update(state=ConfigPush.State.INTERRUPTED)
    engine._beat(owner, threading.Event(), 0.001, 3)
    assert owner.lost.is_set()


def test_a_drill_is_a_record_and_two_at_once_are_refused(cluster):
    record = drill.create_drill(cluster)
    assert (record.kind, record.state) == (ConfigPush.Kind.DRILL, ConfigPush.State.QUEUED)
    assert not record.is_resumable
    with pytest.raises(drill.DrillRefused, match="A drill of this cluster is active"):
        drill.create_drill(cluster)


def test_a_push_during_a_drill_is_refused(cluster):
    record = drill.create_drill(cluster)
    with pytest.raises(PushRefused) as refused:
        start_push(cluster, queue=False)
    assert refused.value.active == record


def test_a_drill_during_a_push_is_refused(cluster):
    start_push(cluster, queue=False)
    with pytest.raises(drill.DrillRefused, match="A push of this cluster is active"):
        drill.create_drill(cluster)


def test_a_push_task_never_runs_a_drill_record_and_the_drill_task_never_a_push(cluster):
    record = drill.create_drill(cluster)
    assert engine.run_push(record.pk) is None
    record.refresh_from_db()
    assert record.state == ConfigPush.State.QUEUED
    ConfigPush.objects.filter(pk=record.pk).delete()
    push = start_push(cluster, queue=False)
    assert drill.run_drill_record(push.pk) is None
    push.refresh_from_db()
    assert push.state == ConfigPush.State.QUEUED
