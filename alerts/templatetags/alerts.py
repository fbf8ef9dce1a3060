"""{% load alerts %}{% availability cluster %}: the availability table, for the cluster page."""

from django import template

from alerts import availability as compute
from alerts.models import Incident

register = template.Library()


@register.inclusion_tag("alerts/_availability.html")
def availability(cluster):
    return {"cluster": cluster, "rows": compute.cluster_availability(cluster)}


@register.filter
def percent(share):
    return f"{share * 100:.2f}%"


@register.inclusion_tag("alerts/_cluster_incidents.html")
def cluster_incidents(cluster, limit=5):
    """{% cluster_incidents cluster %}: the cluster's active and latest incidents, for its page."""

    latest = Incident.objects.filter(cluster=cluster, opened__isnull=False)[:limit]
    return {"cluster": cluster, "incidents": latest}
