"""The dashboard: every cluster at a glance, refreshed in place, in a fixed number of queries."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from clusters.models import (
    Cluster,
    ConfigPush,
    FailoverEvent,
    Node,
    NodeState,
    VipState,
    VirtualIP,
)
from tests.cast import *  # noqa: F403

pytestmark = pytest.mark.django_db


def observe(cluster, holder, *, split=False, none=False, at=None):
    """Record what a sweep would: every node reachable and running, `holder` holding the VIPs."""
    at = at or timezone.now()
    vips = list(cluster.vips.all())
    for node in cluster.nodes.all():
        holds = [v.address for v in vips] if (node == holder or split) else []
        NodeState.objects.update_or_create(
            node=node,
            defaults=dict(checked_at=at, reachable=True, keepalived_running=True,
                          vrrp_state="MASTER" if holds else "BACKUP", holds=holds, drift=False),
        )
    for vip in vips:
        VipState.objects.update_or_create(
            vip=vip,
            defaults=dict(holder=None if (split or none) else holder, since=at, checked_at=at,
                          split_brain=split, no_holder=none),
        )


def test_it_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_it_refuses_a_user_without_a_role(login, outsider):
    assert login(outsider).get("/").status_code == 403


def test_it_shows_each_vip_and_the_node_holding_it(login, viewer, cluster):
    observe(cluster, cluster.nodes.get(name="web-1"))
    page = login(viewer).get("/").content.decode()
    row = re.search(r'<li class="vip-ok" data-vip="192.0.2.100/24">.*?</li>', page, re.S).group(0)
    assert "web-1" in row


def test_it_shows_split_brain_in_red(login, viewer, cluster):
    observe(cluster, None, split=True)
    page = login(viewer).get("/").content.decode()
    row = re.search(r'<li class="vip-split".*?</li>', page, re.S).group(0)
    assert 'class="badge bad"' in row and "split brain: web-1, web-2" in row
    assert '<span class="bad">1 in split brain</span>' in page
    assert '<tr class="cluster trouble"' in page


def test_it_shows_a_vip_without_holder_in_red(login, viewer, cluster):
    observe(cluster, None, none=True)
    page = login(viewer).get("/").content.decode()
    row = re.search(r'<li class="vip-none".*?</li>', page, re.S).group(0)
    assert 'class="badge bad"' in row and "no holder" in row
    assert '<span class="bad">1 with a VIP nobody holds</span>' in page


def test_it_says_when_a_cluster_was_never_checked(login, viewer, cluster):
    page = login(viewer).get("/").content.decode()
    assert "not checked yet" in page
    assert "cluster trouble" not in page


def test_it_shows_each_nodes_health(login, viewer, cluster):
    web1, web2 = cluster.nodes.order_by("name")
    observe(cluster, web1)
    NodeState.objects.filter(node=web2).update(
        reachable=False, keepalived_running=None, vrrp_state="UNKNOWN", drift=None,
        error="web-2: connection refused",
    )
    NodeState.objects.filter(node=web1).update(drift=True)
    Node.objects.filter(pk=web2.pk).update(
        maintenance=True, offered_host_key_fingerprint="SHA256:" + "A" * 43
    )
    page = login(viewer).get("/").content.decode()
    row1 = re.search(r'<li data-node="web-1".*?</li>', page, re.S).group(0)
    row2 = re.search(r'<li data-node="web-2".*?</li>', page, re.S).group(0)
    assert "MASTER" in row1 and "config drift" in row1 and "stopped" not in row1
    assert 'class="badge bad" title="web-2: connection refused">unreachable</span>' in row2
    assert "maintenance" in row2 and "host key changed" in row2


def test_a_healthy_node_says_so_and_a_stopped_keepalived_is_red(login, viewer, cluster):
    web1, web2 = cluster.nodes.order_by("name")
    observe(cluster, web1)
    NodeState.objects.filter(node=web2).update(keepalived_running=False, vrrp_state="FAULT")
    page = login(viewer).get("/").content.decode()
    row1 = re.search(r'<li data-node="web-1".*?</li>', page, re.S).group(0)
    row2 = re.search(r'<li data-node="web-2".*?</li>', page, re.S).group(0)
    assert 'title="reachable, keepalived running, config in sync">ok</span>' in row1
    assert '<span class="badge bad" title="VRRP state">FAULT</span>' in row2
    assert '<span class="badge bad">keepalived stopped</span>' in row2


def test_it_shows_the_last_push_and_its_result(login, viewer, cluster, operator):
    ConfigPush.objects.create(cluster=cluster, state="succeeded", requested_by=operator)
    last = ConfigPush.objects.create(cluster=cluster, state="failed", requested_by=operator)
    page = login(viewer).get("/").content.decode()
    text = re.search(r'<td class="last-push">.*?</td>', page, re.S).group(0)
    assert f"#{last.pk}" in text and "failed" in text and "otto-operator" in text


def test_it_shows_recent_failovers(login, viewer, cluster):
    now = timezone.now()
    for i in range(5):
        FailoverEvent.objects.create(
            cluster=cluster, vip_address="192.0.2.100/24", from_node=f"a{i}", to_node=f"b{i}",
            at=now - dt.timedelta(minutes=i), detected_by="sweep",
        )
    page = login(viewer).get("/").content.decode()
    assert "a0 → b0" in page and "a2 → b2" in page
    assert "a3 → b3" not in page  # the three latest only


def test_it_refreshes_itself_in_place_every_5_seconds(login, viewer, cluster):
    page = login(viewer).get("/").content.decode()
    assert 'hx-get="/" hx-trigger="every 5s" hx-swap="innerHTML"' in page


def test_a_poll_gets_the_fragment_only(login, viewer, cluster):
    response = login(viewer).get("/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and "web" in body and 'class="dashboard"' in body
    assert "HX-Request" in response["Vary"]


def test_htmx_is_served_from_this_server_not_a_cdn(login, viewer):
    page = login(viewer).get("/").content.decode()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts == ["/static/django_htmx/htmx-2.min.js", "/static/vipanel.js"]
    assert "//" not in page.split("<body")[0].replace("http://www.w3.org", "")
    for script in scripts:
        js = login(viewer).get(script)
        assert js.status_code == 200
    assert b"htmx" in b"".join(login(viewer).get(scripts[0]).streaming_content)


def make_fleet(count, *, failed_push=True):
    """count clusters of 3 nodes and 2 VIPs, each observed, with pushes and failovers; the
    last push failed (a problem) unless failed_push is False."""
    now = timezone.now()
    clusters = Cluster.objects.bulk_create(
        Cluster(name=f"c{i}", network=f"10.{i}.0.0/24", virtual_router_id=1 + i % 255)
        for i in range(count)
    )
    nodes = Node.objects.bulk_create(
        Node(cluster=c, name=f"c{c.pk}-n{j}", address=f"10.{i}.0.{10 + j}", priority=100 + j)
        for i, c in enumerate(clusters)
        for j in range(3)
    )
    vips = VirtualIP.objects.bulk_create(
        VirtualIP(cluster=c, address=f"10.{i}.0.{100 + k}/24")
        for i, c in enumerate(clusters)
        for k in range(2)
    )
    NodeState.objects.bulk_create(
        NodeState(node=n, checked_at=now, reachable=True, keepalived_running=True,
                  vrrp_state="BACKUP", drift=False)
        for n in nodes
    )
    holder = {c.pk: n for n in nodes for c in clusters if n.cluster_id == c.pk}
    VipState.objects.bulk_create(
        VipState(vip=v, holder=holder[v.cluster_id], since=now, checked_at=now) for v in vips
    )
    for c in clusters:
        ConfigPush.objects.create(cluster=c, state="succeeded")
        if failed_push:
            ConfigPush.objects.create(cluster=c, state="failed")
    FailoverEvent.objects.bulk_create(
        FailoverEvent(cluster=c, vip_address=f"10.{i}.0.100/24", from_node="x", to_node="y",
                      at=now - dt.timedelta(minutes=m), detected_by="sweep")
        for i, c in enumerate(clusters)
        for m in range(4)
    )
    return clusters


# Session, user, the user's groups (role), then the counts over every cluster, the page's
# clusters, their nodes with state, VIPs with state and holder, last pushes, latest failovers.
DASHBOARD_QUERIES = 9


@pytest.mark.parametrize("count", [3, 30])
def test_it_needs_the_same_number_of_queries_for_3_and_30_clusters(
    login, viewer, count, django_assert_num_queries
):
    make_fleet(count)
    client = login(viewer)
    with django_assert_num_queries(DASHBOARD_QUERIES):
        response = client.get("/")
    assert response.status_code == 200
    assert response.content.decode().count('<tr class="cluster') == count
    with django_assert_num_queries(DASHBOARD_QUERIES):
        client.get("/", HTTP_HX_REQUEST="true")
    with django_assert_num_queries(DASHBOARD_QUERIES):
        client.get("/?problems=1&page=2")


def test_it_warns_when_the_status_is_stale(login, viewer, cluster):
    observe(cluster, cluster.nodes.get(name="web-1"), at=timezone.now() - dt.timedelta(minutes=10))
    page = login(viewer).get("/").content.decode()
    assert "Status last checked 10" in page and "is the sweep running?" in page
    assert "cluster trouble" in page
