"""The panel's pages. Reading needs the viewer role, changing and pushing the operator role,
credentials and users the admin role (clusters.roles); login itself is enforced for every page
by LoginRequiredMiddleware. Every view that changes something takes POST only and writes an
audit entry. Preview is a POST too: it connects to every node.

Pages work without JavaScript: forms post and are redirected; htmx asks the same URLs for
fragments (clusters.htmx decides which).
"""

import datetime as dt
import re

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import Group
from django.core.paginator import Paginator
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseStopPolling

from clusters import audit, drill, notify, preview, remote, roles, timeline
from clusters.forms import ClusterForm, NodeForm, SSHCredentialForm, VirtualIPForm
from clusters.htmx import UNPROCESSABLE, render_page, wants_fragment
from clusters.models import (
    AuditEntry,
    Cluster,
    ConfigPush,
    FailoverEvent,
    Node,
    NodeState,
    PushStep,
    SSHCredential,
    VipState,
    VirtualIP,
)
from clusters.push import PushRefused, resume_push, set_maintenance, start_push
from clusters.roles import ADMIN, OPERATOR, VIEWER, require_role
from clusters.templatetags.vipanel import state_class

CONFLICT = 409


# --- Lookups ------------------------------------------------------------------------------


def _cluster(pk):
    return get_object_or_404(Cluster.objects.select_related("credential"), pk=pk)


def _node(pk):
    return get_object_or_404(Node.objects.select_related("cluster", "credential"), pk=pk)


def _errors_text(errors):
    return " ".join(str(v) for v in errors.values())


# --- Dashboard ----------------------------------------------------------------------------
#
# One row per cluster, the clusters with problems first, DASHBOARD_PAGE_SIZE to a page, plus a
# header that counts every cluster. Rendering a card per cluster for all 500 clusters took half
# a second (docs/BENCHMARKS.md, section 4): a 1.5 MB page, an {% include %} per node row and
# 8,000 model instances. Now whether a cluster has a problem is decided by the database for
# every cluster (_cluster_problems), so the order, the filter and the counts cover them all,
# while only the shown page's nodes, VIPs, pushes and failovers are read, as plain values.

DASHBOARD_PAGE_SIZE = 50


def _stale_limit():
    # Three sweeps missed (and at least 30 s): the sweep is not running.
    return dt.timedelta(seconds=max(30, 3 * settings.VIPANEL_SWEEP_INTERVAL))


def vip_status(state, holder, holders):
    """(status, text) for one VIP. `state` is its VipState or a row with split_brain and
    no_holder, None if never checked; `holder` the holder's name or ""; `holders` the nodes
    whose last probe saw the address (several only in a split brain)."""
    if state is None:
        return "unknown", "not checked yet"
    if state.split_brain:
        return "split", "split brain: " + (", ".join(holders) or "several nodes")
    if state.no_holder:
        return "none", "no holder"
    if holder:
        return "ok", holder
    return "unknown", "holder unknown"


def node_problems(state, host_key_problem):
    """What is wrong with a node, in words. `state` is its NodeState or a row with the same
    fields, None if never checked. _cluster_problems asks the database the same questions."""
    if state is None:
        problems = ["not checked yet"]
    else:
        problems = []
        if not state.reachable:
            problems.append("unreachable")
        elif state.keepalived_running is False:
            # sec: a dead keepalived's address left behind is a stale address, not a split brain.
            stale = getattr(state, "holds", None) or []
            problems.append(
                f"keepalived stopped, the address {', '.join(stale)} is still on the interface"
                if stale else "keepalived stopped"
            )
        if state.vrrp_state == "FAULT":
            problems.append("FAULT")
        if state.drift:
            problems.append("config drift")
    if host_key_problem:
        problems.append("host key changed")
    return problems


class VipView:
    """One VIP as the cluster page shows it: who holds it, or what is wrong."""

    def __init__(self, vip, nodes):
        self.vip = vip
        self.state = state = vip.state if _has_state(vip) else None
        # Several holders only matter in a split brain; NodeState.holds names them.
        self.holders = [
            n.name for n in nodes if _has_state(n) and vip.address in (n.state.holds or [])
        ]
        holder = state.holder.name if state is not None and state.holder_id else ""
        self.status, self.text = vip_status(state, holder, self.holders)


