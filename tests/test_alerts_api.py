"""The alerts API (DRF): channels for admins with a write-only URL, incidents and availability
for viewers; every mutation through alerts.services, so validated and audited the same way."""

import pytest
from rest_framework.test import APIClient

from alerts.models import Channel, Incident
from clusters.models import AuditEntry
from tests.cast import *  # noqa: F403
from tests.receiver import eager_alerts, receiver  # noqa: F401

pytestmark = pytest.mark.django_db
SECRET = "json://bob:Hunter2Secret@hooks.example.net/x"


def client(user):
    c = APIClient()
    c.force_authenticate(user)
    return c


def test_an_admin_creates_a_channel_and_never_reads_the_url_back(admin, cluster):
    response = client(admin).post(
        "/api/v1/alerts/channels/",
        {
            "name": "pager",
            "url": SECRET,
            "kinds": ["split_brain"],
            "all_clusters": False,
            "clusters": [cluster.pk],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "url" not in body and body["masked_url"] == "json://bob:****@hooks.example.net/x"
    assert Channel.objects.get().url == SECRET
    listed = client(admin).get("/api/v1/alerts/channels/").content.decode()
    assert "Hunter2Secret" not in listed
    assert AuditEntry.objects.filter(action="alert channel created").count() == 1


def test_errors_are_keyed_by_field(admin):
    response = client(admin).post(
        "/api/v1/alerts/channels/",
        {"name": "pager", "url": "nosuch://x", "kinds": ["split_brain"]},
        format="json",
    )
    assert response.status_code == 400
    assert "Apprise cannot use this URL" in response.json()["url"][0]
    response = client(admin).post(
        "/api/v1/alerts/channels/",
        {"name": "pager", "url": SECRET, "kinds": [], "all_clusters": False},
        format="json",
    )
    assert set(response.json()) == {"kinds", "clusters"}


def test_viewers_and_operators_cannot_touch_channels(viewer, operator):
    for user in (viewer, operator):
        assert client(user).get("/api/v1/alerts/channels/").status_code == 403
        assert client(user).post("/api/v1/alerts/channels/", {}).status_code == 403


def test_a_test_through_the_api(admin, receiver, eager_alerts, django_capture_on_commit_callbacks):
    channel = Channel.objects.create(name="hook", url=receiver.url())
    with django_capture_on_commit_callbacks(execute=True):
        response = client(admin).post(f"/api/v1/alerts/channels/{channel.pk}/test/")
    assert response.status_code == 202
    assert receiver.titles() == ["vipanel test message"]


def test_viewers_read_incidents_and_availability(viewer, cluster):
    from django.utils import timezone

    now = timezone.now()
    Incident.objects.create(
        kind="split_brain",
        cluster=cluster,
        key="vip:1",
        subject="x",
        title="Split brain",
        started=now,
        last_seen=now,
    )
    incidents = client(viewer).get(f"/api/v1/alerts/incidents/?cluster={cluster.pk}").json()
    assert [i["title"] for i in incidents] == ["Split brain"]
    data = client(viewer).get(f"/api/v1/alerts/availability/{cluster.pk}/").json()
    [vip] = data["vips"]
    assert [w["window"] for w in vip["windows"]] == ["24h", "7d", "30d"]
    assert vip["windows"][0]["unknown_share"] == 1.0  # never observed


def test_metric_samples_cover_every_vip_and_window(cluster):
    from alerts.availability import metric_samples

    samples = list(metric_samples())
    assert [(c, v, w) for c, v, w, _, _ in samples] == [
        ("web", "192.0.2.100/24", "24h"),
        ("web", "192.0.2.100/24", "7d"),
        ("web", "192.0.2.100/24", "30d"),
    ]
    assert samples[0][3] == {
        "one_holder": 0.0,
        "no_holder": 0.0,
        "split_brain": 0.0,
        "unknown": 1.0,
    }


def test_it_takes_the_apis_token_and_answers_its_json_errors(viewer, cluster):
    from tests.test_api_support import token_for

    anonymous = APIClient().get("/api/v1/alerts/incidents/")
    assert anonymous.status_code == 401 and "Token" in anonymous.json()["detail"]
    token = APIClient(headers={"Authorization": f"Token {token_for(viewer)}"})
    assert token.get("/api/v1/alerts/incidents/").json() == []
    denied = token.get("/api/v1/alerts/channels/")
    assert denied.status_code == 403 and denied.json() == {"detail": "This needs the admin role."}
    assert token.get("/api/v1/alerts/availability/999/").json() == {"detail": "Not found."}
    bad = token.get("/api/v1/alerts/incidents/", {"state": "nosuch"})
    assert bad.status_code == 400 and "state" in bad.json()


def test_the_service_refuses_with_forbidden(operator):
    from alerts import services
    from clusters.services.errors import Forbidden

    with pytest.raises(Forbidden):
        services.create_channel(operator, {"name": "x", "url": SECRET})
