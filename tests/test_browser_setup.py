"""In Chromium: the guided new cluster, from an empty panel to a cluster pushed to the lab, and
a node's page (its files, key with a copy button, downloads, "test SSH now")."""

import re

import pytest
from django.urls import reverse

from clusters import render
from clusters.models import Cluster, ConfigPush, Node, SSHCredential
from tests.browser import (
    PHONE,
    chromium,  # noqa: F401 (fixture)
    fast_passwords,  # noqa: F401 (fixture)
    fits_the_screen,
    log_in,
    mark_page,
    new_page,  # noqa: F401 (fixture)
    not_reloaded,
    people,  # noqa: F401 (fixture)
    screenshot,
)
from tests.lab import wait_until
from tests.lab_cluster import lab_vip

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PINNED = "SHA256:" + "P" * 20 + "q" * 23


def expect_text(locator, pattern, timeout=15_000):
    from playwright.sync_api import expect

    expect(locator).to_contain_text(pattern, timeout=timeout)


def fill_node(page, row, name, address, fingerprint=""):
    page.locator(f"#id_nodes-{row}-name").fill(name)
    page.locator(f"#id_nodes-{row}-address").fill(address)
    if fingerprint:
        page.locator(f"#id_nodes-{row}-host_key_fingerprint").fill(fingerprint)


# --- The guided form alone -------------------------------------------------------------------


def test_the_form_suggests_a_vrid_adds_rows_and_keeps_what_was_typed_on_an_error(
    new_page, people, cluster, nodes_refuse_ssh
):
    page = new_page()
    log_in(page, "operator-user", next_path=reverse("clusters:cluster-new"))
    mark_page(page)
    page.locator("#id_name").fill("db")
    # The lowest VRID free on the network appears as it is typed (the fixture's cluster has 51).
    page.get_by_label("Network").fill("192.0.2.0/24")
    expect_text(page.locator("#vrid-hint"), "Lowest VRID free on 192.0.2.0/24: 1.")
    expect_text(page.locator("#vrid-hint"), "In use there: 51 (cluster 'web')")
    # The only credential is picked already.
    assert page.get_by_label("Credential").locator("option:checked").inner_text() == "ops"
    # A fourth row, numbered, with the next priority down.
    page.get_by_role("link", name="Another node row").click()
    assert page.locator("#id_nodes-3-priority").input_value() == "90"
    assert page.locator("#id_nodes-TOTAL_FORMS").input_value() == "4"
    expect_text(page.locator('fieldset.node-row[data-row="3"] legend'), "Node 4")
    assert not_reloaded(page)
    fill_node(page, 0, "db-1", "192.0.2.31")
    fill_node(page, 1, "db-2", "192.0.2.32")
    fill_node(page, 3, "db-4", "192.0.2.11")  # web-1's address
    page.get_by_label("VIP address").fill("192.0.2.200/24")
    screenshot(page, "cluster-setup.png")
    page.get_by_role("button", name="Create cluster").click()
    page.wait_for_load_state()
    # Nothing made; the row's field says why, the top names the row; all typed is still there.
    expect_text(page.locator("#setup-problems"), "Node 4 · Address")
    expect_text(page.locator("#id_nodes-3-address_error"), "Another node already has this address")
    assert page.locator("#id_nodes-1-name").input_value() == "db-2"
    assert page.locator("#id_nodes-3-priority").input_value() == "90"
    assert page.get_by_label("VIP address").input_value() == "192.0.2.200/24"
    assert not Cluster.objects.filter(name="db").exists()
    screenshot(page, "cluster-setup-error.png")
    page.locator("#id_nodes-3-address").fill("192.0.2.34")
    page.get_by_role("button", name="Create cluster").click()
    page.wait_for_url(re.compile(r"/clusters/\d+/$"))
    made = Cluster.objects.get(name="db")
    assert made.virtual_router_id == 1
    assert sorted(made.nodes.values_list("name", "priority")) == [
        ("db-1", 120),
        ("db-2", 110),
        ("db-4", 90),
    ]
    expect_text(page.locator("main"), "Cluster db created with 3 nodes")
    expect_text(page.locator("main"), "VRID 1: the lowest one free on 192.0.2.0/24.")


def test_the_form_on_a_phone(new_page, people, credential):
    page = new_page(viewport=PHONE)
    log_in(page, "operator-user", next_path=reverse("clusters:cluster-new"))
    assert fits_the_screen(page)
    page.get_by_text("VRRP and the health check").click()  # step 4 unfolds
    assert page.get_by_label("Advert int").is_visible()
    page.locator("#id_network").fill("10.1.0.0/24")
    expect_text(page.locator("#vrid-hint"), "Lowest VRID free on 10.1.0.0/24: 1.")
    page.locator("#id_name").scroll_into_view_if_needed()
    assert fits_the_screen(page)
    screenshot(page, "phone-cluster-setup.png", full_page=False)
    page.locator("#step-nodes").scroll_into_view_if_needed()
    screenshot(page, "phone-cluster-setup-nodes.png", full_page=False)


