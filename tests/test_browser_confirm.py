"""Confirmations in Chromium (issue 17, items 2 and 7): push, maintenance, drill and deletes say
what will happen and ask, in a dialog with htmx and on a page of their own without JavaScript.

The first group needs only the browser (the drill's and the deletions' predictions need no SSH:
the holders are what a sweep recorded). The last needs the namespace lab and a real worker: a
maintenance push confirmed in the dialog and followed to its verdict, and a push that skips a
node whose sshd is down. Screenshots go where tests/browser.py says (docs/screenshots with
VIPANEL_SCREENSHOTS=docs).
"""

import re

import pytest
from django.urls import reverse

from clusters import remote
from clusters.history import sweep_cluster
from clusters.models import Cluster, ConfigPush, Node, VirtualIP
from tests.browser import (
    SCREENSHOTS,
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
from tests.lab import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def expect_text(locator, pattern, timeout=15_000):
    from playwright.sync_api import expect

    expect(locator).to_contain_text(pattern, timeout=timeout)


def cluster_page(new_page, cluster, javascript=True):
    page = new_page(javascript=javascript)
    log_in(page, "operator-user", next_path=reverse("clusters:cluster", args=[cluster.pk]))
    return page


def shot(locator, name):
    """A picture of one part of the page (the whole page is too long to read)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(SCREENSHOTS / name))


def dialog(page):
    box = page.locator("dialog#confirm-dialog")
    box.locator("#confirm-title").wait_for()
    assert box.evaluate("d => d.open")
    return box


def test_the_drill_says_where_the_vip_goes_and_asks_in_a_dialog(new_page, people, cluster):
    observe(cluster, cluster.nodes.get(name="web-1"))
    page = cluster_page(new_page, cluster)
    mark_page(page)
    page.get_by_role("button", name="Failover drill…").click()
    box = dialog(page)
    expect_text(box.locator("#confirm-title"), "Failover drill of web?")
    moves = box.locator(".impact-moves")
    expect_text(moves, "web-2 takes 192.0.2.100 from web-1 within ~0.6 s of keepalived stopping")
    expect_text(moves, "web-1 takes 192.0.2.100 from web-2 within ~3.5 s of keepalived starting")
    screenshot(page, "confirm-drill.png", full_page=False)
    assert not ConfigPush.objects.exists()  # asking started nothing
    box.get_by_role("button", name="Stop keepalived on web-1 of web").click()
    page.wait_for_url(re.compile(r"/pushes/\d+/$"))
    record = ConfigPush.objects.get(kind="drill")
    assert record.requested_by == people["operator"]
    assert record.prediction["moves"][0].startswith("web-2 takes 192.0.2.100 from web-1")
    expect_text(page.locator(".push-state"), "failover drill")
    expect_text(page.locator("#push-prediction"), "web-2 takes 192.0.2.100")


def test_a_deletion_asks_in_a_dialog_cancel_keeps_it_and_confirm_deletes_in_place(
    new_page, people, cluster
):
    observe(cluster, cluster.nodes.get(name="web-1"))
    page = cluster_page(new_page, cluster)
    mark_page(page)
    vip_row = page.locator("#vips-table tr", has_text="192.0.2.100/24")
    vip_row.get_by_role("button", name="Delete…").click()
    box = dialog(page)
    expect_text(box, "Delete VIP 192.0.2.100/24 from web?")
    expect_text(box, "192.0.2.100 is the last VIP of VI_web")
    box.get_by_role("link", name="Cancel").click()
    assert not box.evaluate("d => d.open")
    assert VirtualIP.objects.filter(address="192.0.2.100/24").exists()

    node_row = page.locator('#nodes-table tr[data-node="web-2"]')
    node_row.get_by_role("button", name="Delete…").click()
    box = dialog(page)
    expect_text(box.locator("#confirm-title"), "Delete node web-2 from web?")
    expect_text(box, "vipanel never connects to it again")
    screenshot(page, "confirm-delete-node.png", full_page=False)
    box.get_by_role("button", name="Delete node web-2 from web").click()
    page.locator('#nodes-table tr[data-node="web-2"]').wait_for(state="detached")
    expect_text(page.locator("#nodes .message.success"), "Node web-2 deleted")
    assert not box.evaluate("d => d.open")
    assert not_reloaded(page)
    assert list(Node.objects.values_list("name", flat=True)) == ["web-1"]


def test_without_javascript_each_confirmation_is_a_page(new_page, people, cluster):
    observe(cluster, cluster.nodes.get(name="web-1"))
    page = cluster_page(new_page, cluster, javascript=False)
    page.get_by_role("button", name="Failover drill…").click()
    page.wait_for_load_state()
    assert page.url.endswith(reverse("clusters:drill", args=[cluster.pk]))
    expect_text(page.locator("h2#confirm-title"), "Failover drill of web?")
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(re.compile(rf"/clusters/{cluster.pk}/$"))
    assert not ConfigPush.objects.exists()

    page.locator('#nodes-table tr[data-node="web-2"]').get_by_role("button", name="Delete…").click()
    page.wait_for_load_state()
    expect_text(page.locator("#confirm-title"), "Delete node web-2 from web?")
    page.get_by_role("button", name="Delete node web-2 from web").click()
    page.wait_for_url(re.compile(rf"/clusters/{cluster.pk}/#nodes$"))
    expect_text(page.locator(".message.success"), "Node web-2 deleted")

    page.get_by_role("button", name="Delete cluster…").click()
    page.wait_for_load_state()
    expect_text(page.locator(".impact"), "Nothing changes on the nodes")
    page.get_by_label("Type the cluster's name").fill("db")
    page.get_by_role("button", name="Delete cluster web").click()
    page.wait_for_load_state()
    expect_text(page.locator("#confirm-error"), "That is not the cluster's name")
    assert Cluster.objects.filter(pk=cluster.pk).exists()
    screenshot(page, "confirm-delete-cluster.png")
    page.get_by_label("Type the cluster's name").fill("web")
    page.get_by_role("button", name="Delete cluster web").click()
    page.wait_for_url(re.compile(r"/$"))
    expect_text(page.locator(".message.success"), "Cluster web deleted from vipanel")
    assert not Cluster.objects.exists()


# --- With the lab and a real worker -------------------------------------------------------


@pytest.fixture
def running(clean_lab, start_worker, people):
    """A lab cluster pushed once through the worker, its holders recorded by a sweep."""
    from clusters.services.pushes import start_push

    cluster = lab_cluster(clean_lab)
    start_worker()
    push = start_push(people["operator"], cluster, confirm=cluster.name)
    wait_until(
        lambda: not ConfigPush.objects.get(pk=push.pk).is_active,
        timeout=120,
        message="the first push did not finish",
    )
    assert ConfigPush.objects.get(pk=push.pk).state == "succeeded"
    wait_until(
        lambda: (
            sweep_cluster(cluster).holders.get(cluster.vips.get().address) == [clean_lab[2].name]
        ),
        timeout=30,
        message="the highest priority does not hold the VIP",
    )
    return cluster


@pytest.mark.lab
def test_maintenance_of_the_holder_says_who_takes_the_vip_and_the_push_keeps_it(
    new_page, people, clean_lab, running
):
    n2, n3 = clean_lab[1].name, clean_lab[2].name
    ip = running.vips.get().address.split("/")[0]
    page = cluster_page(new_page, running)
    page.locator(f'#nodes-table tr[data-node="{n3}"]').get_by_role(
        "button", name="Maintenance…"
    ).click()
    box = dialog(page)
    expect_text(box.locator("#confirm-title"), f"Putting {n3} into maintenance?", timeout=30_000)
    expect_text(box.locator(".impact-moves"), f"{n2} takes {ip} from {n3} within ~3.6 s")
    expect_text(box.locator(f'.impact-nodes li[data-node="{n3}"]'), "priority 120 → 1")
    screenshot(page, "confirm-maintenance.png", full_page=False)
    box.get_by_role("button", name=f"Put {n3} of lab-web into maintenance").click()
    page.wait_for_url(re.compile(r"/pushes/\d+/$"))
    page.wait_for_selector(
        '#push-live[data-state="succeeded"], #push-live[data-state="failed"]', timeout=120_000
    )
    push = ConfigPush.objects.get(kind="maintenance")
    assert push.state == "succeeded", push.detail
    prediction = page.locator("#push-prediction")
    expect_text(prediction, f"{n2} takes {ip} from {n3}")
    assert page.locator("#verdict").get_attribute("data-status") in ("pending", "held")
    assert push.observed == {running.vips.get().address: [n2]}
    screenshot(page, "push-prediction.png")
    # The history lists the push's prediction with its verdict.
    page.goto(reverse("clusters:history", args=[running.pk]))
    item = page.locator(f'#predictions li[data-push="{push.pk}"]')
    expect_text(item, f"maintenance #{push.pk}")
    assert item.get_attribute("data-status") in ("pending", "held")


@pytest.mark.lab
def test_a_push_with_an_unreachable_node_offers_to_skip_it_and_leaves_it_alone(
    new_page, people, clean_lab, running
):
    down = clean_lab[1]
    before = down.exec(f"cat {running.config_path}").stdout
    down.stop_sshd()
    remote.POOL.clear()
    running.vips.create(address=running.vips.get().address.replace(".100/", ".101/"))
    page = cluster_page(new_page, running)
    page.get_by_role("button", name="Preview and push…").click()
    preview = page.locator("#preview")
    expect_text(preview, f"1 could not be read ({down.name})", timeout=30_000)
    expect_text(preview.locator("#confirm-blocked"), "A push is refused while a node")
    assert preview.locator("#confirm-button").count() == 0
    expect_text(preview.locator("details.would-send summary"), f"send to {down.name}")
    shot(preview, "confirm-unreachable.png")
    preview.get_by_role("button", name=f"Preview skipping {down.name}").click()
    button = preview.locator("#confirm-button")
    expect_text(button, f"of lab-web, skipping {down.name}", timeout=30_000)
    expect_text(preview.locator(f'.impact-nodes li[data-node="{down.name}"]'), "skipped")
    shot(preview, "confirm-skip.png")
    button.click()
    page.wait_for_url(re.compile(r"/pushes/\d+/$"))
    page.wait_for_selector(
        '#push-live[data-state="succeeded"], #push-live[data-state="failed"]', timeout=120_000
    )
    push = ConfigPush.objects.exclude(pk__in=[]).order_by("-pk").first()
    assert push.state == "succeeded", push.detail
    expect_text(page.locator("#push-skipped"), f"{down.name} (by operator-user)")
    row = page.locator(f'#push-steps tr[data-node="{down.name}"]')
    assert row.get_attribute("data-state") == "skipped"
    assert down.exec(f"cat {running.config_path}").stdout == before
    screenshot(page, "push-skipped.png")
