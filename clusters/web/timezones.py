"""The viewer's time zone, activated for each page (Django's timezone.activate), so that every
time a page shows and every date a form reads is in that zone (clusters.timefmt writes them).

Where the zone comes from, first that applies:
1. the user's preference (clusters.services.preferences), kept in the session so pages cost no
   query for it: read when they log in, written when they change it here;
2. their browser's zone, which static/vipanel.js puts in the COOKIE (Intl's resolvedOptions);
3. UTC, and the page says so (JavaScript off, or a zone this server does not know).

The API answers in UTC whatever the viewer's zone: programs read it, and ISO times there carry
their offset.
"""

from urllib.parse import unquote

from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from clusters import timefmt
from clusters.services import preferences
from clusters.web.forms import PreferencesForm
from clusters.web.htmx import UNPROCESSABLE

COOKIE = "vipanel_tz"
SESSION_KEY = "vipanel_time_zone"
UTC_ONLY_PREFIXES = ("/api/",)

PREFERENCE, BROWSER, DEFAULT = "preference", "browser", "default"


def _preference(request):
    """The zone the user chose ("" for their browser's), from the session when it is there."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    session = request.session
    if SESSION_KEY not in session:
        session[SESSION_KEY] = preferences.time_zone_of(user)
    return session[SESSION_KEY]


def browser_zone(request):
    """The zone the browser said it is in (the cookie), if this server knows it; else ""."""
    name = unquote(request.COOKIES.get(COOKIE, "")[: 3 * timefmt.ZONE_NAME_MAX])
    return name if timefmt.zone(name) is not None else ""


def resolve(request):
    """-> (zone name, where it came from: PREFERENCE, BROWSER or DEFAULT)."""
    chosen = _preference(request)
    if timefmt.zone(chosen) is not None:
        return chosen, PREFERENCE
    browser = browser_zone(request)
    if browser:
        return browser, BROWSER
    return timefmt.UTC_NAME, DEFAULT


class TimeZoneMiddleware:
    """After AuthenticationMiddleware: the user's preference needs request.user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(UTC_ONLY_PREFIXES):
            return self.get_response(request)
        name, source = resolve(request)
        request.time_zone, request.time_zone_source = name, source
        with timezone.override(timefmt.zone(name)):
            return self.get_response(request)


@receiver(user_logged_in)
def _remember_preference(sender, request, user, **kwargs):
    # Read once per login, so no page pays a query for it.
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = preferences.time_zone_of(user)


def time_zone(request):
    """Context processor: the zone times are shown in, and why (said at the foot of pages)."""
    name = getattr(request, "time_zone", timefmt.UTC_NAME)
    source = getattr(request, "time_zone_source", DEFAULT)
    return {
        "time_zone": name,
        "time_zone_source": source,
        # The page was drawn in UTC only for want of the browser's zone: once the script has
        # set the cookie it may reload (a GET only, so nothing is sent twice).
        "time_zone_reload": source == DEFAULT and request.method == "GET",
    }


@require_safe
def preferences_page(request):
    form = PreferencesForm(initial={"time_zone": _preference(request)})
    return render(request, "clusters/preferences.html", _context(request, form))


@require_POST
def preferences_save(request):
    form = PreferencesForm(request.POST)
    if form.is_valid():
        try:
            prefs = preferences.set_time_zone(request.user, form.cleaned_data["time_zone"])
        except ValidationError as e:
            form.add_error("time_zone", e.message_dict.get("time_zone", e.messages))
        else:
            request.session[SESSION_KEY] = prefs.time_zone
            shown = prefs.time_zone or "your browser's zone"
            messages.success(request, f"Saved: times are shown in {shown}.")
            return redirect("clusters:preferences")
    return render(
        request, "clusters/preferences.html", _context(request, form), status=UNPROCESSABLE
    )


def _context(request, form):
    return {"form": form, "browser_zone": browser_zone(request)}
