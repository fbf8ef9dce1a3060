"""SSH credentials: admins only; keys and passphrases are write-only."""

import pytest
from django.urls import reverse

from clusters.models import AuditEntry, SSHCredential
from tests.cast import *  # noqa: F403
from tests.cast import (
    assert_denies,
    assert_enforces_csrf,
    assert_rejects_get,
    assert_requires_login,
)
from tests.conftest import make_private_key

pytestmark = pytest.mark.django_db

PASSPHRASE = "correct horse"


@pytest.fixture
def key():
    return make_private_key()


@pytest.fixture
def stored(credential):
    credential.passphrase = PASSPHRASE
    credential.save()
    return credential


MUTATING = {
    "credential-create": (
        lambda c: reverse("clusters:credential-create"),
        lambda k: {"name": "new", "username": "root", "private_key": k, "passphrase": ""},
    ),
    "credential-update": (
        lambda c: reverse("clusters:credential-update", args=[c.pk]),
        lambda k: {"name": "ops", "username": "admin", "private_key": "", "passphrase": ""},
    ),
}


@pytest.fixture(params=sorted(MUTATING))
def mutating(request, stored, key):
    url, data = MUTATING[request.param]
    return url(stored), data(key)


def test_each_mutating_view_rejects_get(login, admin, mutating):
    assert_rejects_get(login, admin, mutating[0])


def test_each_mutating_view_requires_login(mutating):
    assert_requires_login(*mutating)


def test_each_mutating_view_denies_the_viewer(login, viewer, mutating):
    assert_denies(login, viewer, *mutating)


def test_each_mutating_view_denies_the_operator(login, operator, mutating):
    assert_denies(login, operator, *mutating)


def test_each_mutating_view_enforces_csrf(login, admin, mutating):
    assert_enforces_csrf(login, admin, *mutating)


@pytest.mark.parametrize("page", ["credentials", "credential-new", "credential-edit"])
def test_only_admins_see_the_pages(login, operator, admin, stored, page):
    url = reverse(f"clusters:{page}", args=[stored.pk] if page == "credential-edit" else [])
    assert login(operator).get(url).status_code == 403
    assert login(admin).get(url).status_code == 200


def test_a_superuser_is_an_admin(login, stored, admin_user):
    assert login(admin_user).get(reverse("clusters:credentials")).status_code == 200


def test_the_list_names_credentials_and_their_use_but_no_secret(login, admin, stored, cluster):
    page = login(admin).get(reverse("clusters:credentials")).content.decode()
    assert "ops" in page and "1 cluster, 0 nodes" in page
    assert stored.private_key.splitlines()[1] not in page and PASSPHRASE not in page


def test_an_admin_adds_a_credential(login, admin, key):
    response = login(admin).post(
        reverse("clusters:credential-create"),
        {"name": "lab", "username": "root", "private_key": key, "passphrase": PASSPHRASE},
    )
    assert response.status_code == 302
    saved = SSHCredential.objects.get(name="lab")
    assert saved.private_key.strip() == key.strip() and saved.passphrase == PASSPHRASE
    entry = AuditEntry.objects.get(action="credential.create")
    assert entry.changes["private_key"] == [None, "(set)"]
    assert key.splitlines()[1] not in str(entry.changes) and PASSPHRASE not in str(entry.changes)


def test_the_edit_form_never_renders_the_secrets(login, admin, stored):
    page = login(admin).get(reverse("clusters:credential-edit", args=[stored.pk])).content.decode()
    assert stored.private_key.splitlines()[1] not in page
    assert PASSPHRASE not in page
    assert "Leave empty to keep it" in page


def test_an_edit_with_empty_secrets_keeps_them(login, admin, stored):
    key = stored.private_key
    response = login(admin).post(
        reverse("clusters:credential-update", args=[stored.pk]),
        {"name": "ops", "username": "deploy", "private_key": "", "passphrase": ""},
    )
    assert response.status_code == 302
    stored.refresh_from_db()
    assert stored.username == "deploy"
    assert stored.private_key == key and stored.passphrase == PASSPHRASE
    assert AuditEntry.objects.get(action="credential.update").changes == {
        "username": ["root", "deploy"]
    }


def test_a_bad_key_is_refused_without_echoing_it(login, admin, stored):
    response = login(admin).post(
        reverse("clusters:credential-update", args=[stored.pk]),
        {"name": "ops", "username": "root", "private_key": "not-a-key-XYZZY", "passphrase": ""},
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert "Paste the whole private key" in body and "XYZZY" not in body


def test_the_passphrase_can_be_removed(login, admin, stored):
    login(admin).post(
        reverse("clusters:credential-update", args=[stored.pk]),
        {
            "name": "ops",
            "username": "root",
            "private_key": "",
            "passphrase": "",
            "clear_passphrase": "on",
        },
    )
    stored.refresh_from_db()
    assert stored.passphrase == ""
    assert AuditEntry.objects.get().changes == {"passphrase": ["(secret)", "(removed)"]}
