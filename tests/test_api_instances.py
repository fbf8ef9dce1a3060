"""API resources for VRRP instances, node priorities per instance and sync groups."""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import pytest

from clusters.models import AuditEntry, VrrpInstance
from tests.test_api_support import operator, operator_api, viewer, viewer_api  # noqa: F401

pytestmark = pytest.mark.django_db


def test_an_instance_through_the_api(operator_api, viewer_api, cluster):
    url = f"/api/v1/clusters/{cluster.pk}/instances/"
    created = operator_api.post(url, {"name": "B", "virtual_router_id": 61, "auth_pass": "s3cret"})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert "auth_pass" not in body and body["auth_pass_set"] is True
    assert body["keepalived_name"] == "VI_web_B"
    ids = {n.name: n.pk for n in cluster.nodes.all()}
    # Every node starts with its main priority.
    assert sorted(body["priorities"], key=lambda p: p["node"]) == [
        {"node": ids["web-1"], "priority": 120},
        {"node": ids["web-2"], "priority": 110},
    ]
    assert [i["id"] for i in viewer_api.get(url).json()] == [body["id"]]
    inst = f"/api/v1/instances/{body['id']}/"
    # Mirrored: web-2 first, then web-1 (each step keeps priorities unique).
    prio = f"{inst}priorities/"
    assert operator_api.post(prio, {"node": ids["web-2"], "priority": 130}).status_code == 200
    refused = operator_api.post(prio, {"node": ids["web-1"], "priority": 130})
    assert refused.status_code == 400
    assert "already used by node 'web-2'" in refused.json()["priority"][0]
    done = operator_api.post(prio, {"node": ids["web-1"], "priority": 100}).json()
    assert {p["priority"] for p in done["priorities"]} == {100, 130}
    assert viewer_api.post(prio, {"node": ids["web-1"], "priority": 90}).status_code == 403
    clash = operator_api.patch(inst, {"virtual_router_id": 51})
    assert clash.status_code == 400 and "cluster 'web'" in clash.json()["virtual_router_id"][0]
    vip = operator_api.post(
        f"/api/v1/clusters/{cluster.pk}/vips/",
        {"address": "192.0.2.200/24", "instance": body["id"]},
    )
    assert vip.status_code == 201 and vip.json()["instance"] == body["id"]
    assert operator_api.delete(inst).status_code == 204
    assert not VrrpInstance.objects.exists()
    assert AuditEntry.objects.filter(action="instance.delete").exists()


def test_a_sync_group_through_the_api(operator_api, cluster):
    b = VrrpInstance.objects.create(cluster=cluster, name="B", virtual_router_id=61)
    group = operator_api.post(
        f"/api/v1/clusters/{cluster.pk}/sync-groups/", {"name": "router", "includes_main": True}
    ).json()
    joined = operator_api.patch(f"/api/v1/instances/{b.pk}/", {"sync_group": group["id"]})
    assert joined.status_code == 200, joined.json()
    assert operator_api.get(f"/api/v1/sync-groups/{group['id']}/").json()["members"] == [b.pk]
    again = operator_api.post(
        f"/api/v1/clusters/{cluster.pk}/sync-groups/", {"name": "other", "includes_main": True}
    )
    assert again.status_code == 400 and "includes_main" in again.json()
