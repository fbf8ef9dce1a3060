"""Every entry point gives the same prediction of an action (clusters.impact) and none acts on
a person's request without a confirmation naming the cluster (issue 17, item 2).

The panel's confirmation page, the API's preview and impact endpoints and the services answer
with one Impact. The cluster of tests/conftest.py: web-1 (120) and web-2 (110), VIP
192.0.2.100/24. Its nodes run files where web-1 has priority 100, so web-2 holds the VIP now and
a push gives web-1 its 120 back. Only our own SSH boundary is patched (clusters.remote.connect).
"""

from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters.models import AuditEntry, ConfigPush, Node, NodeState, VipState, VrrpInstance
from clusters.render import node_config
from clusters.services import clusters as cluster_services
from clusters.services import drills, instances, maintenance, nodes, pushes, vips
from clusters.services.errors import Refused, Unconfirmed, Unreachable
from clusters.ssh import SSHError
from tests.cast import *  # noqa: F403
from tests.test_api_support import Api, token_for

pytestmark = pytest.mark.django_db

VIP = "192.0.2.100"


@pytest.fixture(autouse=True)
def enqueued():
    with (
        mock.patch("clusters.services.pushes.enqueue") as enqueue,
        mock.patch("clusters.tasks.drill_task.delay"),
    ):
        yield enqueue


class Conn:
    fingerprint = "SHA256:" + "K" * 43

    def __init__(self, text):
        self.text = text

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def get(self, path):
        return self.text

    def close(self):
        pass


@pytest.fixture
def live(cluster):
    """The nodes answer with vipanel's files, web-1's with priority 100; web-2 holds the VIP."""
    files = {}
    for node in cluster.nodes.all():
        text = node_config(node)
        if node.name == "web-1":
            text = text.replace("priority 120", "priority 100")
        files[node.name] = text.encode()
    now = timezone.now()
    for node in cluster.nodes.all():
        holds = ["192.0.2.100/24"] if node.name == "web-2" else []
        NodeState.objects.create(
            node=node,
            checked_at=now,
            reachable=True,
            keepalived_running=True,
            vrrp_state="MASTER" if holds else "BACKUP",
            holds=holds,
        )
    VipState.objects.create(
        vip=cluster.vips.get(), holder=cluster.nodes.get(name="web-2"), since=now, checked_at=now
    )
    with mock.patch("clusters.remote.connect", side_effect=lambda t: Conn(files[t.name])) as c:
        yield c


def api(user):
    return Api(token_for(user))


def panel_impact(client, url, data=None):
    """The prediction the panel's confirmation shows, from the page's context."""
    response = client.post(url, data or {})
    assert response.status_code == 200, response.content[:500]
    assert b"confirm-button" in response.content or b"confirm-blocked" in response.content
    return response.context["impact"]


# --- The same prediction everywhere -----------------------------------------------------------


def test_a_push_is_predicted_alike_by_the_service_the_panel_and_the_api(
    operator, cluster, login, live
):
    by_service = pushes.preview(operator, cluster).impact.as_dict()
    by_panel = panel_impact(login(operator), reverse("clusters:push-preview", args=[cluster.pk]))
    by_api = api(operator).get(f"/api/v1/clusters/{cluster.pk}/preview/").json()["impact"]
    by_impact = api(operator).get(f"/api/v1/clusters/{cluster.pk}/impact/").json()
    assert by_service == by_panel == by_api == by_impact
    assert by_service["moves"] == [
        f"web-1 takes {VIP} from web-2 within ~3.5 s of web-1's reload (web-2 keeps it until "
        "then: no gap); web-1 outranks it (120 over 110)."
    ]
    assert [(n["node"], n["what"]) for n in by_service["nodes"]] == [
        ("web-1", "changes"),
        ("web-2", "unchanged"),
    ]


def test_maintenance_is_predicted_alike(operator, cluster, login, live):
    web2 = cluster.nodes.get(name="web-2")
    by_service = maintenance.preview(operator, web2, True).impact.as_dict()
    url = reverse("clusters:node-maintenance", args=[web2.pk])
    by_panel = panel_impact(login(operator), url, {"maintenance": "on"})
    by_api = (
        api(operator)
        .get(f"/api/v1/clusters/{cluster.pk}/impact/", action="maintenance-on", node=web2.pk)
        .json()
    )
    assert by_service == by_panel == by_api
    assert by_service["action"] == "maintenance"
    assert any(m.startswith(f"web-1 takes {VIP} from web-2") for m in by_service["moves"])


def test_a_drill_is_predicted_alike(operator, cluster, login, live):
    by_service = drills.preview(operator, cluster).as_dict()
    by_panel = panel_impact(login(operator), reverse("clusters:drill", args=[cluster.pk]))
    by_api = api(operator).get(f"/api/v1/clusters/{cluster.pk}/impact/", action="drill").json()
    assert by_service == by_panel == by_api
    # vipanel's files (web-1 120) against the holder seen (web-2): the stop hands it to web-1.
    assert by_service["moves"][0].startswith(f"web-1 takes {VIP} from web-2 within ~0.5 s")


