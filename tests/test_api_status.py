"""Status (stored and refreshed), preview and failover history through the API.

SSH is faked at our boundary (clusters.ssh.connect): no lab, no paramiko.
"""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import datetime as dt

import pytest
from django.utils import timezone

from clusters.models import FailoverEvent, Node, NodeState, VipState
from tests.test_api_support import (  # noqa: F401
    AUTH_PASS,
    FINGERPRINT,
    FakeHost,
    fake_ssh,
    operator,
    operator_api,
    viewer,
    viewer_api,
)

pytestmark = pytest.mark.django_db

VIP = "192.0.2.100/24"


@pytest.fixture(autouse=True)
def _trusted(request):
    """The nodes' host keys trusted up front, as a person would (nothing pins one itself)."""
    if "cluster" in request.fixturenames:
        request.getfixturevalue("cluster").nodes.update(host_key_fingerprint=FINGERPRINT)


def url(cluster, what):
    return f"/api/v1/clusters/{cluster.pk}/{what}/"


def test_a_cluster_never_probed_shows_unknowns(viewer_api, cluster):
    body = viewer_api.get(url(cluster, "status")).json()
    assert body["checked_at"] is None and body["split_brain"] is False
    assert body["vips"] == [
        {
            "id": cluster.vips.get().pk,
            "address": VIP,
            "holder": None,
            "holders": [],
            "since": None,
            "split_brain": False,
            "no_holder": False,
            "pending_push": False,
        }
    ]
    assert body["pending_push"] is False
    assert [(n["name"], n["reachable"], n["vrrp_state"]) for n in body["nodes"]] == [
        ("web-1", None, "UNKNOWN"),
        ("web-2", None, "UNKNOWN"),
    ]


def store(cluster, holders, states=None):
    now = timezone.now()
    for node in cluster.nodes.all():
        NodeState.objects.update_or_create(
            node=node,
            defaults={
                "checked_at": now,
                "reachable": True,
                "keepalived_running": True,
                "vrrp_state": (states or {}).get(
                    node.name, "MASTER" if node.name in holders else "BACKUP"
                ),
                "holds": [VIP] if node.name in holders else [],
                "drift": False,
            },
        )
    vip = cluster.vips.get()
    holder = Node.objects.get(name=holders[0]) if len(holders) == 1 else None
    VipState.objects.update_or_create(
        vip=vip,
        defaults={
            "holder": holder,
            "since": now,
            "checked_at": now,
            "split_brain": len(holders) > 1,
        },
    )
    return now


def test_it_shows_what_the_last_sweep_saw(viewer_api, cluster):
    at = store(cluster, ["web-1"])
    body = viewer_api.get(url(cluster, "status")).json()
    assert body["checked_at"] == at.isoformat()
    assert body["split_brain"] is False
    assert body["vips"][0]["holder"] == "web-1" and body["vips"][0]["holders"] == ["web-1"]
    web1, web2 = body["nodes"]
    assert web1 == {
        **web1,
        "name": "web-1",
        "reachable": True,
        "keepalived_running": True,
        "vrrp_state": "MASTER",
        "holds": [VIP],
        "drift": False,
        "error": "",
    }
    assert web2["vrrp_state"] == "BACKUP" and web2["holds"] == []


def test_it_shows_split_brain(viewer_api, cluster):
    store(cluster, ["web-1", "web-2"])
    body = viewer_api.get(url(cluster, "status")).json()
    assert body["split_brain"] is True
    assert body["vips"][0]["holder"] is None
    assert body["vips"][0]["holders"] == ["web-1", "web-2"]


