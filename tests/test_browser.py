"""The panel in a real browser: Debian's Chromium driven by Playwright, on the live server.

The first group needs only the browser. The last two need the namespace lab and a real Celery
worker (and beat): a preview and a push watched to the end, and a failover found on the
dashboard and in the history after the holder's keepalived is killed. They save the README's
screenshots under docs/screenshots/.
"""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters.models import ConfigPush, FailoverEvent, Node, NodeState
from tests.browser import (
    PHONE,
    chromium,  # noqa: F401 (fixture)
    fast_passwords,  # noqa: F401 (fixture)
    fits_the_screen,
    lab_cluster,
    log_in,
    mark_page,
    new_page,  # noqa: F401 (fixture)
    not_reloaded,
    observe,
    people,  # noqa: F401 (fixture)
    screenshot,
    seed_fleet,
)
from tests.lab import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def expect_text(locator, pattern, timeout=15_000):
    from playwright.sync_api import expect

    expect(locator).to_contain_text(pattern, timeout=timeout)


def test_an_operator_logs_in_and_the_dashboard_updates_in_place(new_page, people, cluster):
    page = new_page()
    page.goto("/")
    assert "/login/?next=/" in page.url  # login on every page
    log_in(page, "operator-user")
    assert page.get_by_role("heading", name="Clusters").is_visible()
    card = page.locator(f"#cluster-{cluster.pk}")
    expect_text(card, "not checked yet")
    mark_page(page)
    # A sweep records who holds the VIP; the dashboard shows it within one poll, in place.
    observe(cluster, cluster.nodes.get(name="web-2"))
    expect_text(card.locator('li[data-vip="192.0.2.100/24"]'), "web-2", timeout=12_000)
    assert not_reloaded(page)
    # The htmx script came from this server.
    sources = page.eval_on_selector_all("script[src]", "els => els.map(e => e.src)")
    assert sources and all(s.startswith(new_page.base + "/static/") for s in sources)


def test_a_poll_after_the_session_ended_goes_to_the_login_page(new_page, people, cluster):
    from django.contrib.sessions.models import Session

    page = new_page()
    log_in(page, "viewer-user")
    Session.objects.all().delete()
    # The next poll is answered by the login page: the whole page goes there.
    page.wait_for_url(re.compile(r"/login/\?next="), timeout=12_000)
    assert page.locator("#dashboard form").count() == 0


def test_the_dashboard_shows_trouble_in_red(new_page, people):
    seed_fleet(people["operator"])
    page = new_page()
    log_in(page, "viewer-user")
    split = page.locator("li.vip-split")
    expect_text(split, "split brain")
    assert split.locator(".badge.bad").count() == 1
    expect_text(page.locator("li.vip-none"), "no holder")
    colour = page.locator("li.vip-split .badge").evaluate("e => getComputedStyle(e).color")
    assert colour == "rgb(176, 0, 32)"
    screenshot(page, "dashboard.png")


def test_add_node_shows_the_error_in_place_then_adds_the_row(
    new_page, people, cluster, nodes_refuse_ssh
):
    page = new_page()
    log_in(page, "operator-user", next_path=reverse("clusters:cluster", args=[cluster.pk]))
    mark_page(page)
    form = page.locator("#node-add-form")
    form.get_by_label("Name").fill("web-3")
    form.get_by_label("Address").fill("192.0.2.13")
    form.get_by_label("Priority").fill("120")
    form.get_by_role("button", name="Add node").click()
    error = page.locator("#id_priority_error")
    expect_text(error, "Priority 120 is already used by node 'web-1'")
    assert not_reloaded(page)
    assert not Node.objects.filter(name="web-3").exists()
    # What was typed is still there; fix the priority only.
    form = page.locator("#node-add-form")
    assert form.get_by_label("Name").input_value() == "web-3"
    form.get_by_label("Priority").fill("100")
    form.get_by_role("button", name="Add node").click()
    row = page.locator('#nodes-table tr[data-node="web-3"]')
    expect_text(row, "192.0.2.13")
    assert not_reloaded(page)
    assert page.locator("#id_priority_error").count() == 0
    assert Node.objects.get(name="web-3").priority == 100


