"""Failover history: the table, the timeline picture (clusters.timeline), the filters."""

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters import timeline
from clusters.models import FailoverEvent, VipState
from clusters.timeline import HELD, NONE, SPLIT, UNKNOWN, Current, Event, Segment
from tests.cast import *  # noqa: F403

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
VIP = "192.0.2.100/24"


def at(minutes):
    return T0 + dt.timedelta(minutes=minutes)


def states(segments):
    return [(s.state, s.holder, s.start, s.end) for s in segments]


# --- The intervals (pure) -----------------------------------------------------------------


def test_with_no_events_the_current_holder_held_it_all_along():
    segs = timeline.intervals([], at(0), at(60), current=Current("web-1", since=at(-600)))
    assert states(segs) == [(HELD, "web-1", at(0), at(60))]


def test_a_failover_splits_the_window_at_its_time():
    events = [Event(at(20), VIP, "failover", "web-1", "web-2")]
    segs = timeline.intervals(events, at(0), at(60), current=Current("web-2", since=at(20)))
    assert states(segs) == [(HELD, "web-1", at(0), at(20)), (HELD, "web-2", at(20), at(60))]


def test_split_brain_and_its_end_are_their_own_intervals():
    events = [
        Event(at(10), VIP, "split_brain", "web-1", "web-1, web-2"),
        Event(at(30), VIP, "split_brain_end", "", "web-1"),
    ]
    segs = timeline.intervals(events, at(0), at(60))
    assert states(segs) == [
        (HELD, "web-1", at(0), at(10)),
        (SPLIT, "web-1, web-2", at(10), at(30)),
        (HELD, "web-1", at(30), at(60)),
    ]


def test_no_holder_and_its_end():
    events = [
        Event(at(10), VIP, "no_holder", "web-1", ""),
        Event(at(15), VIP, "no_holder_end", "", "web-2"),
    ]
    assert [s.state for s in timeline.intervals(events, at(0), at(60))] == [HELD, NONE, HELD]


def test_without_events_in_the_window_the_next_one_tells_who_held_it():
    following = Event(at(90), VIP, "failover", "web-2", "web-1")
    segs = timeline.intervals(
        [], at(0), at(60), current=Current("web-1", since=at(90)), following=following
    )
    assert states(segs) == [(HELD, "web-2", at(0), at(60))]


def test_before_a_vip_was_first_seen_its_holder_is_unknown():
    segs = timeline.intervals([], at(0), at(60), current=Current("web-1", since=at(40)))
    assert states(segs) == [(UNKNOWN, "", at(0), at(40)), (HELD, "web-1", at(40), at(60))]


def test_events_outside_the_window_are_ignored_and_equal_neighbours_merge():
    events = [
        Event(at(-5), VIP, "failover", "web-9", "web-1"),
        Event(at(10), VIP, "failover", "web-1", "web-1"),
    ]
    segs = timeline.intervals(events, at(0), at(60))
    assert states(segs) == [(HELD, "web-1", at(0), at(60))]


def svg_for(events, current=None):
    return timeline.timeline_svg(
        [VIP, "192.0.2.101/24"], events, at(0), at(60), current=current or {}
    )


def test_the_picture_is_valid_svg_with_one_bar_per_interval_and_a_mark_per_event():
    events = [
        Event(at(10), VIP, "failover", "web-1", "web-2"),
        Event(at(40), VIP, "split_brain", "web-2", "web-1, web-2"),
    ]
    svg = svg_for(events, {"192.0.2.101/24": Current("web-1", since=at(-60))})
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in root.iter(f"{ns}rect") if r.get("data-state")]
    assert [(b.get("data-state"), b.get("data-holder")) for b in bars] == [
        ("held", "web-1"),
        ("held", "web-2"),
        ("split", "web-1, web-2"),
        ("held", "web-1"),
    ]
    marks = [g.get("data-kind") for g in root.iter(f"{ns}g")]
    assert marks == ["failover", "split_brain"]
    assert 'fill="url(#split-hatch)" stroke="#C62828"' in svg  # split brain in red


def test_the_same_input_draws_the_same_picture_byte_for_byte():
    events = [Event(at(10), VIP, "failover", "web-1", "web-2")]
    assert svg_for(events) == svg_for(list(events))


def test_names_are_escaped_in_the_picture():
    svg = timeline.timeline_svg(["<x>"], [], at(0), at(60))
    assert "<x>" not in svg and "&lt;x&gt;" in svg
    ET.fromstring(svg)


# --- The page -----------------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db


def event(cluster, minutes_ago, kind="failover", vip=VIP, src="web-1", dst="web-2"):
    return FailoverEvent.objects.create(
        cluster=cluster,
        vip_address=vip,
        from_node=src,
        to_node=dst,
        kind=kind,
        at=timezone.now() - dt.timedelta(minutes=minutes_ago),
        detected_by="sweep",
    )


@pytest.fixture
def aged(cluster):
    """The cluster and its VIP made and pushed a month ago, so the picture has something to
    draw."""
    month_ago = timezone.now() - dt.timedelta(days=30)
    type(cluster).objects.filter(pk=cluster.pk).update(created=month_ago)
    cluster.vips.update(created=month_ago, pushed_at=month_ago)
    cluster.refresh_from_db()
    return cluster


def history(client, cluster, **params):
    return client.get(reverse("clusters:history", args=[cluster.pk]), params)


