"""What vipanel would push to each node now: Node.desired_config_sha, kept current.

A node whose desired config is not the one last pushed there has a change "pending push"
(clusters.health.node_pending). The desired hash is stored, not computed per page, so the
dashboard's one query, the cluster page, the API, the metrics and the alerts all read the same
answer. It is refreshed:
- when a change to what is rendered commits (any save or delete of a cluster, node, VIP,
  instance, priority or sync group, whatever the entry point; the maintenance switch, which
  updates its row without a signal, asks for it itself);
- every VIPANEL_DESIRED_REFRESH seconds for every cluster (refresh_all, from beat): a new
  release's templates or a changed VIPANEL_NOTIFY_URL show as pending within that time. The
  sweep reads the stored hash (rendering every node every sweep cost most of its CPU) and
  renders a node only when none was stored yet.
"""

import logging

from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save

from clusters.models import Cluster, Node, NodePriority, SyncGroup, VirtualIP, VrrpInstance
from clusters.status import expected_config_sha

log = logging.getLogger(__name__)


def refresh(cluster):
    """Store every node's desired hash ("" when the cluster cannot be rendered yet); -> how many
    changed. One UPDATE per node whose hash moved, none otherwise."""
    nodes = list(cluster.nodes.select_related("cluster"))
    ready = not cluster.readiness_errors()
    changed = 0
    for node in nodes:
        sha = (expected_config_sha(node) if ready else None) or ""
        if sha != node.desired_config_sha:
            changed += Node.objects.filter(pk=node.pk).update(desired_config_sha=sha)
    return changed


def refresh_all():
    """refresh() every cluster; -> how many nodes' hashes moved."""
    return sum(refresh(cluster) for cluster in Cluster.objects.order_by("pk"))


def store(node_id, sha, before):
    """A sweep's rendering of one node: written only when it moved."""
    if (sha or "") != before:
        Node.objects.filter(pk=node_id).update(desired_config_sha=sha or "")


def _queued():
    """The refreshes queued in this same transaction (at the same savepoint depth: one queued
    by an enclosing block that may yet be rolled back is not relied on)."""
    here = set(connection.savepoint_ids)
    return [
        entry[1]
        for entry in getattr(connection, "run_on_commit", [])
        if entry[0] == here and getattr(entry[1], "desired_cluster_id", None) is not None
    ]


def changed(cluster_id):
    """Refresh the cluster's desired hashes once this transaction commits (once per cluster,
    however many rows it changed)."""
    if cluster_id is None or any(run.desired_cluster_id == cluster_id for run in _queued()):
        return

    def run():
        cluster = Cluster.objects.filter(pk=cluster_id).first()
        if cluster is not None:
            refresh(cluster)

    run.desired_cluster_id = cluster_id
    transaction.on_commit(run, robust=True)


def _cluster_id(instance):
    if isinstance(instance, Cluster):
        return instance.pk
    if isinstance(instance, NodePriority):
        return (
            VrrpInstance.objects.filter(pk=instance.instance_id)
            .values_list("cluster_id", flat=True)
            .first()
        )
    return instance.cluster_id


def _on_change(sender, instance, raw=False, **kwargs):
    if raw:
        return  # loaddata: the next sweep renders
    try:
        changed(_cluster_id(instance))
    except Exception:  # noqa: BLE001 - a stale hash is repaired by the next sweep
        log.exception("could not queue the desired config refresh of %r", instance)


def connect():
    """Called once from ClustersConfig.ready()."""
    for model in (Cluster, Node, VirtualIP, VrrpInstance, NodePriority, SyncGroup):
        label = model._meta.label_lower
        post_save.connect(_on_change, sender=model, dispatch_uid=f"desired-save-{label}")
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"desired-delete-{label}")
