"""Which node held each VIP over a span of time, drawn as an SVG picture. Pure functions.

The intervals come from the failover history: each event says who held a VIP before it and
after it (a failover from web-1 to web-2, a split brain starting or ending, the VIP without a
holder). What held at the start of the window is what the first event in it says was there
before; with no event in the window, the first one after it says so, and with none at all the
VIP's current state (VipState) has lasted through the window. Nothing here reads the database,
so the same input gives the same picture, byte for byte.
"""

import datetime as dt
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

HELD, SPLIT, NONE, UNKNOWN = "held", "split", "none", "unknown"

# Event kinds, as in FailoverEvent.Kind (kept as text so this module needs no models).
FAILOVER, DRILL = "failover", "drill"
SPLIT_BRAIN, SPLIT_BRAIN_END = "split_brain", "split_brain_end"
NO_HOLDER, NO_HOLDER_END = "no_holder", "no_holder_end"

# Colour-blind-safe (Okabe-Ito, without the red that means trouble here).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#56B4E9", "#CC79A7", "#F0E442", "#999933", "#882255"]
TROUBLE = "#C62828"
UNKNOWN_FILL = "#E3E5E8"


@dataclass(frozen=True)
class Event:
    at: dt.datetime
    vip: str
    kind: str
    from_node: str = ""
    to_node: str = ""
    detected_by: str = ""


@dataclass(frozen=True)
class Current:
    """A VIP's state now (VipState): who holds it, since when, or trouble."""

    holder: str = ""
    since: dt.datetime | None = None
    split_brain: bool = False
    no_holder: bool = False


@dataclass(frozen=True)
class Segment:
    start: dt.datetime
    end: dt.datetime
    state: str
    holder: str = ""  # for SPLIT: the nodes that held it at once, comma-separated

    @property
    def label(self):
        if self.state == HELD:
            return self.holder
        if self.state == SPLIT:
            return f"split brain: {self.holder}" if self.holder else "split brain"
        if self.state == NONE:
            return "no holder"
        return "unknown"


def event_from(row):
    """A FailoverEvent (or anything shaped like one) as an Event."""
    return Event(
        at=row.at,
        vip=row.vip_address,
        kind=row.kind,
        from_node=row.from_node,
        to_node=row.to_node,
        detected_by=getattr(row, "detected_by", ""),
    )


def _held(names):
    names = names.strip()
    if not names:
        return (UNKNOWN, "")
    return (SPLIT, names) if "," in names else (HELD, names)


def before(event):
    """(state, holder) just before the event, as far as the event tells."""
    if event.kind == SPLIT_BRAIN_END:
        return (SPLIT, "")
    if event.kind == NO_HOLDER_END:
        return (NONE, "")
    return _held(event.from_node)


def after(event):
    """(state, holder) just after the event."""
    if event.kind == NO_HOLDER:
        return (NONE, "")
    if event.kind == SPLIT_BRAIN:
        return (SPLIT, event.to_node.strip())
    return _held(event.to_node)


def _current_state(current):
    if current is None:
        return (UNKNOWN, "")
    if current.split_brain:
        return (SPLIT, "")
    if current.no_holder:
        return (NONE, "")
    return (HELD, current.holder) if current.holder else (UNKNOWN, "")


def intervals(events, start, end, current=None, following=None, born=None):
    """[Segment] covering start..end for one VIP.

    events: that VIP's events within the window, in any order; following: its first event after
    the window, if any; current: its state now; born: when the VIP was created (nothing held
    it before, so nothing is drawn there).
    """
    if born is not None and born > start:
        start = born
    if end <= start:
        return []
    events = sorted((e for e in events if start <= e.at <= end), key=lambda e: e.at)
    points = []  # (time, state) changes, the first one at `start`
    if events:
        points.append((start, before(events[0])))
    elif following is not None:
        points.append((start, before(following)))
    else:
        state = _current_state(current)
        since = current.since if current is not None else None
        # A holder's `since` is when it took the VIP or was first seen with it: before that
        # nothing was known. Trouble always begins with an event, so it covers the window.
        if state[0] == HELD and since is not None and since > start:
            points.append((start, (UNKNOWN, "")))
            if since < end:
                points.append((since, state))
        else:
            points.append((start, state))
    for event in events:
        points.append((event.at, after(event)))
    segments = []
    for i, (at, (state, holder)) in enumerate(points):
        until = points[i + 1][0] if i + 1 < len(points) else end
        if until <= at:
            continue  # several events at one instant: only the last state lasts
        if segments and segments[-1].state == state and segments[-1].holder == holder:
            segments[-1] = Segment(segments[-1].start, until, state, holder)
        else:
            segments.append(Segment(at, until, state, holder))
    return segments


