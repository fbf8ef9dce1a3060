"""Every route of the API, read from its urls: writes need a token and more than the viewer role.

The list comes from clusters/api/urls.py itself, so a new write endpoint is covered the day it
is added.
"""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import re

import pytest

from clusters.api import urls as api_urls
from clusters.api.base import PUBLIC
from clusters.models import ConfigPush, SSHCredential
from clusters.roles import ADMIN, OPERATOR
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


def routes():
    """[(method, route template, role)] for every handler."""
    found = []
    for pattern in api_urls.urlpatterns:
        for method, handler in pattern.callback.api_handlers.items():
            found.append((method, str(pattern.pattern), handler.role))
    return found


WRITES = [(m, r, role) for m, r, role in routes() if m != "GET"]
READS = [(m, r, role) for m, r, role in routes() if m == "GET" and role != PUBLIC]


def test_the_route_table_is_what_we_think():
    assert (len(WRITES), len(READS)) == (13, 12)
    # A write open to the viewer role would be a hole: every non-GET needs more.
    assert all(role in (OPERATOR, ADMIN) for _, _, role in WRITES)
    assert [r for m, r, role in routes() if role == PUBLIC] == ["schema/"]


@pytest.fixture
def ids(cluster):
    node = cluster.nodes.first()
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.FAILED)
    return {
        "cluster_id": cluster.pk,
        "node_id": node.pk,
        "vip_id": cluster.vips.first().pk,
        "push_id": push.pk,
    }


def path_for(route, ids):
    return "/api/v1/" + re.sub(r"<int:(\w+)>", lambda m: str(ids[m.group(1)]), route)


@pytest.mark.parametrize("method, route, role", WRITES, ids=lambda x: str(x))
def test_every_write_needs_a_token(anon_api, ids, method, route, role):
    response = anon_api.request(method, path_for(route, ids), {})
    assert response.status_code == 401


@pytest.mark.parametrize("method, route, role", WRITES, ids=lambda x: str(x))
def test_every_write_is_denied_to_a_viewer(viewer_api, ids, method, route, role):
    before = SSHCredential.objects.count(), ConfigPush.objects.count()
    response = viewer_api.request(method, path_for(route, ids), {})
    assert response.status_code == 403
    assert (SSHCredential.objects.count(), ConfigPush.objects.count()) == before


@pytest.mark.parametrize("method, route, role", [w for w in WRITES if w[2] == ADMIN])
def test_admin_only_writes_are_denied_to_an_operator(operator_api, ids, method, route, role):
    assert operator_api.request(method, path_for(route, ids), {}).status_code == 403


@pytest.mark.parametrize("method, route, role", READS, ids=lambda x: str(x))
def test_every_read_needs_a_token(anon_api, ids, method, route, role):
    assert anon_api.request(method, path_for(route, ids)).status_code == 401


@pytest.mark.parametrize(
    "method, route, role",
    [r for r in WRITES + READS if "<int:" in r[1]],
    ids=lambda x: str(x),
)
def test_every_unknown_id_is_404(db, method, route, role):
    admin = make_user("root", is_superuser=True)
    response = Api(token_for(admin)).request(
        method,
        path_for(route, dict.fromkeys(["cluster_id", "node_id", "vip_id", "push_id"], 999999)),
        {},
    )
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("route", sorted({r for _, r, _ in routes()}))
def test_every_other_method_is_405(viewer_api, ids, route):
    allowed = {m for m, r, _ in routes() if r == route}
    for method in {"GET", "POST", "PATCH", "DELETE", "PUT"} - allowed:
        response = viewer_api.request(method, path_for(route, ids), {})
        assert response.status_code == 405, (method, route)
        assert set(response["Allow"].split(", ")) == allowed
