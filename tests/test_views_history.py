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
from tests import history_seed
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
    marks = [g.get("data-kind") for g in root.iter(f"{ns}g") if "mark" in g.get("class", "")]
    assert marks == ["failover", "split_brain"]
    assert 'fill="url(#split-hatch-wide)" stroke="#C62828"' in svg  # split brain in red


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
    return history_seed.move(cluster, timezone.now(), minutes_ago, src, dst, kind=kind, vip=vip)


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
def test_by_default_the_window_reaches_back_to_the_vips_creation(login, viewer, aged):
    cluster = aged
    event(cluster, 30, src="web-1", dst="web-2")
    event(cluster, 60 * 24 * 20, src="old-a", dst="old-b")
    response = history(login(viewer), cluster)
    page = response.content.decode()
    assert response.status_code == 200
    rows = re.findall(r'<tr class="event-failover">.*?</tr>', page, re.S)
    assert len(rows) == 2 and "web-2" in rows[0] and "old-b" in rows[1]
    assert "<svg" in page and 'data-holder="web-2"' in page
    start = dt.datetime.fromisoformat(re.search(r'data-start="([^"]+)"', page).group(1))
    assert abs(start - cluster.created) < dt.timedelta(seconds=1)  # a month ago: all of it
    assert '<a href="?last=all" class="preset" aria-current="true">all</a>' in page


@pytestmark_db
def test_a_preset_shows_the_last_hours_only(login, viewer, aged):
    event(aged, 30, src="web-1", dst="web-2")
    event(aged, 60 * 30, src="old-a", dst="old-b")
    page = history(login(viewer), aged, last="24h").content.decode()
    rows = re.findall(r'<tr class="event-failover">.*?</tr>', page, re.S)
    assert len(rows) == 1 and "web-2" in rows[0]
    assert 'aria-current="true">last 24 h</a>' in page


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


# --- The window fits the data (pure) ------------------------------------------------------


NOW = at(600)


def test_a_fresh_cluster_gets_the_last_hour_not_a_day_of_nothing():
    assert timeline.fit_window(NOW, [NOW - dt.timedelta(seconds=30)]) == (
        NOW - timeline.MIN_WINDOW,
        NOW,
    )
    assert timeline.fit_window(NOW, []) == (NOW - timeline.MIN_WINDOW, NOW)


def test_old_data_stretches_the_window_back_to_it_and_no_further_than_asked():
    old = NOW - dt.timedelta(days=40)
    assert timeline.fit_window(NOW, [NOW - dt.timedelta(hours=3), old, None]) == (old, NOW)
    assert timeline.fit_window(NOW, [old], longest=dt.timedelta(days=30)) == (
        NOW - dt.timedelta(days=30),
        NOW,
    )


def test_zooming_out_doubles_the_window_around_its_middle_but_never_past_now():
    assert timeline.zoom_out(at(0), at(60), now=at(600)) == (at(-30), at(90))
    assert timeline.zoom_out(at(0), at(60), now=at(70)) == (at(-50), at(70))