def _has_state(obj):
    try:
        obj.state
    except (Node.state.RelatedObjectDoesNotExist, VirtualIP.state.RelatedObjectDoesNotExist):
        return False
    return True


class NodeHealth:
    def __init__(self, node):
        self.node = node
        self.state = node.state if _has_state(node) else None
        self.host_key_problem = bool(node.offered_host_key_fingerprint) or bool(
            self.state and self.state.host_key_problem
        )
        self.problems = node_problems(self.state, self.host_key_problem)


class Freshness:
    """When the nodes were last probed, and whether that is too long ago to trust."""

    def __init__(self, healths, now=None):
        times = [h.state.checked_at for h in healths if h.state is not None]
        self.checked_at = min(times) if times else None
        now = now or timezone.now()
        self.stale = self.checked_at is not None and now - self.checked_at > _stale_limit()


def _cluster_problems(now):
    """Annotations for Cluster, answered by the database for every cluster at once: `split`
    (a VIP in split brain), `no_holder` (a VIP nobody holds) and `trouble`: either of those, a
    node with a problem (node_problems, less "not checked yet"), a status older than the
    sweep's limit, or a failed last push."""
    of_cluster = OuterRef("pk")
    vip_states = VipState.objects.filter(vip__cluster=of_cluster)
    bad_node = (
        Q(reachable=False)
        | Q(keepalived_running=False)
        | Q(vrrp_state="FAULT")
        | Q(drift=True)
        | Q(host_key_problem=True)
        | Q(checked_at__lt=now - _stale_limit())
    )
    last_push = ConfigPush.objects.filter(cluster=of_cluster).order_by("-created", "-id")
    return {
        "split": Exists(vip_states.filter(split_brain=True)),
        "no_holder": Exists(vip_states.filter(no_holder=True)),
        "bad_node": Exists(NodeState.objects.filter(bad_node, node__cluster=of_cluster))
        | Exists(Node.objects.filter(cluster=of_cluster).exclude(offered_host_key_fingerprint="")),
        # Never pushed is "", not NULL: NULL would sort first on PostgreSQL, last on SQLite.
        "last_push_state": Coalesce(Subquery(last_push.values("state")[:1]), Value("")),
    }


def _with_problems(queryset, now):
    return queryset.annotate(**_cluster_problems(now)).annotate(
        trouble=ExpressionWrapper(
            Q(split=True)
            | Q(no_holder=True)
            | Q(bad_node=True)
            | Q(last_push_state=ConfigPush.State.FAILED),
            output_field=BooleanField(),
        )
    )


class DashboardNode:
    """A node on one line of the dashboard: its name, VRRP state and what is wrong."""

    def __init__(self, row):
        self.name = row["name"]
        self.priority = row["priority"]
        self.checked_at = row["checked_at"]
        self.reachable = row["reachable"]
        self.keepalived_running = row["keepalived_running"]
        self.vrrp_state = row["vrrp_state"]
        self.drift = row["drift"]
        self.error = row["error"] or ""
        self.holds = row["holds"] or []
        checked = self.checked_at is not None
        host_key = bool(row["offered_host_key_fingerprint"]) or bool(row["host_key_problem"])
        problems = node_problems(self if checked else None, host_key)
        self.trouble = any(p != "not checked yet" for p in problems)
        # (css class, text, title) for each badge, in the order they read.
        badges = []
        if checked and self.reachable:
            badges.append((state_class(self.vrrp_state), self.vrrp_state, "VRRP state"))
        for problem in problems:
            if problem == "not checked yet":
                badges.append(("neutral", problem, ""))
            elif problem == "unreachable":
                badges.append(("bad", problem, self.error))
            elif problem != "FAULT":  # the VRRP badge says it already
                badges.append(("bad", problem, ""))
        if checked and self.reachable:
            if self.keepalived_running is None:
                badges.append(("neutral", "keepalived ?", "could not tell if keepalived runs"))
            if self.drift is None:
                badges.append(("neutral", "config ?", "not compared with the panel's yet"))
            if not problems and self.keepalived_running and self.drift is False:
                badges.append(("good", "ok", "reachable, keepalived running, config in sync"))
        if row["maintenance"]:
            badges.append(("busy", "maintenance", "taken out of service for maintenance"))
        self.badges = badges


