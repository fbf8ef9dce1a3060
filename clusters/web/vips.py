"""VIP pages: add and delete (clusters.services.vips)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from clusters.forms import VirtualIPForm
from clusters.models import VirtualIP
from clusters.roles import OPERATOR, require_role
from clusters.services import vips as services
from clusters.services.errors import Unconfirmed
from clusters.web import confirm
from clusters.web.clusters import changed, cluster_context
from clusters.web.common import form_data, get_cluster, save_through
from clusters.web.htmx import UNPROCESSABLE, render_page, wants_fragment


def _vips_section(request, cluster, form=None, status=200, flash="", warning=""):
    context = cluster_context(request, cluster, flash_vips=flash, warn_vips=warning)
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
    # Added all the same: a VIP outside the segment may be routed there on purpose.
    warning = vip.network_warning()
    if wants_fragment(request):
        return _vips_section(request, cluster, flash=text, warning=warning)
    messages.success(request, text)
    if warning:
        messages.warning(request, warning)
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#vips")


@require_POST
@require_role(OPERATOR)
def vip_delete(request, pk):
    vip = get_object_or_404(VirtualIP.objects.select_related("cluster"), pk=pk)
    cluster, address = vip.cluster, vip.address
    try:
        services.delete_vip(request.user, vip, confirm=request.POST.get("confirm"))
    except Unconfirmed:
        return confirm.delete_confirmation(
            request,
            cluster,
            services.delete_preview(request.user, vip),
            what=f"VIP {address}",
            action=reverse("clusters:vip-delete", args=[vip.pk]),
            hx_target="#vips",
        )
    text = f"VIP {address} removed. Push to take it off the nodes."
    if wants_fragment(request):
        return _vips_section(request, cluster, flash=text)
    messages.success(request, text)
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#vips")
