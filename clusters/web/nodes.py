"""Node pages: the node's own page (its files, state, key, events, "test SSH now"), add,
edit, delete, maintenance, and the host key a person trusts. Changes go through
clusters.services (nodes, maintenance, hostkeys)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST, require_safe

from clusters import health
from clusters.models import FailoverEvent, Node, VirtualIP
from clusters.roles import OPERATOR, SECRETS_READER, VIEWER, require_role
from clusters.services import hostkeys, maintenance, pushes, stale
from clusters.services import nodes as services
from clusters.services.errors import Refused, Unconfirmed, Unreachable
from clusters.web import confirm
from clusters.web.clusters import changed, cluster_context
from clusters.web.common import (
    CONFLICT,
    form_data,
    get_cluster,
    get_node,
    save_through,
    ssh_messages,
)
from clusters.web.forms import PanelNodeForm
from clusters.web.htmx import UNPROCESSABLE, render_page, wants_fragment
from clusters.web.presenters import NodeHealth
from clusters.web.pushes import push_refused

RECENT_EVENTS = 20


def _nodes_section(request, cluster, form=None, status=200, flash=""):
    """The nodes table with its add form: a fragment for htmx, else the whole cluster page."""
    context = cluster_context(request, cluster, flash=flash)
    if form is not None:
        context["node_form"] = form
    response = render_page(
        request, "clusters/cluster.html", context, fragment="clusters/_nodes.html", status=status
    )
    # A change was made (the flash says which): the page's live parts follow at once.
    return changed(response) if flash else response


@require_POST
@require_role(OPERATOR)
def node_add(request, pk):
    cluster = get_cluster(pk)
    form = PanelNodeForm(request.POST, instance=Node(cluster=cluster))
    node = None
    if form.is_valid():
        node = save_through(
            form,
            services.create_node,
            request.user,
            cluster,
            form_data(form, PanelNodeForm.Meta.fields),
        )
    if node is None:
        return _nodes_section(request, cluster, form, status=UNPROCESSABLE)
    # Said at once rather than at the first preview: can vipanel get in, and which key to trust.
    (check,) = services.check_ssh(request.user, [node])
    text = f"Node {node.name} added. Push to send it its config."
    if wants_fragment(request):
        context = cluster_context(request, cluster, flash=text, ssh_checks=[check])
        return changed(
            render_page(request, "clusters/cluster.html", context, fragment="clusters/_nodes.html")
        )
    messages.success(request, text)
    ssh_messages(request, [check])
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#nodes")


@require_safe
@require_role(OPERATOR)
def node_edit(request, pk):
    node = get_node(pk)
    return render(
        request, "clusters/node_form.html", {"form": PanelNodeForm(instance=node), "node": node}
    )


@require_POST
@require_role(OPERATOR)
def node_update(request, pk):
    node = get_node(pk)
    form = PanelNodeForm(request.POST, instance=node)
    saved = None
    if form.is_valid():
        saved = save_through(
            form,
            services.update_node,
            request.user,
            node,
            form_data(form, PanelNodeForm.Meta.fields),
        )
    if saved is None:
        return render(
            request,
            "clusters/node_form.html",
            {"form": form, "node": get_node(pk)},
            status=UNPROCESSABLE,
        )
    messages.success(request, f"Node {saved.name} saved. Push to apply it.")
    return redirect(reverse("clusters:cluster", args=[saved.cluster_id]) + "#nodes")


@require_POST
@require_role(OPERATOR)
def node_delete(request, pk):
    node = get_node(pk)
    cluster, name = node.cluster, node.name
    try:
        services.delete_node(request.user, node, confirm=request.POST.get("confirm"))
    except Unconfirmed:
        return confirm.delete_confirmation(
            request,
            cluster,
            services.delete_preview(request.user, node),
            what=f"node {name}",
            action=reverse("clusters:node-delete", args=[node.pk]),
            hx_target="#nodes",
        )
    text = (
        f"Node {name} deleted from vipanel. keepalived on that host keeps running until "
        "you stop it; push so the other nodes stop expecting it."
    )
    if wants_fragment(request):
        return _nodes_section(request, cluster, flash=text)
    messages.success(request, text)
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#nodes")


def _maintenance_confirmation(request, node, on, skip, error="", status=200):
    cluster = node.cluster
    result = maintenance.preview(request.user, node, on, skip=skip)
    label = (
        f"Put {node.name} of {cluster.name} into maintenance"
        if on
        else f"Take {node.name} of {cluster.name} out of maintenance"
    )
    if skip:
        label += f", skipping {', '.join(skip)}"
    flag = [("maintenance", "on" if on else "off")]
    url = reverse("clusters:node-maintenance", args=[node.pk])
    return confirm.answer(
        request,
        confirm.Confirmation(
            title=f"{maintenance.what(node, on)}?",
            cluster=cluster,
            impact=result.impact.as_dict(),
            action=url,
            label=label,
            fields=flag + [("skip", name) for name in skip],
            blocked=result.blocked,
            skippable=[] if result.skip_problem else result.unreachable,
            skip_action=url,
            skip_fields=flag,
            cancel=reverse("clusters:cluster", args=[cluster.pk]),
            error=error,
        ),
        preview=result,
        status=status,
    )


@require_POST
@require_role(OPERATOR)
def node_maintenance(request, pk):
    """Put a node in maintenance (a push gives it the lowest priority, so the VIPs move off it
    by election) or take it out (a normal push gives its priority back). The service does
    both and audits them; if the push cannot start, nothing changes. Asked first, with what
    the push will do."""
    node = get_node(pk)
    wanted = request.POST.get("maintenance")
    if wanted not in ("on", "off"):
        return HttpResponse("maintenance must be 'on' or 'off'", status=400)
    on = wanted == "on"
    skip = confirm.skip_names(request)
    try:
        push = maintenance.set_maintenance(
            request.user, node, on, confirm=request.POST.get("confirm"), skip=skip
        )
    except Unconfirmed:
        return _maintenance_confirmation(request, node, on, skip)
    except Unreachable as e:
        node.refresh_from_db()
        return _maintenance_confirmation(request, node, on, skip, error=e.text, status=CONFLICT)
    except Refused as e:
        return push_refused(request, node.cluster, e)
    messages.success(
        request,
        f"{node.name} is going into maintenance: push #{push.pk} lowers its priority so the "
        "VIPs move off it."
        if on
        else f"{node.name} is leaving maintenance: push #{push.pk} gives it its priority again.",
    )
    return redirect("clusters:push", push.pk)


@require_safe
@require_role(OPERATOR)
def node_drift(request, pk):
    """A node's config as edited on the node, against what vipanel last pushed there (the
    sweep kept the file when it drifted, so this reads no node)."""
    node = get_node(pk)
    context = {
        "node": node,
        "cluster": node.cluster,
        "drift": pushes.drift(request.user, node),
        "drift_definition": health.DRIFT_DEFINITION,
    }
    return render(request, "clusters/node_drift.html", context)


@require_safe
@require_role(OPERATOR)
def node_host_key(request, pk):
    """The offered fingerprint (beside the pinned one, if any) before anyone trusts it."""
    node = get_node(pk)
    return render(request, "clusters/host_key.html", {"node": node})


@require_POST
@require_role(OPERATOR)
def node_repin(request, pk):
    """Trust the key the node offers: a first trust, or a re-pin after a change."""
    node = get_node(pk)
    first = not node.host_key_fingerprint
    try:
        node = hostkeys.trust_host_key(request.user, node, request.POST.get("fingerprint", ""))
    except Refused as e:
        # The node offered yet another key since the page was shown (or none any more).
        messages.error(request, e.text)
        return render(request, "clusters/host_key.html", {"node": node}, status=CONFLICT)
    verb = "trusted" if first else "now trusted"
    messages.success(request, f"{node.name}: host key {node.host_key_fingerprint} is {verb}.")
    # Back to the node's page when the key was trusted there; any other place is the cluster.
    if request.POST.get("next") == reverse("clusters:node", args=[node.pk]):
        return redirect("clusters:node", node.pk)
    return redirect("clusters:cluster", node.cluster_id)


@require_POST
@require_role(OPERATOR)
def node_remove_stale(request, pk, vip_pk):
    """Remove a VIP a dead keepalived left on this node (clusters.services.stale)."""
    node = get_node(pk)
    vip = get_object_or_404(VirtualIP, pk=vip_pk, cluster_id=node.cluster_id)
    try:
        outcome = stale.remove_stale_address(request.user, node, vip)
    except ValidationError as e:
        outcome = "refused: " + " ".join(m for ms in e.message_dict.values() for m in ms)
    messages.info(request, f"Stale address: {outcome}.")
    return redirect("clusters:cluster", node.cluster_id)


# --- The node's own page ---------------------------------------------------------------------


def events_naming(node):
    """The cluster's failover events that name this node: moves from or to it, and split
    brains whose holders include it (to_node lists them, comma-separated)."""
    name = node.name
    return FailoverEvent.objects.filter(cluster_id=node.cluster_id).filter(
        Q(from_node=name)
        | Q(to_node=name)
        | Q(to_node__startswith=f"{name}, ")
        | Q(to_node__endswith=f", {name}")
        | Q(to_node__contains=f", {name}, ")
    )


def node_context(request, node, **extra):
    context = {
        "node": node,
        "cluster": node.cluster,
        "h": NodeHealth(node),
        "config": services.keepalived_file(request.user, node),
        "rules": services.iptables_files(request.user, node),
        "events": events_naming(node)[:RECENT_EVENTS],
        "priorities": [
            (inst.name, inst.priorities.get(node.pk)) for inst in node.cluster.vrrp_instances()
        ],
        # The health cells say what "pending push" and "drift" mean; the preview they link to
        # is a page of its own here (this page has no preview card).
        "pending_definition": health.PENDING_DEFINITION,
        "drift_definition": health.DRIFT_DEFINITION,
        "diff_as_page": True,
    }
    context.update(extra)
    return context


@require_safe
@require_role(VIEWER)
def node_detail(request, pk):
    node = get_node(pk)
    return render(request, "clusters/node.html", node_context(request, node))


def _download(node_file):
    """A rendered file as a download (never shown inline: it is a file to keep or compare)."""
    if node_file.error:
        # The cluster is not ready to render (no VIP yet, ...): say why, as a push would.
        return HttpResponse(
            f"{node_file.error}\n", status=409, content_type="text/plain; charset=utf-8"
        )
    response = HttpResponse(node_file.text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, node_file.filename)
    return response


@require_safe
@require_role(VIEWER)
def node_config_download(request, pk):
    """keepalived.conf as a push sends it, auth_pass masked (for every role)."""
    return _download(services.keepalived_file(request.user, get_node(pk)))


@require_POST
@require_role(SECRETS_READER)
def node_config_secret_download(request, pk):
    """The same file with its secrets, for an admin who must place it by hand. A POST (with
    CSRF): a link could be followed or prefetched without anyone meaning to read a secret, and
    the service writes an audit entry."""
    response = _download(services.keepalived_file(request.user, get_node(pk), with_secrets=True))
    add_never_cache_headers(response)
    return response


@require_safe
@require_role(VIEWER)
def node_iptables_download(request, pk, family):
    node = get_node(pk)
    files = services.iptables_files(request.user, node)
    if len(files) == 1 and files[0].family is None:
        return _download(files[0])  # the cluster cannot be rendered yet: say why
    found = next((f for f in files if f.family == family), None)
    if found is None:
        raise Http404(f"{node.name} has no IPv{family} VRRP instance.")
    return _download(found)


@require_POST
@require_role(OPERATOR)
def node_live_diff(request, pk):
    """The live keepalived.conf against what a push would send (read over SSH, bounded, never
    pinning a key; secrets masked), as the cluster's preview shows it."""
    node = get_node(pk)
    diff = pushes.preview_node(request.user, node)
    node.refresh_from_db()  # the preview may have recorded a key the node offers
    return render_page(
        request,
        "clusters/node.html",
        node_context(request, node, live=diff),
        fragment="clusters/_node_diff.html",
    )


@require_POST
@require_role(OPERATOR)
def node_test_ssh(request, pk):
    """Connect with the pinned key, run a harmless probe, say what was found."""
    node = get_node(pk)
    (check,) = services.check_ssh(request.user, [node])
    node = get_node(pk)  # the key the node offers, when it was recorded just now
    return render_page(
        request,
        "clusters/node.html",
        node_context(request, node, ssh_checks=[check]),
        fragment="clusters/_ssh_check.html",
    )