def test_refresh_probes_records_and_returns_the_fresh_status(
    operator, operator_api, cluster, fake_ssh
):
    fake_ssh["192.0.2.11"] = FakeHost(state="MASTER", addresses=["192.0.2.11/24", "192.0.2.100/24"])
    fake_ssh["192.0.2.12"] = FakeHost(state="BACKUP", addresses=["192.0.2.12/24"])
    response = operator_api.post(url(cluster, "refresh"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["vips"][0]["holder"] == "web-1"
    assert [(n["name"], n["reachable"], n["vrrp_state"]) for n in body["nodes"]] == [
        ("web-1", True, "MASTER"),
        ("web-2", True, "BACKUP"),
    ]
    assert body["events"] == []
    assert NodeState.objects.count() == 2


@pytest.mark.django_db(transaction=True)  # the refresh runs in a thread: its own connection
def test_refresh_waits_for_a_sweep_probing_the_cluster_and_never_probes_alongside_it(
    operator_api, cluster, fake_ssh, private_redis
):
    """The sweep's lock (clusters.sweep) covers a refresh too: while a sweep holds it, the
    refresh waits; it probes once the lock is released, and releases it after."""
    import threading

    from clusters import sweep

    fake_ssh["192.0.2.11"] = FakeHost(state="MASTER", addresses=["192.0.2.11/24", "192.0.2.100/24"])
    fake_ssh["192.0.2.12"] = FakeHost(state="BACKUP", addresses=["192.0.2.12/24"])
    token = sweep.claim(cluster.pk)  # a sweep is probing the cluster
    answer = {}
    refresh = threading.Thread(
        target=lambda: answer.update(r=operator_api.post(url(cluster, "refresh")))
    )
    refresh.start()
    refresh.join(timeout=0.5)
    assert refresh.is_alive() and not NodeState.objects.exists()  # waiting, not probing
    assert sweep.release(cluster.pk, token)
    refresh.join(timeout=30)
    assert answer["r"].status_code == 200, answer["r"].content
    assert NodeState.objects.count() == 2
    assert sweep.claim(cluster.pk) is not None  # the refresh released the lock


def test_refresh_never_pins_a_host_key_only_records_the_offered_one(
    operator_api, cluster, fake_ssh
):
    cluster.nodes.update(host_key_fingerprint="")
    fake_ssh["192.0.2.11"] = FakeHost(state="MASTER", addresses=["192.0.2.11/24", "192.0.2.100/24"])
    fake_ssh["192.0.2.12"] = FakeHost(state="BACKUP", addresses=["192.0.2.12/24"])
    body = operator_api.post(url(cluster, "refresh")).json()
    for node in body["nodes"]:
        assert not node["reachable"]
        assert node["error"] == f"host key not trusted yet: {FINGERPRINT}"
    assert set(cluster.nodes.values_list("host_key_fingerprint", flat=True)) == {""}
    offered = set(cluster.nodes.values_list("offered_host_key_fingerprint", flat=True))
    assert offered == {FINGERPRINT}


def test_refresh_reports_a_failover_it_found(operator_api, cluster, fake_ssh):
    store(cluster, ["web-1"])
    fake_ssh["192.0.2.11"] = FakeHost(running=False, state="", addresses=["192.0.2.11/24"])
    fake_ssh["192.0.2.12"] = FakeHost(state="MASTER", addresses=["192.0.2.12/24", "192.0.2.100/24"])
    body = operator_api.post(url(cluster, "refresh")).json()
    assert [(e["kind"], e["from_node"], e["to_node"]) for e in body["events"]] == [
        ("failover", "web-1", "web-2")
    ]
    assert body["vips"][0]["holder"] == "web-2"
    assert body["nodes"][0]["keepalived_running"] is False
    assert body["nodes"][0]["vrrp_state"] == "STOPPED"


def test_refresh_shows_an_unreachable_node(operator_api, cluster, fake_ssh):
    fake_ssh["192.0.2.11"] = FakeHost(state="MASTER", addresses=["192.0.2.100/24"])
    body = operator_api.post(url(cluster, "refresh")).json()
    web2 = body["nodes"][1]
    assert web2["reachable"] is False and "connection refused" in web2["error"]


def test_preview_is_an_operators(viewer_api, cluster, fake_ssh):
    # It connects to every node and reads its live config: not a viewer's (issue 15).
    fake_ssh["192.0.2.11"] = FakeHost(files={cluster.config_path: b"x"})
    assert viewer_api.get(url(cluster, "preview")).status_code == 403


def test_preview_shows_each_nodes_diff_with_the_secret_masked(operator_api, cluster, fake_ssh):
    cluster.auth_pass = AUTH_PASS
    cluster.save()
    live = (
        f"vrrp_instance VI_1 {{\n    authentication {{\n        auth_pass {AUTH_PASS}\n    }}\n}}\n"
    )
    fake_ssh["192.0.2.11"] = FakeHost(files={cluster.config_path: live.encode()})
    response = operator_api.get(url(cluster, "preview"))
    assert response.status_code == 200
    body = response.json()
    assert body["cluster"] == cluster.pk
    web1, web2 = body["nodes"]
    assert web1["node"] == "web-1" and web1["changed"] is True
    assert "+++ web-1:/etc/keepalived/keepalived.conf (vipanel)" in web1["diff"]
    assert web2["changed"] is None and "connection refused" in web2["error"]
    assert AUTH_PASS not in response.content.decode()
    assert cluster.notify_secret not in response.content.decode()


def event(cluster, at, kind="failover", **extra):
    return FailoverEvent.objects.create(
        cluster=cluster,
        vip=cluster.vips.get(),
        vip_address=VIP,
        from_node="web-1",
        to_node="web-2",
        at=at,
        kind=kind,
        detected_by="sweep",
        **extra,
    )


def test_failovers_newest_first(viewer_api, cluster):
    t0 = timezone.now() - dt.timedelta(hours=2)
    old = event(cluster, t0)
    new = event(cluster, t0 + dt.timedelta(hours=1), kind="split_brain")
    body = viewer_api.get(url(cluster, "failovers")).json()
    assert [e["id"] for e in body] == [new.pk, old.pk]
    assert body[1] == {
        **body[1],
        "at": t0.isoformat(),
        "vip": VIP,
        "from_node": "web-1",
        "to_node": "web-2",
        "kind": "failover",
        "detected_by": "sweep",
    }


def test_failovers_since(viewer_api, cluster):
    t0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    event(cluster, t0)
    later = event(cluster, t0 + dt.timedelta(minutes=5))
    for since in ("2025-01-01T12:01:00Z", "2025-01-01T13:01:00+01:00", "2025-01-01T12:01:00"):
        body = viewer_api.get(url(cluster, "failovers"), since=since).json()
        assert [e["id"] for e in body] == [later.pk], since
    # An unencoded '+' arrives as a space.
    response = viewer_api.client.get(
        url(cluster, "failovers") + "?since=2025-01-01T13:01:00+01:00", headers=viewer_api.headers
    )
    assert [e["id"] for e in response.json()] == [later.pk]


@pytest.mark.parametrize("since", ["yesterday", "2025-13-01T00:00:00Z", "1700000000"])
def test_a_bad_since_is_400_naming_the_field(viewer_api, cluster, since):
    response = viewer_api.get(url(cluster, "failovers"), since=since)
    assert response.status_code == 400
    assert list(response.json()) == ["since"]


def test_failovers_are_paginated_with_a_link_header(viewer_api, cluster):
    t0 = timezone.now()
    events = [event(cluster, t0 - dt.timedelta(minutes=i)) for i in range(5)]
    first = viewer_api.get(url(cluster, "failovers"), limit=2)
    assert [e["id"] for e in first.json()] == [events[0].pk, events[1].pk]
    link = first["Link"]
    assert link.endswith('>; rel="next"') and "offset=2" in link and "limit=2" in link
    next_url = link[1 : link.index(">")]
    second = viewer_api.client.get(next_url, headers=viewer_api.headers)
    assert [e["id"] for e in second.json()] == [events[2].pk, events[3].pk]
    last = viewer_api.get(url(cluster, "failovers"), limit=2, offset=4)
    assert len(last.json()) == 1 and "Link" not in last


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"offset": -1}])
def test_bad_paging_is_400_naming_the_parameter(viewer_api, cluster, params):
    response = viewer_api.get(url(cluster, "failovers"), **params)
    assert response.status_code == 400
    assert list(response.json()) == list(params)


def test_a_change_not_pushed_is_pending_push_never_no_holder(viewer_api, cluster):
    from clusters.models import VirtualIP

    store(cluster, ["web-1"])
    new = VirtualIP.objects.create(cluster=cluster, address="192.0.2.101/24")
    # Left by an older release's sweep: it said "no holder" of a VIP not on the nodes yet.
    VipState.objects.create(
        vip=new, since=timezone.now(), checked_at=timezone.now(), no_holder=True
    )
    Node.objects.filter(name="web-2").update(desired_config_sha="0" * 64)
    body = viewer_api.get(url(cluster, "status")).json()
    assert body["pending_push"] is True
    old_row, new_row = body["vips"]
    assert (old_row["pending_push"], old_row["holder"]) == (False, "web-1")
    assert new_row == {
        "id": new.pk,
        "address": "192.0.2.101/24",
        "holder": None,
        "holders": [],
        "since": None,
        "split_brain": False,
        "no_holder": False,
        "pending_push": True,
    }
    web1, web2 = body["nodes"]
    assert (web1["pending_push"], web2["pending_push"]) == (False, True)
    assert web1["pushed_at"] is not None and web2["drift"] is False
