"""A cluster as a successful push leaves it in the database: every VIP pushed, and every node
recorded with what was put there (by default what vipanel renders for it, so desired = pushed
and nothing is "pending push").

The push records this itself (clusters.push); tests that place configs by hand or fake the
observations of a running cluster call mark_pushed() instead.
"""

import hashlib

from django.utils import timezone

from clusters import render
from clusters.models import Node, VirtualIP


def _sha(text):
    return hashlib.sha256(text.encode()).hexdigest() if text else ""


def mark_pushed(cluster, at=None, configs=None):
    """`configs`: {node name: the config put there}, when it is not what vipanel renders."""
    at = at or timezone.now()
    for node in cluster.nodes.select_related("cluster"):
        try:
            wanted = render.node_config(node)
        except ValueError:
            wanted = ""
        pushed = (configs or {}).get(node.name, wanted)
        Node.objects.filter(pk=node.pk).update(
            desired_config_sha=_sha(wanted),
            pushed_config_sha=_sha(pushed),
            pushed_config=pushed,
            pushed_at=at,
            adopt_live_config=False,
        )
    VirtualIP.objects.filter(cluster=cluster, pushed_at__isnull=True).update(pushed_at=at)
    return cluster