@pytest.mark.parametrize("what", ["node", "vip", "instance", "cluster"])
def test_a_deletion_is_predicted_alike(what, operator, cluster, login, live):
    instance = VrrpInstance.objects.create(cluster=cluster, name="B", virtual_router_id=52)
    for node, prio in zip(cluster.nodes.order_by("name"), (110, 120), strict=True):
        instance.node_priorities.create(node=node, priority=prio)
    cluster.vips.create(address="192.0.2.200/24", instance=instance)
    obj = {
        "node": cluster.nodes.get(name="web-2"),
        "vip": cluster.vips.get(address="192.0.2.100/24"),
        "instance": instance,
        "cluster": None,
    }[what]
    service = {
        "node": nodes.delete_preview,
        "vip": vips.delete_preview,
        "instance": instances.delete_preview,
        "cluster": cluster_services.delete_preview,
    }[what]
    url = {
        "node": lambda: reverse("clusters:node-delete", args=[obj.pk]),
        "vip": lambda: reverse("clusters:vip-delete", args=[obj.pk]),
        "instance": lambda: reverse("clusters:instance-delete", args=[obj.pk]),
        "cluster": lambda: reverse("clusters:cluster-delete", args=[cluster.pk]),
    }[what]()
    by_service = service(operator, obj if obj is not None else cluster).as_dict()
    by_panel = panel_impact(login(operator), url)
    params = {"action": "delete"} | ({what: obj.pk} if obj is not None else {})
    by_api = api(operator).get(f"/api/v1/clusters/{cluster.pk}/impact/", **params).json()
    assert by_service == by_panel == by_api
    assert by_service["action"] == f"delete {what}"
    assert cluster.nodes.count() == 2 and cluster.vips.count() == 2  # nothing was deleted


# --- Nothing moves without a confirmation naming the cluster ----------------------------------


def test_the_services_refuse_a_person_without_the_clusters_name(operator, cluster, live):
    node = cluster.nodes.get(name="web-1")
    vip = cluster.vips.get()
    calls = [
        lambda c: pushes.start_push(operator, cluster, confirm=c),
        lambda c: maintenance.set_maintenance(operator, node, True, confirm=c),
        lambda c: drills.start_drill(operator, cluster, confirm=c),
        lambda c: nodes.update_node(operator, node, {"maintenance": True}, confirm=c),
        lambda c: nodes.delete_node(operator, node, confirm=c),
        lambda c: vips.delete_vip(operator, vip, confirm=c),
        lambda c: cluster_services.delete_cluster(operator, cluster, confirm=c),
    ]
    for call in calls:
        for wrong in (None, "", "db", " web-1"):
            with pytest.raises(Unconfirmed) as refused:
                call(wrong)
            assert "web" in refused.value.errors["confirm"]
            assert "db" not in refused.value.errors["confirm"]  # what was sent is not echoed
    assert not ConfigPush.objects.exists() and not AuditEntry.objects.exists()
    assert cluster.nodes.count() == 2 and not Node.objects.filter(maintenance=True).exists()


