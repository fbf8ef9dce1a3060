"""Issue 15 item 7 (login part) and the notify URL's small items: settings that keep people
and nodes out or let them in."""

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from clusters.models import AuditEntry
from tests.cast import make_user
from tests.test_settings import manage

PASSWORD = "a-long-correct-password-9"


@pytest.fixture
def fast_hashes(settings):
    # The right password is still checked for real; MD5 only keeps 200 wrong ones fast.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def person(db, fast_hashes):
    user = make_user("pat", "operator")
    user.password = make_password(PASSWORD)
    user.save()
    return user


def attempt(password, address="192.0.2.50", username="pat"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(reverse("login"), {"username": username, "password": password})
    return response, client


def logged_in(client):
    return "_auth_user_id" in client.session


def test_200_wrong_passwords_then_the_right_one_is_refused(person):
    for i in range(200):
        response, _ = attempt(f"wrong-{i}")
        assert response.status_code in (200, 429)
    response, client = attempt(PASSWORD)
    assert response.status_code == 429
    assert not logged_in(client)


def test_the_lockout_starts_at_the_limit_and_a_success_before_it_resets(person, settings):
    limit = settings.AXES_FAILURE_LIMIT
    for i in range(limit - 1):
        attempt(f"wrong-{i}")
    response, client = attempt(PASSWORD)
    assert logged_in(client), response.status_code
    for i in range(limit - 1):
        attempt(f"wrong-{i}")
    # The count started again after the success: still below the limit.
    assert logged_in(attempt(PASSWORD)[1])


def test_the_lockout_is_per_user_and_address(person, settings):
    make_user("kim").set_password(PASSWORD)
    for i in range(settings.AXES_FAILURE_LIMIT):
        attempt(f"wrong-{i}")
    assert not logged_in(attempt(PASSWORD)[1])
    # The same user from another address, and nobody else, is affected.
    assert logged_in(attempt(PASSWORD, address="192.0.2.51")[1])


def test_axes_reset_unlocks(person, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        attempt(f"wrong-{i}")
    assert not logged_in(attempt(PASSWORD)[1])
    call_command("axes_reset_username", "pat")
    assert logged_in(attempt(PASSWORD)[1])


def test_an_admin_unlocks_through_the_admin_site(person, settings, db):
    from axes.models import AccessAttempt

    for i in range(settings.AXES_FAILURE_LIMIT):
        attempt(f"wrong-{i}")
    assert not logged_in(attempt(PASSWORD)[1])
    admin = make_user("root-admin", "admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    attempt_row = AccessAttempt.objects.get(username="pat")
    url = reverse("admin:axes_accessattempt_delete", args=[attempt_row.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert logged_in(attempt(PASSWORD)[1])
    [entry] = AuditEntry.objects.filter(action="login.unlock")
    assert (entry.username, entry.result) == ("root-admin", "unlocked")
    assert entry.changes == {"locked out": ["pat from 192.0.2.50", None]}


def test_a_password_changed_in_the_admin_site_is_audited_without_its_value(person, db):
    admin = make_user("root-admin", "admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    url = reverse("admin:auth_user_password_change", args=[person.pk])
    new = "another-long-password-7"
    response = client.post(url, {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.check_password(new)
    [entry] = AuditEntry.objects.filter(action="user.password")
    assert (entry.username, entry.object_repr) == ("root-admin", "pat")
    assert entry.changes == {"password": ["(secret)", "(changed)"]}
    assert new not in str(entry.changes)


# --- The notify URL: ALLOWED_HOSTS and the HTTPS redirect -------------------------------------

SHELL_CHECK = """
from django.conf import settings
from django.http import HttpResponse
from django.http.request import split_domain_port, validate_host
from django.middleware.security import SecurityMiddleware
from django.test import RequestFactory
mw = SecurityMiddleware(lambda r: HttpResponse(status=204))
factory = RequestFactory()
def redirected(path):
    return mw.process_request(factory.post(path, HTTP_HOST="panel.example.com")) is not None
print("host", validate_host(split_domain_port("{host}")[0], settings.ALLOWED_HOSTS))
print("notify-redirected", redirected("/notify/3/"))
print("page-redirected", redirected("/clusters/"))
"""


def settings_check(tmp_path, notify_url, host, https="1"):
    result = manage(
        "shell",
        "-c",
        SHELL_CHECK.format(host=host),
        env={
            "VIPANEL_DATA_DIR": str(tmp_path),
            "VIPANEL_NOTIFY_URL": notify_url,
            "VIPANEL_HTTPS": https,
            "ALLOWED_HOSTS": "panel.example.com",
        },
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


def test_an_ipv6_notify_url_is_an_allowed_host(tmp_path):
    out = settings_check(tmp_path, "http://[2001:db8::5]:8000", "[2001:db8::5]:8000")
    assert out["host"] == "True"


def test_an_ipv4_notify_url_is_an_allowed_host(tmp_path):
    assert settings_check(tmp_path, "http://192.0.2.5:8000", "192.0.2.5:8000")["host"] == "True"


def test_an_http_notify_url_is_not_redirected_under_https(tmp_path):
    out = settings_check(tmp_path, "http://192.0.2.5:8000", "192.0.2.5:8000")
    assert out["notify-redirected"] == "False"
    # Every other page still is.
    assert out["page-redirected"] == "True"


def test_an_https_notify_url_is_redirected_like_everything_else(tmp_path):
    out = settings_check(tmp_path, "https://192.0.2.5", "192.0.2.5")
    assert out["notify-redirected"] == "True"
