"""Availability at /metrics: a prometheus_client collector that alerts.apps adds to the registry
clusters.metrics exposes (clusters never imports alerts), read from alerts.availability at each
scrape.

Shares are gauges from 0 to 1 of each window (24h, 7d, 30d) by state: one holder, no holder,
split brain and unknown (the panel observed nothing); they add up to 1. Failovers per window
are a gauge too: the window slides, so the count goes down as old failovers leave it.
"""

import logging

from prometheus_client.core import GaugeMetricFamily

from alerts import availability
from clusters.metrics import REGISTRY

log = logging.getLogger(__name__)

STATES = ("one_holder", "no_holder", "split_brain", "unknown")


class AvailabilityCollector:
    def collect(self):
        share = GaugeMetricFamily(
            "vipanel_vip_availability_share",
            "Share of the window (0 to 1) the VIP spent in each state: one_holder (up), "
            "no_holder, split_brain, unknown (not observed; never counted as up).",
            labels=["cluster", "vip", "window", "state"],
        )
        failovers = GaugeMetricFamily(
            "vipanel_vip_failovers_in_window",
            "Failovers of the VIP within the window (it slides: old ones leave it).",
            labels=["cluster", "vip", "window"],
        )
        for cluster, vip, window, shares, count in availability.metric_samples():
            for state in STATES:
                share.add_metric([cluster, vip, window, state], shares[state])
            failovers.add_metric([cluster, vip, window], count)
        yield from (share, failovers)


def register():
    """Add the collector to /metrics' registry (once, from AlertsConfig.ready)."""

    REGISTRY.register(AvailabilityCollector())
