"""Users and their roles: admins only; passwords never logged."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters import roles
from clusters.models import AuditEntry
from tests.cast import *  # noqa: F403
from tests.cast import (
    assert_denies,
    assert_enforces_csrf,
    assert_rejects_get,
    assert_requires_login,
)

pytestmark = pytest.mark.django_db

PASSWORD = "a-good-long-passphrase-17"

MUTATING = {
    "user-create": (
        lambda u: reverse("clusters:user-create"),
        {"username": "newbie", "password1": PASSWORD, "password2": PASSWORD, "role": "viewer"},
    ),
    "user-role": (lambda u: reverse("clusters:user-role", args=[u.pk]), {"role": "operator"}),
}


@pytest.fixture(params=sorted(MUTATING))
def mutating(request, outsider):
    url, data = MUTATING[request.param]
    return url(outsider), data


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


def test_only_admins_see_the_users(login, operator, admin, viewer):
    assert login(operator).get(reverse("clusters:users")).status_code == 403
    page = login(admin).get(reverse("clusters:users")).content.decode()
    assert "vera-viewer" in page and "otto-operator" in page


def test_an_admin_creates_a_user_with_a_role(login, admin, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    response = login(admin).post(reverse("clusters:user-create"), MUTATING["user-create"][1])
    assert response.status_code == 302
    user = get_user_model().objects.get(username="newbie")
    assert user.check_password(PASSWORD) and roles.role_of(user) == roles.VIEWER
    entry = AuditEntry.objects.get(action="user.create")
    assert PASSWORD not in str(entry.changes) and entry.changes == {"role": [None, "viewer"]}


def test_mismatched_passwords_are_refused(login, admin):
    data = dict(MUTATING["user-create"][1], password2="something-else-entirely")
    response = login(admin).post(reverse("clusters:user-create"), data)
    assert response.status_code == 422
    assert "password fields didn’t match" in response.content.decode()
    assert PASSWORD not in response.content.decode()


def test_an_admin_changes_a_role_and_it_is_audited(login, admin, outsider):
    login(admin).post(reverse("clusters:user-role", args=[outsider.pk]), {"role": "operator"})
    outsider = get_user_model().objects.get(pk=outsider.pk)
    assert roles.role_of(outsider) == roles.OPERATOR
    assert AuditEntry.objects.get(action="user.role").changes == {"role": ["none", "operator"]}


def test_a_role_can_be_taken_away(login, admin, viewer):
    login(admin).post(reverse("clusters:user-role", args=[viewer.pk]), {"role": ""})
    viewer = get_user_model().objects.get(pk=viewer.pk)
    assert roles.role_of(viewer) is None
    assert login(viewer).get("/").status_code == 403


def test_an_admin_cannot_demote_themselves(login, admin):
    login(admin).post(reverse("clusters:user-role", args=[admin.pk]), {"role": "viewer"})
    assert roles.role_of(get_user_model().objects.get(pk=admin.pk)) == roles.ADMIN
    assert not AuditEntry.objects.exists()
