"""Availability of each VIP over 24 hours, 7 days and 30 days, from the failover history.

Time is split four ways: exactly one holder (up), no holder, split brain, and unknown: time when
the panel observed nothing (no span of VipCoverage), because it, its sweeps or the nodes' SSH
were down. Unknown is never counted as up. Only what was pushed counts: a window starts at the
VIP's first push at the earliest (before it, the VIP was configuration, not a service), and a
VIP never pushed has nothing counted. `compute` is a pure function of the events and the
coverage spans, so it is tested against hand-built sequences; `vip_availability` feeds it from
the database, for the cluster page, the API and the metrics.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from alerts.models import VipCoverage
from clusters.models import FailoverEvent, VirtualIP

WINDOWS = (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)))
Kind = FailoverEvent.Kind
STATE_KINDS = (Kind.SPLIT_BRAIN, Kind.SPLIT_BRAIN_END, Kind.NO_HOLDER, Kind.NO_HOLDER_END)


@dataclass
class Availability:
    window: str
    seconds: float
    one_holder: float = 0.0
    no_holder: float = 0.0
    split_brain: float = 0.0
    unknown: float = 0.0
    failovers: int = 0

    def share(self, part):
        return getattr(self, part) / self.seconds if self.seconds else 0.0

    @property
    def up_share(self):
        return self.share("one_holder")

    def as_dict(self):
        return {
            "window": self.window,
            "seconds": self.seconds,
            "one_holder_seconds": self.one_holder,
            "no_holder_seconds": self.no_holder,
            "split_brain_seconds": self.split_brain,
            "unknown_seconds": self.unknown,
            "one_holder_share": round(self.share("one_holder"), 6),
            "no_holder_share": round(self.share("no_holder"), 6),
            "split_brain_share": round(self.share("split_brain"), 6),
            "unknown_share": round(self.share("unknown"), 6),
            "failovers": self.failovers,
        }


def _state(split, none):
    return "split_brain" if split else "no_holder" if none else "one_holder"


def compute(events, spans, start, end, initial=(False, False), window=""):
    """Availability over [start, end).

    events: (at, kind) in time order, FailoverEvent kinds; those before `start` only set the
    state at `start` (as does `initial`, the (split, none) state before the first event).
    spans: (start, end) pairs when the panel was watching; everything else is unknown.
    """
    result = Availability(window=window, seconds=(end - start).total_seconds())
    split, none = initial
    # The state timeline as (from, to, state) pieces.
    pieces, t = [], start
    for at, kind in events:
        if at >= end:
            break
        if at > t:
            pieces.append((t, at, _state(split, none)))
            t = at
        if kind == Kind.SPLIT_BRAIN:
            split = True
        elif kind == Kind.SPLIT_BRAIN_END:
            split = False
        elif kind == Kind.NO_HOLDER:
            none = True
        elif kind == Kind.NO_HOLDER_END:
            none = False
        elif kind == Kind.FAILOVER and at >= start:
            result.failovers += 1
    if end > t:
        pieces.append((t, end, _state(split, none)))
    known = 0.0
    for a, b, state in pieces:
        for s, e in spans:
            lo, hi = max(a, s, start), min(b, e, end)
            if hi > lo:
                seconds = (hi - lo).total_seconds()
                setattr(result, state, getattr(result, state) + seconds)
                known += seconds
    result.unknown = max(result.seconds - known, 0.0)
    return result


def _merged(spans):
    merged = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _windows(now, spans, events, initial, pushed_at):
    """[Availability] for 24h, 7d and 30d up to `now`, from the VIP's coverage spans since the
    longest window began, its events in it (time order) and its (split, none) state before;
    each window from `pushed_at` at the earliest (None: never pushed, nothing counted)."""
    gap = timedelta(seconds=settings.VIPANEL_ALERT_COVERAGE_GAP)
    # The panel is still watching when the last observation is recent: up to now is covered.
    spans = _merged([(s, now if now - e <= gap else e) for s, e in spans])
    first = now if pushed_at is None else min(pushed_at, now)
    return [
        compute(events, spans, max(now - length, first), now, initial=initial, window=name)
        for name, length in WINDOWS
    ]


def vip_availability(vip, now=None):
    """[Availability] for 24h, 7d and 30d up to now; three queries, whatever the window (none
    for a VIP never pushed)."""
    now = now or timezone.now()
    if vip.pushed_at is None:
        return _windows(now, [], [], (False, False), None)  # nothing to count, nothing to read
    longest = now - WINDOWS[-1][1]
    spans = list(VipCoverage.objects.filter(vip=vip, end__gte=longest).values_list("start", "end"))
    history = FailoverEvent.objects.filter(vip=vip).order_by("at", "id")
    events = list(
        history.filter(
            at__gte=longest, at__lte=now, kind__in=[*STATE_KINDS, Kind.FAILOVER]
        ).values_list("at", "kind")
    )
    before = list(
        history.filter(at__lt=longest, kind__in=STATE_KINDS)
        .order_by("-at", "-id")
        .values_list("kind", flat=True)[:50]
    )
    split = next(
        (k == Kind.SPLIT_BRAIN for k in before if k in (Kind.SPLIT_BRAIN, Kind.SPLIT_BRAIN_END)),
        False,
    )
    none = next(
        (k == Kind.NO_HOLDER for k in before if k in (Kind.NO_HOLDER, Kind.NO_HOLDER_END)), False
    )
    return _windows(now, spans, events, (split, none), vip.pushed_at)


def cluster_availability(cluster, now=None):
    """[(vip, [Availability...])] for every VIP of the cluster: the API's and metrics' entry."""
    return [(vip, vip_availability(vip, now)) for vip in cluster.vips.all()]


def metric_samples(now=None):
    """For /metrics: (cluster, vip, window, {state: share}, failovers) for every VIP.

    Three queries for all VIPs together (a scrape costs the same however many there are): the
    VIPs with their state before the longest window, every coverage span, every event.
    """

    now = now or timezone.now()
    longest = now - WINDOWS[-1][1]

    def last_before(kinds):
        return Subquery(
            FailoverEvent.objects.filter(vip=OuterRef("pk"), at__lt=longest, kind__in=kinds)
            .order_by("-at", "-id")
            .values("kind")[:1]
        )

    vips = (
        VirtualIP.objects.select_related("cluster")
        .filter(pushed_at__isnull=False)  # never pushed: nothing to count, no series
        .annotate(
            split_before=last_before([Kind.SPLIT_BRAIN, Kind.SPLIT_BRAIN_END]),
            none_before=last_before([Kind.NO_HOLDER, Kind.NO_HOLDER_END]),
        )
        .order_by("cluster__name", "id")
    )
    spans, events = defaultdict(list), defaultdict(list)
    for vip_id, start, end in VipCoverage.objects.filter(end__gte=longest).values_list(
        "vip_id", "start", "end"
    ):
        spans[vip_id].append((start, end))
    for vip_id, at, kind in (
        FailoverEvent.objects.filter(
            vip__isnull=False, at__gte=longest, at__lte=now, kind__in=[*STATE_KINDS, Kind.FAILOVER]
        )
        .order_by("at", "id")
        .values_list("vip_id", "at", "kind")
    ):
        events[vip_id].append((at, kind))
    for vip in vips:
        initial = (vip.split_before == Kind.SPLIT_BRAIN, vip.none_before == Kind.NO_HOLDER)
        for a in _windows(now, spans[vip.pk], events[vip.pk], initial, vip.pushed_at):
            shares = {s: a.share(s) for s in ("one_holder", "no_holder", "split_brain", "unknown")}
            yield vip.cluster.name, vip.address, a.window, shares, a.failovers
