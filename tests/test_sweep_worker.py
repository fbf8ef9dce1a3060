"""Sweeps through real Celery workers on their own queue: a push never waits behind them, and a
sweep never waits behind a push."""

import pytest
from django.utils import timezone

from clusters.models import ConfigPush, NodeState
from clusters.services.pushes import queue_push as start_push
from clusters.tasks import sweep_task
from tests.lab import wait_until
from tests.lab_cluster import make_lab_cluster

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_a_sweeps_worker_sweeps_and_leaves_pushes_to_the_push_workers(lab, start_worker):
    cluster = make_lab_cluster(lab)
    sweeper = start_worker(queues="sweeps")
    push = start_push(cluster)
    sent = timezone.now()
    sweep_task.delay()
    wait_until(
        lambda: NodeState.objects.filter(checked_at__gte=sent, reachable=True).count() == len(lab),
        timeout=30,
        message=f"the sweep did not record every node:\n{sweeper.tail()}",
    )
    # The sweeps worker never took the push: it is still queued for a pushes worker.
    push.refresh_from_db()
    assert push.state == ConfigPush.State.QUEUED
    # (The start-up banner lists every task; a received one is logged as "Task name[id]".)
    assert "run_push_task[" not in sweeper.log_path.read_text()
