"""Template helpers: what the user's role allows, diffs shown line by line, and times."""

from django import template
from django.utils import timezone
from django.utils.html import format_html

from clusters import roles, timefmt
from clusters.models import FailoverEvent

register = template.Library()


@register.filter
def has_role(user, role):
    """{% if user|has_role:"operator" %}: buttons only for those who may press them."""
    return roles.has_role(user, role)


@register.filter
def event_text(e):
    """What a failover event says, in one line: {{ event|event_text }} on the dashboard, the
    cluster page and a node's page. A filter, not an include: the dashboard draws three per
    cluster row, and 150 includes were most of its render time. `e`: a FailoverEvent or its
    .values() dict."""
    get = e.get if isinstance(e, dict) else lambda name: getattr(e, name, None)
    kind, source, target = get("kind"), get("from_node") or "", get("to_node") or ""
    Kind = FailoverEvent.Kind
    if kind in (Kind.FAILOVER, Kind.DRILL):
        moved = format_html("{} → {}", source or "?", target or "?")
        return format_html("{} (drill)", moved) if kind == Kind.DRILL else moved
    if kind == Kind.SPLIT_BRAIN:
        return format_html('<span class="bad">split brain</span> ({})', target)
    if kind == Kind.SPLIT_BRAIN_END:
        return format_html("split brain over, held by {}", target) if target else "split brain over"
    if kind == Kind.NO_HOLDER:
        if source:
            return format_html('<span class="bad">no holder</span> (was {})', source)
        return format_html('<span class="bad">{}</span>', "no holder")
    if kind == Kind.NO_HOLDER_END:
        return format_html("held again by {}", target or "?")
    return Kind(kind).label if kind in Kind.values else kind


@register.filter
def role_name(user):
    return roles.role_of(user) or "no role"


@register.filter
def difflines(diff):
    """A unified diff as (css class, line) pairs, so additions and removals can be told apart
    without colour too (the +/- stays on each line)."""
    lines = []
    for line in (diff or "").splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        lines.append((kind, line))
    return lines


@register.filter
def state_class(value):
    """A CSS class for a state word (push, step, VRRP), so colour follows meaning everywhere."""
    value = str(value or "").lower()
    if value in ("succeeded", "applied", "unchanged", "master", "ok"):
        return "good"
    if value in ("failed", "interrupted", "fault", "split", "none", "stopped"):
        return "bad"
    if value in ("running", "queued"):
        return "busy"
    if value == "pending":
        return "pending"  # saved, not pushed: amber, not a problem
    return "neutral"


# Times: every page writes them through these three filters (the rule is clusters.timefmt).


@register.filter
def when(moment, precision="minute"):
    """{{ e.at|when }}: <time datetime="ISO">2026-12-01 19:05</time> in the viewer's zone;
    {{ e.at|when:"second" }}, {{ step.started|when:"time" }} for other precisions."""
    if moment is None:
        return ""
    return format_html(
        '<time datetime="{}">{}</time>',
        moment.isoformat(timespec="seconds"),
        timefmt.when(moment, precision),
    )


@register.filter
def age(moment):
    """{{ state.since|age }}: how long ago, "42 s", "3 h 12 min"."""
    return timefmt.age(moment)


@register.filter
def duration(value):
    """{{ incident.duration|duration }}: a timedelta or a number of seconds, "42 s"."""
    return "" if value is None else timefmt.duration(value)


@register.simple_tag
def now_when():
    """{% now_when %}: the present moment as every page writes times."""
    return when(timezone.now(), "second")
