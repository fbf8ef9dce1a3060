"""VIP pages: add and delete (clusters.services.vips)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from clusters.forms import VirtualIPForm
from clusters.models import VirtualIP
from clusters.roles import OPERATOR, require_role
from clusters.services import vips as services
from clusters.web.clusters import changed, cluster_context
from clusters.web.common import form_data, get_cluster, save_through
from clusters.web.htmx import UNPROCESSABLE, render_page, wants_fragment


def _vips_section(request, cluster, form=None, status=200, flash=""):
    context = cluster_context(request, cluster, flash_vips=flash)
    if form is not None:
        context["vip_form"] = form
    response = render_page(
        request, "clusters/cluster.html", context, fragment="clusters/_vips.html", status=status
    )
    # A change was made (the flash says which): the page's live parts follow at once.
    return changed(response) if flash else response


@require_POST
@require_role(OPERATOR)
def vip_add(request, pk):
    cluster = get_cluster(pk)
    form = VirtualIPForm(request.POST, instance=VirtualIP(cluster=cluster))
    vip = None
    if form.is_valid():
        vip = save_through(
            form, services.create_vip, request.user, cluster, form_data(form, services.FIELDS)
        )
    if vip is None:
        return _vips_section(request, cluster, form, status=UNPROCESSABLE)
    text = f"VIP {vip.address} added. Push to put it on the nodes."
    if wants_fragment(request):
        return _vips_section(request, cluster, flash=text)
    messages.success(request, text)
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#vips")


@require_POST
@require_role(OPERATOR)
def vip_delete(request, pk):
    vip = get_object_or_404(VirtualIP.objects.select_related("cluster"), pk=pk)
    cluster, address = vip.cluster, vip.address
    services.delete_vip(request.user, vip)
    text = f"VIP {address} removed. Push to take it off the nodes."
    if wants_fragment(request):
        return _vips_section(request, cluster, flash=text)
    messages.success(request, text)
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#vips")
