"""Which node held each VIP over a span of time, drawn as an SVG picture. Pure functions.

The intervals come from the failover history: each event says who held a VIP before it and
after it (a failover from web-1 to web-2, a split brain starting or ending, the VIP without a
holder). What held at the start of the window is what the first event in it says was there
before; with no event in the window, the first one after it says so, and with none at all the
VIP's current state (VipState) has lasted through the window. Nothing is drawn before a VIP
existed nor after it was deleted.

The window fits the data unless asked otherwise (fit_window), and every move is labelled by
its cause (cause_of: a push, a maintenance push, a drill, or a failure when nothing of ours was
running). Nothing here reads the database, so the same input gives the same picture, byte for
byte.
"""

import datetime as dt
import math
import re
from dataclasses import dataclass, replace
from xml.sax.saxutils import escape, quoteattr

from clusters import timefmt

HELD, SPLIT, NONE, UNKNOWN = "held", "split", "none", "unknown"

# Event kinds, as in FailoverEvent.Kind (kept as text so this module needs no models).
FAILOVER, DRILL = "failover", "drill"
SPLIT_BRAIN, SPLIT_BRAIN_END = "split_brain", "split_brain_end"
NO_HOLDER, NO_HOLDER_END = "no_holder", "no_holder_end"
ENDS = (SPLIT_BRAIN_END, NO_HOLDER_END, "stale_address_end")
TROUBLE_KINDS = (SPLIT_BRAIN, NO_HOLDER)

# Causes of an event. The first three are ConfigPush.Kind's values: an operation of that kind
# was running when the event happened.
PUSH, MAINTENANCE, FAILURE = "push", "maintenance", "failure"
CAUSES = (PUSH, MAINTENANCE, DRILL, FAILURE)
CAUSE_TEXT = {PUSH: "push", MAINTENANCE: "maintenance", DRILL: "drill", FAILURE: "failure"}

# Colour-blind-safe (Okabe-Ito, without the red that means trouble here).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#56B4E9", "#CC79A7", "#F0E442", "#999933", "#882255"]
LIGHT_COLOURS = ("#F0E442", "#56B4E9", "#E69F00")  # dark text on these
TROUBLE = "#C62828"
UNKNOWN_FILL = "#E3E5E8"
INK, MUTED, GRID = "#1D2330", "#444", "#D8DCE3"

# The default window: from the first thing known (an event, a VIP's creation) to now, and at
# least this long, so a cluster made a minute ago is not drawn across the whole width.
MIN_WINDOW = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Event:
    at: dt.datetime
    vip: str
    kind: str
    from_node: str = ""
    to_node: str = ""
    detected_by: str = ""
    detail: str = ""
    cause: str = ""  # set by label_causes


@dataclass(frozen=True)
class Operation:
    """A push, maintenance push or drill record (ConfigPush): what may have moved a VIP."""

    id: int
    kind: str  # PUSH, MAINTENANCE or DRILL
    started: dt.datetime | None
    finished: dt.datetime | None


@dataclass(frozen=True)
class Current:
    """A VIP's state now (VipState): who holds it, since when, or trouble."""

    holder: str = ""
    since: dt.datetime | None = None
    split_brain: bool = False
    no_holder: bool = False


@dataclass(frozen=True)
class Row:
    """One VIP of the picture. A deleted one is drawn greyed, up to when it was deleted."""

    vip: str
    deleted: bool = False
    born: dt.datetime | None = None
    died: dt.datetime | None = None


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
        detail=getattr(row, "detail", ""),
    )


# --- The window ---------------------------------------------------------------------------


def fit_window(now, moments, longest=None):
    """(start, now): from the earliest of `moments` (first events, VIP creations; None ones are
    skipped) to now; at least MIN_WINDOW long, at most `longest`."""
    start = min((m for m in moments if m is not None), default=now)
    start = min(start, now - MIN_WINDOW)
    if longest is not None:
        start = max(start, now - longest)
    return start, now


def zoom_out(start, end, now):
    """The window twice as long around the same middle, never past now."""
    span = end - start
    end = min(end + span / 2, now)
    return end - 2 * span, end


# --- Causes -------------------------------------------------------------------------------

# clusters.history writes this at the head of an event's detail while a push or drill runs.
_DURING = re.compile(r"\ADuring (push|drill) #(\d+)\b")


