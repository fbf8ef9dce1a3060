"""Times in the viewer's zone: the one helper (clusters.timefmt and its template filters), the
middleware that picks the zone, and the preferences page where a user chooses it."""

import datetime as dt

import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clusters import timefmt
from clusters.models import AuditEntry, FailoverEvent, Preferences
from clusters.web.timezones import COOKIE
from tests.cast import *  # noqa: F403
from tests.cast import assert_enforces_csrf, assert_rejects_get, assert_requires_login

MOMENT = dt.datetime(2026, 12, 1, 18, 5, 42, tzinfo=dt.UTC)
BERLIN = "Europe/Berlin"  # UTC+1 in December


# --- The rule (pure) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (42, "42 s"),
        (59.9, "59 s"),
        (60, "1 min"),
        (125, "2 min 5 s"),
        (600, "10 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3 * 3600 + 12 * 60 + 30, "3 h 12 min"),
        (86400, "1 d"),
        (2 * 86400 + 4 * 3600 + 59, "2 d 4 h"),
        (-5, "0 s"),  # a clock a moment ahead never says "-5 s"
    ],
)
def test_a_duration_says_its_unit_down_to_seconds(seconds, text):
    assert timefmt.duration(seconds) == text
    assert timefmt.duration(dt.timedelta(seconds=seconds)) == text


def test_an_age_counts_from_now():
    assert timefmt.age(MOMENT, now=MOMENT + dt.timedelta(seconds=42)) == "42 s"
    assert timefmt.age(None) == ""


def test_moments_are_iso_in_the_zone_asked_for():
    berlin = timefmt.zone(BERLIN)
    assert timefmt.when(MOMENT, tz=berlin) == "2026-12-01 19:05"
    assert timefmt.when(MOMENT, "second", tz=berlin) == "2026-12-01 19:05:42"
    assert timefmt.when(MOMENT, "time", tz=berlin) == "19:05:42"
    assert timefmt.when(MOMENT, "date", tz=timefmt.zone("Pacific/Auckland")) == "2026-12-02"


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "../../etc/passwd", "x" * 500, None, 5])
def test_only_known_zone_names_are_zones(name):
    assert timefmt.zone(name) is None


def render(text, **context):
    return Template("{% load vipanel %}" + text).render(Context(context))


def test_the_filters_write_times_in_the_current_zone():
    with timezone.override(timefmt.zone(BERLIN)):
        assert render("{{ m|when }}", m=MOMENT) == (
            '<time datetime="2026-12-01T18:05:42+00:00">2026-12-01 19:05</time>'
        )
        assert render('{{ m|when:"second" }}', m=MOMENT).endswith(">2026-12-01 19:05:42</time>")
        assert render('{{ m|when:"time" }}', m=MOMENT).endswith(">19:05:42</time>")
    assert render("{{ m|when }}", m=None) == ""
    assert render("{{ d|duration }}", d=dt.timedelta(seconds=42)) == "42 s"
    assert render("for {{ m|age }}", m=timezone.now() - dt.timedelta(seconds=42)) in (
        "for 42 s",
        "for 43 s",
    )


# --- The zone of each page ----------------------------------------------------------------


@pytest.fixture
def dashboard_event(cluster):
    return FailoverEvent.objects.create(
        cluster=cluster, vip_address="192.0.2.100/24", from_node="web-1", to_node="web-2",
        at=timezone.now().replace(month=12, day=1, hour=18, minute=5, second=42, microsecond=0),
        detected_by="sweep",
    )  # fmt: skip


def test_without_a_zone_from_the_browser_pages_are_in_utc_and_say_so(login, viewer, cluster):
    page = login(viewer).get(reverse("clusters:dashboard")).content.decode()
    assert "Times are in UTC: your browser's time zone is not known" in page
    assert 'data-time-zone="UTC" data-time-zone-source="default" data-time-zone-reload' in page


def test_the_browsers_zone_from_its_cookie_is_used(login, viewer, dashboard_event):
    client = login(viewer)
    client.cookies[COOKIE] = "Europe%2FBerlin"  # as static/vipanel.js writes it
    page = client.get(reverse("clusters:dashboard")).content.decode()
    assert f"{dashboard_event.at.year}-12-01 19:05</time>" in page
    assert "Times are in Europe/Berlin (your browser's zone)." in page
    assert "data-time-zone-reload" not in page


def test_a_cookie_naming_no_zone_is_ignored(login, viewer, cluster):
    client = login(viewer)
    client.cookies[COOKIE] = "Nowhere%2FAtAll"
    page = client.get(reverse("clusters:dashboard")).content.decode()
    assert 'data-time-zone="UTC" data-time-zone-source="default"' in page


