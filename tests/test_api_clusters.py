"""/api/v1/clusters/: the model's rules (as the forms apply them), write-only auth_pass, audit."""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import pytest

from clusters.api.serializers import CLUSTER_FIELDS
from clusters.forms import ClusterForm
from clusters.models import AuditEntry, Cluster, ConfigPush
from tests.test_api_support import (  # noqa: F401
    AUTH_PASS,
    admin_api,
    admin_user,
    anon_api,
    operator,
    operator_api,
    viewer,
    viewer_api,
)

pytestmark = pytest.mark.django_db

CLUSTERS = "/api/v1/clusters/"
NEW = {"name": "db", "network": "198.51.100.0/24", "virtual_router_id": 9}


def detail(cluster):
    return f"{CLUSTERS}{cluster.pk}/"


def test_it_lists_clusters_by_name(viewer_api, cluster):
    Cluster.objects.create(name="alpha", network="203.0.113.0/24", virtual_router_id=3)
    response = viewer_api.get(CLUSTERS)
    assert response.status_code == 200
    assert [c["name"] for c in response.json()] == ["alpha", "web"]


def test_it_shows_a_cluster_by_its_model_field_names(viewer_api, cluster, credential):
    body = viewer_api.get(detail(cluster)).json()
    assert set(CLUSTER_FIELDS) <= set(body)
    assert body["id"] == cluster.pk
    assert body["virtual_router_id"] == 51
    assert body["credential"] == credential.pk
    assert body["auth_pass_set"] is False
    assert "auth_pass" not in body and "notify_secret" not in body


def test_it_creates_a_cluster_with_defaults(operator_api):
    response = operator_api.post(CLUSTERS, NEW)
    assert response.status_code == 201, response.content
    body = response.json()
    cluster = Cluster.objects.get(name="db")
    assert body["id"] == cluster.pk
    assert body["advert_int"] == 1 and body["preempt"] is True


def test_it_normalises_like_the_forms(operator_api):
    body = operator_api.post(CLUSTERS, {**NEW, "network": "198.51.100.7/255.255.255.0"}).json()
    assert body["network"] == "198.51.100.0/24"


def test_it_rejects_a_vrid_already_used_on_the_segment_with_the_forms_message(
    operator_api, cluster
):
    data = {"name": "db", "network": "192.0.2.0/25", "virtual_router_id": 51}
    response = operator_api.post(CLUSTERS, data)
    assert response.status_code == 400
    form = ClusterForm(
        data={
            **data,
            "interface": "eth0",
            "advert_int": 1,
            "check_interval": 2,
            "check_fall": 2,
            "check_rise": 2,
            "check_weight": 0,
            "preempt": True,
            "preempt_delay": 0,
            "config_path": "/etc/keepalived/keepalived.conf",
            "reload_command": Cluster._meta.get_field("reload_command").default,
        }
    )
    assert not form.is_valid()
    assert response.json()["virtual_router_id"] == form.errors["virtual_router_id"]
    assert "already used by cluster 'web'" in response.json()["virtual_router_id"][0]


def test_it_reports_missing_required_fields(operator_api):
    errors = operator_api.post(CLUSTERS, {}).json()
    assert {"name", "network", "virtual_router_id"} <= set(errors)


@pytest.mark.parametrize(
    "field, value",
    [
        ("virtual_router_id", "51"),
        ("virtual_router_id", 5.0),
        ("virtual_router_id", True),
        ("unicast", "yes"),
        ("unicast", 1),
        ("name", 12),
        ("name", None),
        ("name", ["web"]),
        ("credential", "1"),
        ("auth_pass", 1234),
    ],
)
def test_it_rejects_wrong_json_types(operator_api, field, value):
    response = operator_api.post(CLUSTERS, {**NEW, field: value})
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_it_rejects_out_of_range_values_by_field(operator_api):
    response = operator_api.post(CLUSTERS, {**NEW, "virtual_router_id": 10**30, "advert_int": 0})
    assert response.status_code == 400
    assert {"virtual_router_id", "advert_int"} <= set(response.json())


def test_it_rejects_a_nul_byte(operator_api):
    body = {**NEW, "check_type": "process", "check_target": "haproxy\x00"}
    response = operator_api.post(CLUSTERS, body)
    assert response.status_code == 400
    assert "check_target" in response.json()


def test_it_names_unknown_fields(operator_api):
    response = operator_api.post(CLUSTERS, {**NEW, "vrid": 3, "colour": "red"})
    assert response.status_code == 400
    assert set(response.json()) == {"vrid", "colour"}
    assert not Cluster.objects.filter(name="db").exists()


def test_it_refuses_a_body_that_is_not_an_object(operator_api):
    assert operator_api.post(CLUSTERS, [NEW]).status_code == 400
    response = operator_api.post(CLUSTERS, raw="{not json")
    assert response.status_code == 400
    assert "__all__" in response.json()


def test_it_refuses_to_write_read_only_fields(operator_api, cluster):
    response = operator_api.patch(detail(cluster), {"id": cluster.pk + 1})
    assert response.status_code == 400
    assert response.json() == {"id": ["This field is read-only."]}
    assert operator_api.patch(detail(cluster), {"notify_secret": "x"}).status_code == 400