def test_without_javascript_more_rows_is_a_link_and_the_form_still_posts(
    new_page, people, credential, nodes_refuse_ssh
):
    page = new_page(javascript=False)
    log_in(page, "operator-user", next_path=reverse("clusters:cluster-new"))
    page.get_by_role("link", name="Another node row").click()
    page.wait_for_url(re.compile(r"\?nodes=4$"))
    assert page.locator("fieldset.node-row:not(template fieldset)").count() == 4
    page.locator("#id_name").fill("db")
    page.get_by_label("Network").fill("198.51.100.0/24")
    fill_node(page, 0, "db-1", "198.51.100.11")
    page.get_by_label("VIP address").fill("198.51.100.100/24")
    page.get_by_role("button", name="Create cluster").click()
    page.wait_for_url(re.compile(r"/clusters/\d+/$"))
    expect_text(page.locator("main"), "SSH test: db-1: not reachable: connection refused")


# --- A node's page ---------------------------------------------------------------------------


def test_the_node_page_copies_the_key_and_downloads_its_files(new_page, people, cluster):
    node = cluster.nodes.get(name="web-1")
    Node.objects.filter(pk=node.pk).update(host_key_fingerprint=PINNED)
    cluster.auth_pass = "s3cret"
    cluster.save()
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=new_page.base)
    log_in(page, "viewer-user", next_path=reverse("clusters:cluster", args=[cluster.pk]))
    page.get_by_role("link", name="web-1", exact=True).click()
    page.wait_for_url(re.compile(rf"/nodes/{node.pk}/$"))
    expect_text(page.locator("#pinned-fingerprint"), PINNED)
    copy = page.locator('#host-key button[data-copy="pinned-fingerprint"]')
    copy.click()
    expect_text(page.locator("#host-key .copied"), "Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == PINNED

    with page.expect_download() as download:
        page.get_by_role("link", name="Download keepalived-web-web-1.conf").click()
    assert download.value.suggested_filename == "keepalived-web-web-1.conf"
    text = open(download.value.path()).read()
    assert "s3cret" not in text and "auth_pass ********" in text
    with page.expect_download() as download:
        page.get_by_role("link", name="Download iptables-web-web-1.v4").click()
    assert download.value.suggested_filename == "iptables-web-web-1.v4"
    assert open(download.value.path()).read() == render.render_iptables(node, 4)
    screenshot(page, "node-viewer.png")

    page = new_page(viewport=PHONE)
    log_in(page, "viewer-user", next_path=reverse("clusters:node", args=[node.pk]))
    assert fits_the_screen(page)
    screenshot(page, "phone-node.png", full_page=False)


def test_without_javascript_the_key_is_whole_and_no_copy_button_shows(new_page, people, cluster):
    node = cluster.nodes.get(name="web-1")
    Node.objects.filter(pk=node.pk).update(host_key_fingerprint=PINNED)
    page = new_page(javascript=False)
    log_in(page, "viewer-user", next_path=reverse("clusters:node", args=[node.pk]))
    assert page.locator("#pinned-fingerprint").inner_text() == PINNED
    assert not page.locator('button[data-copy="pinned-fingerprint"]').is_visible()


def test_on_a_phone_the_node_actions_are_on_screen(new_page, people, cluster):
    page = new_page(viewport=PHONE)
    log_in(page, "operator-user", next_path=reverse("clusters:cluster", args=[cluster.pk]))
    row = page.locator('#nodes-table tr[data-node="web-1"]')
    row.scroll_into_view_if_needed()
    for name in ("Edit", "Maintenance", "Delete"):
        button = row.get_by_role("link" if name == "Edit" else "button", name=name)
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
    assert fits_the_screen(page)
    screenshot(page, "phone-nodes.png", full_page=False)


# --- From an empty panel to a pushed cluster, in the lab -----------------------------------


@pytest.mark.lab
def test_from_an_empty_panel_to_a_pushed_cluster(new_page, people, clean_lab, start_worker):
    assert not Cluster.objects.exists() and not SSHCredential.objects.exists()
    worker = start_worker()
    page = new_page()
    log_in(page, "admin-user")
    expect_text(page.locator("main"), "No clusters yet.")
    # 1. The SSH key (an admin's; operators pick from what admins stored).
    page.get_by_role("link", name="Credentials").click()
    page.get_by_role("link", name="Add credential").click()
    page.locator("#id_name").fill("lab")
    page.get_by_label("Private key").fill(clean_lab.private_key)
    page.get_by_role("button", name="Save credential").click()
    page.wait_for_url(re.compile(r"/credentials/$"))
    # 2. The cluster, its nodes and its VIP in one form.
    page.get_by_role("link", name="New cluster").first.click()
    page.locator("#id_name").fill("edge")
    network = str(clean_lab.network)
    page.get_by_label("Network").fill(network)
    expect_text(page.locator("#vrid-hint"), f"Lowest VRID free on {network}: 1.")
    expect_text(page.locator("#step-cluster"), "lab is the only one, so it is picked.")
    # The first two nodes' keys are typed (read on their consoles); the third is trusted
    # after the SSH test shows the key it offers.
    fill_node(page, 0, clean_lab[2].name, clean_lab[2].address, clean_lab[2].fingerprint)
    fill_node(page, 1, clean_lab[1].name, clean_lab[1].address, clean_lab[1].fingerprint)
    fill_node(page, 2, clean_lab[0].name, clean_lab[0].address)
    vip = lab_vip(clean_lab)
    page.get_by_label("VIP address").fill(vip)
    page.get_by_text("VRRP and the health check").click()
    page.get_by_label("Reload command").fill(clean_lab[0].reload_command)
    page.get_by_role("button", name="Create cluster").click()
    page.wait_for_url(re.compile(r"/clusters/\d+/$"), timeout=60_000)
    cluster = Cluster.objects.get(name="edge")
    main = page.locator("main")
    expect_text(main, "Cluster edge created with 3 nodes")
    assert cluster.credential.name == "lab"  # the only one: picked in the form already
    expect_text(main, f"SSH test: {clean_lab[2].name}: SSH works (as root)")
    offered = clean_lab[0].fingerprint
    expect_text(
        main, f"SSH test: {clean_lab[0].name}: reachable; host key not trusted yet: {offered}"
    )
    screenshot(page, "cluster-created.png")
    # 3. Trust the third key, compared with what the node's console prints.
    row = page.locator(f'#nodes-table tr[data-node="{clean_lab[0].name}"]')
    expect_text(row, offered)
    row.get_by_role("button", name="Trust").click()
    page.wait_for_url(re.compile(rf"/clusters/{cluster.pk}/$"))
    assert cluster.readiness_errors() == {}
    # 4. Preview, read what the push will do, push, and watch it to the end.
    page.get_by_role("button", name="Preview and push…").click()
    expect_text(page.locator("#preview"), "3 of 3 nodes would change", timeout=30_000)
    page.get_by_role("button", name="Push 3 nodes of edge").click()
    page.wait_for_url(re.compile(r"/pushes/\d+/$"))
    page.wait_for_selector(
        '#push-live[data-state="succeeded"], #push-live[data-state="failed"]', timeout=180_000
    )
    push = ConfigPush.objects.get(cluster=cluster)
    assert push.state == "succeeded", (push.detail, push.log, worker.tail())
    wait_until(
        lambda: clean_lab[2].holds(vip), timeout=30, message="the first row's node never held it"
    )

    # The node page of the holder: test SSH now, the live file against what would be sent.
    holder = cluster.nodes.get(name=clean_lab[2].name)
    page.goto(reverse("clusters:node", args=[holder.pk]))
    mark_page(page)
    page.get_by_role("button", name="Test SSH now").click()
    check = page.locator("#ssh-check")
    expect_text(check, f"{holder.name}: SSH works (as root); running", timeout=30_000)
    assert check.locator('[data-outcome="ok"]').count() == 6
    page.get_by_role("button", name="Compare with the live file").click()
    expect_text(
        page.locator("#live-diff"), "The live file is what a push would send.", timeout=30_000
    )
    assert not_reloaded(page)
    screenshot(page, "node.png")


@pytest.mark.lab
def test_adding_a_node_shows_its_ssh_test_in_place_and_its_key_is_trusted_from_there(
    new_page, people, clean_lab
):
    from tests.lab_cluster import make_lab_cluster

    cluster = make_lab_cluster(clean_lab, name="grow")
    cluster.nodes.get(name=clean_lab[2].name).delete()
    page = new_page()
    log_in(page, "operator-user", next_path=reverse("clusters:cluster", args=[cluster.pk]))
    mark_page(page)
    form = page.locator("#node-add-form")
    form.get_by_label("Name").fill(clean_lab[2].name)
    form.get_by_label("Address").fill(clean_lab[2].address)
    form.get_by_label("Priority").fill("130")
    form.get_by_role("button", name="Add node").click()
    check = page.locator("#ssh-check")
    offered = clean_lab[2].fingerprint
    expect_text(check, f"host key not trusted yet: {offered}", timeout=30_000)
    assert not_reloaded(page)
    assert check.locator('[data-step="host_key"]').get_attribute("data-outcome") == "bad"
    assert check.locator("button.copy").is_visible()  # shown by the script, in swapped content
    check.scroll_into_view_if_needed()
    screenshot(page, "node-added.png", full_page=False)
    check.get_by_role("button", name=f"Trust {offered}").click()
    node = cluster.nodes.get(name=clean_lab[2].name)
    page.wait_for_url(re.compile(rf"/nodes/{node.pk}/$"))
    expect_text(page.locator("#pinned-fingerprint"), offered)
    node.refresh_from_db()
    assert node.host_key_fingerprint == offered
