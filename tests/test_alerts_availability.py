"""Availability per VIP: hand-built event sequences and coverage spans with known answers."""

from datetime import UTC, datetime, timedelta

import pytest

from alerts import signals
from alerts.availability import compute, vip_availability
from alerts.models import VipCoverage
from clusters.models import FailoverEvent
from tests.pushed import mark_pushed

K = FailoverEvent.Kind
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def test_all_watched_and_one_holder_is_fully_up():
    a = compute([], [(at(0), at(60))], at(0), at(60))
    assert (a.one_holder, a.no_holder, a.split_brain, a.unknown) == (3600, 0, 0, 0)
    assert a.up_share == 1.0


def test_a_split_brain_and_a_gap_with_no_holder_are_counted_apart():
    events = [
        (at(10), K.SPLIT_BRAIN),
        (at(15), K.SPLIT_BRAIN_END),
        (at(30), K.NO_HOLDER),
        (at(33), K.NO_HOLDER_END),
        (at(40), K.FAILOVER),
        (at(50), K.FAILOVER),
    ]
    a = compute(events, [(at(0), at(60))], at(0), at(60))
    assert a.split_brain == 5 * 60
    assert a.no_holder == 3 * 60
    assert a.one_holder == 52 * 60
    assert a.unknown == 0
    assert a.failovers == 2
    assert a.share("split_brain") == pytest.approx(5 / 60)


def test_time_the_panel_saw_nothing_is_unknown_not_up():
    # Watched 0-20 and 40-60; a split brain from 10 to 50 was seen only in part.
    events = [(at(10), K.SPLIT_BRAIN), (at(50), K.SPLIT_BRAIN_END)]
    a = compute(events, [(at(0), at(20)), (at(40), at(60))], at(0), at(60))
    assert a.unknown == 20 * 60
    assert a.split_brain == (10 + 10) * 60
    assert a.one_holder == (10 + 10) * 60
    assert a.up_share == pytest.approx(20 / 60)


def test_the_state_at_the_window_start_comes_from_earlier_events():
    # The split brain began before the window and ended inside it; an earlier failover does
    # not count in this window.
    events = [(at(-30), K.FAILOVER), (at(-10), K.SPLIT_BRAIN), (at(5), K.SPLIT_BRAIN_END)]
    a = compute(events, [(at(-60), at(60))], at(0), at(60))
    assert a.split_brain == 5 * 60
    assert a.one_holder == 55 * 60
    assert a.failovers == 0


def test_the_initial_state_applies_before_the_first_event():
    a = compute(
        [(at(20), K.NO_HOLDER_END)], [(at(0), at(60))], at(0), at(60), initial=(False, True)
    )
    assert (a.no_holder, a.one_holder) == (20 * 60, 40 * 60)


def test_nothing_watched_is_all_unknown():
    a = compute([(at(10), K.FAILOVER)], [], at(0), at(60))
    assert a.unknown == 3600 and a.up_share == 0.0
    assert a.failovers == 1  # the history still knows it happened


def test_events_after_the_window_are_ignored():
    a = compute([(at(70), K.SPLIT_BRAIN)], [(at(0), at(60))], at(0), at(60))
    assert a.one_holder == 3600


@pytest.mark.django_db
def test_from_the_database_per_window(cluster, settings):
    settings.VIPANEL_ALERT_COVERAGE_GAP = 15
    vip = cluster.vips.get()
    now = T0 + timedelta(days=40)
    # Pushed before every window began: each counts in full.
    cluster.vips.update(pushed_at=T0)
    vip.refresh_from_db()

    def event(when, kind):
        FailoverEvent.objects.create(
            cluster=cluster,
            vip=vip,
            vip_address=vip.address,
            at=when,
            kind=kind,
            detected_by="sweep",
        )

    # Watched for the last 10 days only; the last observation 4 s ago (within the gap).
    VipCoverage.objects.create(
        vip=vip, start=now - timedelta(days=10), end=now - timedelta(seconds=4)
    )
    # A no-holder stretch that began 35 days ago and ended 9 days ago (so 1 day of it watched).
    event(now - timedelta(days=35), K.NO_HOLDER)
    event(now - timedelta(days=9), K.NO_HOLDER_END)
    # Split brain for one hour 2 hours ago, and a failover after it.
    event(now - timedelta(hours=2), K.SPLIT_BRAIN)
    event(now - timedelta(hours=1), K.SPLIT_BRAIN_END)
    event(now - timedelta(minutes=30), K.FAILOVER)
    day, week, month = vip_availability(vip, now=now)
    assert (day.window, week.window, month.window) == ("24h", "7d", "30d")
    assert day.split_brain == 3600 and day.unknown == 0 and day.failovers == 1
    assert day.one_holder == 23 * 3600
    assert week.unknown == 0 and week.no_holder == 0
    assert month.unknown == 20 * 86400  # before the panel watched
    assert month.no_holder == 86400
    assert month.one_holder == 9 * 86400 - 3600
    assert month.as_dict()["unknown_share"] == pytest.approx(20 / 30)


@pytest.mark.django_db
def test_observations_extend_a_span_or_start_a_new_one_after_a_gap(cluster, settings):
    settings.VIPANEL_ALERT_COVERAGE_GAP = 15
    vip = cluster.vips.get()
    for seconds in (0, 5, 10, 20, 60, 65):
        signals.observe(vip.pk, T0 + timedelta(seconds=seconds))
    spans = list(VipCoverage.objects.filter(vip=vip).values_list("start", "end"))
    assert spans == [
        (T0, T0 + timedelta(seconds=20)),
        (T0 + timedelta(seconds=60), T0 + timedelta(seconds=65)),
    ]
