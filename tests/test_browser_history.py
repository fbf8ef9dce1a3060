"""The failover history in Chromium: zooming by a drag and by presets (also without
JavaScript), the phone's drawing, deleted VIPs and causes as a user sees them. Saves the
README's history-causes.png and phone-history.png (docs/screenshots/ under `make screenshots`)
and history-zoomed.png (the temporary directory)."""

import datetime as dt
import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse
from django.utils import timezone

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
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def window_of(svg):
    start = dt.datetime.fromisoformat(svg.get_attribute("data-start"))
    return start, dt.datetime.fromisoformat(svg.get_attribute("data-end"))


def history_url(cluster, query=""):
    return reverse("clusters:history", args=[cluster.pk]) + query


def test_dragging_across_the_timeline_zooms_into_that_span(new_page, people, cluster):
    history_seed.seed_afternoon(cluster)
    page = new_page()
    log_in(page, "viewer-user", next_path=history_url(cluster))
    svg = page.locator("svg.timeline.wide")
    assert svg.is_visible() and not page.locator("svg.timeline.narrow").is_visible()
    assert page.get_by_text("Drag across the picture to zoom in.").is_visible()
    screenshot(page, "history-causes.png")
    start, end = window_of(svg)
    box = svg.bounding_box()
    scale = box["width"] / 960
    x0, x1 = float(svg.get_attribute("data-x0")), float(svg.get_attribute("data-x1"))

    def client_x(share):
        return box["x"] + (x0 + (x1 - x0) * share) * scale

    y = box["y"] + 30 * scale  # across the first bar
    page.mouse.move(client_x(0.30), y)
    page.mouse.down()
    page.mouse.move(client_x(0.40), y, steps=5)
    band = page.locator("svg.timeline.wide .tl-zoom")
    assert band.get_attribute("display") is None  # the span is drawn while dragging
    assert float(band.get_attribute("width")) > 50
    page.mouse.move(client_x(0.45), y, steps=5)
    page.mouse.up()
    page.wait_for_url(re.compile(r"since="))
    query = parse_qs(urlparse(page.url).query)
    assert "last" not in query
    span = end - start
    new_start, new_end = window_of(page.locator("svg.timeline.wide"))
    slack = span / 200 + dt.timedelta(seconds=1)
    assert abs(new_start - (start + span * 0.30)) < slack
    assert abs(new_end - (start + span * 0.45)) < slack
    # The table lists only that span's events: the drill (at -120 min) of the seeded afternoon.
    rows = page.locator("#events tbody tr")
    assert rows.count() == 1 and "Drill" in rows.first.inner_text()
    # The form shows the span drawn, in the viewer's zone, to the second.
    assert page.get_by_label("From").input_value() == (
        timezone.localtime(new_start, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    )
    look_at(page, "history-zoomed.png")
    # A click is no drag: nothing moves.
    url = page.url
    page.mouse.click(client_x(0.5), y)
    page.wait_for_timeout(300)
    assert page.url == url


def test_the_presets_and_the_deleted_vips_work_without_javascript(new_page, people, cluster):
    now = history_seed.seed_afternoon(cluster)
    page = new_page(javascript=False)
    log_in(page, "viewer-user", next_path=history_url(cluster))
    assert not page.get_by_text("Drag across the picture").is_visible()
    presets = page.get_by_role("navigation", name="Time window")
    assert presets.get_by_role("link", name="all").get_attribute("aria-current") == "true"
    start, end = window_of(page.locator("svg.timeline.wide"))
    assert abs(start - (now - dt.timedelta(minutes=180))) < dt.timedelta(seconds=2)

    presets.get_by_role("link", name="last 1 h").click()
    start, end = window_of(page.locator("svg.timeline.wide"))
    assert abs((end - start) - dt.timedelta(hours=1)) < dt.timedelta(seconds=1)
    assert page.locator("#events tbody tr").count() == 2  # the gap and its end
    presets = page.get_by_role("navigation", name="Time window")
    presets.get_by_role("link", name="zoom out").click()
    start, end = window_of(page.locator("svg.timeline.wide"))
    assert abs((end - start) - dt.timedelta(hours=2)) < dt.timedelta(seconds=2)

    page.get_by_role("navigation", name="Time window").get_by_role("link", name="all").click()
    presets = page.get_by_role("navigation", name="Time window")
    presets.get_by_role("link", name="show 1 deleted VIP").click()
    assert page.locator("svg.timeline.wide text", has_text="192.0.2.150/24 (deleted)").count() == 1
    assert page.locator("#events tr.deleted-vip").count() == 1
    colour = page.locator("#events tr.deleted-vip td").first.evaluate(
        "e => getComputedStyle(e).color"
    )
    ink = page.locator("#events tbody tr:not(.deleted-vip) td").first.evaluate(
        "e => getComputedStyle(e).color"
    )
    assert colour != ink  # greyed
    page.get_by_role("navigation", name="Time window").get_by_role(
        "link", name="hide the deleted VIP"
    ).click()
    assert page.locator("#events tr.deleted-vip").count() == 0


def test_on_a_phone_the_whole_window_and_its_recent_end_are_on_screen(new_page, people, cluster):
    history_seed.seed_afternoon(cluster)
    page = new_page(viewport=PHONE)
    log_in(page, "viewer-user", next_path=history_url(cluster))
    narrow = page.locator("svg.timeline.narrow")
    assert narrow.is_visible() and not page.locator("svg.timeline.wide").is_visible()
    assert fits_the_screen(page)
    box = narrow.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    # The newest bar (web-1 since the gap) ends at the picture's right edge, on screen, and is
    # wide enough to be seen.
    last = narrow.locator('rect[data-state="held"]').last
    bar = last.bounding_box()
    assert bar["x"] + bar["width"] <= PHONE["width"] and bar["width"] > 20
    assert last.get_attribute("data-holder") == "web-1"
    # Names above the bars, readable: at least 11 px on the phone's screen.
    name = narrow.locator("text", has_text="192.0.2.100/24")
    assert name.bounding_box()["height"] >= 11
    narrow.scroll_into_view_if_needed()
    screenshot(page, "phone-history.png", full_page=False)
