"""The dashboard: every cluster at a glance, refreshed in place, in a fixed number of queries."""

import datetime as dt
import re

import pytest
from django.urls import reverse
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
            defaults=dict(
                checked_at=at,
                reachable=True,
                keepalived_running=True,
                vrrp_state="MASTER" if holds else "BACKUP",
                holds=holds,
                drift=False,
            ),
        )
    for vip in vips:
        VipState.objects.update_or_create(
            vip=vip,
            defaults=dict(
                holder=None if (split or none) else holder,
                since=at,
                checked_at=at,
                split_brain=split,
                no_holder=none,
            ),
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
        reachable=False,
        keepalived_running=None,
        vrrp_state="UNKNOWN",
        drift=None,
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
    # No key pinned yet, one offered: a person has to trust it.
    assert "maintenance" in row2 and "host key not trusted yet: SHA256:AAAA" in row2


def test_a_healthy_node_says_so_and_a_stopped_keepalived_is_red(login, viewer, cluster):
    web1, web2 = cluster.nodes.order_by("name")
    observe(cluster, web1)
    NodeState.objects.filter(node=web2).update(keepalived_running=False, vrrp_state="FAULT")
    page = login(viewer).get("/").content.decode()
    row1 = re.search(r'<li data-node="web-1".*?</li>', page, re.S).group(0)
    row2 = re.search(r'<li data-node="web-2".*?</li>', page, re.S).group(0)
    assert 'title="reachable, keepalived running, config as last pushed">ok</span>' in row1
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
            cluster=cluster,
            vip_address="192.0.2.100/24",
            from_node=f"a{i}",
            to_node=f"b{i}",
            at=now - dt.timedelta(minutes=i),
            detected_by="sweep",
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


PUSHED_SHA = "ab" * 32


def make_fleet(count, *, failed_push=True):
    """count clusters of 3 nodes and 2 VIPs, each observed, with pushes and failovers; the
    last push failed (a problem) unless failed_push is False."""
    now = timezone.now()
    clusters = Cluster.objects.bulk_create(
        Cluster(name=f"c{i}", network=f"10.{i}.0.0/24", virtual_router_id=1 + i % 255)
        for i in range(count)
    )
    # Pushed: what each node has is what vipanel renders for it, every VIP is on the nodes.
    nodes = Node.objects.bulk_create(
        Node(
            cluster=c,
            name=f"c{c.pk}-n{j}",
            address=f"10.{i}.0.{10 + j}",
            priority=100 + j,
            desired_config_sha=PUSHED_SHA,
            pushed_config_sha=PUSHED_SHA,
            pushed_at=now,
        )
        for i, c in enumerate(clusters)
        for j in range(3)
    )
    vips = VirtualIP.objects.bulk_create(
        VirtualIP(cluster=c, address=f"10.{i}.0.{100 + k}/24", pushed_at=now)
        for i, c in enumerate(clusters)
        for k in range(2)
    )
    NodeState.objects.bulk_create(
        NodeState(
            node=n,
            checked_at=now,
            reachable=True,
            keepalived_running=True,
            vrrp_state="BACKUP",
            drift=False,
        )
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
        FailoverEvent(
            cluster=c,
            vip_address=f"10.{i}.0.100/24",
            from_node="x",
            to_node="y",
            at=now - dt.timedelta(minutes=m),
            detected_by="sweep",
        )
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


# --- Problems first, counts over every cluster, pages ---------------------------------------


def shown(page):
    """The names of the clusters on a dashboard page, in order, and whether each is in trouble."""
    return re.findall(
        r'<tr class="cluster( trouble)?(?: pending)?" id="cluster-\d+">\s*<th scope="row">'
        r'<a href="[^"]+">([^<]+)</a>',
        page,
    )


def names(page):
    return [name for _, name in shown(page)]


def healthy_fleet(count):
    """count clusters, all well (last push succeeded, every node fine), named c0, c1, ..."""
    return make_fleet(count, failed_push=False)


# Each thing that makes a cluster need attention, done to the last cluster by name; the database
# decides the order and the counts, Python the badges: the two must agree.
PROBLEMS = {
    "unreachable": lambda c: NodeState.objects.filter(node__cluster=c).update(reachable=False),
    "keepalived stopped": lambda c: NodeState.objects.filter(node__cluster=c).update(
        keepalived_running=False
    ),
    # keepalived said STOP to its notify script (it is going down): not running, whatever the
    # last probe said.
    "keepalived stopping (reported)": lambda c: NodeState.objects.filter(node__cluster=c).update(
        vrrp_state="STOPPED"
    ),
    "keepalived stopping (an older release's report)": lambda c: NodeState.objects.filter(
        node__cluster=c
    ).update(vrrp_state="STOP"),
    "FAULT": lambda c: NodeState.objects.filter(node__cluster=c).update(vrrp_state="FAULT"),
    "config drift": lambda c: NodeState.objects.filter(node__cluster=c).update(drift=True),
    "host key changed (probe)": lambda c: NodeState.objects.filter(node__cluster=c).update(
        host_key_problem=True
    ),
    "host key changed (offered)": lambda c: Node.objects.filter(cluster=c).update(
        offered_host_key_fingerprint="SHA256:" + "B" * 43
    ),
    "stale": lambda c: NodeState.objects.filter(node__cluster=c).update(
        checked_at=timezone.now() - dt.timedelta(minutes=10)
    ),
    "failed push": lambda c: ConfigPush.objects.create(cluster=c, state="failed"),
    "split brain": lambda c: VipState.objects.filter(vip__cluster=c).update(
        split_brain=True, holder=None
    ),
    "no holder": lambda c: VipState.objects.filter(vip__cluster=c).update(
        no_holder=True, holder=None
    ),
}


# Saved in vipanel, not pushed: amber, never a problem (issue 17). Done to the last cluster.
def _one_node_changed(c):
    first = Node.objects.filter(cluster=c).order_by("name").first()
    Node.objects.filter(pk=first.pk).update(desired_config_sha="cd" * 32)


def _vip_never_pushed_with_old_state(c):
    VirtualIP.objects.filter(cluster=c).update(pushed_at=None)
    VipState.objects.filter(vip__cluster=c).update(no_holder=True, holder=None)


PENDING = {
    "a VIP never pushed": lambda c: VirtualIP.objects.filter(
        cluster=c, address__endswith=".101/24"
    ).update(pushed_at=None),
    "a VIP never pushed, with an older release's no-holder state": _vip_never_pushed_with_old_state,
    "a node's change not pushed": _one_node_changed,
    "a node never pushed": lambda c: Node.objects.filter(cluster=c).update(pushed_config_sha=""),
}


@pytest.mark.parametrize("problem", PROBLEMS)
def test_a_cluster_with_a_problem_comes_first_and_is_counted(login, viewer, problem):
    clusters = healthy_fleet(4)
    PROBLEMS[problem](clusters[-1])
    page = login(viewer).get("/").content.decode()
    assert shown(page) == [(" trouble", "c3"), ("", "c0"), ("", "c1"), ("", "c2")]
    assert "4 clusters:" in page and '<span class="good">3 OK</span>' in page
    assert '<span class="bad">1 with problems</span>' in page


def test_a_healthy_fleet_is_sorted_by_name_and_all_ok(login, viewer):
    healthy_fleet(3)
    page = login(viewer).get("/").content.decode()
    assert shown(page) == [("", "c0"), ("", "c1"), ("", "c2")]
    assert '<span class="good">3 OK</span>' in page and "none with problems" in page


def test_a_cluster_never_checked_or_in_maintenance_is_no_problem(login, viewer, cluster):
    Node.objects.filter(cluster=cluster).update(maintenance=True)
    page = login(viewer).get("/").content.decode()
    assert "not checked yet" in page and "maintenance" in page
    assert '<span class="good">1 OK</span>' in page and "cluster trouble" not in page


def test_problems_come_first_then_every_cluster_by_name_whatever_the_problem(login, viewer):
    clusters = healthy_fleet(4)
    PROBLEMS["config drift"](clusters[0])
    PROBLEMS["no holder"](clusters[2])
    PROBLEMS["split brain"](clusters[3])
    page = login(viewer).get("/").content.decode()
    # The kind of problem does not reorder them: a row moves only when trouble comes or goes.
    assert names(page) == ["c0", "c2", "c3", "c1"]
    assert '<span class="bad">3 with problems</span>' in page
    assert '<span class="bad">1 in split brain</span>' in page
    assert '<span class="bad">1 with a VIP nobody holds</span>' in page


@pytest.fixture
def page_of_10(monkeypatch):
    monkeypatch.setattr("clusters.web.dashboard.DASHBOARD_PAGE_SIZE", 10)


def test_it_shows_a_page_of_clusters_and_links_to_the_next(login, viewer, page_of_10):
    healthy_fleet(25)
    client = login(viewer)
    first = client.get("/").content.decode()
    assert names(first) == [f"c{i}" for i in sorted(range(25), key=str)][:10]
    assert "clusters 1–10 of 25, page 1 of 3" in first
    assert '<a href="?page=2" rel="next">Next</a>' in first and 'rel="prev"' not in first
    last = client.get("/?page=3").content.decode()
    assert len(names(last)) == 5 and '<a href="?page=2" rel="prev">Previous</a>' in last
    # Every cluster once, across the pages.
    middle = client.get("/?page=2").content.decode()
    assert sorted(names(first) + names(middle) + names(last)) == sorted(f"c{i}" for i in range(25))
    # A page past the end (the fleet shrank since the link was made) shows the last one.
    assert names(client.get("/?page=9").content.decode()) == names(last)
    assert names(client.get("/?page=x").content.decode()) == names(first)


def test_the_header_counts_every_cluster_not_only_the_page(login, viewer, page_of_10):
    clusters = healthy_fleet(25)
    for c in clusters[:12]:
        PROBLEMS["failed push"](c)
    PROBLEMS["split brain"](clusters[20])
    page = login(viewer).get("/?page=3").content.decode()
    assert "25 clusters:" in page and '<span class="good">12 OK</span>' in page
    assert '<span class="bad">13 with problems</span>' in page
    assert '<span class="bad">1 in split brain</span>' in page
    # The thirteen in trouble fill page 1 and the start of page 2; page 3 has only healthy ones.
    assert shown(page) and all(trouble == "" for trouble, _ in shown(page))


def test_it_shows_only_clusters_with_problems_when_asked(login, viewer, page_of_10):
    clusters = healthy_fleet(25)
    for c in clusters[5:17]:
        PROBLEMS["config drift"](c)
    client = login(viewer)
    page = client.get("/?problems=1").content.decode()
    assert len(shown(page)) == 10 and all(trouble for trouble, _ in shown(page))
    assert "clusters 1–10 of 12, page 1 of 2" in page
    assert '<a href="?problems=1&amp;page=2" rel="next">Next</a>' in page
    assert '<a href="?">All clusters</a>' in page
    # The header still counts them all.
    assert "25 clusters:" in page and '<span class="bad">12 with problems</span>' in page
    second = client.get("/?problems=1&page=2").content.decode()
    assert len(shown(second)) == 2


def test_with_no_problem_the_filter_says_so(login, viewer):
    healthy_fleet(2)
    page = login(viewer).get("/?problems=1").content.decode()
    assert shown(page) == [] and "No cluster has a problem." in page


def test_a_poll_asks_for_the_same_page_and_filter(login, viewer, page_of_10):
    healthy_fleet(25)
    client = login(viewer)
    page = client.get("/?problems=1&page=2").content.decode()
    assert 'hx-get="/?problems=1&amp;page=2" hx-trigger="every 5s"' in page
    page = client.get("/?page=2").content.decode()
    assert 'hx-get="/?page=2" hx-trigger="every 5s"' in page
    fragment = client.get("/?page=2", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "clusters 11–20 of 25" in fragment


# --- Pending push: amber, no problem; an order that does not move ------------------------------


@pytest.mark.parametrize("change", PENDING)
def test_a_change_not_pushed_is_amber_and_never_a_problem(login, viewer, change):
    clusters = healthy_fleet(3)
    PENDING[change](clusters[-1])
    page = login(viewer).get("/").content.decode()
    # Not in trouble, not moved up: the rows stay in name order.
    assert shown(page) == [("", "c0"), ("", "c1"), ("", "c2")]
    assert '<tr class="cluster pending" id="cluster-' in page
    assert '<span class="good">3 OK</span>' in page and "none with problems" in page
    assert "1 with changes not pushed" in page
    row = page.split(f'id="cluster-{clusters[-1].pk}"')[1].split("</tr>")[0]
    assert "no holder" not in row and 'class="badge bad"' not in row
    assert 'class="badge pending"' in row or "changes not pushed" in row


def test_a_vip_never_pushed_says_pending_push_with_its_definition(login, viewer, cluster):
    observe(cluster, cluster.nodes.get(name="web-1"))
    VirtualIP.objects.create(cluster=cluster, address="192.0.2.101/24")
    page = login(viewer).get("/").content.decode()
    row = re.search(r'<li class="vip-pending" data-vip="192.0.2.101/24">.*?</li>', page, re.S)
    assert 'class="badge pending" title="Saved in vipanel but not pushed yet' in row.group(0)
    assert ">pending push</span>" in row.group(0)
    assert "with a VIP nobody holds" not in page and "cluster trouble" not in page


def test_an_operator_gets_the_diff_of_a_pending_push_in_one_click(login, operator, viewer, cluster):
    VirtualIP.objects.create(cluster=cluster, address="192.0.2.101/24")
    preview = reverse("clusters:push-preview", args=[cluster.pk])
    page = login(operator).get("/").content.decode()
    row = page.split(f'id="cluster-{cluster.pk}"')[1].split("</tr>")[0]
    assert f'<form method="post" action="{preview}"' in row and "see the diff" in row
    # A viewer may not preview (it reads every node over SSH): the badge, no button.
    row = login(viewer).get("/").content.decode().split(f'id="cluster-{cluster.pk}"')[1]
    assert "changes not pushed" in row.split("</tr>")[0] and preview not in row


def test_the_order_does_not_move_between_refreshes_that_changed_nothing(login, viewer):
    clusters = healthy_fleet(6)
    PROBLEMS["no holder"](clusters[4])
    PROBLEMS["config drift"](clusters[1])
    PROBLEMS["split brain"](clusters[2])
    PENDING["a node's change not pushed"](clusters[0])
    client = login(viewer)
    first = names(client.get("/").content.decode())
    assert first == ["c1", "c2", "c4", "c0", "c3", "c5"]
    for _ in range(3):
        # A sweep that saw the same again: only the probe times moved.
        NodeState.objects.update(checked_at=timezone.now())
        VipState.objects.update(checked_at=timezone.now())
        assert names(client.get("/", HTTP_HX_REQUEST="true").content.decode()) == first


def test_pending_clusters_keep_the_query_budget(login, viewer, django_assert_num_queries):
    clusters = make_fleet(30)
    for c in clusters[::3]:
        PENDING["a VIP never pushed"](c)
        PENDING["a node's change not pushed"](c)
    client = login(viewer)
    with django_assert_num_queries(DASHBOARD_QUERIES):
        page = client.get("/").content.decode()
    assert "10 with changes not pushed" in page


def test_a_node_never_pushed_without_keepalived_is_not_red(login, viewer, cluster):
    web2 = cluster.nodes.get(name="web-2")
    observe(cluster, cluster.nodes.get(name="web-1"))
    NodeState.objects.filter(node=web2).update(keepalived_running=False, vrrp_state="STOPPED")
    Node.objects.filter(pk=web2.pk).update(pushed_config_sha="")  # added, never pushed
    page = login(viewer).get("/").content.decode()
    row = re.search(r'<li data-node="web-2">.*?</li>', page, re.S).group(0)
    assert 'class="badge bad"' not in row and "keepalived stopped" not in row
    assert '<span class="badge neutral" title="VRRP state">STOPPED</span>' in row
    assert ">pending push</span>" in row and "cluster trouble" not in page
