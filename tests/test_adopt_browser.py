"""Adopting the how-to's running cluster through the panel in Chromium, against the lab: the
nodes, each offered host key ticked after comparing, the proposal with the split brain and its
keeper, the findings and carried blocks, then the new cluster's page and its preview."""

import pytest

from clusters.models import Cluster, SSHCredential
from tests.browser import (
    chromium,  # noqa: F401 (fixture)
    fast_passwords,  # noqa: F401 (fixture)
    log_in,
    new_page,  # noqa: F401 (fixture)
    people,  # noqa: F401 (fixture)
    screenshot,
)
from tests.lab import wait_until
from tests.lab_cluster import lab_vip
from tests.test_adopt_lab import HOWTO, bare, start_by_hand

pytestmark = [pytest.mark.browser, pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_an_operator_adopts_the_howto_cluster_in_the_panel(new_page, people, clean_lab):
    lab = clean_lab
    vip = bare(lab_vip(lab))
    configs = [
        HOWTO.format(name=node.name, vrid=vrid, priority=priority, vip=vip)
        for node, vrid, priority in zip(lab, (101, 102, 103), (100, 200, 150), strict=True)
    ]
    # node 3 also runs an LVS-free extra the panel must carry: a notify line of its own.
    configs[2] = configs[2].replace(
        "    advert_int 1\n", '    advert_int 1\n    notify_master "/usr/bin/logger -t n3"\n'
    )
    start_by_hand(lab, configs)
    wait_until(lambda: len(lab.vip_holders(vip)) == 3, timeout=20, message="no split brain")
    SSHCredential.objects.create(name="lab", username="root", private_key=lab[0].private_key)

    page = new_page()
    log_in(page, "operator-user")
    page.get_by_role("link", name="Adopt a running cluster").first.click()
    page.get_by_label("Nodes").fill("\n".join(n.address for n in lab))
    page.get_by_label("Credential").select_option(label="lab")
    page.get_by_role("button", name="Show the host keys").click()

    rows = page.locator("#host-keys tbody tr")
    assert rows.count() == 3
    for node, row in zip(lab, rows.all(), strict=True):
        # The person compares what the page shows with the node's own fingerprint.
        assert node.fingerprint in row.inner_text()
    screenshot(page, "adopt-keys.png")
    for box in page.get_by_label("I compared it").all():
        box.check()
    page.get_by_role("button", name="Read the nodes").click()

    split = page.locator("#split-brain")
    assert "all hold its VIP at once" in split.inner_text()
    assert f"{lab[1].name} ({lab[1].address}) keeps it" in split.inner_text()
    vrid = page.locator('#findings tr[data-field="virtual_router_id"]')
    assert "never hear each other" in vrid.inner_text() and "102" in vrid.inner_text()
    carried = page.locator("#carried")
    assert "notify_master" in carried.inner_text() and lab[2].address in carried.inner_text()
    assert page.get_by_label("Reload command").is_disabled()  # an admin's field
    page.get_by_label("Name:", exact=True).fill("swarm")
    screenshot(page, "adopt-proposal.png")
    page.get_by_role("button", name="Adopt this cluster").click()

    cluster = Cluster.objects.get(name="swarm")
    page.wait_for_url(f"**/clusters/{cluster.pk}/")
    assert "adopted from 3 running nodes" in page.locator(".message").inner_text()
    page.get_by_role("button", name="Preview").click()
    page.locator("#preview-result").wait_for(timeout=30_000)
    assert "virtual_router_id 102" in page.locator("#preview-result").inner_text()
    # Still nothing changed on the nodes: the split brain is there until the push.
    assert len(lab.vip_holders(vip)) == 3
