"""The audit log page."""

import re

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_safe

from clusters.models import AuditEntry, ConfigPush
from clusters.roles import VIEWER, require_role
from clusters.web.forms import AuditFilter

_PUSH_IN_RESULT = re.compile(r"\bpush #(\d+)\b")


def _push_id_of(entry):
    """The push an entry started, from its changes ({"push": [None, id]}) or its result."""
    push = entry.changes.get("push") if isinstance(entry.changes, dict) else None
    if isinstance(push, list) and len(push) == 2 and isinstance(push[1], int):
        return push[1]
    match = _PUSH_IN_RESULT.search(entry.result or "")
    return int(match.group(1)) if match and not entry.result.startswith("refused") else None


@require_safe
@require_role(VIEWER)
def audit_log(request):
    form = AuditFilter(request.GET or None)
    entries = AuditEntry.objects.select_related("cluster")
    status = 200
    if request.GET and not form.is_valid():
        entries, status = entries.none(), 400
    elif request.GET and form.cleaned_data["cluster"]:
        entries = entries.filter(cluster=form.cleaned_data["cluster"])
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    # What became of each push since it was queued, in one query.
    for entry in page:
        entry.push_id = _push_id_of(entry)
    push_ids = {e.push_id for e in page if e.push_id}
    push_states = dict(ConfigPush.objects.filter(pk__in=push_ids).values_list("pk", "state"))
    for entry in page:
        entry.push_state = push_states.get(entry.push_id)
        entry.change_rows = [
            (name, values[0], values[1])
            for name, values in (entry.changes or {}).items()
            if name != "push" and isinstance(values, list) and len(values) == 2
        ]
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "clusters/audit.html", context, status=status)
