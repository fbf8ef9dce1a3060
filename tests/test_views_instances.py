"""The cluster page's VRRP instances: shown with their VIPs, holders and priorities; added,
edited, removed, mirrored (active/active) and re-prioritised through the services."""

import html

import pytest
from django.urls import reverse

from clusters.models import AuditEntry, NodePriority, VirtualIP, VrrpInstance
from tests.cast import *  # noqa: F403
from tests.cast import (
    assert_denies,
    assert_enforces_csrf,
    assert_rejects_get,
    assert_requires_login,
)
from tests.pushed import mark_pushed

pytestmark = pytest.mark.django_db


def b_instance(cluster):
    inst = VrrpInstance.objects.create(cluster=cluster, name="B", virtual_router_id=61)
    for node, prio in zip(cluster.nodes.order_by("name"), (110, 120), strict=True):
        NodePriority.objects.create(instance=inst, node=node, priority=prio)
    VirtualIP.objects.create(cluster=cluster, instance=inst, address="192.0.2.200/24")
    return inst


MUTATING = {
    "instance-add": (
        lambda c: reverse("clusters:instance-add", args=[c.pk]),
        lambda c: {
            "name": "C",
            "virtual_router_id": "62",
            "advert_int": "1",
            "preempt": "on",
            "preempt_delay": "0",
        },
    ),
    "active-active": (
        lambda c: reverse("clusters:active-active", args=[c.pk]),
        lambda c: {"name": "M", "vip": "192.0.2.201/24"},
    ),
    "instance-update": (
        lambda c: reverse("clusters:instance-update", args=[c.instances.get(name="B").pk]),
        lambda c: {
            "name": "B",
            "virtual_router_id": "63",
            "advert_int": "1",
            "preempt": "on",
            "preempt_delay": "0",
        },
    ),
    "instance-delete": (
        lambda c: reverse("clusters:instance-delete", args=[c.instances.get(name="B").pk]),
        lambda c: {"confirm": "web"},
    ),
    "sync-group-add": (
        lambda c: reverse("clusters:sync-group-add", args=[c.pk]),
        lambda c: {
            "name": "pair",
            "includes_main": "on",
            "members": [str(c.instances.get(name="B").pk)],
        },
    ),
    "sync-group-delete": (
        lambda c: reverse(
            "clusters:sync-group-delete", args=[c.sync_groups.get_or_create(name="old")[0].pk]
        ),
        lambda c: {},
    ),
    "instance-priority": (
        lambda c: reverse(
            "clusters:instance-priority",
            args=[c.instances.get(name="B").pk, c.nodes.get(name="web-1").pk],
        ),
        lambda c: {"priority": "100"},
    ),
}


@pytest.fixture(params=sorted(MUTATING))
def mutating(request, cluster):
    b_instance(cluster)
    url, data = MUTATING[request.param]
    return request.param, url(cluster), data(cluster)


def test_each_instance_view_is_guarded(login, operator, viewer, mutating):
    name, url, data = mutating
    assert_rejects_get(login, operator, url)
    assert_requires_login(url, data)
    assert_denies(login, viewer, url, data)
    assert_enforces_csrf(login, operator, url, data)


def test_each_instance_view_works_and_is_audited(login, operator, mutating):
    name, url, data = mutating
    response = login(operator).post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AuditEntry.objects.filter(action__regex=r"^(instance|sync_group)\.").exists()


def test_the_cluster_page_shows_each_instance_with_vips_and_priorities(login, viewer, cluster):
    b_instance(cluster)
    page = login(viewer).get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    assert "VI_web" in page and "VI_web_B" in page
    assert "192.0.2.200/24" in page and "192.0.2.100/24" in page
    assert "Add mirrored instance" not in page  # a viewer changes nothing


def test_active_active_from_the_page(login, operator, cluster):
    response = login(operator).post(
        reverse("clusters:active-active", args=[cluster.pk]), {"name": "B", "vip": "192.0.2.200/24"}
    )
    assert response.status_code == 302
    inst = cluster.instances.get()
    assert {p.node.name: p.priority for p in inst.node_priorities.all()} == {
        "web-1": 110,
        "web-2": 120,
    }


def test_a_refused_priority_says_why(login, operator, cluster):
    inst = b_instance(cluster)
    client = login(operator)
    url = reverse("clusters:instance-priority", args=[inst.pk, cluster.nodes.get(name="web-1").pk])
    response = client.post(url, {"priority": "120"}, follow=True)
    assert "already used by node 'web-2'" in html.unescape(response.content.decode())
    assert inst.node_priorities.get(node__name="web-1").priority == 110


def test_a_vip_can_be_added_to_an_instance(login, operator, cluster):
    inst = b_instance(cluster)
    response = login(operator).post(
        reverse("clusters:vip-add", args=[cluster.pk]),
        {"address": "192.0.2.202/24", "label": "", "instance": str(inst.pk)},
    )
    assert response.status_code == 302
    assert VirtualIP.objects.get(address="192.0.2.202/24").instance == inst


def test_the_dashboard_shows_each_instances_holder(login, viewer, cluster):
    from django.utils import timezone

    from clusters.models import VipState

    inst = b_instance(cluster)
    mark_pushed(cluster)
    now = timezone.now()
    web1, web2 = cluster.nodes.get(name="web-1"), cluster.nodes.get(name="web-2")
    VipState.objects.create(
        vip=cluster.vips.get(instance=None), holder=web1, since=now, checked_at=now
    )
    VipState.objects.create(vip=inst.vips.get(), holder=web2, since=now, checked_at=now)
    page = html.unescape(login(viewer).get(reverse("clusters:dashboard")).content.decode())
    assert '192.0.2.200/24 <span class="small muted">(B)</span>' in page
    assert (
        '192.0.2.200/24 <span class="small muted">(B)</span> <span class="badge good">web-2' in page
    )
    assert '192.0.2.100/24 <span class="badge good">web-1' in page


def test_a_sync_group_from_the_page(login, operator, cluster):
    inst = b_instance(cluster)
    client = login(operator)
    url = reverse("clusters:sync-group-add", args=[cluster.pk])
    data = {"name": "pair", "includes_main": "on", "members": [str(inst.pk)]}
    assert client.post(url, data).status_code == 302
    group = cluster.sync_groups.get()
    assert group.includes_main and list(group.instances.all()) == [inst]
    page = client.get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    assert "VG_web_pair: VI_web, VI_web_B" in page
    again = client.post(url, {"name": "other", "members": [str(inst.pk)]})
    assert again.status_code == 422
    assert "already in sync group" in html.unescape(again.content.decode())
