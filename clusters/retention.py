"""Retention: failover events, audit entries and finished pushes older than
VIPANEL_RETENTION_DAYS are deleted, once a day by beat (clusters.tasks.prune_task).

A queued or running push is never deleted, however old; a finished one goes with its steps.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clusters.models import AuditEntry, ConfigPush, FailoverEvent


def cutoff(now=None):
    return (now or timezone.now()) - timedelta(days=settings.VIPANEL_RETENTION_DAYS)


def prune(now=None):
    """Delete what is older than the retention age; -> {what: rows deleted}."""
    before = cutoff(now)
    old_push = Q(finished__lt=before) | Q(finished__isnull=True, created__lt=before)
    with transaction.atomic():
        counts = {
            "failover_events": FailoverEvent.objects.filter(at__lt=before).delete()[0],
            "audit_entries": AuditEntry.objects.filter(at__lt=before).delete()[0],
            "pushes": ConfigPush.objects.filter(old_push)
            .exclude(state__in=ConfigPush.ACTIVE_STATES)
            .delete()[1]
            .get("clusters.ConfigPush", 0),
        }
    return counts
