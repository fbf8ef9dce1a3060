"""A user's own preferences (the time zone pages are shown in). Anyone logged in sets their
own, whatever their role: it changes what they see, never what anyone else sees or does."""

from django.db import transaction

from clusters import audit
from clusters.models import Preferences
from clusters.services.errors import Forbidden

BROWSER = ""  # the stored value for "my browser's zone"


def time_zone_of(user):
    """The zone `user` chose ("" for their browser's)."""
    if user is None or not user.is_authenticated:
        return BROWSER
    return (
        Preferences.objects.filter(user=user).values_list("time_zone", flat=True).first() or BROWSER
    )


def set_time_zone(user, time_zone):
    """Save `user`'s zone: an IANA name, or BROWSER. ValidationError on a name this server does
    not know (keyed "time_zone")."""
    if user is None or not user.is_authenticated:
        raise Forbidden("Log in to set your preferences.")
    prefs = Preferences.objects.filter(user=user).first() or Preferences(user=user)
    old = prefs.time_zone if prefs.pk else BROWSER
    prefs.time_zone = time_zone or BROWSER
    prefs.full_clean()
    with transaction.atomic():
        prefs.save()
        if old != prefs.time_zone:
            audit.record(
                user,
                "user.preferences",
                user,
                object_type="user",
                changes={"time_zone": [old or "browser's", prefs.time_zone or "browser's"]},
                result="saved",
            )
    return prefs