@pytestmark_db
def test_it_lists_the_last_24_hours_by_default(login, viewer, aged):
    cluster = aged
    event(cluster, 30, src="web-1", dst="web-2")
    event(cluster, 60 * 30, src="old-a", dst="old-b")
    response = history(login(viewer), cluster)
    page = response.content.decode()
    assert response.status_code == 200
    rows = re.findall(r'<tr class="event-failover">.*?</tr>', page, re.S)
    assert len(rows) == 1 and "web-2" in rows[0]
    assert "<svg" in page and 'data-holder="web-2"' in page


@pytestmark_db
def test_it_filters_by_vip(login, viewer, cluster):
    cluster.vips.create(address="192.0.2.101/24")
    event(cluster, 10, vip=VIP)
    event(cluster, 20, vip="192.0.2.101/24", src="web-2", dst="web-1")
    page = history(login(viewer), cluster, vip="192.0.2.101/24").content.decode()
    table = page.split('id="events"')[1]
    assert "192.0.2.101/24" in table and VIP not in table
    assert page.count('<text x="162" ') == 1  # one row in the picture


@pytestmark_db
def test_it_filters_by_time_range(login, viewer, cluster):
    inside = event(cluster, 60 * 24 * 3, src="in-a", dst="in-b")
    event(cluster, 60 * 24 * 6, src="out-a", dst="out-b")
    since = timezone.localtime(inside.at - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    until = timezone.localtime(inside.at + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    page = history(login(viewer), cluster, since=since, until=until).content.decode()
    assert "in-b" in page and "out-b" not in page


@pytestmark_db
def test_it_keeps_the_history_of_a_deleted_vip(login, viewer, cluster):
    event(cluster, 10, vip="192.0.2.199/24")
    page = history(login(viewer), cluster).content.decode()
    assert '<option value="192.0.2.199/24">' in page


@pytestmark_db
def test_a_bad_date_gives_a_clear_message_not_a_500(login, viewer, cluster):
    response = history(login(viewer), cluster, since="31/02/2025")
    assert response.status_code == 400
    assert "Enter a date and time like 2025-01-31 or 2025-01-31T14:30." in response.content.decode()


@pytestmark_db
def test_a_range_that_ends_before_it_starts_is_refused(login, viewer, cluster):
    response = history(login(viewer), cluster, since="2025-03-02", until="2025-03-01")
    assert response.status_code == 400
    assert "&#x27;From&#x27; must be before &#x27;To&#x27;." in response.content.decode()


@pytestmark_db
def test_an_unknown_vip_or_range_is_refused(login, viewer, cluster):
    assert history(login(viewer), cluster, vip="10.0.0.1/8").status_code == 400
    assert history(login(viewer), cluster, last="1y").status_code == 400


@pytestmark_db
def test_the_timeline_starts_from_the_current_holder(login, viewer, aged):
    cluster = aged
    web1 = cluster.nodes.get(name="web-1")
    VipState.objects.create(
        vip=cluster.vips.get(),
        holder=web1,
        since=timezone.now() - dt.timedelta(days=3),
        checked_at=timezone.now(),
    )
    page = history(login(viewer), cluster).content.decode()
    assert 'data-state="held" data-holder="web-1"' in page


@pytestmark_db
def test_an_outsider_cannot_read_it(login, outsider, cluster):
    assert history(login(outsider), cluster).status_code == 403


@pytestmark_db
def test_the_filter_form_is_labelled(login, viewer, cluster):
    page = history(login(viewer), cluster).content.decode()
    for name in ("vip", "since", "until", "last"):
        assert f'for="id_{name}"' in page


def test_segment_labels():
    assert Segment(at(0), at(1), SPLIT, "a, b").label == "split brain: a, b"
    assert Segment(at(0), at(1), NONE).label == "no holder"


def test_nothing_is_drawn_before_the_vip_existed():
    events = [Event(at(30), VIP, "failover", "web-1", "web-2")]
    segs = timeline.intervals(events, at(0), at(60), born=at(20))
    assert states(segs) == [(HELD, "web-1", at(20), at(30)), (HELD, "web-2", at(30), at(60))]
    assert timeline.intervals([], at(0), at(60), born=at(70)) == []


@pytestmark_db
def test_the_picture_starts_when_the_vip_was_created(login, viewer, cluster):
    web1 = cluster.nodes.get(name="web-1")
    VipState.objects.create(
        vip=cluster.vips.get(), holder=web1, since=timezone.now(), checked_at=timezone.now()
    )
    page = history(login(viewer), cluster).content.decode()
    # Made a moment ago: the bar starts at the right-hand end, not 24 hours back.
    x = float(re.search(r'<rect x="([\d.]+)"[^>]*data-state=', page).group(1))
    assert x > 900


def test_a_short_window_gets_second_ticks():
    svg = timeline.timeline_svg([VIP], [], at(0), at(1))
    assert ">12:00:10<" in svg and ">12:00:50<" in svg


@pytestmark_db
def test_a_vip_never_pushed_is_not_drawn(login, viewer, aged):
    aged.vips.create(address="192.0.2.101/24")
    page = history(login(viewer), aged).content.decode()
    assert "<svg" in page and "192.0.2.100/24" in page.split("<svg")[1]
    assert "192.0.2.101/24" not in page.split("<svg")[1].split("</svg>")[0]
