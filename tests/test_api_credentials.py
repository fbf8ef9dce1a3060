"""/api/v1/credentials/: admins store keys; operators see names only; viewers nothing."""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import pytest

from clusters.models import AuditEntry, SSHCredential
from tests.conftest import make_private_key
from tests.test_api_support import (  # noqa: F401
    PASSPHRASE,
    admin_api,
    admin_user,
    operator,
    operator_api,
    viewer,
    viewer_api,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/credentials/"


def test_it_lists_names_and_usernames_only(operator_api, credential):
    body = operator_api.get(URL).json()
    assert body == [
        {
            "id": credential.pk,
            "name": "ops",
            "username": "root",
            "created": credential.created.isoformat(),
            "updated": credential.updated.isoformat(),
        }
    ]


def test_an_admin_stores_a_credential_and_never_sees_the_secrets_again(admin_api):
    key = make_private_key()
    response = admin_api.post(
        URL,
        {"name": "deploy", "username": "keepalived", "private_key": key, "passphrase": PASSPHRASE},
    )
    assert response.status_code == 201, response.content
    body = response.content.decode()
    assert "PRIVATE KEY" not in body and PASSPHRASE not in body
    stored = SSHCredential.objects.get(name="deploy")
    assert stored.private_key == key and stored.passphrase == PASSPHRASE
    entry = AuditEntry.objects.get(action="credential.create")
    assert entry.changes["private_key"] == [None, "(set)"]
    assert key not in repr(entry.changes) and PASSPHRASE not in repr(entry.changes)


def test_a_viewer_does_not_see_credentials(viewer_api, credential):
    assert viewer_api.get(URL).status_code == 403


@pytest.mark.parametrize("api", ["operator_api", "viewer_api"])
def test_only_an_admin_stores_credentials(request, api):
    response = request.getfixturevalue(api).post(
        URL, {"name": "deploy", "private_key": make_private_key()}
    )
    assert response.status_code == 403
    assert not SSHCredential.objects.exists()


def test_it_rejects_something_that_is_not_a_private_key(admin_api):
    response = admin_api.post(URL, {"name": "deploy", "private_key": "ssh-ed25519 AAAA... me@host"})
    assert response.status_code == 400
    assert "private_key" in response.json()
    # Not even the rejected value comes back.
    assert "ssh-ed25519" not in response.content.decode()


def test_it_rejects_a_duplicate_name(admin_api, credential):
    response = admin_api.post(URL, {"name": "ops", "private_key": make_private_key()})
    assert response.status_code == 400
    assert list(response.json()) == ["name"]


def test_it_requires_the_key(admin_api):
    response = admin_api.post(URL, {"name": "deploy"})
    assert response.status_code == 400
    assert "private_key" in response.json()