def cause_of(event, operations, grace=dt.timedelta(0)):
    """Why the event happened: DRILL, PUSH or MAINTENANCE when one of ours was running (the
    event's detail names it, else its time falls within the operation's run, `grace` after its
    end for a sweep that saw the move late), FAILURE otherwise; "" for the end of a trouble."""
    if event.kind in ENDS:
        return ""
    if event.kind == DRILL:
        return DRILL
    by_id = {op.id: op for op in operations}
    named = _DURING.match(event.detail or "")
    if named:
        op = by_id.get(int(named.group(2)))
        if op is not None:
            return op.kind
        return DRILL if named.group(1) == "drill" else PUSH
    for op in sorted(operations, key=lambda o: (o.started or event.at, o.id)):
        if op.started is None or op.started > event.at:
            continue
        if op.finished is None or event.at <= op.finished + grace:
            return op.kind
    return FAILURE


def label_causes(events, operations, grace=dt.timedelta(0)):
    return [replace(e, cause=cause_of(e, operations, grace)) for e in events]


# --- Intervals ----------------------------------------------------------------------------


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


def intervals(events, start, end, current=None, following=None, born=None, died=None):
    """[Segment] covering start..end for one VIP.

    events: that VIP's events within the window, in any order; following: its first event after
    the window, if any; current: its state now; born: when the VIP was created (nothing held
    it before, so nothing is drawn there); died: when it was deleted (nor after).
    """
    if born is not None and born > start:
        start = born
    if died is not None and died < end:
        end = died
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


@dataclass(frozen=True)
class Layout:
    """Sizes of one drawing of the picture, in SVG units (the picture scales to its box)."""

    name: str
    width: int
    label_w: int  # the VIP's name left of its bar; 0: above it
    row_h: int
    ticks: int  # at most this many on the time axis
    legend_per_line: int
    legend_w: int
    right_pad: int = 16
    lane_h: int = 12  # above each bar: the marks' cause labels
    bar_h: int = 22


# A laptop: names left of the bars. A phone: the same window in a narrow picture with names
# above the bars, so the whole window (its recent end too) is on screen without scrolling.
WIDE = Layout("wide", 960, 170, 40, 8, 5, 150)
NARROW = Layout("narrow", 330, 0, 54, 4, 2, 160, right_pad=10)

TOP = 8
AXIS_H = 34
LEGEND_ROW_H = 22
MARK_SHAPES = {
    FAILURE: "triangle",
    PUSH: "circle",
    MAINTENANCE: "square",
    DRILL: "diamond",
}

_STEPS = [dt.timedelta(seconds=s) for s in (1, 2, 5, 10, 15, 30)] + [
    dt.timedelta(minutes=m)
    for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 43200)
]
DAY = dt.timedelta(days=1)


def _ticks(start, end, tz, most=8):
    """[(moment, time label, date label or "")]: round moments in `tz`; the date is written
    under the first tick and wherever the day changes, ISO (2026-12-01)."""
    span = end - start
    step = next((s for s in _STEPS if span / s <= most), _STEPS[-1])
    local = start.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Round local times: aware arithmetic with a ZoneInfo is wall-clock arithmetic.
    naive_offset = local.replace(tzinfo=None) - midnight.replace(tzinfo=None)
    t = midnight + step * math.ceil(naive_offset / step)
    ticks, previous_day = [], None
    while t.astimezone(dt.UTC) <= end:
        if step >= DAY:
            ticks.append((t, t.strftime(timefmt.DATE), ""))
        else:
            fmt = "%H:%M:%S" if step < dt.timedelta(minutes=1) else "%H:%M"
            day = t.date()
            date = t.strftime(timefmt.DATE) if day != previous_day else ""
            ticks.append((t, t.strftime(fmt), date))
            previous_day = day
        t += step
    return ticks


def _anchored(x, width, limit):
    """x= and text-anchor= for a label centred on x, kept within 0..limit."""
    if x - width / 2 < 0:
        return f'x="{max(x - 4, 0)}" text-anchor="start"'
    if x + width / 2 > limit:
        return f'x="{min(x + 4, limit)}" text-anchor="end"'
    return f'x="{x}" text-anchor="middle"'


