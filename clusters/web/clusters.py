"""Cluster pages: the cluster page and its live status, creating and editing a cluster.
Changes go through clusters.services.clusters."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from clusters.forms import ActiveActiveForm, SyncGroupForm, VirtualIPForm, VrrpInstanceForm
from clusters.models import Cluster, ConfigPush, VirtualIP, VrrpInstance
from clusters.roles import OPERATOR, VIEWER, require_role
from clusters.services import clusters as services
from clusters.services.errors import Refused, Unconfirmed
from clusters.web import confirm
from clusters.web.common import form_data, get_cluster, refusal_status, save_through
from clusters.web.forms import PanelNodeForm, cluster_form
from clusters.web.htmx import UNPROCESSABLE, render_page
from clusters.web.presenters import Freshness, NodeHealth, VipView, instance_views


def cluster_context(request, cluster, **extra):
    nodes = list(cluster.nodes.select_related("state", "credential").order_by("-priority"))
    healths = [NodeHealth(n) for n in nodes]
    vips = [VipView(v, nodes) for v in cluster.vips.select_related("state__holder", "instance")]
    context = {
        "cluster": cluster,
        "nodes": healths,
        "freshness": Freshness(healths),
        "vips": vips,
        "instances": instance_views(cluster, nodes, vips),
        "instance_form": VrrpInstanceForm(instance=VrrpInstance(cluster=cluster)),
        "active_active_form": ActiveActiveForm(),
        "sync_group_form": SyncGroupForm(cluster=cluster),
        "sync_groups": cluster.sync_groups.prefetch_related("instances"),
        "node_form": PanelNodeForm(),
        "vip_form": VirtualIPForm(instance=VirtualIP(cluster=cluster)),
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
    cluster = get_cluster(pk)
    return render(request, "clusters/cluster.html", cluster_context(request, cluster))


@require_safe
@require_role(VIEWER)
def cluster_status(request, pk):
    """The live part of a cluster page (who holds the VIPs, each node's health); polled."""
    cluster = get_cluster(pk)
    nodes = list(cluster.nodes.select_related("state").order_by("-priority"))
    healths = [NodeHealth(n) for n in nodes]
    context = {
        "cluster": cluster,
        "nodes": healths,
        "freshness": Freshness(healths),
        "vips": [
            VipView(v, nodes) for v in cluster.vips.select_related("state__holder", "instance")
        ],
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


@require_POST
@require_role(OPERATOR)
def cluster_delete(request, pk):
    """Delete a cluster from vipanel (its nodes keep running keepalived). The name is typed:
    this cannot be undone and the cluster's history goes with it (clusters.web.confirm)."""
    cluster = get_cluster(pk)
    given = request.POST.get("confirm")
    try:
        services.delete_cluster(request.user, cluster, confirm=given)
    except Unconfirmed:
        return confirm.answer(
            request,
            confirm.Confirmation(
                title=f"Delete cluster {cluster.name}?",
                cluster=cluster,
                impact=services.delete_preview(request.user, cluster).as_dict(),
                action=reverse("clusters:cluster-delete", args=[cluster.pk]),
                label=f"Delete cluster {cluster.name}",
                typed=True,
                danger=True,
                cancel=reverse("clusters:cluster", args=[cluster.pk]),
                error="That is not the cluster's name; nothing was deleted." if given else "",
            ),
            status=UNPROCESSABLE if given else 200,
        )
    except Refused as e:
        context = cluster_context(request, cluster, push_errors=e.errors, refused_by=e.active)
        context["refused_title"] = "The cluster was not deleted"
        return render(request, "clusters/cluster.html", context, status=refusal_status(e))
    messages.success(
        request,
        f"Cluster {cluster.name} deleted from vipanel. keepalived on its nodes keeps running "
        "with the files last pushed.",
    )
    return redirect("clusters:dashboard")
