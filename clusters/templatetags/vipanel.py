"""Template helpers: what the user's role allows, and diffs shown line by line."""

from django import template

from clusters import roles

register = template.Library()


@register.filter
def has_role(user, role):
    """{% if user|has_role:"operator" %}: buttons only for those who may press them."""
    return roles.has_role(user, role)


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