class DashboardVip:
    def __init__(self, row, nodes):
        self.address = row["address"]
        self.split_brain, self.no_holder = row["split_brain"], row["no_holder"]
        checked = row["checked_at"] is not None
        self.since = row["since"]
        holders = [n.name for n in nodes if self.address in n.holds]
        self.status, self.text = vip_status(self if checked else None, row["holder"], holders)


class DashboardRow:
    """One cluster on the dashboard, built from its page's rows of plain values."""

    def __init__(self, cluster, nodes, vips, last_push, failovers, now):
        self.pk = cluster["pk"]
        self.name = cluster["name"]
        self.network = cluster["network"]
        self.virtual_router_id = cluster["virtual_router_id"]
        self.trouble = cluster["trouble"]
        self.nodes = [DashboardNode(n) for n in nodes]
        self.vips = [DashboardVip(v, self.nodes) for v in vips]
        times = [n.checked_at for n in self.nodes if n.checked_at is not None]
        self.checked_at = min(times) if times else None
        self.stale = self.checked_at is not None and now - self.checked_at > _stale_limit()
        self.last_push = last_push
        self.failovers = failovers


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
            "cluster_id", "name", "priority", "maintenance", "offered_host_key_fingerprint",
            checked_at=F("state__checked_at"), reachable=F("state__reachable"),
            keepalived_running=F("state__keepalived_running"),
            vrrp_state=F("state__vrrp_state"), drift=F("state__drift"),
            error=F("state__error"), holds=F("state__holds"),
            host_key_problem=F("state__host_key_problem"),
        )
    )
    for n in nodes:
        by_cluster[n["cluster_id"]]["nodes"].append(n)
    vips = (
        VirtualIP.objects.filter(cluster_id__in=ids)
        .order_by("id")
        .values(
            "cluster_id", "address", since=F("state__since"), checked_at=F("state__checked_at"),
            split_brain=F("state__split_brain"), no_holder=F("state__no_holder"),
            holder=F("state__holder__name"),
        )
    )
    for v in vips:
        by_cluster[v["cluster_id"]]["vips"].append(v)
    pushes = _latest(
        ConfigPush.objects.filter(cluster_id__in=ids), [F("created").desc(), F("id").desc()], 1
    ).values(
        "cluster_id", "pk", "state", "kind", "created",
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
    clusters = _with_problems(Cluster.objects.all(), now)
    # Names unlike the annotations': an aggregate named like one silently replaces it.
    counts = clusters.aggregate(
        total=Count("pk"),
        with_problems=Count("pk", filter=Q(trouble=True)),
        in_split_brain=Count("pk", filter=Q(split=True)),
        without_holder=Count("pk", filter=Q(no_holder=True)),
    )
    counts["ok"] = counts["total"] - counts["with_problems"]
    only_problems = request.GET.get("problems") == "1"
    if only_problems:
        clusters = clusters.filter(trouble=True)
    # Split brain and VIPs without holder first: they are the outages.
    ordered = clusters.order_by("-trouble", "-split", "-no_holder", "name").values(
        "pk", "name", "network", "virtual_router_id", "trouble"
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
    }
    return render_page(
        request, "clusters/dashboard.html", context, fragment="clusters/_dashboard.html"
    )


# --- Clusters -----------------------------------------------------------------------------


class PanelNodeForm(NodeForm):
    """Maintenance is switched with its own button, which also pushes: not a plain field."""

    class Meta(NodeForm.Meta):
        fields = [f for f in NodeForm.Meta.fields if f != "maintenance"]
        labels = {"ssh_port": "SSH port"}


def cluster_form(request, *args, **kwargs):
    form = ClusterForm(*args, **kwargs)
    if not roles.can_admin(request.user):
        # sec: the admin-only fields (clusters/roles.py): disabled, so the stored values stay.
        for name in roles.ADMIN_ONLY_CLUSTER_FIELDS:
            form.fields[name].disabled = True
            form.fields[name].help_text = roles.ADMIN_ONLY_MESSAGES[name]
        choices = form.fields["check_type"].choices
        if form.instance.check_type != Cluster.CheckType.COMMAND:
            form.fields["check_type"].choices = [c for c in choices if c[0] != "command"]
    return form


def _cluster_context(request, cluster, **extra):
    nodes = list(cluster.nodes.select_related("state", "credential").order_by("-priority"))
    healths = [NodeHealth(n) for n in nodes]
    context = {
        "cluster": cluster,
        "nodes": healths,
        "freshness": Freshness(healths),
        "vips": [VipView(v, nodes) for v in cluster.vips.select_related("state__holder")],
        "node_form": PanelNodeForm(),
        "vip_form": VirtualIPForm(),
        "pushes": cluster.pushes.select_related("requested_by")[:5],
        "active_push": cluster.pushes.filter(state__in=ConfigPush.ACTIVE_STATES).first(),
        "failovers": cluster.failovers.all()[:5],
        "readiness": cluster.readiness_errors(),
    }
    context.update(extra)
    return context


@require_safe
@require_role(VIEWER)
def cluster_detail(request, pk):
    cluster = _cluster(pk)
    return render(request, "clusters/cluster.html", _cluster_context(request, cluster))


@require_safe
@require_role(VIEWER)
def cluster_status(request, pk):
    """The live part of a cluster page (who holds the VIPs, each node's health); polled."""
    cluster = _cluster(pk)
    nodes = list(cluster.nodes.select_related("state").order_by("-priority"))
    healths = [NodeHealth(n) for n in nodes]
    context = {
        "cluster": cluster,
        "nodes": healths,
        "freshness": Freshness(healths),
        "vips": [VipView(v, nodes) for v in cluster.vips.select_related("state__holder")],
    }
    return render_page(
        request, "clusters/cluster_status.html", context, fragment="clusters/_cluster_status.html"
    )


@require_safe
@require_role(OPERATOR)
def cluster_new(request):
    return render(request, "clusters/cluster_form.html", {"form": cluster_form(request)})


@require_POST
@require_role(OPERATOR)
def cluster_create(request):
    form = cluster_form(request, request.POST)
    if not form.is_valid():
        return render(
            request, "clusters/cluster_form.html", {"form": form}, status=UNPROCESSABLE
        )
    cluster = form.save()
    audit.record(
        request.user,
        "cluster.create",
        cluster,
        changes=audit.diff({}, audit.snapshot(cluster, ClusterForm.Meta.fields)),
        result="created",
    )
    messages.success(request, f"Cluster {cluster.name} created. Add its nodes and VIPs.")
    return redirect("clusters:cluster", cluster.pk)


@require_safe
@require_role(OPERATOR)
def cluster_edit(request, pk):
    cluster = _cluster(pk)
    form = cluster_form(request, instance=cluster)
    return render(request, "clusters/cluster_form.html", {"form": form, "cluster": cluster})


@require_POST
@require_role(OPERATOR)
def cluster_update(request, pk):
    cluster = _cluster(pk)
    before = audit.snapshot(cluster, ClusterForm.Meta.fields)
    form = cluster_form(request, request.POST, instance=cluster)
    if not form.is_valid():
        return render(
            request,
            "clusters/cluster_form.html",
            {"form": form, "cluster": Cluster.objects.get(pk=pk)},
            status=UNPROCESSABLE,
        )
    cluster = form.save()
    changes = audit.diff(before, audit.snapshot(cluster, ClusterForm.Meta.fields))
    audit.record(request.user, "cluster.update", cluster, changes=changes,
                 result="saved" if changes else "no change")
    messages.success(request, f"Settings of {cluster.name} saved. Push to apply them.")
    return redirect("clusters:cluster", cluster.pk)


# --- Nodes --------------------------------------------------------------------------------


def _nodes_section(request, cluster, form=None, status=200, flash=""):
    """The nodes table with its add form: a fragment for htmx, else the whole cluster page."""
    context = _cluster_context(request, cluster, flash=flash)
    if form is not None:
        context["node_form"] = form
    return render_page(
        request, "clusters/cluster.html", context, fragment="clusters/_nodes.html", status=status
    )


@require_POST
@require_role(OPERATOR)
def node_add(request, pk):
    cluster = _cluster(pk)
    form = PanelNodeForm(request.POST, instance=Node(cluster=cluster))
    if not form.is_valid():
        return _nodes_section(request, cluster, form, status=UNPROCESSABLE)
    node = form.save()
    audit.record(
        request.user,
        "node.create",
        node,
        cluster=cluster,
        changes=audit.diff({}, audit.snapshot(node, PanelNodeForm.Meta.fields)),
        result="created",
    )
    text = f"Node {node.name} added. Push to send it its config."
    if wants_fragment(request):
        return _nodes_section(request, cluster, flash=text)
    messages.success(request, text)
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#nodes")


@require_safe
@require_role(OPERATOR)
def node_edit(request, pk):
    node = _node(pk)
    return render(
        request, "clusters/node_form.html", {"form": PanelNodeForm(instance=node), "node": node}
    )


@require_POST
@require_role(OPERATOR)
def node_update(request, pk):
    node = _node(pk)
    before = audit.snapshot(node, PanelNodeForm.Meta.fields)
    form = PanelNodeForm(request.POST, instance=node)
    if not form.is_valid():
        return render(
            request,
            "clusters/node_form.html",
            {"form": form, "node": _node(pk)},
            status=UNPROCESSABLE,
        )
    node = form.save()
    changes = audit.diff(before, audit.snapshot(node, PanelNodeForm.Meta.fields))
    audit.record(request.user, "node.update", node, cluster=node.cluster, changes=changes,
                 result="saved" if changes else "no change")
    messages.success(request, f"Node {node.name} saved. Push to apply it.")
    return redirect(reverse("clusters:cluster", args=[node.cluster_id]) + "#nodes")


@require_POST
@require_role(OPERATOR)
def node_delete(request, pk):
    node = _node(pk)
    cluster = node.cluster
    before = audit.snapshot(node, PanelNodeForm.Meta.fields)
    name = node.name
    node.delete()
    audit.record(request.user, "node.delete", node, cluster=cluster,
                 changes=audit.diff(before, {}), result="deleted")
    text = (f"Node {name} deleted from vipanel. keepalived on that host keeps running until "
            "you stop it; push so the other nodes stop expecting it.")
    if wants_fragment(request):
        return _nodes_section(request, cluster, flash=text)
    messages.success(request, text)
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#nodes")


@require_POST
@require_role(OPERATOR)
def node_maintenance(request, pk):
    """Put a node in maintenance (a push gives it the lowest priority, so the VIPs move off it
    by election) or take it out (a normal push gives its priority back). clusters.push does
    both and audits them; if the push cannot start, nothing changes."""
    node = _node(pk)
    wanted = request.POST.get("maintenance")
    if wanted not in ("on", "off"):
        return HttpResponse("maintenance must be 'on' or 'off'", status=400)
    on = wanted == "on"
    try:
        push = set_maintenance(node, on, request.user)
    except PushRefused as e:
        audit.record(request.user, "maintenance on" if on else "maintenance off", node,
                     cluster=node.cluster, result=f"refused: {_errors_text(e.errors)}")
        return _push_refused(request, node.cluster, e)
    messages.success(
        request,
        f"{node.name} is going into maintenance: push #{push.pk} lowers its priority so the "
        "VIPs move off it." if on else
        f"{node.name} is leaving maintenance: push #{push.pk} gives it its priority again.",
    )
    return redirect("clusters:push", push.pk)


# --- sec: a stale address (keepalived stopped, the VIP still up): clusters/services/stale.py ---


@require_POST
@require_role(OPERATOR)
def node_remove_stale(request, pk, vip_pk):
    from django.core.exceptions import ValidationError

    from clusters.services.stale import remove_stale_address

    node = _node(pk)
    vip = get_object_or_404(VirtualIP, pk=vip_pk, cluster_id=node.cluster_id)
    try:
        outcome = remove_stale_address(request.user, node, vip)
    except ValidationError as e:
        outcome = f"refused: {_errors_text(e.message_dict)}"
    messages.info(request, f"Stale address: {outcome}.")
    return redirect("clusters:cluster", node.cluster_id)


@require_safe
@require_role(OPERATOR)
def node_host_key(request, pk):
    """Both fingerprints side by side, before anyone trusts the new one."""
    node = _node(pk)
    return render(request, "clusters/host_key.html", {"node": node})


@require_POST
@require_role(OPERATOR)
def node_repin(request, pk):
    node = _node(pk)
    offered = node.offered_host_key_fingerprint
    confirmed = request.POST.get("fingerprint", "")
    if not offered or confirmed != offered:
        # The node offered yet another key since the page was shown (or none any more).
        messages.error(
            request,
            "The key the node offers is not the one you confirmed (it changed, or the problem "
            "is gone). Compare the fingerprints again.",
        )
        return render(request, "clusters/host_key.html", {"node": node}, status=CONFLICT)
    old = node.host_key_fingerprint
    remote.repin(node, offered)
    audit.record(request.user, "node.repin", node, cluster=node.cluster,
                 changes={"host_key_fingerprint": [old, offered]}, result="re-pinned")
    messages.success(request, f"{node.name}: host key {offered} is now trusted.")
    return redirect("clusters:cluster", node.cluster_id)


# --- VIPs ---------------------------------------------------------------------------------


def _vips_section(request, cluster, form=None, status=200, flash=""):
    context = _cluster_context(request, cluster, flash_vips=flash)
    if form is not None:
        context["vip_form"] = form
    return render_page(
        request, "clusters/cluster.html", context, fragment="clusters/_vips.html", status=status
    )


@require_POST
@require_role(OPERATOR)
def vip_add(request, pk):
    cluster = _cluster(pk)
    form = VirtualIPForm(request.POST, instance=VirtualIP(cluster=cluster))
    if not form.is_valid():
        return _vips_section(request, cluster, form, status=UNPROCESSABLE)
    vip = form.save()
    audit.record(request.user, "vip.create", vip, cluster=cluster,
                 changes=audit.diff({}, audit.snapshot(vip, VirtualIPForm.Meta.fields)),
                 result="created")
    text = f"VIP {vip.address} added. Push to put it on the nodes."
    if wants_fragment(request):
        return _vips_section(request, cluster, flash=text)
    messages.success(request, text)
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#vips")


@require_POST
@require_role(OPERATOR)
def vip_delete(request, pk):
    vip = get_object_or_404(VirtualIP.objects.select_related("cluster"), pk=pk)
    cluster = vip.cluster
    before = audit.snapshot(vip, VirtualIPForm.Meta.fields)
    vip.delete()
    audit.record(request.user, "vip.delete", vip, cluster=cluster,
                 changes=audit.diff(before, {}), result="deleted")
    text = f"VIP {vip.address} removed. Push to take it off the nodes."
    if wants_fragment(request):
        return _vips_section(request, cluster, flash=text)
    messages.success(request, text)
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#vips")


# --- Preview and push ---------------------------------------------------------------------


@require_POST
@require_role(OPERATOR)
def push_preview(request, pk):
    """What a push would change on each node (read over SSH; secrets masked)."""
    cluster = _cluster(pk)
    previews = preview.preview_cluster(cluster)
    context = {
        "cluster": cluster,
        "previews": previews,
        "changed": sum(1 for p in previews if p.changed),
        "readiness": cluster.readiness_errors(),
    }
    return render_page(request, "clusters/preview.html", context, fragment="clusters/_preview.html")


def _push_refused(request, cluster, error):
    status = CONFLICT if error.active is not None else UNPROCESSABLE
    context = _cluster_context(
        request, cluster, push_errors=error.errors, refused_by=error.active
    )
    return render(request, "clusters/cluster.html", context, status=status)


@require_POST
@require_role(OPERATOR)
def push_start(request, pk):
    cluster = _cluster(pk)
    try:
        push = start_push(cluster, request.user)
    except PushRefused as e:
        audit.record(request.user, "push.start", cluster,
                     result=f"refused: {_errors_text(e.errors)}")
        return _push_refused(request, cluster, e)
    audit.record(request.user, "push.start", cluster, changes={"push": [None, push.pk]},
                 result=f"push #{push.pk} queued")
    return redirect("clusters:push", push.pk)


def _push_context(push):
    steps = list(push.steps.select_related("node").order_by("position"))
    done_count = sum(1 for s in steps if s.is_done)
    failed = [s for s in steps if s.state == PushStep.State.FAILED]
    return {
        "push": push,
        "cluster": push.cluster,
        "steps": steps,
        "total": len(steps),
        "done_count": done_count,
        "percent": round(100 * done_count / len(steps)) if steps else 100,
        "failed": failed,
    }


@require_safe
@require_role(VIEWER)
def push_detail(request, pk):
    """A push as it runs; htmx polls this URL and is told to stop (286) once it has ended."""
    push = get_object_or_404(
        ConfigPush.objects.select_related("cluster", "requested_by"), pk=pk
    )
    context = _push_context(push)
    if wants_fragment(request) and not push.is_active:
        return HttpResponseStopPolling(
            render(request, "clusters/_push_live.html", context).content
        )
    return render_page(request, "clusters/push.html", context, fragment="clusters/_push_live.html")


@require_POST
@require_role(OPERATOR)
def push_resume(request, pk):
    push = get_object_or_404(ConfigPush.objects.select_related("cluster"), pk=pk)
    try:
        push = resume_push(push)
    except PushRefused as e:
        audit.record(request.user, "push.resume", push.cluster, changes={"push": [None, push.pk]},
                     result=f"refused: {_errors_text(e.errors)}")
        push.refresh_from_db()
        context = _push_context(push)
        context.update(push_errors=e.errors, refused_by=e.active)
        return render(request, "clusters/push.html", context, status=CONFLICT)
    audit.record(request.user, "push.resume", push.cluster, changes={"push": [None, push.pk]},
                 result=f"push #{push.pk} queued again")
    return redirect("clusters:push", push.pk)


@require_POST
@require_role(OPERATOR)
def cluster_drill(request, pk):
    """Stop keepalived on the holder on purpose and check the VIPs move (clusters.drill, which
    runs it in a worker, audits it and records the outcome in the failover history)."""
    cluster = _cluster(pk)
    try:
        drill.start_drill(cluster, request.user)
    except drill.DrillRefused as e:
        audit.record(request.user, "drill started", cluster, result=f"refused: {e}")
        context = _cluster_context(request, cluster, push_errors={"__all__": str(e)},
                                   refused_title="The drill did not start")
        return render(request, "clusters/cluster.html", context, status=CONFLICT)
    messages.success(
        request,
        f"Failover drill started on {cluster.name}: keepalived stops on the holder and the "
        "panel checks the VIPs move. The outcome appears under Recent failovers.",
    )
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#failovers")


# --- Failover history ---------------------------------------------------------------------

RANGES = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(days=1), "7d": dt.timedelta(days=7),
          "30d": dt.timedelta(days=30)}
