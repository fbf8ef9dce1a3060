"""Issue 15 item 10: events, audit entries and finished pushes past the retention age go."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from clusters import retention, tasks
from clusters.models import AuditEntry, ConfigPush, FailoverEvent, PushStep

pytestmark = pytest.mark.django_db


def make_rows(cluster, days_old):
    at = timezone.now() - timedelta(days=days_old)
    event = FailoverEvent.objects.create(
        cluster=cluster, vip_address="192.0.2.100/24", at=at, detected_by="sweep"
    )
    entry = AuditEntry.objects.create(action="cluster.update", username="x")
    AuditEntry.objects.filter(pk=entry.pk).update(at=at)
    push = ConfigPush.objects.create(cluster=cluster, state="succeeded", finished=at)
    ConfigPush.objects.filter(pk=push.pk).update(created=at)
    PushStep.objects.create(push=push, node_name="web-1", position=0)
    return event, entry, push


def test_the_default_keeps_a_year():
    assert settings.VIPANEL_RETENTION_DAYS == 365


def test_old_rows_go_and_recent_ones_stay(cluster, settings):
    settings.VIPANEL_RETENTION_DAYS = 30
    old = make_rows(cluster, 31)
    recent = make_rows(cluster, 29)
    counts = retention.prune()
    assert counts == {"failover_events": 1, "audit_entries": 1, "pushes": 1}
    for row in old:
        assert not type(row).objects.filter(pk=row.pk).exists()
    for row in recent:
        assert type(row).objects.filter(pk=row.pk).exists()
    assert PushStep.objects.count() == 1  # the old push's step went with it


def test_an_old_push_that_is_still_active_is_kept(cluster, settings):
    settings.VIPANEL_RETENTION_DAYS = 30
    push = ConfigPush.objects.create(cluster=cluster, state="running")
    ConfigPush.objects.filter(pk=push.pk).update(created=timezone.now() - timedelta(days=90))
    failed = ConfigPush.objects.create(cluster=cluster, state="failed")
    ConfigPush.objects.filter(pk=failed.pk).update(created=timezone.now() - timedelta(days=90))
    retention.prune()
    assert ConfigPush.objects.filter(pk=push.pk).exists()
    assert not ConfigPush.objects.filter(pk=failed.pk).exists()


def test_beat_runs_the_prune_daily(cluster, settings):
    entry = settings.CELERY_BEAT_SCHEDULE["prune"]
    assert entry["task"] == "clusters.tasks.prune_task" and entry["schedule"] == 86400
    settings.VIPANEL_RETENTION_DAYS = 1
    make_rows(cluster, 2)
    tasks.prune_task.apply()
    assert not FailoverEvent.objects.exists() and not AuditEntry.objects.exists()
