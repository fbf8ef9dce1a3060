"""The dashboard.

One row per cluster, the clusters with problems first, DASHBOARD_PAGE_SIZE to a page, plus a
header that counts every cluster. Rendering a card per cluster for all 500 clusters took half
a second (docs/BENCHMARKS.md, section 4): a 1.5 MB page, an {% include %} per node row and
8,000 model instances. Now whether a cluster has a problem is decided by the database for
every cluster (clusters.querysets.with_problems), so the order, the filter and the counts cover
them all, while only the shown page's nodes, VIPs, pushes and failovers are read, as plain values.
"""

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.views.decorators.http import require_safe

from clusters import health
from clusters.models import Cluster, ConfigPush, FailoverEvent, Node, VirtualIP
from clusters.querysets import with_problems
from clusters.roles import VIEWER, require_role
from clusters.web.htmx import render_page
from clusters.web.presenters import DashboardRow

DASHBOARD_PAGE_SIZE = 50


def _latest(queryset, order, count):
    """The `count` latest rows of each cluster in `queryset`, in one query."""
    rank = Window(RowNumber(), partition_by=F("cluster_id"), order_by=order)
    return queryset.annotate(rank=rank).filter(rank__lte=count)


def dashboard_rows(clusters, now):
    """The dashboard's rows for `clusters` (dicts from the page's query): four queries."""
    ids = [c["pk"] for c in clusters]
    by_cluster = {pk: {"nodes": [], "vips": [], "push": None, "failovers": []} for pk in ids}
    nodes = (
        Node.objects.filter(cluster_id__in=ids)
        .order_by("-priority", "name")
        .values(
            "id",
            "cluster_id",
            "name",
            "priority",
            "maintenance",
            "offered_host_key_fingerprint",
            "host_key_fingerprint",
            "adopt_live_config",
            "pushed_config_sha",
            "desired_config_sha",
            checked_at=F("state__checked_at"),
            reachable=F("state__reachable"),
            keepalived_running=F("state__keepalived_running"),
            vrrp_state=F("state__vrrp_state"),
            drift=F("state__drift"),
            error=F("state__error"),
            holds=F("state__holds"),
            host_key_problem=F("state__host_key_problem"),
        )
    )
    for n in nodes:
        by_cluster[n["cluster_id"]]["nodes"].append(n)
    vips = (
        VirtualIP.objects.filter(cluster_id__in=ids)
        .order_by("id")
        .values(
            "cluster_id",
            "address",
            "pushed_at",
            since=F("state__since"),
            checked_at=F("state__checked_at"),
            instance_name=F("instance__name"),
            split_brain=F("state__split_brain"),
            no_holder=F("state__no_holder"),
            holder=F("state__holder__name"),
        )
    )
    for v in vips:
        by_cluster[v["cluster_id"]]["vips"].append(v)
    pushes = _latest(
        ConfigPush.objects.filter(cluster_id__in=ids), [F("created").desc(), F("id").desc()], 1
    ).values(
        "cluster_id",
        "pk",
        "state",
        "kind",
        "created",
        user=F(f"requested_by__{get_user_model().USERNAME_FIELD}"),
    )
    for p in pushes:
        by_cluster[p["cluster_id"]]["push"] = p
    # Instances, few of them: _event_text.html, shared with the history, reads them.
    failovers = _latest(
        FailoverEvent.objects.filter(cluster_id__in=ids), [F("at").desc(), F("id").desc()], 3
    ).only("cluster_id", "vip_address", "from_node", "to_node", "at", "kind")
    for e in failovers.order_by("-at", "-id"):
        by_cluster[e.cluster_id]["failovers"].append(e)
    return [
        DashboardRow(
            c, *(by_cluster[c["pk"]][k] for k in ("nodes", "vips", "push", "failovers")), now
        )
        for c in clusters
    ]


@require_safe
@require_role(VIEWER)
def dashboard(request):
    now = timezone.now()
    clusters = with_problems(Cluster.objects.all(), now)
    # Names unlike the annotations': an aggregate named like one silently replaces it.
    counts = clusters.aggregate(
        total=Count("pk"),
        with_problems=Count("pk", filter=Q(trouble=True)),
        in_split_brain=Count("pk", filter=Q(split=True)),
        without_holder=Count("pk", filter=Q(no_holder=True)),
        with_pending=Count("pk", filter=Q(pending=True)),
    )
    counts["ok"] = counts["total"] - counts["with_problems"]
    only_problems = request.GET.get("problems") == "1"
    if only_problems:
        clusters = clusters.filter(trouble=True)
    # Problems first, then by name, and nothing else: a row moves only when its cluster gets
    # or loses a problem, never between two refreshes that changed nothing (the kind of
    # problem, a pending push or the time of a probe do not reorder the page).
    ordered = clusters.order_by("-trouble", "name", "pk").values(
        "pk", "name", "network", "virtual_router_id", "trouble", "pending"
    )
    paginator = Paginator(ordered, DASHBOARD_PAGE_SIZE)
    # The header's aggregate counted them already: spare the paginator a COUNT query.
    paginator.count = counts["with_problems"] if only_problems else counts["total"]
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "rows": dashboard_rows(list(page), now),
        "page": page,
        "counts": counts,
        "only_problems": only_problems,
        "query": "problems=1" if only_problems else "",
        "checked_at": now,
        "pending_definition": health.PENDING_DEFINITION,
    }
    return render_page(
        request, "clusters/dashboard.html", context, fragment="clusters/_dashboard.html"
    )