def test_a_vip_created_after_the_window_starts_is_drawn_from_its_creation():
    svg = timeline.timeline_svg(
        [timeline.Row(VIP, born=at(30))], [], at(0), at(60), current={VIP: Current("web-1")}
    )
    bar = re.search(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"[^>]*data-state', svg)
    x, width = float(bar.group(1)), float(bar.group(2))
    x0, x1 = timeline.WIDE.label_w, timeline.WIDE.width - timeline.WIDE.right_pad
    assert x == pytest.approx(x0 + (x1 - x0) / 2, abs=0.1)  # half way: nothing before
    assert x + width == pytest.approx(x1, abs=0.2)
    assert 'data-state="unknown"' not in svg


def test_a_deleted_vip_ends_when_it_was_deleted_greyed():
    row = timeline.Row(VIP, deleted=True, born=at(10), died=at(40))
    events = [Event(at(20), VIP, "failover", "web-1", "web-2")]
    tracks = timeline.tracks_for([row], events, at(0), at(60))
    assert states(tracks[VIP]) == [(HELD, "web-1", at(10), at(20)), (HELD, "web-2", at(20), at(40))]
    svg = timeline.render_svg([row], tracks, events, at(0), at(60))
    assert f"{VIP} (deleted)" in svg and '<g class="deleted" opacity="0.45">' in svg
    assert 'data-kind="deleted"' in svg  # the moment it went
    ET.fromstring(svg)


def test_a_deleted_vip_ignores_what_the_current_state_of_a_namesake_says():
    row = timeline.Row(VIP, deleted=True, born=at(10), died=at(40))
    tracks = timeline.tracks_for([row], [], at(0), at(60), current={VIP: Current("web-9")})
    assert states(tracks[VIP]) == [(UNKNOWN, "", at(10), at(40))]


# --- Causes (pure) ------------------------------------------------------------------------

PUSH_OP = timeline.Operation(7, "push", at(10), at(12))
MAINT_OP = timeline.Operation(8, "maintenance", at(20), at(22))
DRILL_OP = timeline.Operation(9, "drill", at(30), at(32))
OPS = [PUSH_OP, MAINT_OP, DRILL_OP]


def cause(minutes, kind="failover", detail="", grace=dt.timedelta(0)):
    return timeline.cause_of(Event(at(minutes), VIP, kind, detail=detail), OPS, grace)


def test_a_move_names_the_operation_its_detail_names():
    assert cause(50, detail="During push #8. ") == "maintenance"  # the record says its kind
    assert cause(50, detail="During push #7.") == "push"
    assert cause(50, detail="During drill #99.") == "drill"  # a record since deleted
    assert cause(50, kind="drill", detail="Passed.") == "drill"


def test_a_move_while_an_operation_ran_is_that_operations():
    assert cause(11) == "push" and cause(21) == "maintenance" and cause(31) == "drill"


def test_a_move_seen_by_a_sweep_just_after_a_push_is_the_pushs_within_the_grace():
    assert cause(12.05) == "failure"
    assert cause(12.05, grace=dt.timedelta(seconds=5)) == "push"


def test_a_move_with_nothing_of_ours_running_is_a_failure_and_an_end_has_no_cause():
    assert cause(45) == "failure"
    assert cause(45, kind="no_holder") == "failure"
    assert cause(11, kind="no_holder_end") == ""


def test_each_cause_gets_its_mark_and_its_word_in_the_picture():
    events = timeline.label_causes(
        [
            Event(at(11), VIP, "failover", "web-1", "web-2"),
            Event(at(31), VIP, "drill", "web-2", "web-1"),
            Event(at(50), VIP, "failover", "web-1", "web-2"),
        ],
        OPS,
    )
    svg = timeline.timeline_svg([VIP], events, at(0), at(60))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    marks = [g for g in root.iter(f"{ns}g") if g.get("data-cause")]
    assert [g.get("data-cause") for g in marks] == ["push", "drill", "failure"]
    assert [m.find(f"{ns}text").text for m in marks] == ["push", "drill", "failure"]
    assert "(drill) (drill)" not in svg and "drill web-2 to web-1</title>" in svg
    for legend in ("push move", "drill move", "failure move"):
        assert f">{legend}</text>" in svg


# --- The page -----------------------------------------------------------------------------


@pytestmark_db
def test_the_page_labels_each_move_by_cause(login, viewer, cluster):
    history_seed.seed_afternoon(cluster)
    page = history(login(viewer), cluster).content.decode()
    table = page.split('id="events"')[1]
    causes = re.findall(r'<span class="cause cause-(\w+)">', table)
    # Newest first: the no-holder gap, the failure, maintenance, the drill, the first push.
    assert causes == ["failure", "failure", "maintenance", "drill", "push"]
    wide = page.split('class="timeline wide"')[1].split("</svg>")[0]
    assert re.findall(r'data-cause="(\w+)"', wide) == [
        "push",
        "drill",
        "maintenance",
        "failure",
        "failure",
    ]


@pytestmark_db
def test_deleted_vips_are_hidden_until_asked_for_then_greyed(login, viewer, cluster):
    history_seed.seed_afternoon(cluster)
    client = login(viewer)
    page = history(client, cluster).content.decode()
    assert history_seed.GONE not in page.split('id="events"')[1]
    assert f"{history_seed.GONE} (deleted)" not in page.split("<svg")[1]
    assert '<a href="?deleted=1" class="preset">show 1 deleted VIP</a>' in page
    assert f'<option value="{history_seed.GONE}">{history_seed.GONE} (deleted)</option>' in page

    page = history(client, cluster, deleted="1").content.decode()
    row = re.search(r'<tr class="event-failover deleted-vip">.*?</tr>', page, re.S).group(0)
    assert history_seed.GONE in row and "(deleted)" in row
    wide = page.split('class="timeline wide"')[1].split("</svg>")[0]
    assert f"{history_seed.GONE} (deleted)" in wide
    # Drawn from its creation to its deletion (the audit log's entries), nothing after.
    now = timezone.now()
    gone = wide.split(f"{history_seed.GONE} (deleted)")[1]
    tips = re.findall(r"<title>192\.0\.2\.150/24: ([^<]+)</title>", gone)
    assert [t.split(",")[0] for t in tips] == ["web-1", "web-2"]
    ends = re.findall(r"to (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$", tips[-1])
    died = dt.datetime.fromisoformat(ends[0]).replace(tzinfo=dt.UTC)
    assert abs(died - (now - dt.timedelta(minutes=100))) < dt.timedelta(seconds=5)
    assert '<a href="?deleted=1&amp;deleted=' not in page  # the toggle replaces, not repeats
    assert '<a href="?" class="preset">hide the deleted VIP</a>' in page


@pytestmark_db
def test_no_bar_starts_unknown_before_the_vip_existed(login, viewer, cluster):
    history_seed.seed_afternoon(cluster)
    page = history(login(viewer), cluster).content.decode()
    wide = page.split('class="timeline wide"')[1].split("</svg>")[0]
    assert 'data-state="unknown"' not in wide
    start = dt.datetime.fromisoformat(re.search(r'data-start="([^"]+)"', page).group(1))
    created = cluster.vips.get(address=history_seed.MAIN).created
    assert abs(start - created) < dt.timedelta(seconds=1)


@pytestmark_db
def test_the_page_draws_a_narrow_picture_for_phones_and_presets_as_links(login, viewer, cluster):
    history_seed.seed_afternoon(cluster)
    page = history(login(viewer), cluster, vip=history_seed.MAIN).content.decode()
    assert page.count("<svg") == 2
    assert 'class="timeline wide"' in page and 'class="timeline narrow"' in page
    for name in ("1h", "24h", "7d", "30d", "all"):
        assert f'href="?vip=192.0.2.100%2F24&amp;last={name}"' in page
    zoom = re.search(r'<a href="\?([^"]+)" class="preset">zoom out</a>', page).group(1)
    assert "since=" in zoom and "until=" in zoom
    assert page.count('<script src="/static/timeline.js" defer></script>') == 1


@pytestmark_db
def test_a_drag_span_in_utc_is_drawn_exactly(login, viewer, aged):
    # What static/timeline.js sends after a drag: ISO moments with their offset.
    event(aged, 90, src="web-1", dst="web-2")
    since = (timezone.now() - dt.timedelta(minutes=100)).replace(microsecond=0)
    until = since + dt.timedelta(minutes=20)
    page = history(
        login(viewer), aged, since=since.isoformat().replace("+00:00", "Z"), until=until.isoformat()
    ).content.decode()
    assert f'data-start="{since.isoformat()}"' in page
    assert f'data-end="{until.isoformat()}"' in page
    rows = re.findall(r'<tr class="event-failover">.*?</tr>', page, re.S)
    assert len(rows) == 1
    # The form shows the window drawn, to the second, so Show redraws the same.
    assert f'value="{since:%Y-%m-%dT%H:%M:%S}"' in page


@pytestmark_db
def test_the_history_reads_and_writes_times_in_the_viewers_zone(login, viewer, cluster):
    """Form inputs and every time shown are the viewer's, here New York (UTC-5 in March)."""
    from clusters.models import Preferences

    Preferences.objects.create(user=viewer, time_zone="America/New_York")
    moment = dt.datetime(2025, 3, 1, 12, 30, tzinfo=dt.UTC)  # 07:30 in New York
    type(cluster).objects.filter(pk=cluster.pk).update(created=moment - dt.timedelta(days=1))
    cluster.vips.update(created=moment - dt.timedelta(days=1))
    FailoverEvent.objects.create(
        cluster=cluster, vip_address=VIP, from_node="web-1", to_node="web-2", at=moment,
        detected_by="sweep",
    )  # fmt: skip
    client = login(viewer)
    page = history(client, cluster, since="2025-03-01T07:00", until="2025-03-01T08:00")
    page = page.content.decode()
    assert 'data-start="2025-03-01T12:00:00+00:00"' in page  # 07:00 New York is 12:00 UTC
    assert 'data-end="2025-03-01T13:00:00+00:00"' in page
    assert '<time datetime="2025-03-01T12:30:00+00:00">2025-03-01 07:30:00</time>' in page
    assert "(America/New_York)" in page
    assert 'value="2025-03-01T07:00:00"' in page  # the form shows what was typed, in its zone
    # In UTC the same input is five hours earlier: the event is not in that window.
    Preferences.objects.filter(user=viewer).update(time_zone="UTC")
    page = history(login(viewer), cluster, since="2025-03-01T07:00", until="2025-03-01T08:00")
    assert "web-2</td>" not in page.content.decode()


@pytestmark_db
def test_a_cluster_without_vips_shows_an_empty_hour(login, viewer, cluster):
    cluster.vips.all().delete()
    response = history(login(viewer), cluster)
    page = response.content.decode()
    assert response.status_code == 200 and "No virtual IPs to show." in page
    start = dt.datetime.fromisoformat(re.search(r'data-start="([^"]+)"', page).group(1))
    end = dt.datetime.fromisoformat(re.search(r'data-end="([^"]+)"', page).group(1))
    assert end - start == timeline.MIN_WINDOW


def test_events_in_a_pushs_window_are_marked_as_foreseen_or_not(login, viewer, cluster):
    """The history says whether each push's prediction held, event by event (issue 17)."""
    from clusters import impact
    from clusters.models import ConfigPush
    from clusters.services import pushes as push_services

    now = timezone.now()
    moved = impact.Move(
        VIP.split("/")[0],
        "VI_web",
        0,
        "web-1",
        "reload",
        ("web-1",),
        ("web-2",),
        "move",
        within=3.5,
        outage=0,
    )
    prediction = impact.Impact(
        "maintenance",
        "web",
        vips=[impact.VipImpact(VIP.split("/")[0], "VI_web", ("web-1",), ("web-2",), [moved])],
    ).as_dict()
    push = ConfigPush.objects.create(
        cluster=cluster,
        kind="maintenance",
        state="succeeded",
        started=now - dt.timedelta(minutes=5),
        finished=now - dt.timedelta(minutes=4),
        prediction=prediction,
        observed={VIP: ["web-2"]},
    )
    common = dict(cluster=cluster, vip_address=VIP, detected_by="notify")
    foreseen = FailoverEvent.objects.create(
        **common, from_node="web-1", to_node="web-2", at=now - dt.timedelta(minutes=4, seconds=30)
    )
    page = login(viewer).get(reverse("clusters:history", args=[cluster.pk])).content.decode()
    assert f"foreseen by maintenance #{push.pk}" in page
    assert re.search(rf'data-push="{push.pk}" data-status="held"', page)
    assert "prediction held" in page
    FailoverEvent.objects.create(
        **common, from_node="web-2", to_node="web-1", at=now - dt.timedelta(minutes=4, seconds=10)
    )
    page = login(viewer).get(reverse("clusters:history", args=[cluster.pk])).content.decode()
    assert f"not foreseen by maintenance #{push.pk}" in page
    assert re.search(rf'data-push="{push.pk}" data-status="not held"', page)
    assert "Not foreseen: failover of 192.0.2.100 (web-2 → web-1)." in page
    # The first one is still foreseen; the second is not.
    assert page.count(f">foreseen by maintenance #{push.pk}") == 1
    assert page.count(f">not foreseen by maintenance #{push.pk}") == 1
    assert foreseen.pk in push_services.verdict(push).expected


@pytestmark_db
def test_a_vip_never_pushed_is_not_drawn(login, viewer, aged):
    aged.vips.create(address="192.0.2.101/24")
    page = history(login(viewer), aged).content.decode()
    assert "<svg" in page and "192.0.2.100/24" in page.split("<svg")[1]
    assert "192.0.2.101/24" not in page.split("<svg")[1].split("</svg>")[0]
