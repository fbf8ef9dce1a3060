"""The failover history of a cluster: a timeline and the events of a window.

The window fits the data unless the viewer picks one (a preset, From/To, or a drag across the
picture: static/timeline.js turns it into From/To). Deleted VIPs keep their history, greyed and
hidden unless asked for. Each event says what caused it (clusters.timeline.cause_of), from its
detail and the cluster's push, maintenance and drill records.
"""

import datetime as dt

from django.conf import settings
from django.db.models import Max, Min, Q
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from clusters import timeline
from clusters.models import AuditEntry, ConfigPush, FailoverEvent
from clusters.roles import VIEWER, require_role
from clusters.services import pushes as push_services
from clusters.web.common import get_cluster
from clusters.web.forms import ALL, HISTORY_ROWS, MAX_SPAN, RANGES, HistoryFilter
from clusters.web.presenters import _has_state

PRESETS = [*RANGES, ALL]


def _lifetimes(cluster, deleted, firsts, lasts):
    """{address: (born, died)} of deleted VIPs, from the audit log's vip.create and vip.delete
    entries; without them (a VIP removed with its instance, an entry cleaned up), from its first
    and last event: nothing is drawn where nothing is known."""
    created, removed = {}, {}
    entries = (
        AuditEntry.objects.filter(cluster=cluster, action__in=("vip.create", "vip.delete"))
        .order_by("at", "id")
        .values_list("action", "at", "changes")
    )
    for action, at, changes in entries:
        values = changes.get("address") if isinstance(changes, dict) else None
        if not isinstance(values, list) or len(values) != 2:
            continue
        if action == "vip.create" and values[1] in deleted:
            created.setdefault(values[1], []).append(at)
        elif action == "vip.delete" and values[0] in deleted:
            removed[values[0]] = at
    lifetimes = {}
    for address in deleted:
        died = removed.get(address) or lasts[address]
        births = [at for at in created.get(address, []) if at <= died]
        lifetimes[address] = (max(births) if births else firsts[address], died)
    return lifetimes


def _operations(cluster, since, until):
    """The pushes, maintenance pushes and drills that ran within the window (and a sweep's
    interval before it, whose moves a sweep may see a moment later)."""
    grace = dt.timedelta(seconds=settings.VIPANEL_SWEEP_INTERVAL)
    rows = (
        ConfigPush.objects.filter(cluster=cluster, started__isnull=False, started__lte=until)
        .filter(Q(finished__isnull=True) | Q(finished__gte=since - grace))
        .values_list("pk", "kind", "state", "started", "finished", "heartbeat")
    )
    operations = []
    for pk, kind, state, started, finished, heartbeat in rows:
        if finished is None and state not in ConfigPush.ACTIVE_STATES:
            finished = heartbeat or started  # ended without saying when: its last sign of life
        operations.append(timeline.Operation(pk, kind, started, finished))
    return operations, grace


def _query(request, **changes):
    """The page's query string with `changes` (None removes a parameter)."""
    query = request.GET.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    return query.urlencode()


