"""Celery tasks: thin wrappers over plain functions of the engine (clusters.push, clusters.drill,
clusters.history). Tasks import the engine only; the engine never imports the tasks
(clusters.services enqueue them)."""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from clusters import drill, history, push, retention

log = logging.getLogger(__name__)


# acks_late: a push claimed by a worker that then dies is redelivered; the claim (a conditional
# UPDATE on the queued state) makes the redelivery a no-op, and the sweep marks it interrupted.
@shared_task(acks_late=True, reject_on_worker_lost=False)
def run_push_task(push_id):
    try:
        push.run_push(push_id)
    except SoftTimeLimitExceeded:
        log.error("push %s hit the soft time limit", push_id)


# Idempotent: a sweep repeated or redelivered only probes once more.
@shared_task(acks_late=True)
def sweep_task():
    push.mark_stale_pushes()
    push.requeue_lost_pushes(run_push_task.delay, drill_task.delay)
    history.sweep_all()


# Not acks_late: a drill stops keepalived on a node; it must never run twice by redelivery
# (and its record's claim refuses a second run anyway).
@shared_task
def drill_task(record_id):
    drill.run_drill_record(record_id)


# Retention (clusters/retention.py), daily from beat; deleting twice is harmless.
@shared_task(acks_late=True)
def prune_task():
    log.info("pruned %s", retention.prune())