@pytest.mark.parametrize(
    "url, data",
    [
        ("push-start", {}),
        ("node-maintenance", {"maintenance": "on"}),
        ("drill", {}),
        ("node-delete", {}),
        ("vip-delete", {}),
        ("cluster-delete", {}),
    ],
)
def test_the_panel_answers_an_unconfirmed_post_with_the_confirmation(
    url, data, operator, cluster, login, live
):
    arg = {
        "node-maintenance": lambda: cluster.nodes.get(name="web-1").pk,
        "node-delete": lambda: cluster.nodes.get(name="web-1").pk,
        "vip-delete": lambda: cluster.vips.get().pk,
    }.get(url, lambda: cluster.pk)()
    client = login(operator)
    response = client.post(reverse(f"clusters:{url}", args=[arg]), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="confirm-title"' in page and "What will happen" in page
    if url == "cluster-delete":
        assert 'name="confirm" autocomplete="off"' in page  # typed
    else:
        assert '<input type="hidden" name="confirm" value="web">' in page
        assert "of web" in page or "from web" in page  # the button names the cluster
    # A wrong name is no confirmation either.
    client.post(reverse(f"clusters:{url}", args=[arg]), {**data, "confirm": "db"})
    assert not ConfigPush.objects.exists() and not AuditEntry.objects.exists()
    assert cluster.nodes.count() == 2 and cluster.vips.count() == 1


def test_the_api_goes_ahead_without_confirm_and_stops_on_a_wrong_one(operator, cluster, live):
    """Scripts written before confirmations keep working; one that sends the name is checked."""
    client = api(operator)
    wrong = client.post(f"/api/v1/clusters/{cluster.pk}/pushes/", {"confirm": "db"})
    assert wrong.status_code == 400 and "web" in wrong.json()["confirm"][0]
    assert not ConfigPush.objects.exists()
    right = client.post(f"/api/v1/clusters/{cluster.pk}/pushes/", {"confirm": "web"})
    assert right.status_code == 202
    ConfigPush.objects.all().delete()
    assert client.post(f"/api/v1/clusters/{cluster.pk}/pushes/").status_code == 202
    unknown = client.post(f"/api/v1/clusters/{cluster.pk}/pushes/", {"force": True})
    assert unknown.status_code == 400 and "force" in unknown.json()


# --- Unreachable nodes ------------------------------------------------------------------------


@pytest.fixture
def web1_down(cluster, live):
    NodeState.objects.filter(node__name="web-1").update(
        reachable=False, keepalived_running=None, error="connection refused (is sshd running?)"
    )
    return cluster.nodes.get(name="web-1")


def test_a_push_is_refused_while_a_node_is_unreachable_with_one_message(
    operator, cluster, web1_down
):
    with pytest.raises(Unreachable) as refused:
        pushes.start_push(operator, cluster, confirm="web")
    text = refused.value.text
    assert refused.value.nodes == ["web-1"]
    assert text.count("connection refused") == 1 and text.count("web-1") == 3
    assert "skip web-1" in text
    assert AuditEntry.objects.get().result.startswith("refused: web-1 did not answer")


def test_a_skipped_node_is_recorded_on_the_push_and_its_audit_entry(operator, cluster, web1_down):
    push = pushes.start_push(operator, cluster, confirm="web", skip=["web-1"])
    assert push.skipped == [{"node": "web-1", "by": operator.username}]
    entry = AuditEntry.objects.get(action="push.start")
    assert entry.changes["skipped"] == [None, "web-1 (unreachable)"]
    assert entry.changes["nodes"] == [None, "web-2"]
    assert entry.result == f"push #{push.pk} queued for web-2, skipping web-1"


def test_a_skip_naming_no_node_of_the_cluster_is_refused(operator, cluster, web1_down):
    with pytest.raises(Refused) as refused:
        pushes.start_push(operator, cluster, confirm="web", skip=["<db-9>"])
    assert refused.value.errors["skip"] == (
        "1 of the names to skip is no node of cluster web; its nodes are web-1, web-2."
    )
    assert not ConfigPush.objects.exists()


def test_the_api_impact_takes_only_the_object_its_action_needs(operator, cluster, live):
    client = api(operator)
    url = f"/api/v1/clusters/{cluster.pk}/impact/"
    node = cluster.nodes.get(name="web-1").pk
    assert client.get(url, action="drill", node=node).json() == {
        "node": ["action=drill takes instance."]
    }
    assert client.get(url, action="maintenance-on").json() == {"node": ["Name the node (its id)."]}
    assert client.get(url, action="rm").json()["action"][0].startswith("Pick one of push")
    assert client.get(url, action="delete", node="x").status_code == 400
    assert client.get(url, action="delete", node=10**6).status_code == 404
    assert client.get(url, action="drill").status_code == 200


def test_the_api_answers_409_naming_the_unreachable_nodes_and_takes_a_skip(
    operator, cluster, web1_down
):
    client = api(operator)
    refused = client.post(f"/api/v1/clusters/{cluster.pk}/pushes/")
    assert refused.status_code == 409 and refused.json()["unreachable"] == ["web-1"]
    accepted = client.post(f"/api/v1/clusters/{cluster.pk}/pushes/", {"skip": ["web-1"]})
    assert accepted.status_code == 202 and accepted.json()["skipped"] == ["web-1"]


def test_the_preview_says_what_it_would_send_to_a_node_it_cannot_read(
    operator, cluster, login, live
):
    web2 = node_config(cluster.nodes.get(name="web-2")).encode()

    def connect(target):  # in the preview's threads: no database here
        if target.name == "web-1":
            raise SSHError("connection refused by 192.0.2.11:22 (is sshd running?)")
        return Conn(web2)

    live.side_effect = connect
    response = login(operator).post(reverse("clusters:push-preview", args=[cluster.pk]))
    page = response.content.decode()
    assert "0 of 2 nodes would change; 1 could not be read (web-1)" in page
    assert "What the push would send to web-1" in page and "priority 120" in page
    # No push button: a preview skipping web-1 instead.
    assert 'id="confirm-button"' not in page and "Preview skipping web-1" in page
    assert "A push is refused while a node it must change is unreachable" in page
    skipping = login(operator).post(
        reverse("clusters:push-preview", args=[cluster.pk]), {"skip": ["web-1"]}
    )
    page = skipping.content.decode()
    assert "Push web (no file changes), skipping web-1" in page
    assert '<input type="hidden" name="skip" value="web-1">' in page
    assert skipping.context["impact"]["nodes"][0] == {
        "node": "web-1",
        "what": "skipped",
        "details": ["skipped (unreachable)"],
    }


def test_a_drill_keeps_the_prediction_it_was_confirmed_with(operator, cluster, live):
    shown = drills.preview(operator, cluster).as_dict()
    record = drills.start_drill(operator, cluster, confirm="web")
    record.refresh_from_db()
    assert record.prediction == shown
    entry = AuditEntry.objects.get(action="drill started")
    assert entry.changes["predicted"] == [None, shown["summary"]]
    assert shown["summary"].startswith("no node's config changes; web-1 takes 192.0.2.100")