def test_a_viewer_sees_no_push_button_and_is_refused_if_it_posts_anyway(new_page, people, cluster):
    page = new_page()
    log_in(page, "viewer-user", next_path=reverse("clusters:cluster", args=[cluster.pk]))
    assert page.get_by_role("button", name="Push").count() == 0
    assert page.get_by_role("button", name="Add node").count() == 0
    # Post the push anyway, with a valid CSRF token: the role says no.
    status, body = page.evaluate(
        """async (url) => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken'];
            const r = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token}});
            return [r.status, await r.text()];
        }""",
        reverse("clusters:push-start", args=[cluster.pk]),
    )
    assert status == 403
    assert "This needs the operator role." in body
    assert not ConfigPush.objects.exists()


def test_without_javascript_forms_post_and_redirect(new_page, people, cluster, nodes_refuse_ssh):
    page = new_page(javascript=False)
    log_in(page, "operator-user", next_path=reverse("clusters:cluster", args=[cluster.pk]))
    form = page.locator("#node-add-form")
    form.get_by_label("Name").fill("web-3")
    form.get_by_label("Address").fill("192.0.2.13")
    form.get_by_label("Priority").fill("100")
    form.get_by_role("button", name="Add node").click()
    page.wait_for_load_state()
    assert page.url.endswith(reverse("clusters:cluster", args=[cluster.pk]) + "#nodes")
    expect_text(page.locator(".message.success"), "Node web-3 added")
    assert page.locator('#nodes-table tr[data-node="web-3"]').count() == 1


def test_the_pages_fit_a_phone(new_page, people, cluster):
    seed_fleet(people["operator"])
    page = new_page(viewport=PHONE)
    log_in(page, "operator-user")
    for path in (
        "/",
        reverse("clusters:cluster", args=[cluster.pk]),
        reverse("clusters:history", args=[cluster.pk]),
        reverse("clusters:audit"),
    ):
        page.goto(path)
        assert fits_the_screen(page), path
    page.goto(reverse("clusters:cluster", args=[cluster.pk]))
    screenshot(page, "phone-cluster.png", full_page=False)


# --- With the lab and a real worker -------------------------------------------------------


def wait_for_holder(lab, vip, node, timeout=30):
    wait_until(lambda: node.holds(vip), timeout=timeout, message=f"{node.name} never held {vip}")


@pytest.mark.lab
def test_preview_then_push_and_watch_the_live_view_to_the_end(
    new_page, people, clean_lab, start_worker
):
    cluster = lab_cluster(clean_lab)
    worker = start_worker()
    page = new_page()
    log_in(page, "operator-user", next_path=reverse("clusters:cluster", args=[cluster.pk]))
    page.get_by_role("button", name="Preview and push…").click()
    previews = page.locator("#preview .node-preview")
    expect_text(page.locator("#preview"), "3 of 3 nodes would change", timeout=30_000)
    # What the push will do: nothing runs keepalived yet, so one election after the install.
    expect_text(page.locator("#preview .impact-moves"), "within ~3.5 s of the first start")
    assert previews.count() == 3
    first = previews.nth(0)
    assert first.get_attribute("data-changed") == "yes"
    expect_text(first.locator("pre.diff"), "virtual_router_id 78")
    screenshot(page, "cluster.png")

    page.get_by_role("button", name="Push 3 nodes of lab-web").click()
    page.wait_for_url(re.compile(r"/pushes/\d+/$"))
    mark_page(page)
    live = page.locator("#push-live")
    live.locator('[data-state="running"], [data-state="applied"]').first.wait_for(timeout=30_000)
    page.wait_for_selector(
        '#push-live[data-state="succeeded"], #push-live[data-state="failed"]', timeout=120_000
    )
    push = ConfigPush.objects.get(cluster=cluster)
    assert push.state == "succeeded", (push.detail, push.log, worker.tail())
    assert not_reloaded(page)  # every update came in place
    progress = page.locator("#push-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max") == "3"
    expect_text(page.locator("#push-log"), "push succeeded")
    assert page.locator("#push-steps .badge.good").count() == 3
    # It keeps polling until the prediction is judged (moves may still be reported for the
    # VRRP settling time and a sweep after the end), then stops with the verdict.
    page.wait_for_selector("#push-live:not([hx-get])", timeout=30_000)
    assert page.locator("#verdict").get_attribute("data-status") == "held"
    screenshot(page, "push.png")
    vip = cluster.vips.get().address
    wait_for_holder(clean_lab, vip, clean_lab[2])


