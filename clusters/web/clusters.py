"""Cluster pages: the cluster page and its live status, creating and editing a cluster.
Changes go through clusters.services.clusters."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from clusters import health, validators
from clusters.forms import ActiveActiveForm, SyncGroupForm, VirtualIPForm, VrrpInstanceForm
from clusters.models import (
    Cluster,
    ConfigPush,
    VirtualIP,
    VrrpInstance,
    free_vrid,
    vrids_on_segment,
)
from clusters.roles import OPERATOR, VIEWER, require_role
from clusters.services import cluster_setup, nodes
from clusters.services import clusters as services
from clusters.services.errors import Refused, Unconfirmed
from clusters.web import confirm
from clusters.web.common import (
    form_data,
    get_cluster,
    refusal_status,
    save_through,
    ssh_messages,
)
from clusters.web.forms import (
    NODE_ROWS,
    NODE_ROWS_MAX,
    VRRP_HELP,
    PanelNodeForm,
    SetupClusterForm,
    SetupVipForm,
    cluster_form,
    node_rows,
)
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


# --- A new cluster, in one guided form (clusters.services.cluster_setup) ---------------------

NODE_FIELDS = ["name", "address", "priority", "ssh_port", "host_key_fingerprint"]
VIP_FIELDS = ["address", "label"]


def vrid_hint(network):
    """(free VRID or None, [uses on the segment]) for a typed network; None when it does not
    parse (the form says why when it is sent)."""
    try:
        net = validators.parse_network((network or "").strip())
    except ValidationError:
        return None
    return {"network": net, "free": free_vrid(net), "used": list(vrids_on_segment(net))}


def _problems(form, rows, vip_form):
    """Every error of the three parts, each with where it is ("Node 2 · Address"), for the
    summary at the top of the page (the same messages stand next to their fields)."""
    parts = [("", form)]
    parts += [(f"Node {i + 1}", row) for i, row in enumerate(rows.forms)]
    parts.append(("VIP", vip_form))
    problems = []
    for part, f in parts:
        if not f.is_bound:
            continue
        for name, errors in f.errors.items():
            label = f.fields[name].label if name in f.fields else ""
            where = " · ".join(str(x) for x in (part, label) if x)
            problems.append((where, " ".join(errors)))
    return problems


def _setup_page(request, form, rows, vip_form, status=200):
    context = {
        "form": form,
        "rows": rows,
        "vip_form": vip_form,
        "help": VRRP_HELP,
        "problems": _problems(form, rows, vip_form),
        "more_rows": min(len(rows.forms) + 1, NODE_ROWS_MAX),
        "hint": vrid_hint(form["network"].value()),
        # Step 4 opens by itself when one of its fields has something to say.
        "more_open": any(field.errors for field in form.more()),
    }
    return render(request, "clusters/cluster_setup.html", context, status=status)


@require_safe
@require_role(OPERATOR)
def cluster_new(request):
    try:
        count = min(max(int(request.GET.get("nodes", NODE_ROWS)), 1), NODE_ROWS_MAX)
    except ValueError:
        count = NODE_ROWS
    form = cluster_form(request, form_class=SetupClusterForm)
    return _setup_page(request, form, node_rows(rows=count), SetupVipForm(prefix="vip"))


@require_safe
@require_role(OPERATOR)
def cluster_vrid_hint(request):
    """The lowest free VRID for the network being typed (htmx, as the network changes)."""
    return render(
        request, "clusters/_vrid_hint.html", {"hint": vrid_hint(request.GET.get("network"))}
    )


def _spread(error, form, filled, vip_form):
    """Put a service's ValidationError on the field it names: "nodes.1.address" is the second
    filled node row's address, "vips.0.address" the VIP's, anything else the cluster's."""
    for key, messages_ in error.message_dict.items():
        part, _, rest = key.partition(".")
        index, _, name = rest.partition(".")
        if part == "nodes" and index.isdigit():
            target = filled[int(index)]
        elif part == "vips" and index.isdigit():
            target = vip_form
        else:
            target, name = form, key
        target.add_error(name if name in target.fields else None, messages_)


@require_POST
@require_role(OPERATOR)
def cluster_create(request):
    """Create the cluster, its first nodes and its VIP together (or nothing), then test SSH to
    each node and say what was found."""
    form = cluster_form(request, request.POST, form_class=SetupClusterForm)
    rows = node_rows(request.POST)
    vip_form = SetupVipForm(request.POST, prefix="vip")
    # Every part is checked, so every mistake shows at once.
    valid = [form.is_valid(), rows.is_valid(), vip_form.is_valid()]
    if not all(valid):
        return _setup_page(request, form, rows, vip_form, status=UNPROCESSABLE)
    filled = [f for f in rows.forms if f.has_changed()]
    try:
        setup = cluster_setup.setup_cluster(
            request.user,
            form_data(form, services.FIELDS),
            [form_data(f, NODE_FIELDS) for f in filled],
            [form_data(vip_form, VIP_FIELDS)],
        )
    except ValidationError as e:
        _spread(e, form, filled, vip_form)
        return _setup_page(request, form, rows, vip_form, status=UNPROCESSABLE)
    cluster = setup.cluster
    made = list(cluster.nodes.select_related("cluster__credential", "credential"))
    vip = cluster.vips.get()
    messages.success(
        request,
        f"Cluster {cluster.name} created with {len(made)} node{'s' if len(made) != 1 else ''} "
        f"({', '.join(n.name for n in made)}) and VIP {vip.address}. Nothing is on the nodes "
        "until you push.",
    )
    for note in setup.notes:
        messages.info(request, note)
    for warning in setup.warnings:
        messages.warning(request, warning)
    ssh_messages(request, nodes.check_ssh(request.user, made))
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
