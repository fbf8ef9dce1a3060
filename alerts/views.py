"""Alert pages: incidents for every viewer; channels (with their test) for admins only."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from alerts import availability, services
from alerts.forms import ChannelForm
from alerts.models import Channel, Delivery, EventKind, Incident
from clusters import roles
from clusters.models import Cluster
from clusters.web.htmx import UNPROCESSABLE, render_page

PAGE = 100


@require_GET
@roles.require_role(roles.VIEWER)
def incident_list(request):
    incidents = Incident.objects.select_related("cluster").annotate(
        delivery_count=Count("deliveries")
    )
    show = request.GET.get("show", "alerted")
    if show == "active":
        incidents = incidents.filter(state__in=Incident.ACTIVE_STATES)
    elif show == "alerted":
        incidents = incidents.filter(opened__isnull=False)
    cluster_id = request.GET.get("cluster", "")
    if cluster_id.isdigit():
        incidents = incidents.filter(cluster_id=int(cluster_id))
    return render(
        request,
        "alerts/incidents.html",
        {
            "incidents": incidents[:PAGE],
            "show": show,
            "page_size": PAGE,
        },
    )


@require_GET
@roles.require_role(roles.VIEWER)
def incident_detail(request, pk):
    incident = get_object_or_404(
        Incident.objects.select_related("cluster", "event").prefetch_related(
            Prefetch("deliveries", queryset=Delivery.objects.order_by("created", "id"))
        ),
        pk=pk,
    )
    return render(request, "alerts/incident.html", {"incident": incident})


@require_GET
@roles.require_role(roles.VIEWER)
def cluster_availability(request, cluster_id):
    cluster = get_object_or_404(Cluster, pk=cluster_id)
    return render_page(
        request,
        "alerts/availability.html",
        {
            "cluster": cluster,
            "rows": availability.cluster_availability(cluster),
        },
        fragment="alerts/_availability.html",
    )


@require_GET
@roles.require_role(roles.ADMIN)
def channel_list(request):
    channels = Channel.objects.prefetch_related("clusters")
    return render(
        request, "alerts/channels.html", {"channels": channels, "kind_count": len(EventKind.values)}
    )


def _form_page(request, form, channel=None, status=200):
    tests = channel.deliveries.filter(purpose=Delivery.Purpose.TEST)[:5] if channel else []
    return render(
        request,
        "alerts/channel_form.html",
        {"form": form, "channel": channel, "tests": tests},
        status=status,
    )


def _initial(channel):
    return {
        "name": channel.name,
        "kinds": channel.kinds,
        "all_clusters": channel.all_clusters,
        "clusters": list(channel.clusters.all()),
        "enabled": channel.enabled,
    }


@require_GET
@roles.require_role(roles.ADMIN)
def channel_new(request):
    return _form_page(
        request,
        ChannelForm(
            initial={
                "all_clusters": True,
                "enabled": True,
                "kinds": [k for k, _ in ChannelForm.base_fields["kinds"].choices],
            }
        ),
    )


@require_GET
@roles.require_role(roles.ADMIN)
def channel_edit(request, pk):
    channel = get_object_or_404(Channel, pk=pk)
    return _form_page(request, ChannelForm(initial=_initial(channel), channel=channel), channel)


def _save(request, channel=None):
    form = ChannelForm(request.POST, channel=channel)
    if form.is_valid():
        try:
            if channel is None:
                channel = services.create_channel(request.user, form.cleaned_data)
                messages.success(request, f"Alert channel {channel.name} added.")
            else:
                channel = services.update_channel(request.user, channel, form.cleaned_data)
                messages.success(request, f"Alert channel {channel.name} saved.")
            return redirect("alerts:channels")
        except ValidationError as e:
            for field, errors in e.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
    if channel is not None:
        channel.refresh_from_db()
    return _form_page(request, form, channel, status=UNPROCESSABLE)


@require_POST
@roles.require_role(roles.ADMIN)
def channel_create(request):
    return _save(request)


@require_POST
@roles.require_role(roles.ADMIN)
def channel_update(request, pk):
    return _save(request, get_object_or_404(Channel, pk=pk))


@require_POST
@roles.require_role(roles.ADMIN)
def channel_delete(request, pk):
    channel = get_object_or_404(Channel, pk=pk)
    services.delete_channel(request.user, channel)
    messages.success(request, f"Alert channel {channel.name} deleted.")
    return redirect("alerts:channels")


@require_POST
@roles.require_role(roles.ADMIN)
def channel_test(request, pk):
    channel = get_object_or_404(Channel, pk=pk)
    services.test_channel(request.user, channel)
    messages.info(request, f"Test message to {channel.name} queued; its result shows below.")
    return redirect("alerts:channel-edit", pk=channel.pk)


@require_GET
@roles.require_role(roles.ADMIN)
def delivery_status(request, pk):
    """A test delivery's row; htmx polls it and is told to stop (286) once it is done."""
    delivery = get_object_or_404(Delivery, pk=pk)
    response = render(request, "alerts/_delivery_row.html", {"d": delivery, "poll": True})
    if delivery.is_done:
        stop = HttpResponseStopPolling(response.content)
        return stop
    return response