# --- Drawing ------------------------------------------------------------------------------

WIDTH = 960
LABEL_W = 170
RIGHT_PAD = 16
TOP = 8
ROW_H = 34
BAR_H = 22
AXIS_H = 28
LEGEND_ROW_H = 22

_STEPS = [dt.timedelta(seconds=s) for s in (1, 2, 5, 10, 15, 30)] + [
    dt.timedelta(minutes=m)
    for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 43200)
]


def _ticks(start, end, tz, most=8):
    span = end - start
    step = next((s for s in _STEPS if span / s <= most), _STEPS[-1])
    local = start.astimezone(tz)
    t = local.replace(hour=0, minute=0, second=0, microsecond=0)
    while t < local:
        t += step
    ticks = []
    while t <= end:
        ticks.append(t)
        t += step
    if step < dt.timedelta(minutes=1):
        fmt = "%H:%M:%S"
    elif span <= dt.timedelta(days=1):
        fmt = "%H:%M"
    elif step < dt.timedelta(days=1):
        fmt = "%m-%d %H:%M"
    else:
        fmt = "%Y-%m-%d"
    return [(tick, tick.strftime(fmt)) for tick in ticks]


def _fmt(moment, tz):
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _colours(tracks):
    names = sorted({s.holder for segs in tracks.values() for s in segs if s.state == HELD})
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def render_svg(tracks, events, start, end, tz=dt.UTC, title="VIP holders over time"):
    """The picture: one row per VIP (in the order of `tracks`), a bar per segment coloured by
    holder, split brain and no holder in red, a mark at every failover and every split brain."""
    span = (end - start).total_seconds() or 1.0
    plot_w = WIDTH - LABEL_W - RIGHT_PAD
    colours = _colours(tracks)

    def x(moment):
        return LABEL_W + round(plot_w * (moment - start).total_seconds() / span, 1)

    rows = list(tracks)
    plot_h = max(1, len(rows)) * ROW_H
    legend = [(name, colours[name]) for name in colours] + [
        ("split brain", TROUBLE),
        ("no holder", "none"),
        ("unknown", UNKNOWN_FILL),
    ]
    per_line = 5
    legend_lines = (len(legend) + per_line - 1) // per_line
    height = TOP + plot_h + AXIS_H + legend_lines * LEGEND_ROW_H + 8
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'class="timeline" role="img" aria-labelledby="timeline-title">',
        f'<title id="timeline-title">{escape(title)}: {_fmt(start, tz)} to {_fmt(end, tz)}</title>',
        '<defs><pattern id="split-hatch" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="8" height="8" fill="#F8D7DA"/>'
        f'<rect width="4" height="8" fill="{TROUBLE}"/></pattern></defs>',
    ]
    ticks = _ticks(start, end, tz)
    for tick, label in ticks:
        tx = x(tick)
        out.append(
            f'<line x1="{tx}" y1="{TOP}" x2="{tx}" y2="{TOP + plot_h}" stroke="#D8DCE3" '
            'stroke-width="1"/>'
        )
        out.append(
            f'<text x="{tx}" y="{TOP + plot_h + 16}" font-size="11" text-anchor="middle" '
            f'fill="#444">{escape(label)}</text>'
        )
    if not rows:
        out.append(
            f'<text x="{LABEL_W + 8}" y="{TOP + ROW_H / 2 + 4}" font-size="13" fill="#444">'
            "No virtual IPs to show.</text>"
        )
    for i, vip in enumerate(rows):
        y = TOP + i * ROW_H + (ROW_H - BAR_H) / 2
        out.append(
            f'<text x="{LABEL_W - 8}" y="{y + BAR_H / 2 + 4}" font-size="12" '
            f'text-anchor="end" fill="#1D2330">{escape(vip)}</text>'
        )
        for seg in tracks[vip]:
            x1, x2 = x(seg.start), x(seg.end)
            w = max(round(x2 - x1, 1), 0.5)
            if seg.state == HELD:
                fill, stroke = colours[seg.holder], "none"
            elif seg.state == SPLIT:
                fill, stroke = "url(#split-hatch)", TROUBLE
            elif seg.state == NONE:
                fill, stroke = "#FFFFFF", TROUBLE
            else:
                fill, stroke = UNKNOWN_FILL, "none"
            tip = f"{vip}: {seg.label}, {_fmt(seg.start, tz)} to {_fmt(seg.end, tz)}"
            extra = ' stroke-dasharray="4 2"' if seg.state == NONE else ""
            out.append(
                f'<rect x="{x1}" y="{y}" width="{w}" height="{BAR_H}" fill="{fill}" '
                f'stroke="{stroke}"{extra} data-state="{seg.state}" '
                f"data-holder={quoteattr(seg.holder)}><title>{escape(tip)}</title></rect>"
            )
            if seg.state != UNKNOWN and w > 7 * len(seg.label) + 8:
                colour = "#FFFFFF" if seg.state == HELD else TROUBLE
                if seg.state == HELD and colours[seg.holder] in ("#F0E442", "#56B4E9", "#E69F00"):
                    colour = "#1D2330"  # dark text on the light colours
                out.append(
                    f'<text x="{round(x1 + 4, 1)}" y="{y + BAR_H / 2 + 4}" font-size="11" '
                    f'fill="{colour}" pointer-events="none">{escape(seg.label)}</text>'
                )
    row_of = {vip: i for i, vip in enumerate(rows)}
    for event in sorted(events, key=lambda e: (e.at, e.vip, e.kind)):
        if event.vip not in row_of or not start <= event.at <= end:
            continue
        ex = x(event.at)
        y = TOP + row_of[event.vip] * ROW_H
        trouble = event.kind in (SPLIT_BRAIN, NO_HOLDER)
        if event.kind in (SPLIT_BRAIN_END, NO_HOLDER_END):
            colour = "#555"
        else:
            colour = TROUBLE if trouble else "#1D2330"
        what = event.kind.replace("_", " ")
        moved = (
            f" {event.from_node or '?'} to {event.to_node or '?'}"
            if event.kind in (FAILOVER, DRILL)
            else ""
        )
        tip = f"{_fmt(event.at, tz)} {event.vip}: {what}{moved}"
        out.append(
            f'<g class="mark" data-kind="{escape(event.kind)}"><title>{escape(tip)}</title>'
            f'<line x1="{ex}" y1="{y + 2}" x2="{ex}" y2="{y + ROW_H - 2}" stroke="{colour}" '
            'stroke-width="2"/>'
            f'<path d="M{ex - 4} {y + 2} L{ex + 4} {y + 2} L{ex} {y + 8} Z" fill="{colour}"/></g>'
        )
    ly = TOP + plot_h + AXIS_H
    for i, (name, colour) in enumerate(legend):
        lx = LABEL_W + (i % per_line) * 150
        yy = ly + (i // per_line) * LEGEND_ROW_H
        if name == "split brain":
            swatch = f'fill="url(#split-hatch)" stroke="{TROUBLE}"'
        elif name == "no holder":
            swatch = f'fill="#FFFFFF" stroke="{TROUBLE}" stroke-dasharray="4 2"'
        else:
            swatch = f'fill="{colour}"'
        out.append(f'<rect x="{lx}" y="{yy}" width="14" height="14" {swatch}/>')
        out.append(
            f'<text x="{lx + 20}" y="{yy + 11}" font-size="12" fill="#1D2330">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def timeline_svg(vips, events, start, end, current=None, following=None, born=None, tz=dt.UTC):
    """The whole picture for VIP addresses `vips` (in that order).

    events: Events within start..end; current: {vip: Current}; following: {vip: the first
    Event after end}; born: {vip: when it was created}.
    """
    current, following, born = current or {}, following or {}, born or {}
    events = list(events)
    by_vip = {vip: [] for vip in vips}
    for event in events:
        if event.vip in by_vip:
            by_vip[event.vip].append(event)
    tracks = {
        vip: intervals(by_vip[vip], start, end, current.get(vip), following.get(vip), born.get(vip))
        for vip in vips
    }
    return render_svg(tracks, events, start, end, tz)
