"""The panel's adopt flow (clusters/web/adopt.py) with fake nodes at our SSH boundary."""

import pytest

from clusters.models import AuditEntry, Cluster
from clusters.web.adopt import parse_nodes
from tests.adopt_fake import fake_nodes  # noqa: F401
from tests.cast import (  # noqa: F401
    admin,
    assert_denies,
    assert_enforces_csrf,
    assert_rejects_get,
    assert_requires_login,
    login,
    operator,
    viewer,
)
from tests.test_adopt import howto_nodes, style_mix_pair

pytestmark = pytest.mark.django_db

POSTS = ["/clusters/adopt/keys/", "/clusters/adopt/read/", "/clusters/adopt/save/"]
# For tests/test_views_cluster.py's table of guarded URLs; the guards are tested below.
MUTATING = {"adopt-keys", "adopt-read", "adopt-save"}


def form(credential, fake_nodes, trust=True, **extra):
    data = {"nodes": "\n".join(fake_nodes), "credential": credential.pk}
    if trust:
        for index, node in enumerate(fake_nodes.values()):
            data[f"trust_{index}"] = node.fingerprint
    return {**data, **extra}


@pytest.mark.parametrize("url", POSTS)
def test_every_step_is_a_post_for_operators_with_csrf(
    url, login, viewer, operator, credential, fake_nodes
):
    howto_nodes(fake_nodes)
    data = form(credential, fake_nodes)
    assert_rejects_get(login, operator, url)
    assert_requires_login(url, data)
    assert_denies(login, viewer, url, data)
    assert_enforces_csrf(login, operator, url, data)
    assert all(not n.commands for n in fake_nodes.values())


def test_the_start_page_is_an_operators(login, viewer, operator):
    assert login(viewer).get("/clusters/adopt/").status_code == 403
    page = login(operator).get("/clusters/adopt/")
    assert page.status_code == 200 and b"Adopt a running cluster" in page.content
    assert b'name="config_path"' in page.content and b"disabled" in page.content


def test_the_whole_flow_lands_on_the_new_cluster(login, operator, credential, fake_nodes):
    howto_nodes(fake_nodes)
    client = login(operator)
    keys = client.post("/clusters/adopt/keys/", form(credential, fake_nodes, trust=False))
    assert keys.status_code == 200
    for node in fake_nodes.values():
        assert node.fingerprint.encode() in keys.content
    # Untrusted keys: nothing is read.
    page = client.post("/clusters/adopt/read/", form(credential, fake_nodes, trust=False))
    assert page.status_code == 422 and b"Confirm the host key" in page.content
    assert all(not n.commands for n in fake_nodes.values())
    page = client.post("/clusters/adopt/read/", form(credential, fake_nodes))
    text = page.content.decode()
    assert page.status_code == 200, text
    assert "Split brain now: VI_1" in text and "node2 (192.168.50.12)</strong> keeps" not in text
    assert "never hear each other" in text and "changeme" not in text
    digest = page.context["reading"].digest
    data = form(credential, fake_nodes, digest=digest, name="swarm", network="192.168.50.0/24")
    data.update(
        {
            "nodes": page.context["nodes_text"],
            "check_weight": "0",
            **{f"name_192.168.50.1{i}": f"node{i}" for i in (1, 2, 3)},
            **{f"priority_192.168.50.1{i}": p for i, p in ((1, 100), (2, 200), (3, 150))},
        }
    )
    done = client.post("/clusters/adopt/save/", data)
    cluster = Cluster.objects.get(name="swarm")
    assert done.status_code == 302 and done["Location"] == f"/clusters/{cluster.pk}/"
    assert AuditEntry.objects.filter(action="cluster.adopt", cluster=cluster).exists()
    landing = client.get(done["Location"])
    assert b"adopted from 3 running nodes" in landing.content


def test_an_operator_sees_the_refusal_of_a_free_form_check_on_the_page(
    login, operator, credential, fake_nodes
):
    style_mix_pair(fake_nodes, '"/usr/local/bin/check-haproxy --deep"')
    client = login(operator)
    page = client.post("/clusters/adopt/read/", form(credential, fake_nodes))
    assert page.status_code == 200
    data = form(
        credential,
        fake_nodes,
        digest=page.context["reading"].digest,
        name="lb",
        network=page.context["plan"].network,
        check_type="command",
        check_script="/usr/local/bin/check-haproxy --deep",
        check_weight="-30",
        nodes=page.context["nodes_text"],
    )
    for node in page.context["plan"].nodes:
        data[f"name_{node.key}"], data[f"priority_{node.key}"] = node.name, node.priority
    refused = client.post("/clusters/adopt/save/", data)
    assert refused.status_code == 403
    assert b"vrrp_script chk_haproxy" in refused.content and b"Only an admin" in refused.content
    assert not Cluster.objects.exists()


@pytest.mark.parametrize(
    "text, ok",
    [
        ("192.0.2.11", [("192.0.2.11", 22, "")]),
        ("192.0.2.11:2222 SHA256:" + "a" * 43, [("192.0.2.11", 2222, "SHA256:" + "a" * 43)]),
        ("[2001:db8::1]:2222\n\n2001:db8::2", [("2001:db8::1", 2222, ""), ("2001:db8::2", 22, "")]),
        ("192.0.2.11; reboot", None),
        ("$(id)", None),
        ("192.0.2.11 SHA256:x extra", None),
    ],
)
def test_the_nodes_box_is_parsed_line_by_line(text, ok):
    if ok is None:
        with pytest.raises(Exception, match="Line 1"):
            parse_nodes(text)
    else:
        got = parse_nodes(text)
        assert [(n["address"], n["ssh_port"], n["host_key_fingerprint"]) for n in got] == ok
