"""A cluster as a successful push leaves it in the database: every VIP pushed, and every node
holding what vipanel renders for it (desired = pushed), so it shows no "pending push".

The push records this itself (clusters.push); tests that place configs by hand or fake the
observations of a running cluster call mark_pushed() instead.
"""

import hashlib

from django.utils import timezone

from clusters import render
from clusters.models import Node, VirtualIP


def mark_pushed(cluster, at=None):
    at = at or timezone.now()
    for node in cluster.nodes.select_related("cluster"):
        try:
            config = render.node_config(node)
        except ValueError:
            config = ""
        Node.objects.filter(pk=node.pk).update(
            desired_config_sha=hashlib.sha256(config.encode()).hexdigest() if config else "",
            pushed_config_sha=hashlib.sha256(config.encode()).hexdigest() if config else "",
            pushed_config=config,
            pushed_at=at,
            adopt_live_config=False,
        )
    VirtualIP.objects.filter(cluster=cluster, pushed_at__isnull=True).update(pushed_at=at)
    return cluster
