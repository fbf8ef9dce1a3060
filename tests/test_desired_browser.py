"""Desired against observed in Chromium (issue 17): a change saved but not pushed is amber with
its diff one click away, and every part of the cluster page that shows state moves together."""

import re
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters.models import FailoverEvent, VirtualIP
from tests.browser import (
    chromium,  # noqa: F401 (fixture)
    fast_passwords,  # noqa: F401 (fixture)
    lab_cluster,
    log_in,
    mark_page,
    new_page,  # noqa: F401 (fixture)
    not_reloaded,
    observe,
    people,  # noqa: F401 (fixture)
    screenshot,
)
from tests.lab_cluster import lab_vip, place_configs
from tests.pushed import mark_pushed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
AMBER = "rgb(138, 75, 0)"  # --pending in static/vipanel.css


def expect_text(locator, pattern, timeout=15_000):
    from playwright.sync_api import expect

    expect(locator).to_contain_text(pattern, timeout=timeout)


class Traffic:
    """When (monotonic, in this process) the page received the answer of each POST and sent
    each GET of the cluster's live parts: a change refreshes them at once, not at the next
    5 s tick. Measured in the browser's own events, so a slow server does not skew it."""

    def __init__(self, page, cluster):
        self.status = reverse("clusters:cluster-status", args=[cluster.pk])
        self.posts, self.polls = [], []
        page.on("response", self._response)
        page.on("request", self._request)

    def _response(self, response):
        if response.request.method == "POST":
            self.posts.append(time.monotonic())

    def _request(self, request):
        if request.method == "GET" and request.url.endswith(self.status):
            self.polls.append(time.monotonic())

    def refreshed_after_the_last_post(self):
        """Seconds from the last POST's answer to the next poll (None: none yet)."""
        later = [t for t in self.polls if t >= self.posts[-1]]
        return later[0] - self.posts[-1] if later else None


@pytest.mark.lab
def test_a_vip_not_pushed_is_amber_with_its_diff_one_click_away(clean_lab, new_page, people):
    cluster = place_configs(clean_lab, lab_cluster(clean_lab))
    observe(cluster, cluster.nodes.get(name=clean_lab[2].name))
    page = new_page()
    log_in(page, "operator-user", next_path=reverse("clusters:cluster", args=[cluster.pk]))
    mark_page(page)
    traffic = Traffic(page, cluster)
    new = lab_vip(clean_lab, 150)
    form = page.locator("#vip-add-form")
    form.get_by_label("Address").fill(new)
    form.get_by_role("button", name="Add VIP").click()
    row = page.locator(f'#status tr[data-vip="{new}"]')
    expect_text(row, "pending push")
    assert traffic.refreshed_after_the_last_post() < 1.0  # at once, not at the next tick
    badge = row.locator(".badge")
    assert badge.evaluate("e => getComputedStyle(e).color") == AMBER
    assert "Saved in vipanel but not pushed yet" in badge.get_attribute("title")
    expect_text(page.locator("#pending-summary"), f"VIP {new}")
    assert page.locator("#status").inner_text().count("no holder") == 0
    # Each node's config would change; none of it is called drift.
    for node in clean_lab:
        expect_text(page.locator(f'#status tr[data-node="{node.name}"] td.config'), "pending push")
    assert page.locator("#status .badge.bad").count() == 0
    # The diff is the preview, one click away, in place.
    row.get_by_role("button", name="Show the diff").click()
    diff = page.locator('#preview .node-preview[data-changed="yes"] pre.diff').first
    ip = new.split("/")[0]
    expect_text(diff, ip, timeout=20_000)
    assert re.search(rf"^\+.*{re.escape(ip)}", diff.inner_text(), re.M)
    assert not_reloaded(page)
    screenshot(page, "pending-push.png")
    # The dashboard: amber, counted apart from the problems, in its place by name.
    page.goto("/")
    cluster_row = page.locator(f"#cluster-{cluster.pk}")
    expect_text(cluster_row, "changes not pushed")
    assert cluster_row.get_attribute("class") == "cluster pending"
    vip_badge = cluster_row.locator(f'li[data-vip="{new}"] .badge')
    assert vip_badge.evaluate("e => getComputedStyle(e).color") == AMBER
    expect_text(page.locator(".summary"), "1 with changes not pushed")
    expect_text(page.locator(".summary"), "none with problems")
    screenshot(page, "pending-dashboard.png")
    cluster_row.get_by_role("button", name="see the diff").click()
    expect_text(page.locator("pre.diff").first, ip, timeout=20_000)


def test_the_cluster_page_refreshes_every_part_together(new_page, people, cluster):
    cluster.vips.all().delete()
    page = new_page()
    log_in(page, "operator-user", next_path=reverse("clusters:cluster", args=[cluster.pk]))
    mark_page(page)
    traffic = Traffic(page, cluster)
    expect_text(page.locator("#push-state"), "Add at least one virtual IP")
    # The fix made on the page clears the warning at once (not at the next 5 s poll).
    form = page.locator("#vip-add-form")
    form.get_by_label("Address").fill("192.0.2.100/24")
    form.get_by_role("button", name="Add VIP").click()
    expect_text(page.locator('#status tr[data-vip="192.0.2.100/24"]'), "pending push")
    assert traffic.refreshed_after_the_last_post() < 1.0
    assert "Not ready to push" not in page.locator("#push-state").inner_text()
    # A push put it on the nodes; a sweep then sees web-2 take it over from web-1. The status,
    # the instances' holder and the recent failovers change in the same refresh.
    mark_pushed(cluster)
    observe(cluster, cluster.nodes.get(name="web-1"))
    expect_text(page.locator('#status tr[data-vip="192.0.2.100/24"]'), "web-1", 8_000)
    observe(cluster, cluster.nodes.get(name="web-2"))
    FailoverEvent.objects.create(
        cluster=cluster,
        vip=VirtualIP.objects.get(cluster=cluster),
        vip_address="192.0.2.100/24",
        from_node="web-1",
        to_node="web-2",
        at=timezone.now(),
        detected_by="sweep",
    )
    expect_text(page.locator('#status tr[data-vip="192.0.2.100/24"]'), "web-2", 8_000)
    # Read at once after the status moved: no second wait for the other parts.
    parts = page.evaluate(
        """() => ({
            failovers: document.querySelector('#failovers').innerText,
            holder: document.querySelector('#instance-main-holder').innerText,
            pending: !!document.querySelector('#pending-summary'),
            availability: document.querySelector('#availability').innerText,
        })"""
    )
    assert "web-1 → web-2" in parts["failovers"], parts
    assert parts["holder"] == "web-2" and parts["pending"] is False, parts
    assert "counted from its first push" not in parts["availability"], parts
    # Swapped by id, never added twice (table parts travel in <template>).
    assert page.locator("#nodes-body tr").count() == 2
    assert page.locator("#instance-main-holder").count() == 1
    assert page.locator("#failovers").count() == 1 and page.locator("#incidents").count() == 1
    assert not_reloaded(page)
    screenshot(page, "cluster-live.png")
