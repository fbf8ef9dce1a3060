"""Retention of the alerts' own rows, on the same age as the history's (VIPANEL_RETENTION_DAYS,
clusters.retention), once a day by beat (alerts.tasks.prune_task).

- Incidents resolved before the cutoff go, with their deliveries; an incident still pending or
  open is kept however old (it is still true).
- Deliveries of channel tests (no incident) finished before the cutoff go.
- Coverage (when the panel was watching) is kept for the longest availability window at least,
  whatever the retention age: without it the 30-day availability would count as "unknown" the
  time the panel did watch.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from alerts.availability import WINDOWS
from alerts.models import Delivery, Incident, VipCoverage
from clusters.retention import cutoff


def prune(now=None):
    """Delete what is past the retention age; -> {what: rows deleted}."""
    now = now or timezone.now()
    before = cutoff(now)
    coverage_before = min(before, now - max(length for _, length in WINDOWS) - timedelta(days=1))
    with transaction.atomic():
        deleted = Incident.objects.filter(
            state=Incident.State.RESOLVED, resolved__lt=before
        ).delete()[1]
        return {
            "incidents": deleted.get("alerts.Incident", 0),
            "deliveries": deleted.get("alerts.Delivery", 0)
            + Delivery.objects.filter(incident__isnull=True, finished__lt=before).delete()[0],
            "coverage": VipCoverage.objects.filter(end__lt=coverage_before).delete()[0],
        }
