"""How the pages read in Chromium: times in the browser's zone or the user's choice (Playwright's
timezone_id plays the browser's zone), and every page in the light and the dark theme (the
system's setting, Playwright's color_scheme) with its text contrast measured. Saves the
README's history-dark.png; theme-<light|dark>-<page>.png, times-*.png and audit-*.png go to
the temporary directory, to be looked at."""

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts.models import EventKind, Incident
from clusters.models import ConfigPush, FailoverEvent, PushStep
from clusters.services import clusters as cluster_services
from tests import history_seed
from tests.browser import (
    PHONE,
    chromium,  # noqa: F401 (fixture)
    fast_passwords,  # noqa: F401 (fixture)
    fits_the_screen,
    log_in,
    look_at,
    new_page,  # noqa: F401 (fixture)
    people,  # noqa: F401 (fixture)
    screenshot,
    seed_fleet,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_YORK, TOKYO = "America/New_York", "Asia/Tokyo"


def footer(page):
    return page.locator("footer.foot").inner_text()


def local(moment, zone, fmt="%Y-%m-%d %H:%M"):
    return moment.astimezone(zoneinfo.ZoneInfo(zone)).strftime(fmt)


def test_times_follow_the_browsers_zone_then_the_users_choice(new_page, people, cluster):
    at = (timezone.now() - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    FailoverEvent.objects.create(
        cluster=cluster, vip_address="192.0.2.100/24", from_node="web-1", to_node="web-2",
        at=at, detected_by="sweep",
    )  # fmt: skip
    page = new_page(timezone_id=NEW_YORK)
    log_in(page, "viewer-user")
    assert "Times are in America/New_York (your browser's zone)." in footer(page)
    recent = page.locator(f"#cluster-{cluster.pk} .failovers time")
    assert recent.inner_text() == local(at, NEW_YORK)  # ISO, with its year
    look_at(page, "times-browser-zone.png")

    # The history's From and To are read in the same zone.
    page.goto(reverse("clusters:history", args=[cluster.pk]))
    since = at - dt.timedelta(minutes=30)
    page.locator("#id_since").fill(local(since, NEW_YORK, "%Y-%m-%dT%H:%M:%S"))
    page.locator("#id_until").fill(local(at + dt.timedelta(minutes=30), NEW_YORK, "%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(lambda url: "since=" in url)
    start = page.locator("svg.timeline.wide").get_attribute("data-start")
    assert dt.datetime.fromisoformat(start) == since
    assert page.locator("#events tbody tr").count() == 1
    assert page.locator("#events time").first.inner_text() == local(
        at, NEW_YORK, "%Y-%m-%d %H:%M:%S"
    )

    # The user's own choice wins over the browser's.
    page.get_by_role("link", name="Change").click()
    assert f"Your browser's zone: {NEW_YORK}." in page.locator("main").inner_text()
    page.get_by_label("Time zone").select_option(TOKYO)
    page.get_by_role("button", name="Save").click()
    assert "Saved: times are shown in Asia/Tokyo." in page.locator(".message").inner_text()
    page.goto("/")
    assert "Times are in Asia/Tokyo." in footer(page)
    assert page.locator(f"#cluster-{cluster.pk} .failovers time").inner_text() == local(at, TOKYO)
    look_at(page, "times-preference.png")


def test_without_javascript_times_are_in_utc_and_the_page_says_so(new_page, people, cluster):
    page = new_page(javascript=False, timezone_id=NEW_YORK)
    log_in(page, "viewer-user")
    assert "Times are in UTC: your browser's time zone is not known" in footer(page)


def test_a_page_drawn_before_the_browser_said_its_zone_is_redrawn_in_it(new_page, people, cluster):
    page = new_page(timezone_id=TOKYO)
    log_in(page, "viewer-user")
    page.context.clear_cookies(name="vipanel_tz")
    page.goto(reverse("clusters:audit"))  # drawn in UTC, then the script sets the cookie
    page.wait_for_function("document.documentElement.dataset.timeZone === 'Asia/Tokyo'")
    assert "Times are in Asia/Tokyo (your browser's zone)." in footer(page)


# --- Light and dark -----------------------------------------------------------------------

# The contrast of every text on a page (tests/contrast.js): the failures, one line each.
CONTRAST = (Path(__file__).parent / "contrast.js").read_text()


@pytest.fixture
def every_page(people, cluster):
    """One of each page, with enough on it to show every kind of badge."""
    seed_fleet(people["operator"])
    history_seed.seed_afternoon(cluster)
    cluster_services.update_cluster(people["operator"], cluster, {"advert_int": 2})
    push = ConfigPush.objects.create(
        cluster=cluster, state="failed", started=timezone.now(), finished=timezone.now(),
        detail="web-2: keepalived -t failed (exit 5).", log="12:00:00 push started\n",
    )  # fmt: skip
    for position, (name, state) in enumerate(
        [("web-2", "applied"), ("web-1", "failed"), ("web-3", "pending")], start=1
    ):
        PushStep.objects.create(
            push=push, node_name=name, position=position, state=state,
            output="Truncating auth_pass to 8 characters" if state == "failed" else "",
            exit_code=5 if state == "failed" else None,
        )  # fmt: skip
    incident = Incident.objects.create(
        kind=EventKind.SPLIT_BRAIN, cluster=cluster, key="vip:x", subject="192.0.2.100/24",
        title="Split brain: several nodes hold 192.0.2.100/24", state=Incident.State.OPEN,
        started=timezone.now() - dt.timedelta(minutes=3), last_seen=timezone.now(),
        opened=timezone.now() - dt.timedelta(minutes=2),
    )  # fmt: skip
    return {
        "dashboard": "/",
        "cluster": reverse("clusters:cluster", args=[cluster.pk]),
        "cluster-edit": reverse("clusters:cluster-edit", args=[cluster.pk]),
        "push": reverse("clusters:push", args=[push.pk]),
        "history": reverse("clusters:history", args=[cluster.pk]) + "?deleted=1",
        "audit": reverse("clusters:audit"),
        "incidents": reverse("alerts:incidents"),
        "incident": reverse("alerts:incident", args=[incident.pk]),
        "channels": reverse("alerts:channels"),
        "credentials": reverse("clusters:credentials"),
        "users": reverse("clusters:users"),
        "preferences": reverse("clusters:preferences"),
    }


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_reads_well_in_both_themes(new_page, every_page, scheme):
    page = new_page(color_scheme=scheme)
    log_in(page, "admin-user")
    body = page.locator("body").evaluate("e => getComputedStyle(e).backgroundColor")
    assert (body == "rgb(18, 20, 24)") is (scheme == "dark")  # the system's setting is followed
    for name, path in every_page.items():
        page.goto(path)
        assert page.evaluate(CONTRAST) == [], f"{scheme} {name}"
        if name == "dashboard":  # the measure itself can fail: grey on grey is caught
            page.evaluate(
                "document.querySelector('h1').style.color = getComputedStyle(document.body)"
                ".backgroundColor"
            )
            assert len(page.evaluate(CONTRAST)) == 1
            page.reload()
        # Every page in both themes, for a person to look at (kept out of docs/).
        look_at(page, f"theme-{scheme}-{name}.png")
        if scheme == "dark" and name == "history":
            screenshot(page, "history-dark.png")


def test_the_audit_log_reads_on_a_phone_and_a_path_keeps_its_width(new_page, people, cluster):
    # A node's longest field name beside a path once squeezed the value to one character a line.
    cluster_services.create_cluster(
        people["admin"],
        {"name": "db", "network": "198.51.100.0/24", "virtual_router_id": 52,
         "interface": "eth0", "config_path": "/etc/keepalived/vipanel-database-proxies.conf"},
    )  # fmt: skip
    for viewport, shot in (({"width": 1024, "height": 800}, "audit-laptop.png"), (PHONE, None)):
        page = new_page(viewport=viewport)
        log_in(page, "admin-user", next_path=reverse("clusters:audit"))
        assert fits_the_screen(page)
        value = page.locator(
            "#audit dl.changes dd", has_text="/etc/keepalived/vipanel-database-proxies.conf"
        )
        assert value.is_visible()
        box = value.bounding_box()
        assert box["width"] >= 150 and box["height"] <= 3 * 20, box
        assert box["x"] + box["width"] <= viewport["width"]
        look_at(page, shot or "audit-phone.png", full_page=shot is None)
