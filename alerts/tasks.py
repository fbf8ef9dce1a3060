"""Sending alert messages: one task per Delivery, on the "alerts" queue.

acks_late: a worker that dies mid-send has its message redelivered; a delivery already marked
sent is not sent again (the claim below), so at worst one message goes out twice, never zero.
"""

import logging

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from alerts import incidents, retention, transport
from alerts.models import Delivery

log = logging.getLogger(__name__)


@worker_process_init.connect
def _load_apprise(**kwargs):
    transport.warm()  # the first alert after a start must not wait for plugin discovery


def deliver(delivery_id, last_attempt=False):
    """Send one delivery and record the outcome; -> seconds to wait before a retry, or None."""
    claimed = Delivery.objects.filter(
        pk=delivery_id, state__in=[Delivery.State.QUEUED, Delivery.State.RETRYING]
    ).update(attempts=F("attempts") + 1)
    if not claimed:
        return None  # sent or given up already (a redelivered message)
    delivery = Delivery.objects.select_related("channel", "incident__cluster").get(pk=delivery_id)
    if delivery.channel is None:
        _finish(delivery, Delivery.State.FAILED, "The channel was deleted before sending.")
        return None
    title, body, failure = incidents.message(delivery)
    try:
        transport.send(delivery.channel.url, title, body, failure=failure)
    except transport.DeliveryError as e:
        if e.permanent or last_attempt:
            _finish(delivery, Delivery.State.FAILED, f"attempt {delivery.attempts}: {e.message}")
            return None
        wait = settings.VIPANEL_ALERT_RETRY_BACKOFF * 2 ** (delivery.attempts - 1)
        delivery.state = Delivery.State.RETRYING
        delivery.error = f"attempt {delivery.attempts}: {e.message} (retrying in {wait}s)"
        delivery.save(update_fields=["state", "error"])
        return wait
    _finish(delivery, Delivery.State.SENT, "")
    return None


def _finish(delivery, state, error):
    delivery.state, delivery.error, delivery.finished = state, error, timezone.now()
    delivery.save(update_fields=["state", "error", "finished"])


# Routed to the "alerts" queue by CELERY_TASK_ROUTES (settings.ALERT_QUEUE).
@shared_task(bind=True, acks_late=True, max_retries=settings.VIPANEL_ALERT_RETRIES)
def deliver_task(self, delivery_id):
    wait = deliver(delivery_id, last_attempt=self.request.retries >= self.max_retries)
    if wait is not None:
        # Exponential back-off: 10 s, 20 s, 40 s... by default.
        raise self.retry(countdown=wait)


@shared_task
def prune_task():
    """Daily, from beat: the alerts' rows past the retention age (alerts.retention)."""
    log.info("pruned %s", retention.prune())