def _colours(tracks):
    names = sorted({s.holder for segs in tracks.values() for s in segs if s.state == HELD})
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _mark_shape(shape, cx, top, colour):
    if shape == "circle":
        return f'<circle cx="{cx}" cy="{top + 4}" r="4" fill="{colour}"/>'
    if shape == "square":
        return f'<rect x="{cx - 4}" y="{top}" width="8" height="8" fill="{colour}"/>'
    if shape == "diamond":
        return (
            f'<path d="M{cx} {top - 1} L{cx + 5} {top + 4} L{cx} {top + 9} L{cx - 5} {top + 4} Z" '
            f'fill="{colour}"/>'
        )
    return f'<path d="M{cx - 4} {top} L{cx + 4} {top} L{cx} {top + 8} Z" fill="{colour}"/>'


def _event_text(event):
    what = event.kind.replace("_", " ")
    if event.kind in (FAILOVER, DRILL):
        what += f" {event.from_node or '?'} to {event.to_node or '?'}"
    if event.cause and event.kind != DRILL:
        what += f" ({CAUSE_TEXT[event.cause]})"
    return what


def render_svg(rows, tracks, events, start, end, tz=dt.UTC, layout=WIDE, title=None):
    """The picture: one row per VIP (Row, in order; tracks: {vip: [Segment]}), a bar per
    segment coloured by holder, split brain and no holder in red, deleted VIPs greyed, a mark
    at every event shaped and labelled by its cause."""
    title = title or "VIP holders over time"
    start_utc, end_utc = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    span = (end_utc - start_utc).total_seconds() or 1.0
    x0 = layout.label_w or 8
    x1 = layout.width - layout.right_pad
    plot_w = x1 - x0
    colours = _colours(tracks)
    name_h = 0 if layout.label_w else 14  # a narrow picture writes the name above the lane

    def x(moment):
        seconds = (moment.astimezone(dt.UTC) - start_utc).total_seconds()
        return x0 + round(plot_w * seconds / span, 1)

    def row_top(i):
        return TOP + i * layout.row_h

    def bar_top(i):
        return row_top(i) + name_h + layout.lane_h

    plot_h = max(1, len(rows)) * layout.row_h
    causes_seen = sorted({e.cause for e in events if e.cause}, key=CAUSES.index)
    legend = [(name, "holder", colours[name]) for name in colours] + [
        ("split brain", "split", TROUBLE),
        ("no holder", "none", TROUBLE),
        ("unknown", "unknown", UNKNOWN_FILL),
    ]
    if any(r.deleted for r in rows):
        legend.append(("deleted VIP", "deleted", UNKNOWN_FILL))
    legend += [(f"{CAUSE_TEXT[c]} move", "mark", c) for c in causes_seen]
    per_line = layout.legend_per_line
    legend_lines = (len(legend) + per_line - 1) // per_line
    height = TOP + plot_h + AXIS_H + legend_lines * LEGEND_ROW_H + 8
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {layout.width} {height}" '
        f'class="timeline {layout.name}" role="img" aria-labelledby="timeline-title-{layout.name}" '
        f'data-start="{start_utc.isoformat()}" data-end="{end_utc.isoformat()}" '
        f'data-x0="{x0}" data-x1="{x1}">',
        f'<title id="timeline-title-{layout.name}">{escape(title)}: '
        f"{timefmt.when(start, 'second', tz)} to {timefmt.when(end, 'second', tz)}</title>",
        f'<defs><pattern id="split-hatch-{layout.name}" width="8" height="8" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="8" height="8" fill="#F8D7DA"/><rect width="4" height="8" fill="{TROUBLE}"/>'
        "</pattern></defs>",
    ]
    hatch = f"url(#split-hatch-{layout.name})"
    for tick, label, date in _ticks(start_utc, end_utc, tz, layout.ticks):
        tx = x(tick)
        out.append(
            f'<line x1="{tx}" y1="{TOP}" x2="{tx}" y2="{TOP + plot_h}" stroke="{GRID}" '
            'stroke-width="1" class="tl-grid"/>'
        )
        for text, dy, size in ((label, 14, 11), (date, 28, 10)):
            if text:
                out.append(
                    f'<text y="{TOP + plot_h + dy}" font-size="{size}" '
                    f'{_anchored(tx, 0.6 * size * len(text), layout.width)} fill="{MUTED}" '
                    f'class="tl-muted">{escape(text)}</text>'
                )
    if not rows:
        out.append(
            f'<text x="{x0 + 8}" y="{TOP + layout.row_h / 2 + 4}" font-size="13" fill="{MUTED}" '
            'class="tl-muted">No virtual IPs to show.</text>'
        )
    for i, row in enumerate(rows):
        y = bar_top(i)
        name = f"{row.vip} (deleted)" if row.deleted else row.vip
        css = "tl-muted" if row.deleted else "tl-ink"
        if layout.label_w:
            out.append(
                f'<text x="{layout.label_w - 8}" y="{y + layout.bar_h / 2 + 4}" font-size="12" '
                f'text-anchor="end" fill="{MUTED if row.deleted else INK}" class="{css}">'
                f"{escape(name)}</text>"
            )
        else:
            out.append(
                f'<text x="{x0}" y="{row_top(i) + 11}" font-size="12" '
                f'fill="{MUTED if row.deleted else INK}" class="{css}">{escape(name)}</text>'
            )
        group = ' class="deleted" opacity="0.45"' if row.deleted else ""
        out.append(f"<g{group}>")
        for seg in tracks.get(row.vip, []):
            x1s, x2s = x(seg.start), x(seg.end)
            w = max(round(x2s - x1s, 1), 0.5)
            extra, css = "", ""
            if seg.state == HELD:
                fill, stroke = colours[seg.holder], "none"
            elif seg.state == SPLIT:
                fill, stroke = hatch, TROUBLE
            elif seg.state == NONE:
                fill, stroke, css = "#FFFFFF", TROUBLE, ' class="tl-none"'
                extra = ' stroke-dasharray="4 2"'
            else:
                fill, stroke, css = UNKNOWN_FILL, "none", ' class="tl-unknown"'
            tip = (
                f"{row.vip}: {seg.label}, {timefmt.when(seg.start, 'second', tz)} to "
                f"{timefmt.when(seg.end, 'second', tz)}"
            )
            out.append(
                f'<rect x="{x1s}" y="{y}" width="{w}" height="{layout.bar_h}" fill="{fill}" '
                f'stroke="{stroke}"{extra}{css} data-state="{seg.state}" '
                f"data-holder={quoteattr(seg.holder)}><title>{escape(tip)}</title></rect>"
            )
            if seg.state != UNKNOWN and w > 7 * len(seg.label) + 8:
                colour, css = ("#FFFFFF" if seg.state == HELD else TROUBLE), ""
                if seg.state == HELD and colours[seg.holder] in LIGHT_COLOURS:
                    colour = INK
                if row.deleted:
                    # On a faded bar the page's own ink reads best, whatever the theme.
                    colour, css = INK, ' class="tl-ink"'
                out.append(
                    f'<text x="{round(x1s + 4, 1)}" y="{y + layout.bar_h / 2 + 4}" font-size="11" '
                    f'fill="{colour}"{css} pointer-events="none">{escape(seg.label)}</text>'
                )
        if row.deleted and row.died is not None and start_utc <= row.died <= end_utc:
            dx = x(row.died)
            out.append(
                f'<g class="mark" data-kind="deleted"><title>{escape(row.vip)} deleted at '
                f"{timefmt.when(row.died, 'second', tz)}</title>"
                f'<line x1="{dx}" y1="{y - 2}" x2="{dx}" y2="{y + layout.bar_h + 2}" '
                f'stroke="{MUTED}" stroke-width="2" stroke-dasharray="3 2" class="tl-mark-muted"/>'
                "</g>"
            )
        out.append("</g>")
    out += _marks(rows, events, start_utc, end_utc, x, row_top, bar_top, layout, name_h, tz)
    ly = TOP + plot_h + AXIS_H
    for i, (name, kind, value) in enumerate(legend):
        lx = x0 + (i % per_line) * layout.legend_w
        yy = ly + (i // per_line) * LEGEND_ROW_H
        out.append(_swatch(kind, value, lx, yy, hatch))
        out.append(
            f'<text x="{lx + 20}" y="{yy + 11}" font-size="12" fill="{INK}" class="tl-ink">'
            f"{escape(name)}</text>"
        )
    # Where a drag on the picture is drawn (static/timeline.js); nothing without JavaScript.
    out.append(
        f'<rect class="tl-zoom" x="{x0}" y="{TOP}" width="0" height="{plot_h}" '
        'fill="#1F5FBF" fill-opacity="0.18" stroke="#1F5FBF" display="none"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _swatch(kind, value, lx, yy, hatch):
    """The legend's little picture of a holder, a state or a mark."""
    box = f'x="{lx}" y="{yy}" width="14" height="14"'
    if kind == "mark":
        return f'<g class="tl-mark">{_mark_shape(MARK_SHAPES[value], lx + 7, yy + 3, INK)}</g>'
    if kind == "split":
        return f'<rect {box} fill="{hatch}" stroke="{TROUBLE}"/>'
    if kind == "none":
        dashed = 'stroke-dasharray="4 2" class="tl-none"'
        return f'<rect {box} fill="#FFFFFF" stroke="{TROUBLE}" {dashed}/>'
    if kind == "deleted":
        return f'<rect {box} fill="{PALETTE[0]}" opacity="0.45"/>'
    if kind == "unknown":
        return f'<rect {box} fill="{value}" class="tl-unknown"/>'
    return f'<rect {box} fill="{value}"/>'


def _marks(rows, events, start, end, x, row_top, bar_top, layout, name_h, tz):
    """A mark per event: a line across the bar, a shape in the lane above it (by cause) and,
    where there is room before the next mark of the row, the cause written beside it."""
    out = []
    row_of = {row.vip: i for i, row in enumerate(rows)}
    shown = sorted(
        (e for e in events if e.vip in row_of and start <= e.at <= end),
        key=lambda e: (e.at, e.vip, e.kind),
    )
    next_x = {}
    for event in reversed(shown):
        next_x[id(event)] = next_x.get(event.vip, math.inf)
        next_x[event.vip] = x(event.at)
    for event in shown:
        i = row_of[event.vip]
        ex = x(event.at)
        lane = row_top(i) + name_h
        y = bar_top(i)
        if event.kind in ENDS:
            colour, css = MUTED, "tl-mark-muted"
        elif event.kind in TROUBLE_KINDS:
            colour, css = TROUBLE, "tl-trouble"
        else:
            colour, css = INK, "tl-mark"
        tip = f"{timefmt.when(event.at, 'second', tz)} {event.vip}: {_event_text(event)}"
        cause = f' data-cause="{event.cause}"' if event.cause else ""
        shape = MARK_SHAPES.get(event.cause, "triangle")
        label = ""
        text = CAUSE_TEXT.get(event.cause, "")
        room = min(next_x[id(event)], x(end) + layout.right_pad) - ex
        if text and room > 6.2 * len(text) + 12:
            label = (
                f'<text x="{round(ex + 7, 1)}" y="{lane + 9}" font-size="10" fill="{colour}">'
                f"{escape(text)}</text>"
            )
        out.append(
            f'<g class="mark {css}" data-kind="{escape(event.kind)}"{cause}>'
            f"<title>{escape(tip)}</title>"
            f'<line x1="{ex}" y1="{lane + 2}" x2="{ex}" y2="{y + layout.bar_h}" stroke="{colour}" '
            'stroke-width="2"/>'
            f"{_mark_shape(shape, ex, lane + 1, colour)}{label}</g>"
        )
    return out


def tracks_for(rows, events, start, end, current=None, following=None):
    """{vip: [Segment]} for each Row. events: Events within start..end; current: {vip:
    Current}; following: {vip: the first Event after end}."""
    current, following = current or {}, following or {}
    by_vip = {row.vip: [] for row in rows}
    for event in events:
        if event.vip in by_vip:
            by_vip[event.vip].append(event)
    return {
        row.vip: intervals(
            by_vip[row.vip],
            start,
            end,
            None if row.deleted else current.get(row.vip),
            following.get(row.vip),
            row.born,
            row.died,
        )
        for row in rows
    }


def timeline_svg(rows, events, start, end, current=None, following=None, tz=dt.UTC, layout=WIDE):
    """The whole picture for `rows` (Row, or plain VIP addresses), in that order."""
    rows = [row if isinstance(row, Row) else Row(row) for row in rows]
    events = list(events)
    tracks = tracks_for(rows, events, start, end, current, following)
    return render_svg(rows, tracks, events, start, end, tz, layout)