DATE_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%d"]
DATE_ERROR = "Enter a date and time like 2025-01-31 or 2025-01-31T14:30."
MAX_SPAN = dt.timedelta(days=366)
HISTORY_ROWS = 500


class HistoryFilter(forms.Form):
    vip = forms.ChoiceField(label="VIP", required=False)
    since = forms.DateTimeField(
        label="From", required=False, input_formats=DATE_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": DATE_ERROR},
    )
    until = forms.DateTimeField(
        label="To", required=False, input_formats=DATE_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": DATE_ERROR},
        help_text="Empty: now.",
    )
    last = forms.ChoiceField(
        label="Or the last", required=False,
        choices=[("", "—")] + [(k, k) for k in RANGES],
        help_text="Used when From is empty (default 24h).",
    )

    def __init__(self, *args, vips=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["vip"].choices = [("", "all VIPs")] + [(v, v) for v in vips]

    def clean(self):
        data = super().clean()
        now = timezone.now()
        until = data.get("until") or now
        since = data.get("since") or until - RANGES.get(data.get("last") or "24h")
        if "since" in self.errors or "until" in self.errors:
            return data
        if since >= until:
            raise forms.ValidationError("'From' must be before 'To'.")
        if until - since > MAX_SPAN:
            raise forms.ValidationError("Pick a range of at most a year.")
        data["window"] = (since, min(until, now) if since < now else until)
        return data


@require_safe
@require_role(VIEWER)
def cluster_history(request, pk):
    cluster = _cluster(pk)
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
        shown, in_window, since, until, current=current, following=following, born=born,
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


# --- Audit log ----------------------------------------------------------------------------


class AuditFilter(forms.Form):
    cluster = forms.ModelChoiceField(
        Cluster.objects.all(), required=False, empty_label="all clusters",
        error_messages={"invalid_choice": "There is no such cluster; pick one from the list."},
    )


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


# --- Credentials (admin) ------------------------------------------------------------------


@require_safe
@require_role(ADMIN)
def credential_list(request):
    credentials = SSHCredential.objects.annotate(
        cluster_count=Count("clusters", distinct=True), node_count=Count("nodes", distinct=True)
    )
    return render(request, "clusters/credentials.html", {"credentials": credentials})


@require_safe
@require_role(ADMIN)
def credential_new(request):
    return render(request, "clusters/credential_form.html", {"form": SSHCredentialForm()})


@require_POST
@require_role(ADMIN)
def credential_create(request):
    form = SSHCredentialForm(request.POST)
    if not form.is_valid():
        return render(request, "clusters/credential_form.html", {"form": form},
                      status=UNPROCESSABLE)
    credential = form.save()
    audit.record(request.user, "credential.create", credential,
                 changes=audit.diff({}, audit.snapshot(credential, SSHCredentialForm.Meta.fields)),
                 result="created")
    messages.success(request, f"Credential {credential.name} saved.")
    return redirect("clusters:credentials")


@require_safe
@require_role(ADMIN)
def credential_edit(request, pk):
    credential = get_object_or_404(SSHCredential, pk=pk)
    return render(request, "clusters/credential_form.html",
                  {"form": SSHCredentialForm(instance=credential), "credential": credential})


@require_POST
@require_role(ADMIN)
def credential_update(request, pk):
    credential = get_object_or_404(SSHCredential, pk=pk)
    before = audit.snapshot(credential, SSHCredentialForm.Meta.fields)
    form = SSHCredentialForm(request.POST, instance=credential)
    if not form.is_valid():
        return render(request, "clusters/credential_form.html",
                      {"form": form, "credential": SSHCredential.objects.get(pk=pk)},
                      status=UNPROCESSABLE)
    credential = form.save()
    changes = audit.diff(before, audit.snapshot(credential, SSHCredentialForm.Meta.fields))
    audit.record(request.user, "credential.update", credential, changes=changes,
                 result="saved" if changes else "no change")
    messages.success(request, f"Credential {credential.name} saved.")
    return redirect("clusters:credentials")


# --- Users and their roles (admin) --------------------------------------------------------

NO_ROLE = ""
ROLE_CHOICES = [(roles.VIEWER, "viewer: reads"), (roles.OPERATOR, "operator: edits and pushes"),
                (roles.ADMIN, "admin: also credentials and users"), (NO_ROLE, "no role: no access")]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES, required=False)