def _iso(moment):
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@require_safe
@require_role(VIEWER)
def cluster_history(request, pk):
    cluster = get_cluster(pk)
    all_vips = list(cluster.vips.select_related("state__holder"))
    current = [v.address for v in all_vips]
    spans = {
        row["vip_address"]: (row["first"], row["last"])
        for row in FailoverEvent.objects.filter(cluster=cluster)
        .values("vip_address")
        .annotate(first=Min("at"), last=Max("at"))
        .order_by()
    }
    # Only what was pushed has a history: a VIP saved but never pushed (and so without events)
    # is not drawn.
    current_vips = [v for v in all_vips if v.pushed_at is not None or v.address in spans]
    deleted = sorted(a for a in spans if a not in current)  # a VIP since deleted keeps its history
    form = HistoryFilter(request.GET or None, vips=current + deleted, deleted=deleted)
    if request.GET and not form.is_valid():
        context = {"cluster": cluster, "form": form, "events": [], "svg": ""}
        return render(request, "clusters/history.html", context, status=400)
    data = form.cleaned_data if request.GET else {}
    now = timezone.now()
    since, until = data.get("window") or (None, now)
    vip_filter = data.get("vip", "")
    show_deleted = bool(data.get("deleted"))

    lifetimes = _lifetimes(
        cluster,
        set(deleted),
        {a: s[0] for a, s in spans.items()},
        {a: s[1] for a, s in spans.items()},
    )
    # Nothing held a VIP before its first push.
    rows = [timeline.Row(v.address, born=v.pushed_at or v.created) for v in current_vips]
    rows += [timeline.Row(a, True, *lifetimes[a]) for a in deleted]
    if vip_filter:
        rows = [r for r in rows if r.vip == vip_filter]
    elif not show_deleted:
        rows = [r for r in rows if not r.deleted]
    preset = data.get("last") or ""
    if since is None:
        # Nothing asked for: from the first thing known of the VIPs shown (their creation; no
        # event of theirs is older) to now.
        since, until = timeline.fit_window(
            until, [r.born for r in rows if r.born and r.born < until], longest=MAX_SPAN
        )
        preset = ALL
    elif data.get("since"):
        preset = ""
    shown = [r.vip for r in rows]

    events = FailoverEvent.objects.filter(
        cluster=cluster, at__gte=since, at__lte=until, vip_address__in=shown
    )
    table = list(events.order_by("-at", "-id")[: HISTORY_ROWS + 1])
    operations, grace = _operations(cluster, since, until)
    in_window = timeline.label_causes(
        [timeline.event_from(e) for e in reversed(table[:HISTORY_ROWS])], operations, grace
    )
    for row, event in zip(reversed(table[:HISTORY_ROWS]), in_window, strict=True):
        row.cause = event.cause
        row.vip_deleted = row.vip_address in deleted
    following = {}
    for address in shown:
        after = (
            FailoverEvent.objects.filter(cluster=cluster, vip_address=address, at__gt=until)
            .order_by("at", "id")
            .first()
        )
        if after is not None:
            following[address] = timeline.event_from(after)
    states = {}
    for vip in current_vips:
        state = vip.state if _has_state(vip) else None
        if state is not None:
            states[vip.address] = timeline.Current(
                holder=state.holder.name if state.holder else "",
                since=state.since,
                split_brain=state.split_brain,
                no_holder=state.no_holder,
            )
    tz = timezone.get_current_timezone()
    tracks = timeline.tracks_for(rows, in_window, since, until, states, following)
    svgs = [
        timeline.render_svg(rows, tracks, in_window, since, until, tz, layout)
        for layout in (timeline.WIDE, timeline.NARROW)
    ]
    # The form shows the window drawn (From/To in the viewer's zone), so Show redraws it.
    form = HistoryFilter(
        initial={
            "vip": vip_filter,
            "since": data.get("since"),
            "until": data.get("until"),
            "last": preset if preset in RANGES else "",
            "deleted": show_deleted,
        },
        vips=current + deleted,
        deleted=deleted,
    )
    out_since, out_until = timeline.zoom_out(since, until, now)
    predictions = _predictions(cluster, since, until, table[:HISTORY_ROWS])
    context = {
        "cluster": cluster,
        "form": form,
        "predictions": predictions,
        "events": table[:HISTORY_ROWS],
        "truncated": len(table) > HISTORY_ROWS,
        "since": since,
        "until": until,
        "svg": svgs[0],
        "svg_narrow": svgs[1],
        "presets": [
            (name, _query(request, last=name, since=None, until=None), name == preset)
            for name in PRESETS
        ],
        "zoom_out": _query(request, since=_iso(out_since), until=_iso(out_until), last=None),
        "deleted_count": len(deleted),
        "show_deleted": show_deleted,
        "deleted_toggle": _query(request, deleted=None if show_deleted else "1"),
        "vip_filter": vip_filter,
    }
    return render(request, "clusters/history.html", context)


def _predictions(cluster, since, until, events, limit=20):
    """[(push or drill, verdict)] of those with a prediction whose window meets [since, until],
    newest first; each event they judged is marked (predicted_by, as_predicted)."""
    grace = dt.timedelta(seconds=push_services.verdict_window(cluster))
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
