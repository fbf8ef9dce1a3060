"""Celery tasks: thin wrappers over plain functions of the engine (clusters.push, clusters.sweep,
clusters.drill). Tasks import the engine only; the engine never imports the tasks
(clusters.services enqueue them).

Queues (CELERY_TASK_ROUTES in vipanel/settings.py): "sweeps" for the beat tick and its probe
batches, "pushes" and "drills" apart, so a push of many minutes never delays monitoring.
"""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from clusters import desired, drill, push, retention, sweep

log = logging.getLogger(__name__)


# acks_late: a push claimed by a worker that then dies is redelivered; the claim (a conditional
# UPDATE on the queued state) makes the redelivery a no-op, and the sweep marks it interrupted.
@shared_task(acks_late=True, reject_on_worker_lost=False)
def run_push_task(push_id):
    try:
        push.run_push(push_id)
    except SoftTimeLimitExceeded:
        log.error("push %s hit the soft time limit", push_id)


# beat's tick, the light coordinator: claims the free clusters and hands them out in batches.
# Not acks_late: a lost tick is simply the next one.
@shared_task
def sweep_task():
    # Push housekeeping first: interrupted pushes marked, lost queue messages sent again.
    for step in (
        push.mark_stale_pushes,
        lambda: push.requeue_lost_pushes(run_push_task.delay, drill_task.delay),
    ):
        try:
            step()
        except Exception:
            log.exception("sweep housekeeping failed")
    tick_id, batches = sweep.tick()
    for batch in batches:
        # A batch not started before its locks expire would find them gone and skip anyway.
        probe_batch_task.apply_async((batch, tick_id), expires=sweep.lock_ttl())


# Idempotent: redelivered, it finds its locks released (or renewed by no one) and skips.
@shared_task(acks_late=True)
def probe_batch_task(batch, tick_id=""):
    sweep.probe_batch(batch, tick_id)


# Not acks_late: a drill stops keepalived on a node; it must never run twice by redelivery
# (and its record's claim refuses a second run anyway).
@shared_task
def drill_task(record_id):
    drill.run_drill_record(record_id)


@shared_task
def refresh_desired_task():
    """From beat: what vipanel would push to each node, rendered again (clusters.desired)."""
    log.info("desired configs refreshed, %s changed", desired.refresh_all())


# Retention (clusters/retention.py), daily from beat; deleting twice is harmless.
@shared_task(acks_late=True)
def prune_task():
    log.info("pruned %s", retention.prune())