class NewUserForm(UserCreationForm):
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=roles.VIEWER, required=False)


def _set_role(user, role):
    if role:
        roles.assign(user, role)
    else:
        user.groups.remove(*Group.objects.filter(name__in=roles.ROLES))
        user.__dict__.pop("_vipanel_role", None)


@require_safe
@require_role(ADMIN)
def user_list(request):
    users = list(get_user_model().objects.prefetch_related("groups").order_by("username"))
    for user in users:
        names = {g.name for g in user.groups.all()}
        user.role = next((r for r in reversed(roles.ROLES) if r in names), NO_ROLE)
        user.role_form = RoleForm(initial={"role": user.role}, auto_id=f"id_%s_{user.pk}")
    return render(request, "clusters/users.html", {"users": users})


@require_safe
@require_role(ADMIN)
def user_new(request):
    return render(request, "clusters/user_form.html", {"form": NewUserForm()})


@require_POST
@require_role(ADMIN)
def user_create(request):
    form = NewUserForm(request.POST)
    if not form.is_valid():
        return render(request, "clusters/user_form.html", {"form": form}, status=UNPROCESSABLE)
    user = form.save()
    _set_role(user, form.cleaned_data["role"])
    # The password never enters the log, not even masked.
    audit.record(request.user, "user.create", user, object_type="user",
                 changes={"role": [None, form.cleaned_data["role"] or "none"]}, result="created")
    messages.success(request, f"User {user.get_username()} created.")
    return redirect("clusters:users")


@require_POST
@require_role(ADMIN)
def user_role(request, pk):
    user = get_object_or_404(get_user_model(), pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick one of the roles offered.")
        return redirect("clusters:users")
    if user.is_superuser:
        messages.error(request, f"{user.get_username()} is a superuser: always an admin.")
        return redirect("clusters:users")
    new = form.cleaned_data["role"]
    if user == request.user and new != roles.ADMIN:
        # Nobody locks themselves out of the page that gives roles back.
        messages.error(request, "You cannot take the admin role from yourself; ask another "
                       "admin.")
        return redirect("clusters:users")
    old = roles.role_of(user) or "none"
    _set_role(user, new)
    audit.record(request.user, "user.role", user, object_type="user",
                 changes={"role": [old, new or "none"]}, result="saved")
    messages.success(request, f"{user.get_username()} is now {new or 'without a role'}.")
    return redirect("clusters:users")


# --- keepalived's notify reports ----------------------------------------------------------


# keepalived's notify script on a node has no session and no CSRF token: it proves itself with
# its node's signing key instead (clusters/notify.py, which does all of the work).
@csrf_exempt
@login_not_required
@require_POST
def notify_report(request, cluster_id):
    return notify.receive(cluster_id, request.POST)
