"""Where alerts hook into the history: FailoverEvent, NodeState and VipState saves.

history.record_status and record_notify write these rows inside a transaction; the incident
work runs once per cluster after it commits (robust: a bug here never breaks a sweep).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils.dateparse import parse_datetime

from alerts.models import VipCoverage
from clusters.models import Cluster, FailoverEvent, NodeState, VipState

log = logging.getLogger(__name__)


def evaluate_after_commit(cluster_id):
    """evaluate() the cluster once this transaction commits (once, however many rows changed)."""
    for entry in getattr(connection, "run_on_commit", []):
        func = entry[1]
        if getattr(func, "alerts_cluster_id", None) == cluster_id and not func.done:
            return

    def run():
        from alerts import incidents

        run.done = True
        cluster = Cluster.objects.filter(pk=cluster_id).first()
        if cluster is not None:
            incidents.evaluate(cluster)

    run.alerts_cluster_id, run.done = cluster_id, False
    transaction.on_commit(run, robust=True)


@receiver(post_save, sender=NodeState, dispatch_uid="alerts-node-state")
def node_state_saved(sender, instance, raw=False, **kwargs):
    if not raw:
        evaluate_after_commit(instance.node.cluster_id)


@receiver(post_save, sender=VipState, dispatch_uid="alerts-vip-state")
def vip_state_saved(sender, instance, raw=False, **kwargs):
    if raw:
        return
    at = instance.checked_at
    if isinstance(at, str):  # as given to create(), not yet read back from the database
        at = parse_datetime(at)
    if isinstance(at, datetime):
        observe(instance.vip_id, at)
    evaluate_after_commit(instance.vip.cluster_id)


@receiver(post_save, sender=FailoverEvent, dispatch_uid="alerts-failover-event")
def failover_event_saved(sender, instance, created, raw=False, **kwargs):
    if raw or not created:
        return
    if instance.kind in (FailoverEvent.Kind.FAILOVER, FailoverEvent.Kind.DRILL):
        pk = instance.pk

        def run():
            from alerts import incidents

            event = FailoverEvent.objects.filter(pk=pk).select_related("cluster").first()
            if event is not None:
                incidents.record_event(event)

        transaction.on_commit(run, robust=True)
    else:
        evaluate_after_commit(instance.cluster_id)


def observe(vip_id, at):
    """Record that the panel observed the VIP at `at` (for the availability's unknown time)."""
    gap = timedelta(seconds=settings.VIPANEL_ALERT_COVERAGE_GAP)
    span = (
        VipCoverage.objects.filter(vip_id=vip_id, end__gte=at - gap, start__lte=at + gap)
        .order_by("-end")
        .first()
    )
    if span is None:
        VipCoverage.objects.create(vip_id=vip_id, start=at, end=at)
    elif at > span.end:
        VipCoverage.objects.filter(pk=span.pk).update(end=at)
    elif at < span.start:
        VipCoverage.objects.filter(pk=span.pk).update(start=at)
