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


def test_the_alerts_rows_past_the_age_go_and_open_incidents_and_coverage_stay(cluster, settings):
    from alerts import retention as alerts_retention
    from alerts import tasks as alerts_tasks
    from alerts.models import Delivery, Incident, VipCoverage

    settings.VIPANEL_RETENTION_DAYS = 10
    now = timezone.now()
    vip = cluster.vips.get()

    def incident(key, days_ago, state):
        at = now - timedelta(days=days_ago)
        resolved = at if state == Incident.State.RESOLVED else None
        made = Incident.objects.create(
            kind="split_brain",
            cluster=cluster,
            key=key,
            subject="x",
            title="Split brain",
            started=at,
            last_seen=at,
            state=state,
            resolved=resolved,
        )
        Delivery.objects.create(incident=made, channel_name="hook", purpose="open")
        return made

    old = incident("vip:old", 11, Incident.State.RESOLVED)
    recent = incident("vip:recent", 9, Incident.State.RESOLVED)
    still_open = incident("vip:open", 40, Incident.State.OPEN)
    test_message = Delivery.objects.create(
        channel_name="hook", purpose="test", state="sent", finished=now - timedelta(days=11)
    )
    # Coverage stays for the 30-day availability window even with a 10-day retention.
    kept_span = VipCoverage.objects.create(
        vip=vip, start=now - timedelta(days=29), end=now - timedelta(days=20)
    )
    gone_span = VipCoverage.objects.create(
        vip=vip, start=now - timedelta(days=60), end=now - timedelta(days=45)
    )
    assert alerts_retention.prune() == {"incidents": 1, "deliveries": 2, "coverage": 1}
    assert set(Incident.objects.values_list("pk", flat=True)) == {recent.pk, still_open.pk}
    assert not Delivery.objects.filter(pk=test_message.pk).exists()
    assert Delivery.objects.filter(incident=old).count() == 0
    assert set(VipCoverage.objects.values_list("pk", flat=True)) == {kept_span.pk}
    assert gone_span.pk not in VipCoverage.objects.values_list("pk", flat=True)
    entry = settings.CELERY_BEAT_SCHEDULE["alerts-prune"]
    assert entry["task"] == "alerts.tasks.prune_task" and entry["schedule"] == 86400
    alerts_tasks.prune_task.apply()
    assert Incident.objects.count() == 2
