"""Availability at /metrics: the alerts app's collector in the registry clusters.metrics serves
(clusters never imports alerts), with shares by state and failovers per window."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.availability import metric_samples, vip_availability
from alerts.metrics import AvailabilityCollector
from alerts.models import VipCoverage
from clusters import metrics
from clusters.models import FailoverEvent
from tests.pushed import mark_pushed
from tests.test_metrics import VIP, parse, scrape, value

pytestmark = pytest.mark.django_db
STATES = ("one_holder", "no_holder", "split_brain", "unknown")


def share(samples, window, state):
    return value(
        samples,
        "vipanel_vip_availability_share",
        cluster="web",
        vip=VIP,
        window=window,
        state=state,
    )


def test_the_collector_is_in_the_registry_metrics_serves():
    collectors = metrics.REGISTRY._collector_to_names  # no public listing in prometheus_client
    assert sum(isinstance(c, AvailabilityCollector) for c in collectors) == 1


def test_a_vip_never_observed_is_wholly_unknown_in_every_window(cluster):
    s = parse(scrape().content.decode())
    for window in ("24h", "7d", "30d"):
        assert share(s, window, "unknown") == 1.0
        assert [share(s, window, st) for st in STATES[:3]] == [0.0, 0.0, 0.0]
        assert (
            value(s, "vipanel_vip_failovers_in_window", cluster="web", vip=VIP, window=window) == 0
        )
    assert "# TYPE vipanel_vip_availability_share gauge" in scrape().content.decode()


def pushed_long_ago(cluster, now):
    """Availability counts from a VIP's first push: these were pushed before every window."""
    mark_pushed(cluster, at=now - timedelta(days=60))
    cluster.vips.update(pushed_at=now - timedelta(days=60))


def test_shares_and_failovers_follow_the_history(cluster):
    vip = cluster.vips.get()
    now = timezone.now()
    pushed_long_ago(cluster, now)
    VipCoverage.objects.create(vip=vip, start=now - timedelta(hours=12), end=now)

    def event(hours, kind):
        FailoverEvent.objects.create(
            cluster=cluster,
            vip=vip,
            vip_address=VIP,
            kind=kind,
            at=now - timedelta(hours=hours),
            detected_by="sweep",
        )

    event(6, FailoverEvent.Kind.SPLIT_BRAIN)
    event(3, FailoverEvent.Kind.SPLIT_BRAIN_END)
    event(1, FailoverEvent.Kind.FAILOVER)
    s = parse(scrape().content.decode())
    # 24h: watched for the last 12h (9h one holder, 3h split brain), unknown before.
    got = {st: share(s, "24h", st) for st in STATES}
    assert got == pytest.approx(
        {"one_holder": 9 / 24, "no_holder": 0.0, "split_brain": 3 / 24, "unknown": 0.5}, abs=1e-4
    )
    assert share(s, "7d", "split_brain") == pytest.approx(3 / (7 * 24), abs=1e-4)
    assert sum(share(s, "30d", st) for st in STATES) == pytest.approx(1.0)
    for window in ("24h", "7d", "30d"):
        assert (
            value(s, "vipanel_vip_failovers_in_window", cluster="web", vip=VIP, window=window) == 1
        )


def test_the_batched_samples_agree_with_each_vips_own_figures(cluster):
    vip = cluster.vips.get()
    other = cluster.vips.create(address="192.0.2.101/24")
    now = timezone.now()
    pushed_long_ago(cluster, now)
    vip.refresh_from_db()
    other.refresh_from_db()
    old = now - timedelta(days=40)
    # Split brain since before the longest window: the state it starts in.
    FailoverEvent.objects.create(
        cluster=cluster,
        vip=vip,
        vip_address=VIP,
        at=old,
        kind=FailoverEvent.Kind.SPLIT_BRAIN,
        detected_by="sweep",
    )
    VipCoverage.objects.create(vip=vip, start=now - timedelta(days=2), end=now)
    VipCoverage.objects.create(
        vip=other, start=now - timedelta(hours=5), end=now - timedelta(hours=2)
    )
    FailoverEvent.objects.create(
        cluster=cluster,
        vip=other,
        vip_address=other.address,
        at=now - timedelta(hours=4),
        kind=FailoverEvent.Kind.NO_HOLDER,
        detected_by="sweep",
    )
    batched = {(v, w): (shares, n) for _, v, w, shares, n in metric_samples(now)}
    for each in (vip, other):
        for a in vip_availability(each, now):
            shares = {st: a.share(st) for st in STATES}
            assert batched[(each.address, a.window)] == (shares, a.failovers)
    assert batched[(VIP, "24h")][0]["split_brain"] == 1.0
    assert batched[(other.address, "24h")][0]["no_holder"] == pytest.approx(2 / 24)
