"""Node pages: add, edit, delete, maintenance, and the host key a person trusts.
Changes go through clusters.services (nodes, maintenance, hostkeys)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from clusters import health
from clusters.models import Node, VirtualIP
from clusters.roles import OPERATOR, require_role
from clusters.services import hostkeys, maintenance, pushes, stale
from clusters.services import nodes as services
from clusters.services.errors import Refused
from clusters.web.clusters import changed, cluster_context
from clusters.web.common import CONFLICT, form_data, get_cluster, get_node, save_through
from clusters.web.forms import PanelNodeForm
from clusters.web.htmx import UNPROCESSABLE, render_page, wants_fragment
from clusters.web.pushes import push_refused


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
    text = f"Node {node.name} added. Push to send it its config."
    if wants_fragment(request):
        return _nodes_section(request, cluster, flash=text)
    messages.success(request, text)
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
    services.delete_node(request.user, node)
    text = (
        f"Node {name} deleted from vipanel. keepalived on that host keeps running until "
        "you stop it; push so the other nodes stop expecting it."
    )
    if wants_fragment(request):
        return _nodes_section(request, cluster, flash=text)
    messages.success(request, text)
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#nodes")


@require_POST
@require_role(OPERATOR)
def node_maintenance(request, pk):
    """Put a node in maintenance (a push gives it the lowest priority, so the VIPs move off it
    by election) or take it out (a normal push gives its priority back). The service does
    both and audits them; if the push cannot start, nothing changes."""
    node = get_node(pk)
    wanted = request.POST.get("maintenance")
    if wanted not in ("on", "off"):
        return HttpResponse("maintenance must be 'on' or 'off'", status=400)
    on = wanted == "on"
    try:
        push = maintenance.set_maintenance(request.user, node, on)
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
