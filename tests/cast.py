"""The fixed cast of the view tests: one user per role and one without, and the four checks
every mutating view must pass (POST only, login, no viewer, CSRF).

Import the fixtures into a test module: ``from tests.cast import *  # noqa: F403``.
"""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from clusters import roles
from clusters.models import AuditEntry

__all__ = ["viewer", "operator", "admin", "outsider", "login", "make_user"]


def make_user(username, role=None, password=None, **extra):
    """A user with `role` (None: no role). No password unless given: force_login and API
    tokens need none. `extra` sets other user fields (e.g. is_superuser=True)."""
    user = get_user_model().objects.create_user(username, password=password, **extra)
    if role:
        roles.assign(user, role)
    return user


@pytest.fixture
def viewer(db):
    return make_user("vera-viewer", roles.VIEWER)


@pytest.fixture
def operator(db):
    return make_user("otto-operator", roles.OPERATOR)


@pytest.fixture
def admin(db):
    return make_user("ada-admin", roles.ADMIN)


@pytest.fixture
def outsider(db):
    """Logged in, but given no role: sees nothing."""
    return make_user("oscar-outsider")


@pytest.fixture
def login():
    """login(user) -> a test Client logged in as user (each call a client of its own)."""

    def make(user, **kwargs):
        c = Client(**kwargs)
        c.force_login(user)
        return c

    return make


# The four guards of a mutating view. Each takes the URL and a valid POST body.


def assert_rejects_get(login, user, url):
    response = login(user).get(url)
    assert response.status_code == 405, response.status_code
    assert "POST" in response["Allow"]


def assert_requires_login(url, data):
    response = Client().post(url, data)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def assert_denies(login, user, url, data):
    audited = AuditEntry.objects.count()
    response = login(user).post(url, data)
    assert response.status_code == 403, response.status_code
    assert AuditEntry.objects.count() == audited  # nothing happened, so nothing to record


def assert_enforces_csrf(login, user, url, data):
    client = login(user, enforce_csrf_checks=True)
    response = client.post(url, data)
    assert response.status_code == 403, response.status_code
    assert b"CSRF" in response.content
