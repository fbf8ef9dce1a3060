"""The adopt API (/api/v1/adopt/keys/, /read/, /adopt/): the three steps of clusters.services.adopt
over JSON, with fake nodes at our SSH boundary."""

import pytest

from clusters.models import CarriedBlock, Cluster
from tests.adopt_fake import fake_nodes  # noqa: F401
from tests.test_adopt import active_active_pair, confirmed, howto_nodes, style_mix_pair
from tests.test_api_support import (  # noqa: F401
    admin_api,
    admin_user,
    anon_api,
    operator,
    operator_api,
    viewer,
    viewer_api,
)

pytestmark = pytest.mark.django_db


def body(credential, items, **extra):
    return {"nodes": items, "credential": credential.pk, **extra}


def test_the_three_steps_adopt_the_howto_cluster(fake_nodes, credential, operator_api):
    items = howto_nodes(fake_nodes)
    keys = operator_api.post("/api/v1/adopt/keys/", body(credential, items))
    assert keys.status_code == 200, keys.json()
    offered = {n["address"]: n["offered"] for n in keys.json()["nodes"]}
    assert offered == {a: n.fingerprint for a, n in fake_nodes.items()}
    items = [{**i, "host_key_fingerprint": offered[i["address"]]} for i in items]
    read = operator_api.post("/api/v1/adopt/read/", body(credential, items))
    assert read.status_code == 200, read.json()
    reading = read.json()
    assert reading["split_brain"] == [
        {
            "instance": "VI_1",
            "holders": ["192.168.50.11", "192.168.50.12", "192.168.50.13"],
            "keeper": "192.168.50.12",
        }
    ]
    assert "changeme" not in read.content.decode()
    vrid = next(f for f in reading["findings"] if f["field"] == "virtual_router_id")
    assert vrid["proposed"] == 102
    done = operator_api.post(
        "/api/v1/adopt/",
        body(credential, items, digest=reading["digest"], edits={"name": "swarm"}),
    )
    assert done.status_code == 201, done.json()
    assert done.json()["name"] == "swarm" and done.json()["virtual_router_id"] == 102
    assert "changeme" not in done.content.decode()


def test_a_viewer_and_a_stranger_may_not_adopt(fake_nodes, credential, viewer_api, anon_api):
    items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    for path in ("/api/v1/adopt/keys/", "/api/v1/adopt/read/", "/api/v1/adopt/"):
        assert viewer_api.post(path, body(credential, items, digest="x")).status_code == 403
        assert anon_api.post(path, body(credential, items, digest="x")).status_code == 401
    assert all(not n.commands for n in fake_nodes.values())


def test_a_stale_reading_is_a_conflict(fake_nodes, credential, operator_api):
    items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    digest = operator_api.post("/api/v1/adopt/read/", body(credential, items)).json()["digest"]
    fake_nodes["192.168.50.11"].holds = []
    answer = operator_api.post("/api/v1/adopt/", body(credential, items, digest=digest))
    assert answer.status_code == 409 and "changed since you read them" in answer.json()["detail"]
    assert not Cluster.objects.exists()


def test_an_operator_is_refused_a_free_form_check_naming_the_script(
    fake_nodes, credential, operator_api
):
    items = style_mix_pair(fake_nodes, '"/usr/local/bin/check-haproxy --deep"')
    digest = operator_api.post("/api/v1/adopt/read/", body(credential, items)).json()["digest"]
    answer = operator_api.post("/api/v1/adopt/", body(credential, items, digest=digest))
    assert answer.status_code == 403
    assert "vrrp_script chk_haproxy" in answer.json()["detail"]
    edits = {"check_type": "process", "check_target": "haproxy", "check_script": ""}
    answer = operator_api.post(
        "/api/v1/adopt/", body(credential, items, digest=digest, edits=edits)
    )
    assert answer.status_code == 201, answer.json()


@pytest.mark.parametrize(
    "extra, status, field",
    [
        ({"config_path": "/etc/keepalived/../shadow.conf"}, 400, "config_path"),
        ({"config_path": "/etc/keepalived/other.conf"}, 403, None),
        ({"nodes": [{"address": "192.168.50.11", "ssh_port": "22"}]}, 400, "nodes.0.ssh_port"),
        ({"nodes": [{"address": "192.168.50.11", "shell": "id"}]}, 400, "nodes.0.shell"),
        ({"credential": 10**30}, 400, "credential"),
    ],
)
def test_hostile_reads_are_refused_by_field(
    fake_nodes, credential, operator_api, extra, status, field
):
    items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    answer = operator_api.post("/api/v1/adopt/read/", {**body(credential, items), **extra})
    assert answer.status_code == status, answer.json()
    if field:
        assert field in answer.json()


@pytest.mark.parametrize(
    "edits, field",
    [
        ({"name": "a b"}, "name"),
        ({"nodes": {"192.168.50.11": {"priority": "high"}}}, "edits.nodes.192.168.50.11.priority"),
        ({"nodes": ["x"]}, "edits.nodes"),
        ({"virtual_router_id": 9}, "edits.virtual_router_id"),
        ({"nodes": {"192.168.50.99": {"name": "x"}}}, "nodes.192.168.50.99"),
    ],
)
def test_hostile_edits_are_refused_by_field(fake_nodes, credential, admin_api, edits, field):
    items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    digest = admin_api.post("/api/v1/adopt/read/", body(credential, items)).json()["digest"]
    answer = admin_api.post("/api/v1/adopt/", body(credential, items, digest=digest, edits=edits))
    assert answer.status_code == 400 and field in answer.json(), answer.json()
    assert not Cluster.objects.exists()


def test_carried_text_is_never_writable_through_the_api(fake_nodes, credential, admin_api):
    items = active_active_pair(fake_nodes)
    digest = admin_api.post("/api/v1/adopt/read/", body(credential, items)).json()["digest"]
    cluster_id = admin_api.post("/api/v1/adopt/", body(credential, items, digest=digest)).json()[
        "id"
    ]
    node = Cluster.objects.get(pk=cluster_id).nodes.first()
    answer = admin_api.patch(f"/api/v1/nodes/{node.pk}/", {"carried": "virtual_server x {}"})
    assert answer.status_code == 400 and "Unknown field" in str(answer.json())
    assert not CarriedBlock.objects.filter(text__contains="virtual_server x").exists()
