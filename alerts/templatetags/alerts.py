"""{% load alerts %}{% availability cluster %}: the availability table, for the cluster page."""

from django import template

from alerts import availability as compute
from alerts.models import Incident

register = template.Library()


@register.inclusion_tag("alerts/_availability.html")
def availability(cluster, oob=False):
    """`oob`: marked for an htmx out-of-band swap (the cluster page's live refresh)."""
    return {"cluster": cluster, "rows": compute.cluster_availability(cluster), "oob": oob}


@register.filter
def percent(share):
    return f"{share * 100:.2f}%"


@register.inclusion_tag("alerts/_cluster_incidents.html")
def cluster_incidents(cluster, limit=5, oob=False):
    """{% cluster_incidents cluster %}: the cluster's active and latest incidents, for its page;
    `oob`: marked for an htmx out-of-band swap (the page's live refresh)."""

    latest = Incident.objects.filter(cluster=cluster, opened__isnull=False)[:limit]
    return {"cluster": cluster, "incidents": latest, "oob": oob}
