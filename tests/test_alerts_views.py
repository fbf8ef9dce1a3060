"""Alert channels (admins only, URL write-only and masked) and incident pages (viewers)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts.models import Channel, Delivery, EventKind, Incident
from clusters.models import AuditEntry, Cluster
from tests.cast import *  # noqa: F403
from tests.cast import (
    assert_denies,
    assert_enforces_csrf,
    assert_rejects_get,
    assert_requires_login,
)
from tests.receiver import eager_alerts, receiver  # noqa: F401

pytestmark = pytest.mark.django_db

SECRET_URL = "json://alice:Sup3rSecretPw@hooks.example.net/vipanel"


@pytest.fixture
def stored(db):
    return Channel.objects.create(
        name="ops-hook", url=SECRET_URL, masked_url="json://alice:****@hooks.example.net/vipanel"
    )


def form(**over):
    data = {
        "name": "pager",
        "url": SECRET_URL,
        "kinds": ["failover", "split_brain"],
        "all_clusters": "on",
        "enabled": "on",
    }
    data.update(over)
    return data


MUTATING = {
    "channel-create": (lambda c: reverse("alerts:channel-create"), form),
    "channel-update": (
        lambda c: reverse("alerts:channel-update", args=[c.pk]),
        lambda: form(url=""),
    ),
    "channel-delete": (lambda c: reverse("alerts:channel-delete", args=[c.pk]), dict),
    "channel-test": (lambda c: reverse("alerts:channel-test", args=[c.pk]), dict),
}


@pytest.fixture(params=sorted(MUTATING))
def mutating(request, stored):
    url, data = MUTATING[request.param]
    return url(stored), data()


def test_each_mutating_view_rejects_get(login, admin, mutating):
    assert_rejects_get(login, admin, mutating[0])


def test_each_mutating_view_requires_login(mutating):
    assert_requires_login(*mutating)


def test_each_mutating_view_denies_the_operator(login, operator, mutating):
    assert_denies(login, operator, *mutating)


def test_each_mutating_view_enforces_csrf(login, admin, mutating):
    assert_enforces_csrf(login, admin, *mutating)


@pytest.mark.parametrize("name", ["alerts:channels", "alerts:channel-new"])
def test_channel_pages_are_for_admins_only(login, viewer, operator, name):
    assert login(viewer).get(reverse(name)).status_code == 403
    assert login(operator).get(reverse(name)).status_code == 403


def test_an_admin_adds_a_channel_stored_encrypted_and_shown_masked(login, admin, cluster):
    client = login(admin)
    response = client.post(reverse("alerts:channel-create"), form())
    assert response.status_code == 302
    channel = Channel.objects.get(name="pager")
    assert channel.url == SECRET_URL
    assert channel.masked_url == "json://alice:****@hooks.example.net/vi****"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT url FROM alerts_channel WHERE id = %s", [channel.pk])
        raw = cursor.fetchone()[0]
    assert raw.startswith("fernet:") and "Sup3rSecretPw" not in raw
    page = client.get(reverse("alerts:channels")).content.decode()
    edit = client.get(reverse("alerts:channel-edit", args=[channel.pk])).content.decode()
    entry = AuditEntry.objects.get(action="alert channel created")
    for shown in (page, edit, str(entry.changes)):
        assert "Sup3rSecretPw" not in shown
    assert "alice:****@hooks.example.net" in page
    assert entry.changes["kinds"] == [None, ["failover", "split_brain"]]


def test_apprise_refusing_the_url_is_an_error_on_the_url_field(login, admin):
    response = login(admin).post(
        reverse("alerts:channel-create"), form(url="nosuchservice://tok3n-value")
    )
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert "Apprise cannot use this URL" in errors["url"][0]
    assert "tok3n-value" not in response.content.decode()
    assert not Channel.objects.exists()


def test_chosen_clusters_are_required_without_all_clusters(login, admin, cluster):
    client = login(admin)
    response = client.post(reverse("alerts:channel-create"), form(all_clusters=""))
    assert response.status_code == 422
    assert "Choose at least one cluster" in response.context["form"].errors["clusters"][0]
    response = client.post(
        reverse("alerts:channel-create"), form(all_clusters="", clusters=[cluster.pk])
    )
    assert response.status_code == 302
    assert list(Channel.objects.get().clusters.all()) == [cluster]


def test_no_kinds_is_refused_on_the_kinds_field(login, admin):
    response = login(admin).post(reverse("alerts:channel-create"), form(kinds=[]))
    assert "at least one kind" in response.context["form"].errors["kinds"][0]


def test_an_edit_with_an_empty_url_keeps_it_and_a_new_one_is_audited_as_changed(
    login, admin, stored
):
    client = login(admin)
    client.post(
        reverse("alerts:channel-update", args=[stored.pk]),
        form(name="ops-hook", url="", kinds=["drill"]),
    )
    stored.refresh_from_db()
    assert stored.url == SECRET_URL and stored.kinds == ["drill"]
    client.post(
        reverse("alerts:channel-update", args=[stored.pk]),
        form(name="ops-hook", url="json://alice:An0therPw@hooks.example.net/vipanel"),
    )
    stored.refresh_from_db()
    assert stored.url.endswith("An0therPw@hooks.example.net/vipanel")
    entry = AuditEntry.objects.filter(action="alert channel updated").first()
    assert entry.changes["url"] == ["(secret)", "(changed)"]
    assert "An0therPw" not in str(entry.changes)


def test_delete_is_audited_with_the_masked_url(login, admin, stored):
    login(admin).post(reverse("alerts:channel-delete", args=[stored.pk]))
    assert not Channel.objects.exists()
    entry = AuditEntry.objects.get(action="alert channel deleted")
    assert "Sup3rSecretPw" not in str(entry.changes)


def test_send_a_test_shows_the_result(
    login, admin, receiver, eager_alerts, django_capture_on_commit_callbacks
):
    channel = Channel.objects.create(name="hook", url=receiver.url())
    client = login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("alerts:channel-test", args=[channel.pk]))
    assert response.status_code == 302
    assert receiver.titles() == ["vipanel test message"]
    delivery = Delivery.objects.get(purpose="test")
    assert delivery.state == "sent"
    page = client.get(reverse("alerts:channel-edit", args=[channel.pk])).content.decode()
    assert ">sent<" in page
    poll = client.get(reverse("alerts:delivery", args=[delivery.pk]))
    assert poll.status_code == 286  # done: htmx stops polling


def test_a_failed_test_shows_why_with_the_secret_masked(
    login, admin, receiver, eager_alerts, django_capture_on_commit_callbacks
):
    receiver.status = 401
    channel = Channel.objects.create(
        name="hook", url=f"json://bob:Pw4Hook@127.0.0.1:{receiver.port}/x"
    )
    client = login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("alerts:channel-test", args=[channel.pk]))
    delivery = Delivery.objects.get(purpose="test")
    assert delivery.state == "failed" and "401" in delivery.error
    page = client.get(reverse("alerts:channel-edit", args=[channel.pk])).content.decode()
    assert "401" in page and "Pw4Hook" not in page


@pytest.fixture
def incident(cluster):
    now = timezone.now()
    incident = Incident.objects.create(
        kind=EventKind.SPLIT_BRAIN,
        cluster=cluster,
        key="vip:1",
        subject="192.0.2.100/24",
        title="Split brain: several nodes hold 192.0.2.100/24",
        state=Incident.State.OPEN,
        started=now,
        last_seen=now,
        opened=now,
    )
    Delivery.objects.create(
        incident=incident,
        channel_name="pager",
        purpose="opened",
        state="failed",
        attempts=6,
        error="attempt 6: HTTP 503",
    )
    return incident


def test_viewers_see_incidents_and_their_deliveries(
    login, viewer, incident, django_assert_max_num_queries
):
    client = login(viewer)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("alerts:incidents")).content.decode()
    assert "Split brain" in page
    page = client.get(reverse("alerts:incident", args=[incident.pk])).content.decode()
    assert "attempt 6: HTTP 503" in page and "pager" in page


def test_outsiders_see_no_incidents(login, outsider, incident):
    assert login(outsider).get(reverse("alerts:incidents")).status_code == 403
    assert login(outsider).get(reverse("alerts:incident", args=[incident.pk])).status_code == 403


def test_the_availability_page_and_fragment(login, viewer, cluster):
    client = login(viewer)
    page = client.get(reverse("alerts:availability", args=[cluster.pk]))
    assert page.status_code == 200 and b"192.0.2.100/24" in page.content
    assert b"<html" in page.content
    fragment = client.get(
        reverse("alerts:availability", args=[cluster.pk]), headers={"HX-Request": "true"}
    )
    assert b"<html" not in fragment.content and b"Availability" in fragment.content
    assert b"100.00%" not in page.content  # never observed: unknown, not up


def test_the_inclusion_tag_renders_for_a_cluster_page(cluster):
    from django.template import Context, Template

    html = Template("{% load alerts %}{% availability cluster %}").render(
        Context({"cluster": Cluster.objects.get(pk=cluster.pk)})
    )
    assert "192.0.2.100/24" in html and "24h" in html and "30d" in html


def test_the_cluster_incidents_tag_lists_alerted_ones(cluster, incident):
    from django.template import Context, Template

    html = Template("{% load alerts %}{% cluster_incidents cluster %}").render(
        Context({"cluster": cluster})
    )
    assert f"#{incident.pk} Split brain" in html and "Open" in html


def test_a_pending_test_delivery_keeps_polling(login, admin, stored):
    delivery = Delivery.objects.create(channel=stored, channel_name=stored.name, purpose="test")
    response = login(admin).get(reverse("alerts:delivery", args=[delivery.pk]))
    assert response.status_code == 200 and b'hx-trigger="every 1s"' in response.content
    assert login(admin).get(reverse("alerts:incidents") + "?show=all").status_code == 200
