"""No secret ever leaves through the API: not in a response, an error, an audit diff or a log.

Secrets go in through the API itself, then every route is called (reads, writes, errors) and
every body is searched for them, whole and in pieces.
"""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import logging

import pytest
from django.utils import timezone

from alerts.models import Incident
from clusters.api import urls as api_urls
from clusters.models import AuditEntry, Cluster, ConfigPush, FailoverEvent, Node, PushStep
from tests.api_schema import operations, path_for
from tests.conftest import make_private_key
from tests.test_api_support import (  # noqa: F401
    AUTH_PASS,
    FINGERPRINT,
    PASSPHRASE,
    Api,
    FakeHost,
    admin_api,
    admin_user,
    fake_ssh,
)

pytestmark = pytest.mark.django_db
# An alert channel's URL holds a password (write-only, masked in every read).
CHANNEL_SECRET = "Hunter2ChannelSecret"
CHANNEL_URL = f"json://bob:{CHANNEL_SECRET}@hooks.example.net/x"


def pieces(secret):
    """The secret and every recognisable part of it (each line of a key's body)."""
    yield secret
    for line in secret.splitlines():
        line = line.strip()
        if len(line) >= 12 and "PRIVATE KEY" not in line:
            yield line


def assert_clean(text, secrets, where):
    for secret in secrets:
        for piece in pieces(secret):
            assert piece not in text, f"a secret appears in {where}"


@pytest.fixture
def world(admin_api, fake_ssh):
    key = make_private_key()
    bodies = []

    def call(method, path, data=None, **params):
        response = admin_api.request(method, path, data, **params)
        bodies.append((f"{method} {path} -> {response.status_code}", response.content.decode()))
        return response

    credential = call(
        "POST",
        "/api/v1/credentials/",
        {"name": "ops", "username": "root", "private_key": key, "passphrase": PASSPHRASE},
    ).json()
    cluster = call(
        "POST",
        "/api/v1/clusters/",
        {
            "name": "web",
            "network": "192.0.2.0/24",
            "virtual_router_id": 51,
            "auth_pass": AUTH_PASS,
            "credential": credential["id"],
        },
    ).json()
    notify_secret = Cluster.objects.get(pk=cluster["id"]).notify_secret
    nodes = f"/api/v1/clusters/{cluster['id']}/nodes/"
    web1 = call("POST", nodes, {"name": "web-1", "address": "192.0.2.11", "priority": 120}).json()
    call("POST", nodes, {"name": "web-2", "address": "192.0.2.12", "priority": 110})
    vip = call("POST", f"/api/v1/clusters/{cluster['id']}/vips/", {"address": "192.0.2.100/24"})
    # A live config holding the secret, on a node that answers.
    live = f"vrrp_instance VI_1 {{\n  authentication {{\n    auth_pass {AUTH_PASS}\n  }}\n}}\n"
    Node.objects.filter(cluster_id=cluster["id"]).update(host_key_fingerprint=FINGERPRINT)
    fake_ssh["192.0.2.11"] = FakeHost(
        state="MASTER",
        addresses=["192.0.2.100/24"],
        files={"/etc/keepalived/keepalived.conf": live.encode()},
    )
    push = ConfigPush.objects.create(
        cluster_id=cluster["id"], state=ConfigPush.State.FAILED, detail=f"near {AUTH_PASS}"
    )
    PushStep.objects.create(
        push=push,
        node_name="web-1",
        position=1,
        state="failed",
        output=f"auth_pass {AUTH_PASS}\n{notify_secret}",
    )
    FailoverEvent.objects.create(
        cluster_id=cluster["id"],
        vip_address="192.0.2.100/24",
        at=push.created,
        detected_by="sweep",
    )
    channel = call(
        "POST",
        "/api/v1/alerts/channels/",
        {
            "name": "pager",
            "url": CHANNEL_URL,
            "clusters": [cluster["id"]],
            "all_clusters": False,
        },
    ).json()
    now = timezone.now()
    incident = Incident.objects.create(
        kind="split_brain",
        cluster_id=cluster["id"],
        key="vip:1",
        subject="x",
        title="Split brain",
        started=now,
        last_seen=now,
    )
    # A further instance with its own auth_pass (write-only like the cluster's).
    instance = call(
        "POST",
        f"/api/v1/clusters/{cluster['id']}/instances/",
        {"name": "B", "virtual_router_id": 61, "auth_pass": AUTH_PASS},
    ).json()
    call(
        "POST",
        f"/api/v1/clusters/{cluster['id']}/vips/",
        {"address": "192.0.2.200/24", "instance": instance["id"]},
    )
    group = call(
        "POST",
        f"/api/v1/clusters/{cluster['id']}/sync-groups/",
        {"name": "g", "includes_main": True},
    ).json()
    call("PATCH", f"/api/v1/instances/{instance['id']}/", {"sync_group": group["id"]})
    ids = {
        "cluster_id": cluster["id"],
        "node_id": web1["id"],
        "vip_id": vip.json()["id"],
        "push_id": push.pk,
        "incident_id": incident.pk,
        "channel_id": channel["id"],
        "instance_id": instance["id"],
        "group_id": group["id"],
    }
    return call, bodies, ids, [key, PASSPHRASE, AUTH_PASS, notify_secret, CHANNEL_SECRET]


def test_no_response_of_any_route_holds_a_secret(world, caplog):
    call, bodies, ids, secrets = world
    caplog.set_level(logging.DEBUG)
    # Reads first (preview reads the live file over the fake SSH), then the writes that keep
    # the objects alive, then errors that echo the input.
    call("GET", "/api/v1/schema/")
    for method, path, _ in operations():
        if method == "GET":
            call("GET", path_for(path, ids))
    call("POST", f"/api/v1/clusters/{ids['cluster_id']}/refresh/")
    call("POST", f"/api/v1/nodes/{ids['node_id']}/repin/")
    call("POST", f"/api/v1/pushes/{ids['push_id']}/resume/")
    call("PATCH", f"/api/v1/clusters/{ids['cluster_id']}/", {"auth_pass": AUTH_PASS + "xx"})
    call("PATCH", f"/api/v1/clusters/{ids['cluster_id']}/", {"auth_pass": 5, "name": AUTH_PASS})
    call("POST", "/api/v1/credentials/", {"name": "ops", "private_key": secrets[0]})
    call("POST", "/api/v1/credentials/", {"name": "x", "private_key": PASSPHRASE})
    channel = f"/api/v1/alerts/channels/{ids['channel_id']}/"
    call("PATCH", channel, {"url": CHANNEL_URL.replace("x", "y"), "name": "pager2"})
    call("PATCH", channel, {"url": CHANNEL_SECRET, "kinds": [CHANNEL_SECRET]})
    call("POST", channel + "test/")
    call("PATCH", f"/api/v1/clusters/{ids['cluster_id']}/", {"advert_int": 2})
    call("DELETE", f"/api/v1/clusters/{ids['cluster_id']}/")

    assert len(bodies) > 20
    assert any("(vipanel)" in body for _, body in bodies), "the preview ran"
    for where, body in bodies:
        assert_clean(body, secrets, where)
    for entry in AuditEntry.objects.all():
        assert_clean(repr(entry.changes) + entry.result + entry.object_repr, secrets, "audit")
    assert AuditEntry.objects.filter(action__endswith=".create").count() >= 5
    assert_clean(caplog.text, secrets, "the log")