@pytest.mark.lab
def test_killing_the_holders_keepalived_shows_the_failover_on_the_dashboard_and_history(
    new_page, people, clean_lab, start_worker
):
    cluster = lab_cluster(clean_lab)
    start_worker()
    from clusters.services.pushes import start_push

    push = start_push(people["operator"], cluster, confirm=cluster.name)
    wait_until(
        lambda: not ConfigPush.objects.get(pk=push.pk).is_active,
        timeout=120,
        message="the push did not finish",
    )
    push.refresh_from_db()
    assert push.state == "succeeded", (push.detail, push.log)
    vip = cluster.vips.get().address
    holder, backup = clean_lab[2], clean_lab[1]
    wait_for_holder(clean_lab, vip, holder)
    start_worker("beat", VIPANEL_SWEEP_INTERVAL="2")
    wait_until(
        lambda: NodeState.objects.filter(node__cluster=cluster).count() == 3,
        timeout=30,
        message="beat's sweep did not record the nodes",
    )

    page = new_page()
    log_in(page, "viewer-user")
    row = page.locator(f'#cluster-{cluster.pk} li[data-vip="{vip}"]')
    expect_text(row, holder.name, timeout=15_000)
    mark_page(page)

    holder.kill_keepalived()
    wait_for_holder(clean_lab, vip, backup)
    # The sweep finds the failover; the dashboard shows it within a poll or two, in place.
    expect_text(row, backup.name, timeout=30_000)
    expect_text(
        page.locator(f"#cluster-{cluster.pk} .failovers"),
        f"{holder.name} → {backup.name}",
        timeout=15_000,
    )
    assert not_reloaded(page)
    stopped = page.locator(f'#cluster-{cluster.pk} li[data-node="{holder.name}"]')
    expect_text(stopped, "stopped", timeout=15_000)
    screenshot(page, "failover.png")

    event = FailoverEvent.objects.get(cluster=cluster, kind="failover")
    assert (event.from_node, event.to_node) == (holder.name, backup.name)
    # From just before the cluster was made to now: the whole story, drawn wide.
    since = timezone.localtime(cluster.created - dt.timedelta(seconds=5)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    until = timezone.localtime(timezone.now() + dt.timedelta(seconds=5)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    page.goto(reverse("clusters:history", args=[cluster.pk]) + f"?since={since}&until={until}")
    table = page.locator("#events tr.event-failover")
    assert table.count() == 1
    expect_text(table, holder.name)
    expect_text(table, backup.name)
    svg = page.locator("svg.timeline.wide")
    assert svg.locator(f'rect[data-holder="{holder.name}"]').count() >= 1
    assert svg.locator(f'rect[data-holder="{backup.name}"]').count() == 1
    assert svg.locator('g.mark[data-kind="failover"]').count() == 1
    screenshot(page, "history.png")


def test_an_operator_trusts_the_key_a_node_offered_and_picks_a_typed_check(
    new_page, people, cluster
):
    # Nothing pins a key by itself: the node offered one, a person compares and trusts it.
    offered = "SHA256:" + "A" * 43
    Node.objects.filter(name="web-1").update(
        host_key_fingerprint="", offered_host_key_fingerprint=offered
    )
    page = new_page()
    log_in(page, "operator-user", next_path=reverse("clusters:cluster", args=[cluster.pk]))
    row = page.locator('#nodes-table tr[data-node="web-1"]')
    expect_text(row, f"host key not trusted yet: {offered}")
    screenshot(page, "untrusted-node.png")
    row.get_by_role("button", name="Trust").click()
    expect_text(page.locator('#nodes-table tr[data-node="web-1"]'), "SHA256:AAAA")
    assert Node.objects.get(name="web-1").host_key_fingerprint == offered
    # Settings: an operator picks a typed health check; the free-form command is an admin's.
    page.goto(reverse("clusters:cluster-edit", args=[cluster.pk]))
    check_type = page.get_by_label("Check type")
    values = check_type.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert "command" not in values and "process" in values
    assert page.get_by_label("Reload command").is_disabled()
    check_type.select_option("process")
    page.get_by_label("Check target").fill("haproxy")
    screenshot(page, "cluster-settings.png")
    page.get_by_role("button", name=re.compile("Save")).click()
    page.wait_for_url(re.compile(rf"/clusters/{cluster.pk}/$"))
    cluster.refresh_from_db()
    assert (cluster.check_type, cluster.check_target) == ("process", "haproxy")
