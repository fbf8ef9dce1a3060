"""Cluster pages: the cluster page and its live status, creating and editing a cluster.
Changes go through clusters.services.clusters."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from clusters import health
from clusters.forms import ActiveActiveForm, SyncGroupForm, VirtualIPForm, VrrpInstanceForm
from clusters.models import Cluster, ConfigPush, VirtualIP, VrrpInstance
from clusters.roles import OPERATOR, VIEWER, require_role
from clusters.services import clusters as services
from clusters.web.common import form_data, get_cluster, save_through
from clusters.web.forms import PanelNodeForm, cluster_form
from clusters.web.htmx import UNPROCESSABLE, render_page
from clusters.web.presenters import Freshness, NodeHealth, VipView, instance_views


def live_context(cluster):
    """Everything the cluster page shows of state, read once: for the whole page and for each
    poll of it (clusters/_cluster_live.html), so no part can lag behind another."""
    nodes = list(cluster.nodes.select_related("state", "credential").order_by("-priority", "name"))
    healths = [NodeHealth(n) for n in nodes]
    vips = [VipView(v, nodes) for v in cluster.vips.select_related("state__holder", "instance")]
    return {
        "cluster": cluster,
        "nodes": healths,
        "freshness": Freshness(healths),
        "vips": vips,
        "instances": instance_views(cluster, nodes, vips),
        "pushes": cluster.pushes.select_related("requested_by")[:5],
        "active_push": cluster.pushes.filter(state__in=ConfigPush.ACTIVE_STATES).first(),
        "failovers": cluster.failovers.all()[:5],
        "readiness": cluster.readiness_errors(),
        "pending_nodes": [h.node.name for h in healths if h.pending],
        "pending_vips": [v.vip.address for v in vips if v.pending],
        "pending_definition": health.PENDING_DEFINITION,
        "drift_definition": health.DRIFT_DEFINITION,
    }


def cluster_context(request, cluster, **extra):
    context = live_context(cluster)
    context.update(
        {
            "instance_form": VrrpInstanceForm(instance=VrrpInstance(cluster=cluster)),
            "active_active_form": ActiveActiveForm(),
            "sync_group_form": SyncGroupForm(cluster=cluster),
            "sync_groups": cluster.sync_groups.prefetch_related("instances"),
            "node_form": PanelNodeForm(),
            "vip_form": VirtualIPForm(instance=VirtualIP(cluster=cluster)),
        }
    )
    context.update(extra)
    return context


def changed(response):
    """Tell the page that something of the cluster changed: its live parts refresh at once
    (the poll listens for cluster-changed), not at the next tick."""
    response["HX-Trigger"] = "cluster-changed"
    return response


@require_safe
@require_role(VIEWER)
def cluster_detail(request, pk):
    cluster = get_cluster(pk)
    return render(request, "clusters/cluster.html", cluster_context(request, cluster))


@require_safe
@require_role(VIEWER)
def cluster_status(request, pk):
    """The live parts of a cluster page, polled: the status, and out of band the push card's
    state, incidents, nodes, instances' holders, failovers and availability. Without
    JavaScript, a page of the status alone."""
    cluster = get_cluster(pk)
    return render_page(
        request,
        "clusters/cluster_status.html",
        live_context(cluster),
        fragment="clusters/_cluster_live.html",
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
        return render(request, "clusters/cluster_form.html", {"form": form}, status=UNPROCESSABLE)
    cluster = save_through(
        form, services.create_cluster, request.user, form_data(form, services.FIELDS)
    )
    if cluster is None:
        return render(request, "clusters/cluster_form.html", {"form": form}, status=UNPROCESSABLE)
    messages.success(request, f"Cluster {cluster.name} created. Add its nodes and VIPs.")
    return redirect("clusters:cluster", cluster.pk)


@require_safe
@require_role(OPERATOR)
def cluster_edit(request, pk):
    cluster = get_cluster(pk)
    form = cluster_form(request, instance=cluster)
    return render(request, "clusters/cluster_form.html", {"form": form, "cluster": cluster})


@require_POST
@require_role(OPERATOR)
def cluster_update(request, pk):
    cluster = get_cluster(pk)
    form = cluster_form(request, request.POST, instance=cluster)
    if form.is_valid():
        cluster = save_through(
            form,
            services.update_cluster,
            request.user,
            cluster,
            form_data(form, services.FIELDS),
        )
    if not form.is_valid() or cluster is None:
        return render(
            request,
            "clusters/cluster_form.html",
            {"form": form, "cluster": Cluster.objects.get(pk=pk)},
            status=UNPROCESSABLE,
        )
    messages.success(request, f"Settings of {cluster.name} saved. Push to apply them.")
    return redirect("clusters:cluster", cluster.pk)
