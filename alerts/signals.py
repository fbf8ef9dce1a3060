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

from alerts import incidents
from alerts.models import Incident, VipCoverage
from clusters.models import Cluster, ConfigPush, FailoverEvent, Node, NodeState, VipState, VirtualIP
from clusters.signals import push_finished

log = logging.getLogger(__name__)


def _pending():
    """The evaluations this transaction will run on commit (none outside a transaction)."""
    return [
        entry[1]
        for entry in getattr(connection, "run_on_commit", [])
        if getattr(entry[1], "alerts_cluster_id", None) is not None and not entry[1].done
    ]


def _worth_evaluating(cluster_id):
    """Whether a cluster whose sweep showed nothing wrong still has something to evaluate: an
    incident pending or open (to resolve, or to promote), or a last push that failed."""
    if Incident.objects.filter(cluster_id=cluster_id, state__in=Incident.ACTIVE_STATES).exists():
        return True
    last = (
        ConfigPush.objects.filter(cluster_id=cluster_id)
        .exclude(state__in=ConfigPush.ACTIVE_STATES)
        .order_by("-created", "-id")
        .values_list("state", flat=True)
        .first()
    )
    return last in ConfigPush.RESUMABLE_STATES


def evaluate_after_commit(cluster_id, trouble=True):
    """evaluate() the cluster once this transaction commits (once, however many rows changed).

    `trouble`: whether the row that asked shows something an alert is about. A sweep of a
    healthy cluster with no incident open or pending has nothing to evaluate, and every sweep
    of every cluster would otherwise pay for it."""
    if cluster_id is None:
        return
    for queued in _pending():
        if queued.alerts_cluster_id == cluster_id:
            queued.trouble = queued.trouble or trouble
            return

    def run():
        run.done = True
        if not run.trouble and not _worth_evaluating(cluster_id):
            return
        cluster = Cluster.objects.filter(pk=cluster_id).first()
        if cluster is not None:
            incidents.evaluate(cluster)

    run.alerts_cluster_id, run.done, run.trouble = cluster_id, False, trouble
    # So the sweep's other rows of this cluster find it without a query each.
    run.node_ids = set(Node.objects.filter(cluster_id=cluster_id).values_list("pk", flat=True))
    run.vip_ids = set(VirtualIP.objects.filter(cluster_id=cluster_id).values_list("pk", flat=True))
    transaction.on_commit(run, robust=True)


def _node_trouble(state):
    # The node kinds alerts send (alerts.incidents.conditions): host key, unreachable, drift.
    return bool(not state.reachable or state.host_key_problem or state.drift)


@receiver(post_save, sender=NodeState, dispatch_uid="alerts-node-state")
def node_state_saved(sender, instance, raw=False, **kwargs):
    if raw:
        return
    for run in _pending():
        if instance.node_id in run.node_ids:
            run.trouble = run.trouble or _node_trouble(instance)
            return
    evaluate_after_commit(
        Node.objects.filter(pk=instance.node_id).values_list("cluster_id", flat=True).first(),
        _node_trouble(instance),
    )


@receiver(post_save, sender=VipState, dispatch_uid="alerts-vip-state")
def vip_state_saved(sender, instance, raw=False, **kwargs):
    if raw:
        return
    at = instance.checked_at
    if isinstance(at, str):  # as given to create(), not yet read back from the database
        at = parse_datetime(at)
    if isinstance(at, datetime):
        observe(instance.vip_id, at)
    trouble = bool(instance.split_brain or instance.no_holder)
    for run in _pending():
        if instance.vip_id in run.vip_ids:
            run.trouble = run.trouble or trouble
            return
    evaluate_after_commit(
        VirtualIP.objects.filter(pk=instance.vip_id).values_list("cluster_id", flat=True).first(),
        trouble,
    )


@receiver(post_save, sender=FailoverEvent, dispatch_uid="alerts-failover-event")
def failover_event_saved(sender, instance, created, raw=False, **kwargs):
    if raw or not created:
        return
    if instance.kind in (FailoverEvent.Kind.FAILOVER, FailoverEvent.Kind.DRILL):
        pk = instance.pk

        def run():
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


@receiver(push_finished, dispatch_uid="alerts-push-finished")
def push_ended(sender, push, **kwargs):
    # The engine ends a push with a queryset update (no post_save): clusters.signals tells us.
    from alerts import hooks

    hooks.push_finished(push)
