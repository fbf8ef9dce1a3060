"""Cluster problems asked of the database for every cluster at once: the dashboard's order,
filter and counts. The same rule as clusters.health (tests/test_health.py proves it)."""

from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from clusters import health
from clusters.models import ConfigPush, Node, NodeState, VipState, VirtualIP

# health.node_pending, for Node rows.
NODE_PENDING = Q(adopt_live_config=False) & (
    Q(pushed_config_sha="") | ~Q(desired_config_sha=F("pushed_config_sha"))
)


def problem_annotations(now):
    """Annotations for Cluster: `split` (a VIP in split brain), `no_holder` (a VIP nobody
    holds), `bad_node` (a node with a problem of health.problems_of_node, less "not checked
    yet"), `last_push_state`, and `pending` (health.cluster_pending: something saved but not
    pushed, which is no problem)."""
    of_cluster = OuterRef("pk")
    # A VIP never pushed has no holder to look for (health.vip_status).
    vip_states = VipState.objects.filter(vip__cluster=of_cluster, vip__pushed_at__isnull=False)
    # health.ever_pushed: keepalived not running on a node never pushed is expected.
    ever_pushed = ~Q(node__pushed_config_sha="") | Q(node__adopt_live_config=True)
    bad_node = (
        Q(reachable=False)
        | ((Q(keepalived_running=False) | Q(vrrp_state__in=health.STOPPED_STATES)) & ever_pushed)
        | Q(vrrp_state="FAULT")
        | Q(drift=True)
        | Q(host_key_problem=True)
        | Q(checked_at__lt=now - health.stale_limit())
    )
    last_push = ConfigPush.objects.filter(cluster=of_cluster).order_by("-created", "-id")
    return {
        "split": Exists(vip_states.filter(split_brain=True)),
        "no_holder": Exists(vip_states.filter(no_holder=True)),
        # A key offered (changed, or not trusted yet) is a problem even before a probe.
        "bad_node": Exists(NodeState.objects.filter(bad_node, node__cluster=of_cluster))
        | Exists(Node.objects.filter(cluster=of_cluster).exclude(offered_host_key_fingerprint="")),
        # Never pushed is "", not NULL: NULL would sort first on PostgreSQL, last on SQLite.
        "last_push_state": Coalesce(Subquery(last_push.values("state")[:1]), Value("")),
        "pending": Exists(Node.objects.filter(NODE_PENDING, cluster=of_cluster))
        | Exists(VirtualIP.objects.filter(cluster=of_cluster, pushed_at__isnull=True)),
    }


def with_problems(queryset, now):
    """Cluster queryset annotated with problem_annotations and `trouble`: any problem, which
    is exactly `bool(health.cluster_problems(cluster, now))` (a pending push is none)."""
    return queryset.annotate(**problem_annotations(now)).annotate(
        trouble=ExpressionWrapper(
            Q(split=True)
            | Q(no_holder=True)
            | Q(bad_node=True)
            | Q(last_push_state=ConfigPush.State.FAILED),
            output_field=BooleanField(),
        )
    )
