"""/api/v1/clusters/{id}/nodes/, /api/v1/nodes/{id}/ and re-pinning a node's host key."""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import pytest

from clusters.api.serializers import NodeSerializer
from clusters.models import AuditEntry, ConfigPush, Node
from tests.test_api_support import (  # noqa: F401
    FINGERPRINT,
    OTHER_FINGERPRINT,
    operator,
    operator_api,
    viewer,
    viewer_api,
)

pytestmark = pytest.mark.django_db

NEW = {"name": "web-3", "address": "192.0.2.13", "priority": 100}


def nodes_url(cluster):
    return f"/api/v1/clusters/{cluster.pk}/nodes/"


def node_url(node):
    return f"/api/v1/nodes/{node.pk}/"


def test_it_lists_a_clusters_nodes_highest_priority_first(viewer_api, cluster):
    body = viewer_api.get(nodes_url(cluster)).json()
    assert [n["name"] for n in body] == ["web-1", "web-2"]
    assert {n for n, f in NodeSerializer().fields.items() if not f.write_only} == set(body[0])
    assert body[0]["cluster"] == cluster.pk


def test_it_adds_a_node(operator_api, cluster):
    response = operator_api.post(nodes_url(cluster), NEW)
    assert response.status_code == 201, response.content
    node = Node.objects.get(name="web-3")
    assert node.cluster == cluster and response.json()["id"] == node.pk
    assert response.json()["ssh_port"] == 22


def test_it_rejects_duplicate_priority(operator_api, cluster):
    response = operator_api.post(nodes_url(cluster), {**NEW, "priority": 120})
    assert response.status_code == 400
    message = response.json()["priority"][0]
    assert "already used by node 'web-1'" in message and "e.g. 119" in message


def test_it_rejects_a_duplicate_name_in_the_cluster(operator_api, cluster):
    response = operator_api.post(nodes_url(cluster), {**NEW, "name": "web-1"})
    assert response.status_code == 400
    assert list(response.json()) == ["name"]


def test_it_rejects_an_address_outside_a_multicast_clusters_network(operator_api, cluster):
    response = operator_api.post(nodes_url(cluster), {**NEW, "address": "203.0.113.5"})
    assert response.status_code == 400
    assert "outside the cluster's network" in response.json()["address"][0]


def test_it_rejects_a_zone_id_in_the_address(operator_api, cluster):
    response = operator_api.post(nodes_url(cluster), {**NEW, "address": "fe80::1%eth0"})
    assert response.status_code == 400
    assert "address" in response.json()


def test_it_rejects_a_vip_as_a_node_address(operator_api, cluster):
    response = operator_api.post(nodes_url(cluster), {**NEW, "address": "192.0.2.100"})
    assert response.status_code == 400
    assert "virtual IP" in response.json()["address"][0]


def test_the_cluster_of_a_node_cannot_be_changed(operator_api, cluster):
    node = cluster.nodes.first()
    response = operator_api.patch(node_url(node), {"cluster": cluster.pk + 1})
    assert response.status_code == 400
    assert response.json() == {"cluster": ["This field is read-only."]}


def test_it_patches_a_node_with_the_same_rules(operator_api, cluster):
    web2 = cluster.nodes.get(name="web-2")
    assert operator_api.patch(node_url(web2), {"priority": 120}).status_code == 400
    response = operator_api.patch(node_url(web2), {"priority": 115, "maintenance": True})
    assert response.status_code == 200
    web2.refresh_from_db()
    assert web2.priority == 115 and web2.maintenance


def test_a_host_key_may_be_set_before_first_contact(operator_api, cluster):
    node = cluster.nodes.first()
    response = operator_api.patch(node_url(node), {"host_key_fingerprint": FINGERPRINT})
    assert response.status_code == 200
    assert operator_api.patch(node_url(node), {"host_key_fingerprint": "md5:aa"}).status_code == 400


def test_a_pinned_host_key_is_read_only(operator_api, cluster):
    node = cluster.nodes.first()
    Node.objects.filter(pk=node.pk).update(host_key_fingerprint=FINGERPRINT)
    response = operator_api.patch(node_url(node), {"host_key_fingerprint": OTHER_FINGERPRINT})
    assert response.status_code == 400
    assert "repin" in response.json()["host_key_fingerprint"][0]
    assert operator_api.patch(node_url(node), {"host_key_fingerprint": ""}).status_code == 400
    # Echoing it back unchanged is fine.
    same = operator_api.patch(
        node_url(node), {"host_key_fingerprint": FINGERPRINT, "ssh_port": 2222}
    )
    assert same.status_code == 200
    node.refresh_from_db()
    assert node.host_key_fingerprint == FINGERPRINT and node.ssh_port == 2222