def test_the_users_preference_wins_over_the_browser(login, viewer, dashboard_event):
    Preferences.objects.create(user=viewer, time_zone="Asia/Tokyo")  # UTC+9
    client = login(viewer)
    client.cookies[COOKIE] = "Europe%2FBerlin"
    page = client.get(reverse("clusters:cluster", args=[dashboard_event.cluster_id]))
    page = page.content.decode()
    assert f"{dashboard_event.at.year}-12-02 03:05:42</time>" in page
    assert "Times are in Asia/Tokyo." in page


def test_the_preference_costs_no_query_after_login(login, viewer, cluster):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Preferences.objects.create(user=viewer, time_zone="Asia/Tokyo")
    client = login(viewer)  # the login reads it into the session
    with CaptureQueriesContext(connection) as captured:
        page = client.get(reverse("clusters:audit")).content.decode()
    assert "Times are in Asia/Tokyo." in page
    assert not [q for q in captured.captured_queries if "preferences" in q["sql"]]


def test_the_api_answers_in_utc_whatever_the_viewers_zone(viewer, cluster, dashboard_event):
    from tests.test_api_support import Api, token_for

    Preferences.objects.create(user=viewer, time_zone="Asia/Tokyo")
    api = Api(token_for(viewer))
    api.client.cookies[COOKIE] = "Asia%2FTokyo"
    body = api.get(f"/api/v1/clusters/{cluster.pk}/").json()
    assert body["created"].endswith("Z") or body["created"].endswith("+00:00")


# --- The preferences page -----------------------------------------------------------------

MUTATING = {
    "preferences-save": (
        lambda c: reverse("clusters:preferences-save"),
        lambda c: {"time_zone": BERLIN},
    ),
}


def test_saving_rejects_get(login, viewer):
    assert_rejects_get(login, viewer, reverse("clusters:preferences-save"))


def test_saving_requires_login(db):
    assert_requires_login(reverse("clusters:preferences-save"), {"time_zone": BERLIN})


def test_saving_enforces_csrf(login, viewer):
    assert_enforces_csrf(login, viewer, reverse("clusters:preferences-save"), {"time_zone": BERLIN})


def test_anyone_logged_in_picks_their_own_zone_and_it_is_audited(login, outsider):
    # Even without a role: it changes only what they see.
    client = login(outsider)
    response = client.post(reverse("clusters:preferences-save"), {"time_zone": BERLIN})
    assert response.status_code == 302
    assert Preferences.objects.get(user=outsider).time_zone == BERLIN
    entry = AuditEntry.objects.get(action="user.preferences")
    assert entry.changes == {"time_zone": ["browser's", BERLIN]}
    page = client.get(reverse("clusters:preferences")).content.decode()
    assert "Times are in Europe/Berlin." in page
    assert f'<option value="{BERLIN}" selected>' in page
    # Back to the browser's zone.
    client.post(reverse("clusters:preferences-save"), {"time_zone": ""})
    assert Preferences.objects.get(user=outsider).time_zone == ""
    assert (
        "Times are in UTC: your browser's time zone is not known"
        in client.get(reverse("clusters:preferences")).content.decode()
    )


@pytest.mark.parametrize("hostile", ["Mars/Olympus", "Europe/Berlin\nX", "<script>", "x" * 300])
def test_a_zone_not_on_the_list_is_refused_by_name(login, viewer, hostile):
    response = login(viewer).post(reverse("clusters:preferences-save"), {"time_zone": hostile})
    assert response.status_code == 422
    page = response.content.decode()
    assert "Select a valid choice." in page and 'id="id_time_zone"' in page
    assert not Preferences.objects.exists() and not AuditEntry.objects.exists()
    assert "<script>" not in page.split("<main>")[1]


def test_the_service_refuses_an_unknown_zone_naming_the_field(viewer):
    from django.core.exceptions import ValidationError

    from clusters.services import preferences

    with pytest.raises(ValidationError) as refused:
        preferences.set_time_zone(viewer, "Mars/Olympus")
    assert "not a time zone this server knows" in refused.value.message_dict["time_zone"][0]
    assert preferences.set_time_zone(viewer, "UTC").time_zone == "UTC"
    assert preferences.time_zone_of(viewer) == "UTC"


def test_the_page_names_the_browsers_zone(login, viewer):
    client = login(viewer)
    client.cookies[COOKIE] = "America%2FNew_York"
    page = client.get(reverse("clusters:preferences")).content.decode()
    assert "Your browser's zone: America/New_York." in page


def test_a_logged_out_visitor_is_sent_to_log_in(db):
    response = Client().get(reverse("clusters:preferences"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
