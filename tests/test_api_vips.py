"""/api/v1/clusters/{id}/vips/ and /api/v1/vips/{id}/."""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import pytest

from clusters.models import AuditEntry, VirtualIP
from tests.test_api_support import operator, operator_api, viewer, viewer_api  # noqa: F401

pytestmark = pytest.mark.django_db


def vips_url(cluster):
    return f"/api/v1/clusters/{cluster.pk}/vips/"


def test_it_lists_a_clusters_vips(viewer_api, cluster):
    body = viewer_api.get(vips_url(cluster)).json()
    assert [(v["address"], v["label"]) for v in body] == [("192.0.2.100/24", "frontend")]
    assert body[0]["host_address"] == "192.0.2.100"


def test_it_adds_a_vip_in_its_normal_spelling(operator_api, cluster):
    response = operator_api.post(vips_url(cluster), {"address": "192.0.2.101/255.255.255.0"})
    assert response.status_code == 201, response.content
    assert response.json()["address"] == "192.0.2.101/24"
    assert VirtualIP.objects.filter(cluster=cluster).count() == 2
    assert AuditEntry.objects.get(action="vip.create").cluster == cluster


def test_it_rejects_a_vip_used_by_another_prefix(operator_api, cluster):
    response = operator_api.post(vips_url(cluster), {"address": "192.0.2.100/25"})
    assert response.status_code == 400
    assert "already a virtual IP of cluster 'web'" in response.json()["address"][0]


def test_it_rejects_a_nodes_address(operator_api, cluster):
    response = operator_api.post(vips_url(cluster), {"address": "192.0.2.11/24"})
    assert response.status_code == 400
    assert "node 'web-1'" in response.json()["address"][0]


def test_it_rejects_a_second_address_family(operator_api, cluster):
    response = operator_api.post(vips_url(cluster), {"address": "2001:db8::10/64"})
    assert response.status_code == 400
    assert "IPv4" in response.json()["address"][0]


def test_it_rejects_a_label_with_symbols(operator_api, cluster):
    response = operator_api.post(vips_url(cluster), {"address": "192.0.2.102/24", "label": "a;b"})
    assert response.status_code == 400
    assert list(response.json()) == ["label"]


def test_it_rejects_the_host_address_as_input(operator_api, cluster):
    response = operator_api.post(
        vips_url(cluster), {"address": "192.0.2.102/24", "host_address": "192.0.2.9"}
    )
    assert response.status_code == 400
    assert response.json() == {"host_address": ["This field is read-only."]}


def test_it_shows_and_deletes_a_vip(viewer_api, operator_api, cluster):
    vip = cluster.vips.get()
    assert viewer_api.get(f"/api/v1/vips/{vip.pk}/").json()["address"] == "192.0.2.100/24"
    assert operator_api.delete(f"/api/v1/vips/{vip.pk}/").status_code == 204
    assert not VirtualIP.objects.filter(pk=vip.pk).exists()
    entry = AuditEntry.objects.get(action="vip.delete")
    assert entry.changes["address"] == ["192.0.2.100/24", None]
    assert viewer_api.get(f"/api/v1/vips/{vip.pk}/").status_code == 404


def test_vips_cannot_be_patched(operator_api, cluster):
    vip = cluster.vips.get()
    response = operator_api.patch(f"/api/v1/vips/{vip.pk}/", {"label": "x"})
    assert response.status_code == 405
    assert response["Allow"] == "DELETE, GET"