def test_repin_accepts_the_offered_key(operator, operator_api, cluster):
    node = cluster.nodes.first()
    Node.objects.filter(pk=node.pk).update(
        host_key_fingerprint=FINGERPRINT, offered_host_key_fingerprint=OTHER_FINGERPRINT
    )
    response = operator_api.post(f"{node_url(node)}repin/")
    assert response.status_code == 200
    assert response.json()["host_key_fingerprint"] == OTHER_FINGERPRINT
    assert response.json()["offered_host_key_fingerprint"] == ""
    node.refresh_from_db()
    assert node.host_key_fingerprint == OTHER_FINGERPRINT
    entry = AuditEntry.objects.get(action="node.repin")
    assert entry.user == operator
    assert entry.changes == {"host_key_fingerprint": [FINGERPRINT, OTHER_FINGERPRINT]}


def test_repin_is_409_when_nothing_is_offered(operator_api, cluster):
    node = cluster.nodes.first()
    Node.objects.filter(pk=node.pk).update(host_key_fingerprint=FINGERPRINT)
    response = operator_api.post(f"{node_url(node)}repin/")
    assert response.status_code == 409
    assert "nothing to accept" in response.json()["detail"]
    node.refresh_from_db()
    assert node.host_key_fingerprint == FINGERPRINT


def test_repin_refuses_a_key_other_than_the_one_compared(operator_api, cluster):
    node = cluster.nodes.first()
    Node.objects.filter(pk=node.pk).update(
        host_key_fingerprint=FINGERPRINT, offered_host_key_fingerprint=OTHER_FINGERPRINT
    )
    response = operator_api.post(f"{node_url(node)}repin/", {"fingerprint": FINGERPRINT})
    assert response.status_code == 409
    assert response.json()["offered_host_key_fingerprint"] == OTHER_FINGERPRINT
    ok = operator_api.post(f"{node_url(node)}repin/", {"fingerprint": OTHER_FINGERPRINT})
    assert ok.status_code == 200
    assert operator_api.post(f"{node_url(node)}repin/", {"key": 1}).status_code == 400


def test_it_deletes_a_node_and_audits_it(operator_api, cluster):
    node = cluster.nodes.get(name="web-2")
    assert operator_api.delete(node_url(node)).status_code == 204
    assert not Node.objects.filter(pk=node.pk).exists()
    entry = AuditEntry.objects.get(action="node.delete")
    assert entry.cluster == cluster and entry.object_repr == "web-2"


def test_an_unknown_cluster_or_node_is_404(viewer_api, operator_api):
    assert viewer_api.get("/api/v1/clusters/999999/nodes/").status_code == 404
    assert operator_api.post("/api/v1/clusters/999999/nodes/", NEW).status_code == 404
    assert viewer_api.get("/api/v1/nodes/999999/").status_code == 404
    assert operator_api.post("/api/v1/nodes/999999/repin/").status_code == 404


def test_maintenance_through_the_api_pushes_like_the_panel(
    operator, operator_api, cluster, django_capture_on_commit_callbacks
):
    node = cluster.nodes.get(name="web-1")
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator_api.patch(node_url(node), {"maintenance": True})
    assert response.status_code == 200, response.content
    assert response.json()["maintenance"] is True
    push = ConfigPush.objects.get()
    assert push.kind == ConfigPush.Kind.MAINTENANCE and push.requested_by == operator
    # Once the change commits: the push is enqueued, and what vipanel would push is refreshed.
    assert len(callbacks) == 2
    entry = AuditEntry.objects.get(action="maintenance on")
    assert entry.changes == {
        "maintenance": [False, True],
        "push": [None, push.pk],
        "nodes": [None, "web-2, web-1"],
    }
    # Sent back unchanged: no second push.
    assert operator_api.patch(node_url(node), {"maintenance": True}).status_code == 200
    assert ConfigPush.objects.count() == 1


def test_maintenance_is_refused_while_a_push_runs_and_nothing_changes(operator_api, cluster):
    node = cluster.nodes.get(name="web-1")
    running = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.RUNNING)
    response = operator_api.patch(node_url(node), {"maintenance": True, "ssh_port": 2222})
    assert response.status_code == 409
    assert response.json()["active"] == {"id": running.pk, "state": "running"}
    node.refresh_from_db()
    assert node.maintenance is False and node.ssh_port == 22
    assert AuditEntry.objects.get(action="maintenance on").result.startswith("refused: ")
