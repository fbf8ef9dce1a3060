"""Every operation of the API, read from its generated schema: writes need a token and more than
the viewer role.

The list comes from the schema drf-spectacular builds from clusters/api/urls.py (and
test_api_schema checks that it names every route), so a new write endpoint is covered the day
it is added.
"""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import Channel, Incident
from clusters.models import ConfigPush, SSHCredential, SyncGroup, VrrpInstance
from clusters.roles import ADMIN, OPERATOR, VIEWER
from tests.api_schema import operations, path_for
from tests.test_api_support import (  # noqa: F401
    Api,
    anon_api,
    make_user,
    operator,
    operator_api,
    token_for,
    viewer,
    viewer_api,
)

pytestmark = pytest.mark.django_db

WRITES = [(m, p, role) for m, p, role in operations() if m != "GET"]
READS = [(m, p, role) for m, p, role in operations() if m == "GET"]


def test_the_route_table_is_what_we_think():
    # with the alerts' 4 and 5, instances' 7 and 4, adoption's 3, the impact of an action's 1
    assert (len(WRITES), len(READS)) == (27, 22)
    # A write open to the viewer role would be a hole: every non-GET needs more.
    assert all(role in (OPERATOR, ADMIN) for _, _, role in WRITES)
    # Reads are for viewers and operators, but alert channels (their masked URLs) for admins.
    channels = "/api/v1/alerts/channels/"
    assert all(role in (VIEWER, OPERATOR) for _, p, role in READS if not p.startswith(channels))
    assert all(role == ADMIN for _, p, role in operations() if p.startswith(channels))


@pytest.fixture
def ids(cluster):
    node = cluster.nodes.first()
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.FAILED)
    now = timezone.now()
    incident = Incident.objects.create(
        kind="split_brain",
        cluster=cluster,
        key="vip:1",
        subject="x",
        title="Split brain",
        started=now,
        last_seen=now,
    )
    channel = Channel.objects.create(name="pager", url="json://hooks.example.net/x")
    group = SyncGroup.objects.create(cluster=cluster, name="g")
    instance = VrrpInstance.objects.create(cluster=cluster, name="B", virtual_router_id=61)
    return {
        "cluster_id": cluster.pk,
        "node_id": node.pk,
        "vip_id": cluster.vips.first().pk,
        "push_id": push.pk,
        "incident_id": incident.pk,
        "channel_id": channel.pk,
        "instance_id": instance.pk,
        "group_id": group.pk,
    }


@pytest.mark.parametrize("method, path, role", WRITES, ids=lambda x: str(x))
def test_every_write_needs_a_token(anon_api, ids, method, path, role):
    response = anon_api.request(method, path_for(path, ids), {})
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("method, path, role", WRITES, ids=lambda x: str(x))
def test_every_write_is_denied_to_a_viewer(viewer_api, ids, method, path, role):
    before = SSHCredential.objects.count(), ConfigPush.objects.count()
    response = viewer_api.request(method, path_for(path, ids), {})
    assert response.status_code == 403
    assert (SSHCredential.objects.count(), ConfigPush.objects.count()) == before


@pytest.mark.parametrize("method, path, role", [w for w in WRITES if w[2] == ADMIN])
def test_admin_only_writes_are_denied_to_an_operator(operator_api, ids, method, path, role):
    assert operator_api.request(method, path_for(path, ids), {}).status_code == 403


@pytest.mark.parametrize("method, path, role", READS, ids=lambda x: str(x))
def test_every_read_needs_a_token(anon_api, ids, method, path, role):
    assert anon_api.request(method, path_for(path, ids)).status_code == 401


@pytest.mark.parametrize(
    "method, path, role", [r for r in WRITES + READS if "{" in r[1]], ids=lambda x: str(x)
)
@pytest.mark.parametrize("missing", [999999, 2**63, 10**30])
def test_every_unknown_id_is_404(db, method, path, role, missing):
    admin = make_user("root", is_superuser=True)
    response = Api(token_for(admin)).request(
        method,
        path_for(
            path,
            dict.fromkeys(
                [
                    "cluster_id",
                    "node_id",
                    "vip_id",
                    "push_id",
                    "incident_id",
                    "channel_id",
                    "instance_id",
                    "group_id",
                ],
                missing,
            ),
        ),
        {},
    )
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("path", sorted({p for _, p, _ in operations()}))
def test_every_other_method_is_405(viewer_api, ids, path):
    allowed = {m for m, p, _ in operations() if p == path}
    for method in {"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"} - allowed:
        response = viewer_api.request(method, path_for(path, ids), {})
        assert response.status_code == 405, (method, path)
        assert set(response["Allow"].split(", ")) == allowed
        if method != "HEAD":
            assert response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v2/clusters/", "/api/v1/clusters/x/"])
def test_a_url_no_route_matches_is_404_json(anon_api, path):
    response = anon_api.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_an_unexpected_error_is_500_json(viewer, cluster, monkeypatch):
    from clusters.api import views

    def broken(cluster):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views.s, "status_dict", broken)
    api = Api(token_for(viewer), client=Client(raise_request_exception=False))
    response = api.get(f"/api/v1/clusters/{cluster.pk}/status/")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error."}
    assert "a bug" not in response.content.decode()


def test_a_body_that_is_not_json_is_415_json(operator_api):
    response = operator_api.client.post(
        "/api/v1/clusters/", "name=x", content_type="text/plain", headers=operator_api.headers
    )
    assert response.status_code == 415
    assert "detail" in response.json()
