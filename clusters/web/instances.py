"""A cluster's further VRRP instances on its page: add, edit, remove, active/active in one step,
per-node priorities in place (clusters.services.instances)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from clusters.forms import ActiveActiveForm, SyncGroupForm, VrrpInstanceForm
from clusters.models import Node, SyncGroup, VrrpInstance
from clusters.roles import OPERATOR, require_role
from clusters.services import instances as services
from clusters.services.errors import Unconfirmed
from clusters.web import confirm
from clusters.web.clusters import cluster_context
from clusters.web.common import form_data, get_cluster, save_through
from clusters.web.htmx import UNPROCESSABLE


def _get_instance(pk):
    return get_object_or_404(VrrpInstance.objects.select_related("cluster"), pk=pk)


def _done(request, cluster, text):
    messages.success(request, text)
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#instances")


def _refused(request, cluster, **forms):
    context = cluster_context(request, cluster, **forms)
    return render(request, "clusters/cluster.html", context, status=UNPROCESSABLE)


@require_POST
@require_role(OPERATOR)
def instance_add(request, pk):
    cluster = get_cluster(pk)
    form = VrrpInstanceForm(request.POST, instance=VrrpInstance(cluster=cluster))
    instance = None
    if form.is_valid():
        instance = save_through(
            form,
            services.create_instance,
            request.user,
            cluster,
            form_data(form, services.FIELDS),
        )
    if instance is None:
        return _refused(request, cluster, instance_form=form)
    return _done(request, cluster, f"Instance {instance.name} added. Add its VIPs, then push.")


@require_safe
@require_role(OPERATOR)
def instance_edit(request, pk):
    instance = _get_instance(pk)
    return render(
        request,
        "clusters/instance_form.html",
        {"form": VrrpInstanceForm(instance=instance), "instance": instance},
    )


@require_POST
@require_role(OPERATOR)
def instance_update(request, pk):
    instance = _get_instance(pk)
    form = VrrpInstanceForm(request.POST, instance=instance)
    saved = None
    if form.is_valid():
        saved = save_through(
            form,
            services.update_instance,
            request.user,
            instance,
            form_data(form, services.FIELDS),
        )
    if saved is None:
        return render(
            request,
            "clusters/instance_form.html",
            {"form": form, "instance": instance},
            status=UNPROCESSABLE,
        )
    return _done(request, instance.cluster, f"Instance {saved.name} saved. Push to apply it.")


@require_POST
@require_role(OPERATOR)
def instance_delete(request, pk):
    instance = _get_instance(pk)
    cluster, name = instance.cluster, instance.name
    try:
        services.delete_instance(request.user, instance, confirm=request.POST.get("confirm"))
    except Unconfirmed:
        return confirm.delete_confirmation(
            request,
            cluster,
            services.delete_preview(request.user, instance),
            what=f"instance {name} and its VIPs",
            action=reverse("clusters:instance-delete", args=[instance.pk]),
            hx_target="",
        )
    return _done(request, cluster, f"Instance {name} removed. Push to take it off the nodes.")


@require_POST
@require_role(OPERATOR)
def active_active(request, pk):
    cluster = get_cluster(pk)
    form = ActiveActiveForm(request.POST)
    instance = None
    if form.is_valid():
        instance = save_through(
            form, services.create_active_active, request.user, cluster, dict(form.cleaned_data)
        )
    if instance is None:
        return _refused(request, cluster, active_active_form=form)
    return _done(
        request,
        cluster,
        f"Instance {instance.name} added with mirrored priorities. Push to put it on the nodes.",
    )


@require_POST
@require_role(OPERATOR)
def instance_priority(request, pk, node_pk):
    instance = _get_instance(pk)
    node = get_object_or_404(Node, pk=node_pk, cluster=instance.cluster)
    try:
        priority = int(request.POST.get("priority", ""))
        services.set_priority(request.user, instance, node, priority)
    except ValueError:
        messages.error(request, "Enter a whole number from 1 to 254 as the priority.")
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(request, f"{node.name}'s priority in {instance.name} is {priority}.")
    return redirect(reverse("clusters:cluster", args=[instance.cluster.pk]) + "#instances")


@require_POST
@require_role(OPERATOR)
def sync_group_add(request, pk):
    cluster = get_cluster(pk)
    form = SyncGroupForm(request.POST, cluster=cluster)
    group = None
    if form.is_valid():
        data = {k: form.cleaned_data[k] for k in services.GROUP_FIELDS}
        group = save_through(
            form,
            services.create_sync_group,
            request.user,
            cluster,
            data,
            list(form.cleaned_data["members"]),
        )
    if group is None:
        return _refused(request, cluster, sync_group_form=form)
    return _done(request, cluster, f"Sync group {group.name} added. Push to apply it.")


@require_POST
@require_role(OPERATOR)
def sync_group_delete(request, pk):
    group = get_object_or_404(SyncGroup.objects.select_related("cluster"), pk=pk)
    cluster, name = group.cluster, group.name
    services.delete_sync_group(request.user, group)
    return _done(request, cluster, f"Sync group {name} removed. Push to apply it.")
