"""The failover history of a cluster: a timeline and the events of a window."""

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from clusters import timeline
from clusters.models import FailoverEvent
from clusters.roles import VIEWER, require_role
from clusters.web.common import get_cluster
from clusters.web.forms import HISTORY_ROWS, RANGES, HistoryFilter
from clusters.web.presenters import _has_state


@require_safe
@require_role(VIEWER)
def cluster_history(request, pk):
    cluster = get_cluster(pk)
    # Only what was pushed has a history: a VIP saved but never pushed is not drawn.
    current_vips = list(
        cluster.vips.filter(pushed_at__isnull=False).select_related("state__holder")
    )
    addresses = [v.address for v in current_vips]
    for address in (
        FailoverEvent.objects.filter(cluster=cluster)
        .order_by("vip_address")
        .values_list("vip_address", flat=True)
        .distinct()
    ):
        if address not in addresses:
            addresses.append(address)  # a VIP since deleted keeps its history
    form = HistoryFilter(request.GET or None, vips=addresses)
    if request.GET and not form.is_valid():
        context = {"cluster": cluster, "form": form, "events": [], "svg": ""}
        return render(request, "clusters/history.html", context, status=400)
    data = form.cleaned_data if request.GET else {}
    if not request.GET:
        form = HistoryFilter(vips=addresses)
    now = timezone.now()
    since, until = data.get("window") or (now - RANGES["24h"], now)
    shown = [data["vip"]] if data.get("vip") else addresses
    events = FailoverEvent.objects.filter(cluster=cluster, at__gte=since, at__lte=until)
    if data.get("vip"):
        events = events.filter(vip_address=data["vip"])
    rows = list(events.order_by("-at", "-id")[: HISTORY_ROWS + 1])
    in_window = [timeline.event_from(e) for e in reversed(rows[:HISTORY_ROWS])]
    following = {}
    for address in shown:
        after = (
            FailoverEvent.objects.filter(cluster=cluster, vip_address=address, at__gt=until)
            .order_by("at", "id")
            .first()
        )
        if after is not None:
            following[address] = timeline.event_from(after)
    current = {}
    for vip in current_vips:
        state = vip.state if _has_state(vip) else None
        if state is not None:
            current[vip.address] = timeline.Current(
                holder=state.holder.name if state.holder else "",
                since=state.since,
                split_brain=state.split_brain,
                no_holder=state.no_holder,
            )
    # Nothing held a VIP before its first push; one since deleted is bounded by its cluster.
    born = {address: cluster.created for address in shown}
    born.update({vip.address: vip.pushed_at for vip in current_vips})
    svg = timeline.timeline_svg(
        shown,
        in_window,
        since,
        until,
        current=current,
        following=following,
        born=born,
        tz=timezone.get_current_timezone(),
    )
    context = {
        "cluster": cluster,
        "form": form,
        "events": rows[:HISTORY_ROWS],
        "truncated": len(rows) > HISTORY_ROWS,
        "since": since,
        "until": until,
        "svg": svg,
        "ranges": list(RANGES),
        "vip_filter": data.get("vip", ""),
    }
    return render(request, "clusters/history.html", context)