def test_a_get_body_can_be_patched_back_unchanged(operator_api, cluster):
    body = operator_api.get(detail(cluster)).json()
    response = operator_api.patch(detail(cluster), {**body, "advert_int": 2})
    assert response.status_code == 200, response.content
    assert response.json()["advert_int"] == 2


def test_it_patches_only_the_fields_sent(operator_api, cluster):
    response = operator_api.patch(detail(cluster), {"preempt": False})
    assert response.status_code == 200
    cluster.refresh_from_db()
    assert cluster.preempt is False and cluster.virtual_router_id == 51


def test_a_patch_is_checked_against_the_nodes(operator_api, cluster):
    # web-1 and web-2 are 10 apart: a weight of 5 could never move the VIPs.
    response = operator_api.patch(
        detail(cluster), {"check_type": "process", "check_target": "haproxy", "check_weight": 5}
    )
    assert response.status_code == 400
    assert "check_weight" in response.json()


def test_auth_pass_is_write_only_and_can_be_removed(operator_api, cluster):
    response = operator_api.patch(detail(cluster), {"auth_pass": AUTH_PASS})
    assert response.status_code == 200
    assert AUTH_PASS not in response.content.decode()
    assert response.json()["auth_pass_set"] is True
    cluster.refresh_from_db()
    assert cluster.auth_pass == AUTH_PASS
    # Left out: kept.
    operator_api.patch(detail(cluster), {"advert_int": 3})
    cluster.refresh_from_db()
    assert cluster.auth_pass == AUTH_PASS
    # An empty string removes it.
    assert operator_api.patch(detail(cluster), {"auth_pass": ""}).json()["auth_pass_set"] is False
    cluster.refresh_from_db()
    assert cluster.auth_pass == ""


def test_it_rejects_a_long_auth_pass(operator_api, cluster):
    response = operator_api.patch(detail(cluster), {"auth_pass": "123456789"})
    assert response.status_code == 400
    assert "auth_pass" in response.json()


def test_only_an_admin_sets_the_reload_command(operator_api, admin_api, cluster):
    command = "systemctl restart keepalived"
    response = operator_api.patch(detail(cluster), {"reload_command": command})
    assert response.status_code == 403
    assert "reload_command" in response.json()["detail"]
    assert operator_api.post(CLUSTERS, {**NEW, "reload_command": command}).status_code == 403
    assert admin_api.patch(detail(cluster), {"reload_command": command}).status_code == 200
    cluster.refresh_from_db()
    assert cluster.reload_command == command


def test_the_reload_command_is_still_validated_for_an_admin(admin_api, cluster):
    response = admin_api.patch(detail(cluster), {"reload_command": "true\nreboot"})
    assert response.status_code == 400
    assert "reload_command" in response.json()


def test_an_unknown_credential_is_a_field_error(operator_api):
    response = operator_api.post(CLUSTERS, {**NEW, "credential": 999999})
    assert response.status_code == 400
    assert "credential" in response.json()


def test_it_deletes_a_cluster(operator_api, cluster):
    response = operator_api.delete(detail(cluster))
    assert response.status_code == 204
    assert not Cluster.objects.filter(pk=cluster.pk).exists()


def test_it_refuses_to_delete_a_cluster_while_a_push_runs(operator_api, cluster):
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.RUNNING)
    response = operator_api.delete(detail(cluster))
    assert response.status_code == 409
    assert response.json()["active"] == {"id": push.pk, "state": "running"}
    assert Cluster.objects.filter(pk=cluster.pk).exists()


def test_every_write_is_audited_with_a_masked_diff(operator, operator_api, cluster):
    operator_api.patch(detail(cluster), {"advert_int": 4, "auth_pass": AUTH_PASS})
    entry = AuditEntry.objects.get(action="cluster.update")
    assert entry.user == operator and entry.cluster == cluster
    assert entry.changes["advert_int"] == [1, 4]
    assert entry.changes["auth_pass"] == [None, "(set)"]  # it had none
    assert AUTH_PASS not in repr(entry.changes)

    created = operator_api.post(CLUSTERS, NEW).json()
    entry = AuditEntry.objects.get(action="cluster.create")
    assert entry.object_repr == "db" and entry.changes["virtual_router_id"] == [None, 9]

    operator_api.delete(f"{CLUSTERS}{created['id']}/")
    entry = AuditEntry.objects.get(action="cluster.delete")
    assert entry.object_repr == "db" and entry.changes["name"] == ["db", None]


def test_a_patch_that_changes_nothing_is_not_audited(operator_api, cluster):
    operator_api.patch(detail(cluster), {"advert_int": 1})
    assert not AuditEntry.objects.exists()


def test_a_rejected_write_changes_nothing(operator_api, cluster):
    operator_api.patch(detail(cluster), {"advert_int": 3, "virtual_router_id": 0})
    cluster.refresh_from_db()
    assert cluster.advert_int == 1
    assert not AuditEntry.objects.exists()
