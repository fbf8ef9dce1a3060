"""Alert channel use cases: each checks the role, validates with full_clean, writes with its
audit entry in one transaction and enqueues on commit. Views (and later the API) call these.

The URL is a secret: the audit log gets only its masked form and whether it changed.
"""

from django.core.exceptions import ValidationError
from django.db import transaction

from alerts.models import Channel, Delivery
from alerts.tasks import deliver_task
from clusters import audit, roles
from clusters.services.errors import Forbidden

FIELDS = ("name", "url", "kinds", "all_clusters", "enabled")


def _require_admin(user):
    if not roles.can_admin(user):
        raise Forbidden("Managing alert channels needs the admin role.")


def _snapshot(channel, clusters):
    return {
        "name": channel.name,
        "url": channel.masked_url,
        "kinds": sorted(channel.kinds or []),
        "all_clusters": channel.all_clusters,
        "clusters": sorted(c.name for c in clusters),
        "enabled": channel.enabled,
    }


def _apply(channel, data):
    """Set the fields from `data` and validate; -> the chosen clusters."""
    for name in FIELDS:
        if name in data and not (name == "url" and not data[name] and channel.pk):
            setattr(channel, name, data[name])  # an empty URL on edit keeps the stored one
    clusters = list(data.get("clusters", channel.clusters.all() if channel.pk else []))
    errors = {}
    try:
        channel.full_clean()
    except ValidationError as e:
        errors = e.message_dict
    if not channel.all_clusters and not clusters:
        errors["clusters"] = ["Choose at least one cluster, or tick 'All clusters'."]
    if errors:
        raise ValidationError(errors)
    return clusters


def create_channel(user, data):
    _require_admin(user)
    channel = Channel()
    clusters = _apply(channel, data)
    with transaction.atomic():
        channel.save()
        channel.clusters.set(clusters)
        changes = {k: [None, v] for k, v in _snapshot(channel, clusters).items()}
        audit.record(
            user, "alert channel created", channel, object_type="alert channel", changes=changes
        )
    return channel


def update_channel(user, channel, data):
    _require_admin(user)
    before = _snapshot(channel, channel.clusters.all())
    old_url = channel.url
    clusters = _apply(channel, data)
    with transaction.atomic():
        channel.save()
        channel.clusters.set(clusters)
        changes = audit.diff(before, _snapshot(channel, clusters))
        if channel.url != old_url and "url" not in changes:
            changes["url"] = ["(secret)", "(changed)"]
        audit.record(
            user, "alert channel updated", channel, object_type="alert channel", changes=changes
        )
    return channel


def delete_channel(user, channel):
    _require_admin(user)
    with transaction.atomic():
        audit.record(
            user,
            "alert channel deleted",
            channel,
            object_type="alert channel",
            changes={"url": [channel.masked_url, None]},
        )
        channel.delete()


def test_channel(user, channel):
    """Queue a test message; its Delivery shows the outcome (sent, or failed and why)."""

    _require_admin(user)
    with transaction.atomic():
        delivery = Delivery.objects.create(
            channel=channel, channel_name=channel.name, purpose=Delivery.Purpose.TEST
        )
        audit.record(user, "alert channel tested", channel, object_type="alert channel")
        transaction.on_commit(lambda: deliver_task.delay(delivery.pk))
    return delivery
