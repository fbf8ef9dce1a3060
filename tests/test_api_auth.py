"""Token authentication: the only way in; stored as a hash; issued by create_api_token."""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from clusters import roles
from clusters.models import ApiToken
from tests.test_api_support import (  # noqa: F401
    Api,
    admin_api,
    admin_user,
    anon_api,
    make_user,
    operator,
    operator_api,
    token_for,
    viewer,
    viewer_api,
)

pytestmark = pytest.mark.django_db

CLUSTERS = "/api/v1/clusters/"


def test_it_answers_401_without_a_token(anon_api):
    response = anon_api.get(CLUSTERS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert "Authorization: Token" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    ["Token nope", "Bearer {key}", "Token", "Token {key} extra", "{key}", "Basic {key}"],
)
def test_it_answers_401_for_a_wrong_or_malformed_token(viewer, header):
    key = token_for(viewer)
    response = Client().get(CLUSTERS, headers={"Authorization": header.format(key=key)})
    assert response.status_code == 401


def test_the_scheme_is_case_insensitive(viewer):
    key = token_for(viewer)
    assert Client().get(CLUSTERS, headers={"Authorization": f"token {key}"}).status_code == 200


def test_it_refuses_the_token_of_an_inactive_user(viewer):
    key = token_for(viewer)
    viewer.is_active = False
    viewer.save()
    assert Api(key).get(CLUSTERS).status_code == 401


def test_it_refuses_a_user_with_no_role(db):
    key = token_for(make_user("nobody"))
    response = Api(key).get(CLUSTERS)
    assert response.status_code == 403
    assert "viewer" in response.json()["detail"]


def test_a_logged_in_session_is_not_enough(client, operator):
    # The session cookie is ignored: a browser tab cannot be made to call the API.
    client.force_login(operator)
    assert client.get(CLUSTERS).status_code == 401
    assert client.post(CLUSTERS, {}, content_type="application/json").status_code == 401


def test_the_token_decides_the_user_not_the_session(client, viewer, operator):
    client.force_login(operator)
    api = Api(token_for(viewer), client=client)
    assert api.post(CLUSTERS, {"name": "x"}).status_code == 403


def test_writes_need_no_csrf_token(operator):
    api = Api(token_for(operator), client=Client(enforce_csrf_checks=True))
    response = api.post(CLUSTERS, {"name": "db", "network": "192.0.2.0/24", "virtual_router_id": 7})
    assert response.status_code == 201, response.content


def test_a_wrong_method_is_405_with_allow(viewer_api):
    response = viewer_api.request("PUT", CLUSTERS, {})
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"


def test_only_a_hash_of_the_key_is_stored(viewer):
    token, key = ApiToken.issue(viewer)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM clusters_apitoken")
        rows = cursor.fetchall()
    assert key not in repr(rows)
    assert token.key_hash == ApiToken.hash_key(key) and len(token.key_hash) == 64
    assert key.startswith("vip_") and key.startswith(token.prefix)


def test_last_used_is_recorded(viewer):
    token, key = ApiToken.issue(viewer)
    assert token.last_used is None
    Api(key).get(CLUSTERS)
    token.refresh_from_db()
    assert token.last_used is not None


def test_the_schema_needs_no_token(anon_api):
    response = anon_api.get("/api/v1/schema/")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_an_unknown_id_is_404_json(viewer_api):
    response = viewer_api.get("/api/v1/clusters/999999/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


# --- create_api_token ------------------------------------------------------------------------


def run_command(*args):
    out = io.StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue()


def printed_key(output):
    return next(line for line in output.splitlines() if line.startswith("vip_"))


def test_the_command_creates_the_user_with_the_role_and_prints_a_working_key(db):
    output = run_command("deploybot", "--role", "operator", "--name", "ci")
    key = printed_key(output)
    user = get_user_model().objects.get(username="deploybot")
    assert roles.role_of(user) == roles.OPERATOR
    assert not user.has_usable_password()
    assert ApiToken.objects.get(user=user).name == "ci"
    assert Api(key).get(CLUSTERS).status_code == 200


def test_the_command_gives_a_new_user_the_viewer_role_by_default(db):
    key = printed_key(run_command("grafana"))
    assert Api(key).get(CLUSTERS).status_code == 200
    assert Api(key).post(CLUSTERS, {}).status_code == 403


def test_the_command_keeps_an_existing_users_role_unless_told(operator):
    run_command(operator.username)
    operator.refresh_from_db()
    assert roles.role_of(operator) == roles.OPERATOR
    run_command(operator.username, "--role", "viewer")
    operator = type(operator).objects.get(pk=operator.pk)
    assert roles.role_of(operator) == roles.VIEWER


def test_the_command_issues_a_new_key_each_time(operator):
    first = printed_key(run_command(operator.username))
    second = printed_key(run_command(operator.username))
    assert first != second
    assert ApiToken.objects.filter(user=operator).count() == 2


def test_the_command_refuses_an_invalid_username(db):
    with pytest.raises(CommandError, match="username"):
        run_command("no spaces allowed")


def test_the_command_refuses_to_narrow_a_superuser(db):
    make_user("root", is_superuser=True)
    with pytest.raises(CommandError, match="superuser"):
        run_command("root", "--role", "viewer")
