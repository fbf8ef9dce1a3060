"""The failover history of a cluster: a timeline and the events of a window."""

from datetime import timedelta

from django.db.models import Q
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from clusters import timeline
from clusters.models import FailoverEvent
from clusters.roles import VIEWER, require_role
from clusters.services import pushes as push_services
from clusters.web.common import get_cluster
from clusters.web.forms import HISTORY_ROWS, RANGES, HistoryFilter
from clusters.web.presenters import _has_state


@require_safe
@require_role(VIEWER)
def cluster_history(request, pk):
    cluster = get_cluster(pk)
    current_vips = list(cluster.vips.select_related("state__holder"))
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
    # Nothing held a VIP before it existed; one since deleted is bounded by its cluster.
    born = {address: cluster.created for address in shown}
    born.update({vip.address: vip.created for vip in current_vips})
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
    predictions = _predictions(cluster, since, until, rows[:HISTORY_ROWS])
    context = {
        "cluster": cluster,
        "form": form,
        "predictions": predictions,
        "events": rows[:HISTORY_ROWS],
        "truncated": len(rows) > HISTORY_ROWS,
        "since": since,
        "until": until,
        "svg": svg,
        "ranges": list(RANGES),
        "vip_filter": data.get("vip", ""),
    }
    return render(request, "clusters/history.html", context)


def _predictions(cluster, since, until, events, limit=20):
    """[(push or drill, verdict)] of those with a prediction whose window meets [since, until],
    newest first; each event they judged is marked (predicted_by, as_predicted)."""
    grace = timedelta(seconds=push_services.verdict_window(cluster))
    records = (
        cluster.pushes.exclude(prediction={})
        .filter(started__isnull=False, started__lte=until)
        .filter(Q(finished__isnull=True) | Q(finished__gte=since - grace))
        .order_by("-started")[:limit]
    )
    out, judged = [], {}
    for record in records:
        verdict = push_services.verdict(record)
        out.append((record, verdict))
        for pk in verdict.expected:
            judged.setdefault(pk, (record, True))
        for pk in verdict.unexpected:
            judged.setdefault(pk, (record, False))
    for event in events:
        event.predicted_by, event.as_predicted = judged.get(event.pk, (None, None))
    return out
