"""Every entry point of a use case gives the same result, the same audit entry and the same
refusal (issue 10, item 2): the service itself, the panel, the admin, the JSON API and the
management command where one exists. Where the API answers a refusal by its own contract (a 409
or 403 with a JSON body instead of a page) its tests assert that equivalent. The API offers
no user roles, no change or deletion of a credential and no change of a VIP, so those tests
have no API way.

Only our own boundaries are patched: the Celery hand-off (clusters.services.pushes.enqueue)
and the SSH connection (clusters.remote.connect).
"""

from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from clusters import audit, roles
from clusters.models import AuditEntry, Cluster, ConfigPush, Node, SSHCredential
from clusters.services import clusters as cluster_services
from clusters.services import credentials, hostkeys, maintenance, pushes, users
from clusters.services.errors import Busy, Forbidden, Refused
from tests.cast import *  # noqa: F403
from tests.conftest import make_private_key
from tests.test_admin import change_form, inline_data
from tests.test_api_support import Api, token_for
from tests.test_forms import form_data

pytestmark = pytest.mark.django_db

OFFERED = "SHA256:" + "K" * 43
SECRET = "s3cr3t_x"  # keepalived keeps 8 characters


@pytest.fixture(autouse=True)
def enqueued():
    with mock.patch("clusters.services.pushes.enqueue") as enqueue:
        yield enqueue


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def admin_url(obj, view="change"):
    return reverse(f"admin:clusters_{obj._meta.model_name}_{view}", args=[obj.pk])


@pytest.fixture(autouse=True)
def _no_ssh(nodes_refuse_ssh):
    """Adding a node tests SSH at once; here every node refuses (tests that need a node to
    answer patch clusters.remote.connect again, on top of this)."""


def entry(action):
    """The one audit entry of `action`, as comparable values (who did it aside)."""
    (found,) = AuditEntry.objects.filter(action=action)
    return {
        "action": found.action,
        "object": found.object_repr,
        "cluster": found.cluster_id,
        "changes": found.changes,
        "result": found.result,
    }


def busy(cluster):
    return ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.RUNNING)


def api(user):
    """A JSON API client with a fresh token of `user`."""
    return Api(token_for(user))


# --- Maintenance: every entry point pushes ----------------------------------------------------


def maintenance_by_service(operator, node, **_):
    maintenance.set_maintenance(operator, node, True, confirm="web")


def maintenance_by_panel(operator, node, login, **_):
    login(operator).post(
        reverse("clusters:node-maintenance", args=[node.pk]),
        {"maintenance": "on", "confirm": "web"},
    )


def maintenance_by_admin_node(node, admin_client, **_):
    form = change_form(admin_client, node)
    admin_client.post(admin_url(node), form_data(form, maintenance="on"))


def maintenance_by_admin_inline(node, admin_client, **_):
    response = admin_client.get(admin_url(node.cluster))
    data = form_data(response.context["adminform"].form)
    data.update(inline_data(response))
    row = next(k for k, v in data.items() if k.endswith("-id") and str(v) == str(node.pk))
    data[row.replace("-id", "-maintenance")] = "on"
    admin_client.post(admin_url(node.cluster), data)


def maintenance_by_api(operator, node, **_):
    return api(operator).patch(f"/api/v1/nodes/{node.pk}/", {"maintenance": True})


MAINTENANCE = [
    maintenance_by_service,
    maintenance_by_panel,
    maintenance_by_admin_node,
    maintenance_by_admin_inline,
    maintenance_by_api,
]


@pytest.mark.parametrize("way", MAINTENANCE, ids=lambda f: f.__name__)
def test_maintenance_pushes_whatever_the_entry_point(way, operator, cluster, login, admin_client):
    node = cluster.nodes.get(name="web-1")
    answer = way(operator=operator, node=node, login=login, admin_client=admin_client)
    if way is maintenance_by_api:
        assert answer.status_code == 200 and answer.json()["maintenance"] is True
    node.refresh_from_db()
    assert node.maintenance is True
    push = ConfigPush.objects.get(cluster=cluster)
    assert push.kind == ConfigPush.Kind.MAINTENANCE
    assert entry("maintenance on") == {
        "action": "maintenance on",
        "object": str(node),
        "cluster": cluster.pk,
        "changes": {
            "maintenance": [False, True],
            "push": [None, push.pk],
            "nodes": [None, "web-2, web-1"],
        },
        "result": f"push #{push.pk}",
    }


@pytest.mark.parametrize("way", MAINTENANCE, ids=lambda f: f.__name__)
def test_maintenance_is_refused_alike_while_a_push_runs(
    way, operator, cluster, login, admin_client
):
    node = cluster.nodes.get(name="web-1")
    running = busy(cluster)
    try:
        answer = way(operator=operator, node=node, login=login, admin_client=admin_client)
    except Busy:
        assert way is maintenance_by_service
    if way is maintenance_by_api:  # the API's refusal of a state: 409, naming the active push
        assert answer.status_code == 409
        assert answer.json()["active"] == {"id": running.pk, "state": "running"}
    node.refresh_from_db()
    assert node.maintenance is False  # nothing changed without its push
    assert list(ConfigPush.objects.all()) == [running]
    refused = entry("maintenance on")
    assert refused["result"].startswith(f"refused: Push #{running.pk} of cluster web is running")
    assert refused["changes"] == {}


def maintenance_off_by_service(operator, node, **_):
    maintenance.set_maintenance(operator, node, False, confirm="web")


def maintenance_off_by_panel(operator, node, login, **_):
    login(operator).post(
        reverse("clusters:node-maintenance", args=[node.pk]),
        {"maintenance": "off", "confirm": "web"},
    )


def maintenance_off_by_admin(node, admin_client, **_):
    form = change_form(admin_client, node)
    admin_client.post(admin_url(node), form_data(form, maintenance=None))


def maintenance_off_by_api(operator, node, **_):
    answer = api(operator).patch(f"/api/v1/nodes/{node.pk}/", {"maintenance": False})
    assert answer.status_code == 200, answer.content


@pytest.mark.parametrize(
    "way",
    [
        maintenance_off_by_service,
        maintenance_off_by_panel,
        maintenance_off_by_admin,
        maintenance_off_by_api,
    ],
    ids=lambda f: f.__name__,
)
def test_leaving_maintenance_pushes_whatever_the_entry_point(
    way, operator, cluster, login, admin_client
):
    node = cluster.nodes.get(name="web-1")
    Node.objects.filter(pk=node.pk).update(maintenance=True)
    way(operator=operator, node=node, login=login, admin_client=admin_client)
    node.refresh_from_db()
    assert node.maintenance is False
    push = ConfigPush.objects.get(cluster=cluster)
    assert entry("maintenance off") == {
        "action": "maintenance off",
        "object": str(node),
        "cluster": cluster.pk,
        "changes": {
            "maintenance": [True, False],
            "push": [None, push.pk],
            "nodes": [None, "web-2, web-1"],
        },
        "result": f"push #{push.pk}",
    }


def port_and_maintenance_by_service(operator, node, **_):
    from clusters.services import nodes

    nodes.update_node(operator, node, {"ssh_port": 2222, "maintenance": True}, confirm="web")


def port_and_maintenance_by_admin(node, admin_client, **_):
    form = change_form(admin_client, node)
    admin_client.post(admin_url(node), form_data(form, ssh_port="2222", maintenance="on"))


def port_and_maintenance_by_api(operator, node, **_):
    answer = api(operator).patch(
        f"/api/v1/nodes/{node.pk}/", {"ssh_port": 2222, "maintenance": True}
    )
    assert answer.status_code == 200, answer.content


# Not the panel's: its node form has no maintenance field (the button above is its way in).
@pytest.mark.parametrize(
    "way",
    [port_and_maintenance_by_service, port_and_maintenance_by_admin, port_and_maintenance_by_api],
    ids=lambda f: f.__name__,
)
def test_an_edit_with_maintenance_is_two_entries_and_one_push(
    way, operator, cluster, login, admin_client
):
    node = cluster.nodes.get(name="web-1")
    way(operator=operator, node=node, login=login, admin_client=admin_client)
    node.refresh_from_db()
    assert (node.ssh_port, node.maintenance) == (2222, True)
    push = ConfigPush.objects.get(cluster=cluster)
    assert entry("node.update")["changes"] == {"ssh_port": [22, 2222]}
    assert entry("maintenance on")["changes"] == {
        "maintenance": [False, True],
        "push": [None, push.pk],
        "nodes": [None, "web-2, web-1"],
    }


# --- Preview: an operator's action, never a trust decision ------------------------------------


class FakeConnection:
    """What clusters.remote.connect returns: a node answering with a key nobody pinned."""

    fingerprint = OFFERED

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def get(self, path):
        return b"vrrp_instance VI_1 {\n}\n"

    def close(self):
        pass


@pytest.fixture
def node_answers():
    with mock.patch("clusters.remote.connect", return_value=FakeConnection()) as connect:
        yield connect


def preview_by_service(user, cluster, **_):
    try:
        pushes.preview(user, cluster)
    except PermissionDenied:
        return 403
    return 200


def preview_by_panel(user, cluster, login, **_):
    return login(user).post(reverse("clusters:push-preview", args=[cluster.pk])).status_code


def preview_by_api(user, cluster, **_):
    return api(user).get(f"/api/v1/clusters/{cluster.pk}/preview/").status_code


PREVIEW = [preview_by_service, preview_by_panel, preview_by_api]


@pytest.mark.parametrize("way", PREVIEW, ids=lambda f: f.__name__)
def test_a_viewer_can_preview_nowhere(way, viewer, cluster, login, node_answers):
    assert way(user=viewer, cluster=cluster, login=login) == 403
    node_answers.assert_not_called()


@pytest.mark.parametrize("way", PREVIEW, ids=lambda f: f.__name__)
def test_a_preview_never_pins_a_host_key(way, operator, cluster, login, node_answers):
    assert way(user=operator, cluster=cluster, login=login) == 200
    assert node_answers.called
    assert set(Node.objects.values_list("host_key_fingerprint", flat=True)) == {""}


# --- Starting a push ---------------------------------------------------------------------------


def push_by_service(operator, cluster, **_):
    pushes.start_push(operator, cluster, confirm="web")


def push_by_panel(operator, cluster, login, **_):
    login(operator).post(reverse("clusters:push-start", args=[cluster.pk]), {"confirm": "web"})


def push_by_command(cluster, **_):
    call_command("push", cluster.name, stdout=mock.Mock())


def push_by_api(operator, cluster, **_):
    return api(operator).post(f"/api/v1/clusters/{cluster.pk}/pushes/")


PUSH = [push_by_service, push_by_panel, push_by_command, push_by_api]


@pytest.mark.parametrize("way", PUSH, ids=lambda f: f.__name__)
def test_a_push_starts_alike_everywhere(
    way, operator, cluster, login, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answer = way(operator=operator, cluster=cluster, login=login)
    push = ConfigPush.objects.get()
    if way is push_by_api:  # accepted, to run in a worker: 202 with the push
        assert answer.status_code == 202 and answer.json()["id"] == push.pk
    assert push.state == ConfigPush.State.QUEUED and push.steps.count() == 2
    enqueued.assert_called_once_with(push.pk)
    assert entry("push.start") == {
        "action": "push.start",
        "object": "web",
        "cluster": cluster.pk,
        "changes": {"push": [None, push.pk], "nodes": [None, "web-2, web-1"]},
        "result": f"push #{push.pk} queued for web-2, web-1",
    }


@pytest.mark.parametrize("way", PUSH, ids=lambda f: f.__name__)
def test_a_second_push_is_refused_alike_everywhere(way, operator, cluster, login, enqueued):
    running = busy(cluster)
    try:
        answer = way(operator=operator, cluster=cluster, login=login)
    except (Busy, CommandError):
        assert way not in (push_by_panel, push_by_api)
    if way is push_by_api:
        assert answer.status_code == 409
        assert answer.json()["active"] == {"id": running.pk, "state": "running"}
    assert list(ConfigPush.objects.all()) == [running]
    enqueued.assert_not_called()
    assert entry("push.start")["result"].startswith(f"refused: Push #{running.pk}")


# --- A secret changed is audited as changed, never with its value ------------------------------


def auth_pass_by_service(operator, cluster, value, **_):
    cluster_services.update_cluster(operator, cluster, {"auth_pass": value})


def auth_pass_by_panel(operator, cluster, value, login, **_):
    form = change_form_of_panel(login(operator), cluster)
    changes = {"clear_auth_pass": "on"} if value == "" else {"auth_pass": value}
    login(operator).post(
        reverse("clusters:cluster-update", args=[cluster.pk]), form_data(form, **changes)
    )


def auth_pass_by_admin(cluster, value, admin_client, **_):
    response = admin_client.get(admin_url(cluster))
    data = form_data(response.context["adminform"].form)
    data.update(inline_data(response))
    data.update({"clear_auth_pass": "on"} if value == "" else {"auth_pass": value})
    admin_client.post(admin_url(cluster), data)


def auth_pass_by_api(operator, cluster, value, **_):
    # An empty string removes it (the API's documented contract for a write-only secret).
    answer = api(operator).patch(f"/api/v1/clusters/{cluster.pk}/", {"auth_pass": value})
    assert answer.status_code == 200, answer.content
    assert "auth_pass" not in answer.json() and answer.json()["auth_pass_set"] is bool(value)


def change_form_of_panel(client, cluster):
    return client.get(reverse("clusters:cluster-edit", args=[cluster.pk])).context["form"]


SECRETS = [auth_pass_by_service, auth_pass_by_panel, auth_pass_by_admin, auth_pass_by_api]


@pytest.mark.parametrize("way", SECRETS, ids=lambda f: f.__name__)
def test_a_changed_auth_pass_is_audited_as_changed(way, operator, cluster, login, admin_client):
    Cluster.objects.filter(pk=cluster.pk).update(auth_pass="0ld-pass")
    way(operator=operator, cluster=cluster, value=SECRET, login=login, admin_client=admin_client)
    cluster.refresh_from_db()
    assert cluster.auth_pass == SECRET
    changed = entry("cluster.update")
    assert changed["changes"] == {"auth_pass": ["(secret)", "(changed)"]}
    assert changed["result"] == "saved"
    assert SECRET not in str(changed) and "0ld-pass" not in str(changed)


@pytest.mark.parametrize("way", SECRETS, ids=lambda f: f.__name__)
def test_a_removed_auth_pass_is_audited_as_removed(way, operator, cluster, login, admin_client):
    Cluster.objects.filter(pk=cluster.pk).update(auth_pass="0ld-pass")
    way(operator=operator, cluster=cluster, value="", login=login, admin_client=admin_client)
    cluster.refresh_from_db()
    assert cluster.auth_pass == ""
    assert entry("cluster.update")["changes"] == {"auth_pass": ["(secret)", "(removed)"]}


# --- A cluster that never had an auth_pass never shows one in the log ------------------------


def other_field_by_service(operator, cluster, **_):
    cluster_services.update_cluster(operator, cluster, {"advert_int": 3})


def other_field_by_panel(operator, cluster, login, **_):
    form = change_form_of_panel(login(operator), cluster)
    assert "clear_auth_pass" not in form.fields  # no box to remove what is not there
    # A box posted all the same (an old page, a hand-made request) removes nothing.
    data = form_data(form, advert_int="3")
    data["clear_auth_pass"] = "on"
    login(operator).post(reverse("clusters:cluster-update", args=[cluster.pk]), data)


def other_field_by_admin(cluster, admin_client, **_):
    response = admin_client.get(admin_url(cluster))
    assert "clear_auth_pass" not in response.content.decode()
    data = form_data(response.context["adminform"].form)
    data.update(inline_data(response))
    data.update({"advert_int": "3", "clear_auth_pass": "on"})
    admin_client.post(admin_url(cluster), data)


def other_field_by_api(operator, cluster, **_):
    # An empty auth_pass is the API's "remove it": with none stored, nothing to remove.
    answer = api(operator).patch(
        f"/api/v1/clusters/{cluster.pk}/", {"advert_int": 3, "auth_pass": ""}
    )
    assert answer.status_code == 200, answer.content


@pytest.mark.parametrize(
    "way",
    [other_field_by_service, other_field_by_panel, other_field_by_admin, other_field_by_api],
    ids=lambda f: f.__name__,
)
def test_a_cluster_without_an_auth_pass_never_logs_one(way, operator, cluster, login, admin_client):
    assert cluster.auth_pass == ""
    way(operator=operator, cluster=cluster, login=login, admin_client=admin_client)
    assert entry("cluster.update")["changes"] == {"advert_int": [1, 3]}
    cluster_services.delete_cluster(operator, cluster, confirm=cluster.name)
    assert "auth_pass" not in entry("cluster.delete")["changes"]


def test_an_instance_without_an_auth_pass_never_logs_one(operator, cluster):
    from clusters.services import instances

    made = instances.create_instance(operator, cluster, {"name": "B", "virtual_router_id": 60})
    instances.update_instance(operator, made, {"advert_int": 2, "auth_pass": ""})
    instances.delete_instance(operator, made, confirm=cluster.name)
    for action in ("instance.create", "instance.update", "instance.delete"):
        assert "auth_pass" not in entry(action)["changes"], action


def test_a_secret_is_logged_by_what_happened_to_it():
    secret = audit.SecretValue("s3cret")
    assert audit.secret_change(None, secret) == [None, "(set)"]
    assert audit.secret_change("", secret) == [None, "(set)"]
    assert audit.secret_change(secret, audit.SecretValue("0ther")) == ["(secret)", "(changed)"]
    assert audit.secret_change(secret, "") == ["(secret)", "(removed)"]
    assert audit.secret_change(secret, None) == ["(secret)", None]  # deleted with its object
    for old, new in (("", None), (None, ""), ("", ""), (secret, audit.SecretValue("s3cret"))):
        assert audit.secret_change(old, new) is None


def test_an_ssh_key_and_passphrase_changed_are_audited_as_changed(admin):
    credential = SSHCredential.objects.create(
        name="k", username="root", private_key=make_private_key(), passphrase="p1"
    )
    credentials.update_credential(
        admin, credential, {"private_key": make_private_key(), "passphrase": "p2"}
    )
    assert entry("credential.update")["changes"] == {
        "passphrase": ["(secret)", "(changed)"],
        "private_key": ["(secret)", "(changed)"],
    }


def test_the_same_secret_again_is_no_change(admin):
    key = make_private_key()
    credential = SSHCredential.objects.create(name="k", username="root", private_key=key)
    credentials.update_credential(admin, credential, {"private_key": key})
    assert not AuditEntry.objects.filter(action="credential.update").exists()


def test_the_audit_entry_is_in_the_changes_transaction(operator, cluster):
    with mock.patch.object(audit.AuditEntry.objects, "create", side_effect=RuntimeError):
        with pytest.raises(RuntimeError):
            cluster_services.update_cluster(operator, cluster, {"advert_int": 7})
    cluster.refresh_from_db()
    assert cluster.advert_int != 7  # no change without its entry


# --- reload_command stays an admin's ------------------------------------------------------------


def test_an_operator_cannot_set_reload_command_anywhere(operator, admin, cluster, login):
    with pytest.raises(Forbidden, match="reload_command"):
        cluster_services.update_cluster(operator, cluster, {"reload_command": "reboot"})
    form = change_form_of_panel(login(operator), cluster)
    login(operator).post(
        reverse("clusters:cluster-update", args=[cluster.pk]),
        form_data(form, reload_command="reboot"),
    )
    cluster.refresh_from_db()
    assert cluster.reload_command != "reboot"  # the panel's field is disabled for operators
    response = api(operator).patch(f"/api/v1/clusters/{cluster.pk}/", {"reload_command": "reboot"})
    assert response.status_code == 403 and "reload_command" in response.content.decode()
    cluster.refresh_from_db()
    assert cluster.reload_command != "reboot"
    cluster_services.update_cluster(admin, cluster, {"reload_command": "systemctl reload x"})
    cluster.refresh_from_db()
    assert cluster.reload_command == "systemctl reload x"


# --- Host keys: trusted by a person ------------------------------------------------------------


def trust_by_service(operator, node, fingerprint, **_):
    hostkeys.trust_host_key(operator, node, fingerprint)


def trust_by_panel(operator, node, fingerprint, login, **_):
    return login(operator).post(
        reverse("clusters:node-repin", args=[node.pk]), {"fingerprint": fingerprint}
    )


def trust_by_api(operator, node, fingerprint, **_):
    return api(operator).post(f"/api/v1/nodes/{node.pk}/repin/", {"fingerprint": fingerprint})


TRUST = [trust_by_service, trust_by_panel, trust_by_api]


@pytest.mark.parametrize("way", TRUST, ids=lambda f: f.__name__)
def test_a_person_trusts_the_offered_key(way, operator, cluster, login):
    node = cluster.nodes.get(name="web-1")
    Node.objects.filter(pk=node.pk).update(offered_host_key_fingerprint=OFFERED)
    answer = way(operator=operator, node=node, fingerprint=OFFERED, login=login)
    if way is trust_by_api:
        assert answer.status_code == 200 and answer.json()["host_key_fingerprint"] == OFFERED
    node.refresh_from_db()
    assert (node.host_key_fingerprint, node.offered_host_key_fingerprint) == (OFFERED, "")
    assert entry("node.trust") == {
        "action": "node.trust",
        "object": str(node),
        "cluster": cluster.pk,
        "changes": {"host_key_fingerprint": ["", OFFERED]},
        "result": "trusted",
    }


@pytest.mark.parametrize("way", TRUST, ids=lambda f: f.__name__)
def test_a_key_not_offered_is_not_trusted(way, operator, cluster, login):
    node = cluster.nodes.get(name="web-1")
    Node.objects.filter(pk=node.pk).update(offered_host_key_fingerprint=OFFERED)
    try:
        answer = way(operator=operator, node=node, fingerprint="SHA256:" + "Z" * 43, login=login)
    except Busy:
        assert way is trust_by_service
    if way is trust_by_api:  # the node offers another key than the one compared: a conflict
        assert answer.status_code == 409
        assert answer.json()["offered_host_key_fingerprint"] == OFFERED
    node.refresh_from_db()
    assert node.host_key_fingerprint == ""
    assert entry("node.trust")["result"].startswith("refused: The key the node offers")


@pytest.mark.parametrize("way", TRUST, ids=lambda f: f.__name__)
def test_a_node_offering_no_key_has_nothing_trusted(way, operator, cluster, login):
    node = cluster.nodes.get(name="web-1")
    try:
        answer = way(operator=operator, node=node, fingerprint=OFFERED, login=login)
    except Busy:
        assert way is trust_by_service
    if way is trust_by_api:  # the API's own words for it: nothing offered, nothing to accept
        assert answer.status_code == 409
        assert "has not offered" in answer.json()["detail"]
    node.refresh_from_db()
    assert node.host_key_fingerprint == ""
    assert entry("node.trust")["result"].startswith("refused: The key the node offers")


def test_a_viewer_cannot_trust_a_key(viewer, cluster, login):
    node = cluster.nodes.get(name="web-1")
    Node.objects.filter(pk=node.pk).update(offered_host_key_fingerprint=OFFERED)
    with pytest.raises(Forbidden):
        hostkeys.trust_host_key(viewer, node, OFFERED)
    response = login(viewer).post(
        reverse("clusters:node-repin", args=[node.pk]), {"fingerprint": OFFERED}
    )
    assert response.status_code == 403
    response = api(viewer).post(f"/api/v1/nodes/{node.pk}/repin/", {"fingerprint": OFFERED})
    assert response.status_code == 403
    node.refresh_from_db()
    assert node.host_key_fingerprint == ""
    assert not AuditEntry.objects.filter(action="node.trust").exists()


def fingerprint_by_panel_add(operator, cluster, login, **_):
    data = {
        "name": "web-3",
        "address": "192.0.2.13",
        "ssh_port": "22",
        "priority": "100",
        "host_key_fingerprint": OFFERED,
    }
    login(operator).post(reverse("clusters:node-add", args=[cluster.pk]), data)
    return Node.objects.get(name="web-3")


def fingerprint_by_panel_edit(operator, cluster, login, **_):
    node = cluster.nodes.get(name="web-1")
    form = login(operator).get(reverse("clusters:node-edit", args=[node.pk])).context["form"]
    login(operator).post(
        reverse("clusters:node-update", args=[node.pk]),
        form_data(form, host_key_fingerprint=OFFERED),
    )
    return node


def fingerprint_by_admin(cluster, admin_client, **_):
    node = cluster.nodes.get(name="web-1")
    form = change_form(admin_client, node)
    admin_client.post(admin_url(node), form_data(form, host_key_fingerprint=OFFERED))
    return node


def fingerprint_by_api_add(operator, cluster, **_):
    data = {
        "name": "web-3",
        "address": "192.0.2.13",
        "priority": 100,
        "host_key_fingerprint": OFFERED,
    }
    answer = api(operator).post(f"/api/v1/clusters/{cluster.pk}/nodes/", data)
    assert answer.status_code == 201, answer.content
    return Node.objects.get(name="web-3")


def fingerprint_by_api_edit(operator, cluster, **_):
    node = cluster.nodes.get(name="web-1")
    answer = api(operator).patch(f"/api/v1/nodes/{node.pk}/", {"host_key_fingerprint": OFFERED})
    assert answer.status_code == 200, answer.content
    return node


@pytest.mark.parametrize(
    "way",
    [
        fingerprint_by_panel_add,
        fingerprint_by_panel_edit,
        fingerprint_by_admin,
        fingerprint_by_api_add,
        fingerprint_by_api_edit,
    ],
    ids=lambda f: f.__name__,
)
def test_a_fingerprint_given_up_front_is_pinned_and_audited(
    way, operator, cluster, login, admin_client
):
    node = way(operator=operator, cluster=cluster, login=login, admin_client=admin_client)
    node.refresh_from_db()
    assert node.host_key_fingerprint == OFFERED
    added = way in (fingerprint_by_panel_add, fingerprint_by_api_add)
    action = "node.create" if added else "node.update"
    assert entry(action)["changes"]["host_key_fingerprint"] == [
        "" if action == "node.update" else None,
        OFFERED,
    ]


def test_the_cluster_page_shows_an_untrusted_key_with_a_trust_button(operator, cluster, login):
    node = cluster.nodes.get(name="web-1")
    Node.objects.filter(pk=node.pk).update(offered_host_key_fingerprint=OFFERED)
    page = login(operator).get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    assert f"host key not trusted yet: <code>{OFFERED}</code>" in page
    assert f'action="{reverse("clusters:node-repin", args=[node.pk])}"' in page
    assert f'name="fingerprint" value="{OFFERED}"' in page


# --- Roles --------------------------------------------------------------------------------------


def role_by_service(admin, target, role, **_):
    users.set_role(admin, target, role)


def role_by_panel(admin, target, role, login, **_):
    login(admin).post(reverse("clusters:user-role", args=[target.pk]), {"role": role})


@pytest.mark.parametrize("way", [role_by_service, role_by_panel], ids=lambda f: f.__name__)
def test_a_role_changes_alike(way, admin, viewer, login):
    way(admin=admin, target=viewer, role=roles.OPERATOR, login=login)
    viewer = type(viewer).objects.get(pk=viewer.pk)
    assert roles.role_of(viewer) == roles.OPERATOR
    assert entry("user.role")["changes"] == {"role": ["viewer", "operator"]}


@pytest.mark.parametrize("way", [role_by_service, role_by_panel], ids=lambda f: f.__name__)
def test_nobody_takes_the_admin_role_from_themselves(way, admin, login):
    try:
        way(admin=admin, target=admin, role=roles.VIEWER, login=login)
    except Refused:
        assert way is role_by_service
    admin = type(admin).objects.get(pk=admin.pk)
    assert roles.role_of(admin) == roles.ADMIN
    assert not AuditEntry.objects.filter(action="user.role").exists()


def test_an_operator_cannot_give_roles(operator, viewer):
    with pytest.raises(Forbidden):
        users.set_role(operator, viewer, roles.ADMIN)


# --- The admin site audits what it changes ----------------------------------------------------


def test_the_admin_deletes_a_vip_through_the_service(admin_client, cluster):
    vip = cluster.vips.get()
    response = admin_client.post(admin_url(vip, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert not cluster.vips.exists()
    assert entry("vip.delete")["changes"] == {
        "address": ["192.0.2.100/24", None],
        "label": ["frontend", None],
    }


def test_deleting_a_push_record_in_the_admin_is_audited(admin_client, cluster):
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.FAILED)
    response = admin_client.post(admin_url(push, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert not ConfigPush.objects.exists()
    assert entry("configpush.delete")["result"] == "deleted"


def test_a_refusal_in_the_admin_is_shown_and_not_saved(admin_client, cluster):
    node = cluster.nodes.get(name="web-1")
    busy(cluster)
    form = change_form(admin_client, node)
    response = admin_client.post(admin_url(node), form_data(form, maintenance="on"), follow=True)
    assert "Not saved: Push #" in response.content.decode()
    assert "was changed successfully" not in response.content.decode()
    node.refresh_from_db()
    assert node.maintenance is False


def test_a_validation_error_names_its_field(operator, cluster):
    with pytest.raises(ValidationError) as error:
        cluster_services.update_cluster(operator, cluster, {"advert_int": 0})
    assert "advert_int" in error.value.message_dict


def test_a_role_given_in_the_admins_user_form_is_audited(admin_client, viewer):
    operators = Group.objects.get_or_create(name=roles.OPERATOR)[0]
    page = admin_client.get(reverse("admin:auth_user_change", args=[viewer.pk]))
    data = form_data(page.context["adminform"].form)
    joined = data.pop("date_joined")  # a split widget: date and time apart
    data.update(date_joined_0=f"{joined:%Y-%m-%d}", date_joined_1=f"{joined:%H:%M:%S}")
    data["groups"] = [str(operators.pk)]
    response = admin_client.post(reverse("admin:auth_user_change", args=[viewer.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    changed = entry("user.update")
    assert changed["changes"]["role"] == ["viewer", "operator"]
    assert changed["changes"]["groups"] == [["viewer"], ["operator"]]


def test_deleting_a_user_in_the_admin_is_audited(admin_client, viewer):
    response = admin_client.post(
        reverse("admin:auth_user_delete", args=[viewer.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not type(viewer).objects.filter(pk=viewer.pk).exists()
    assert entry("user.delete")["changes"] == {"role": ["viewer", None]}


# --- Resuming a push ---------------------------------------------------------------------------


def resume_by_service(operator, push, **_):
    pushes.resume_push(operator, push, confirm="web")


def resume_by_panel(operator, push, login, **_):
    return login(operator).post(reverse("clusters:push-resume", args=[push.pk]), {"confirm": "web"})


def resume_by_api(operator, push, **_):
    return api(operator).post(f"/api/v1/pushes/{push.pk}/resume/")


RESUME = [resume_by_service, resume_by_panel, resume_by_api]


@pytest.mark.parametrize("way", RESUME, ids=lambda f: f.__name__)
def test_a_failed_push_resumes_alike_everywhere(
    way, operator, cluster, login, enqueued, django_capture_on_commit_callbacks
):
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        answer = way(operator=operator, push=push, login=login)
    if way is resume_by_api:
        assert answer.status_code == 202 and answer.json()["state"] == "queued"
    push.refresh_from_db()
    assert push.state == ConfigPush.State.QUEUED
    enqueued.assert_called_once_with(push.pk)
    assert entry("push.resume") == {
        "action": "push.resume",
        "object": "web",
        "cluster": cluster.pk,
        "changes": {"push": [None, push.pk]},
        "result": f"push #{push.pk} queued again",
    }


@pytest.mark.parametrize("way", RESUME, ids=lambda f: f.__name__)
def test_a_succeeded_push_is_not_resumed_anywhere(way, operator, cluster, login, enqueued):
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.SUCCEEDED)
    try:
        answer = way(operator=operator, push=push, login=login)
    except Refused:
        assert way is resume_by_service
    else:  # a refusal of the push's state: 409 from the panel's page and the API's JSON alike
        assert answer.status_code == 409
    push.refresh_from_db()
    assert push.state == ConfigPush.State.SUCCEEDED
    enqueued.assert_not_called()
    assert entry("push.resume")["result"] == (
        f"refused: Push #{push.pk} is succeeded; only a failed or interrupted push can be resumed."
    )


# --- Create, change and delete: the same rows and the same entries -------------------------------

NEW_CLUSTER = {
    "name": "db",
    "network": "198.51.100.0/24",
    "virtual_router_id": 52,
    "interface": "eth1",
    "auth_pass": SECRET,
}
NEW_NODE = {"name": "web-3", "address": "192.0.2.13", "ssh_port": 22, "priority": 100}
NEW_VIP = {"address": "192.0.2.101/24", "label": "backend"}


def panel_form(client, url_name, *args):
    return client.get(reverse(url_name, args=args)).context["form"]


def cluster_create_by_service(operator, cluster, **_):
    cluster_services.create_cluster(operator, {**NEW_CLUSTER, "credential": cluster.credential})


def cluster_create_by_panel(operator, cluster, login, **_):
    # The panel's guided flow: the cluster with its first node and VIP, in one form.
    client = login(operator)
    page = client.get(reverse("clusters:cluster-new")).context
    data = form_data(page["form"], **NEW_CLUSTER, credential=cluster.credential_id)
    data.update(form_data(page["vip_form"], address="198.51.100.100/24"))
    data.update(form_data(page["rows"].management_form))
    for row in page["rows"]:
        data.update(form_data(row))
    data.update({"nodes-0-name": "db-1", "nodes-0-address": "198.51.100.11"})
    answer = client.post(reverse("clusters:cluster-create"), data)
    assert answer.status_code == 302, answer.content.decode()[-3000:]


def cluster_create_by_api(operator, cluster, **_):
    answer = api(operator).post(
        "/api/v1/clusters/", {**NEW_CLUSTER, "credential": cluster.credential_id}
    )
    assert answer.status_code == 201, answer.content


@pytest.mark.parametrize(
    "way",
    [cluster_create_by_service, cluster_create_by_panel, cluster_create_by_api],
    ids=lambda f: f.__name__,
)
def test_a_cluster_is_created_alike(way, operator, cluster, login):
    way(operator=operator, cluster=cluster, login=login)
    made = Cluster.objects.get(name="db")
    assert (made.network, made.virtual_router_id, made.interface) == ("198.51.100.0/24", 52, "eth1")
    created = entry("cluster.create")
    assert (created["object"], created["cluster"], created["result"]) == ("db", made.pk, "created")
    assert created["changes"]["name"] == [None, "db"]
    assert created["changes"]["virtual_router_id"] == [None, 52]
    assert created["changes"]["credential"] == [None, cluster.credential_id]
    assert created["changes"]["reload_command"] == [None, "systemctl reload-or-restart keepalived"]
    assert len(created["changes"]) == 19  # every field, whichever way it came in
    assert made.auth_pass == SECRET and SECRET not in str(created)
    assert created["changes"]["auth_pass"] == [None, "(set)"]


def cluster_update_by_service(operator, cluster, **_):
    cluster_services.update_cluster(operator, cluster, {"advert_int": 3})


def cluster_update_by_panel(operator, cluster, login, **_):
    form = change_form_of_panel(login(operator), cluster)
    login(operator).post(
        reverse("clusters:cluster-update", args=[cluster.pk]), form_data(form, advert_int="3")
    )


def cluster_update_by_admin(cluster, admin_client, **_):
    response = admin_client.get(admin_url(cluster))
    data = form_data(response.context["adminform"].form, advert_int="3")
    data.update(inline_data(response))
    admin_client.post(admin_url(cluster), data)


def cluster_update_by_api(operator, cluster, **_):
    answer = api(operator).patch(f"/api/v1/clusters/{cluster.pk}/", {"advert_int": 3})
    assert answer.status_code == 200, answer.content


@pytest.mark.parametrize(
    "way",
    [
        cluster_update_by_service,
        cluster_update_by_panel,
        cluster_update_by_admin,
        cluster_update_by_api,
    ],
    ids=lambda f: f.__name__,
)
def test_a_cluster_is_changed_alike(way, operator, cluster, login, admin_client):
    old = cluster.advert_int
    way(operator=operator, cluster=cluster, login=login, admin_client=admin_client)
    cluster.refresh_from_db()
    assert cluster.advert_int == 3
    assert entry("cluster.update") == {
        "action": "cluster.update",
        "object": "web",
        "cluster": cluster.pk,
        "result": "saved",
        "changes": {"advert_int": [old, 3]},
    }


def cluster_delete_by_service(operator, cluster, **_):
    cluster_services.delete_cluster(operator, cluster, confirm="web")


def cluster_delete_by_panel(operator, cluster, login, **_):
    # Typed by the operator: the panel asks for the name (clusters.web.confirm).
    login(operator).post(reverse("clusters:cluster-delete", args=[cluster.pk]), {"confirm": "web"})


def cluster_delete_by_admin(cluster, admin_client, **_):
    admin_client.post(admin_url(cluster, "delete"), {"post": "yes"})


def cluster_delete_by_api(operator, cluster, **_):
    return api(operator).delete(f"/api/v1/clusters/{cluster.pk}/")


CLUSTER_DELETE = [
    cluster_delete_by_service,
    cluster_delete_by_panel,
    cluster_delete_by_admin,
    cluster_delete_by_api,
]


@pytest.mark.parametrize("way", CLUSTER_DELETE, ids=lambda f: f.__name__)
def test_a_cluster_is_deleted_alike(way, operator, cluster, login, admin_client):
    answer = way(operator=operator, cluster=cluster, login=login, admin_client=admin_client)
    if way is cluster_delete_by_api:
        assert answer.status_code == 204
    assert not Cluster.objects.exists()
    deleted = entry("cluster.delete")
    assert (deleted["object"], deleted["result"]) == ("web", "deleted")
    assert deleted["changes"]["name"] == ["web", None]
    assert deleted["changes"]["virtual_router_id"] == [51, None] and len(deleted["changes"]) == 18


@pytest.mark.parametrize("way", CLUSTER_DELETE, ids=lambda f: f.__name__)
def test_a_busy_cluster_is_deleted_nowhere(way, operator, cluster, login, admin_client):
    running = busy(cluster)
    try:
        answer = way(operator=operator, cluster=cluster, login=login, admin_client=admin_client)
    except Busy:
        assert way is cluster_delete_by_service
    if way is cluster_delete_by_api:
        assert answer.status_code == 409
    assert Cluster.objects.filter(pk=cluster.pk).exists()
    assert entry("cluster.delete")["result"].startswith(f"refused: Push #{running.pk}")


def node_create_by_service(operator, cluster, **_):
    from clusters.services import nodes

    nodes.create_node(operator, cluster, dict(NEW_NODE))


def node_create_by_panel(operator, cluster, login, **_):
    login(operator).post(
        reverse("clusters:node-add", args=[cluster.pk]), {k: str(v) for k, v in NEW_NODE.items()}
    )


def node_create_by_api(operator, cluster, **_):
    answer = api(operator).post(f"/api/v1/clusters/{cluster.pk}/nodes/", NEW_NODE)
    assert answer.status_code == 201, answer.content


@pytest.mark.parametrize(
    "way",
    [node_create_by_service, node_create_by_panel, node_create_by_api],
    ids=lambda f: f.__name__,
)
def test_a_node_is_added_alike(way, operator, cluster, login):
    way(operator=operator, cluster=cluster, login=login)
    node = cluster.nodes.get(name="web-3")
    assert (node.address, node.priority) == ("192.0.2.13", 100)
    created = entry("node.create")
    assert (created["object"], created["cluster"], created["result"]) == (
        str(node),
        cluster.pk,
        "created",
    )
    assert created["changes"] == {
        "address": [None, "192.0.2.13"],
        "host_key_fingerprint": [None, ""],
        "interface": [None, ""],
        "maintenance": [None, False],
        "name": [None, "web-3"],
        "priority": [None, 100],
        "ssh_port": [None, 22],
    }


def node_update_by_service(operator, node, **_):
    from clusters.services import nodes

    nodes.update_node(operator, node, {"ssh_port": 2222})


def node_update_by_panel(operator, node, login, **_):
    form = panel_form(login(operator), "clusters:node-edit", node.pk)
    login(operator).post(
        reverse("clusters:node-update", args=[node.pk]), form_data(form, ssh_port="2222")
    )


def node_update_by_admin(node, admin_client, **_):
    form = change_form(admin_client, node)
    admin_client.post(admin_url(node), form_data(form, ssh_port="2222"))


def node_update_by_api(operator, node, **_):
    answer = api(operator).patch(f"/api/v1/nodes/{node.pk}/", {"ssh_port": 2222})
    assert answer.status_code == 200, answer.content


@pytest.mark.parametrize(
    "way",
    [node_update_by_service, node_update_by_panel, node_update_by_admin, node_update_by_api],
    ids=lambda f: f.__name__,
)
def test_a_node_is_changed_alike(way, operator, cluster, login, admin_client):
    node = cluster.nodes.get(name="web-1")
    way(operator=operator, node=node, login=login, admin_client=admin_client)
    node.refresh_from_db()
    assert node.ssh_port == 2222
    assert entry("node.update") == {
        "action": "node.update",
        "object": str(node),
        "cluster": cluster.pk,
        "result": "saved",
        "changes": {"ssh_port": [22, 2222]},
    }
    assert not ConfigPush.objects.exists()  # only maintenance pushes by itself


def node_delete_by_service(operator, node, **_):
    from clusters.services import nodes

    nodes.delete_node(operator, node, confirm="web")


def node_delete_by_panel(operator, node, login, **_):
    login(operator).post(reverse("clusters:node-delete", args=[node.pk]), {"confirm": "web"})


def node_delete_by_admin(node, admin_client, **_):
    admin_client.post(admin_url(node, "delete"), {"post": "yes"})


def node_delete_by_api(operator, node, **_):
    assert api(operator).delete(f"/api/v1/nodes/{node.pk}/").status_code == 204


@pytest.mark.parametrize(
    "way",
    [node_delete_by_service, node_delete_by_panel, node_delete_by_admin, node_delete_by_api],
    ids=lambda f: f.__name__,
)
def test_a_node_is_deleted_alike(way, operator, cluster, login, admin_client):
    node = cluster.nodes.get(name="web-2")
    way(operator=operator, node=node, login=login, admin_client=admin_client)
    assert list(cluster.nodes.values_list("name", flat=True)) == ["web-1"]
    deleted = entry("node.delete")
    assert (deleted["object"], deleted["cluster"], deleted["result"]) == (
        "web-2",
        cluster.pk,
        "deleted",
    )
    assert deleted["changes"] == {
        "address": ["192.0.2.12", None],
        "host_key_fingerprint": ["", None],
        "interface": ["", None],
        "maintenance": [False, None],
        "name": ["web-2", None],
        "priority": [110, None],
        "ssh_port": [22, None],
    }


def vip_create_by_service(operator, cluster, **_):
    from clusters.services import vips

    vips.create_vip(operator, cluster, dict(NEW_VIP))


def vip_create_by_panel(operator, cluster, login, **_):
    login(operator).post(reverse("clusters:vip-add", args=[cluster.pk]), NEW_VIP)


def vip_create_by_api(operator, cluster, **_):
    answer = api(operator).post(f"/api/v1/clusters/{cluster.pk}/vips/", NEW_VIP)
    assert answer.status_code == 201, answer.content


@pytest.mark.parametrize(
    "way", [vip_create_by_service, vip_create_by_panel, vip_create_by_api], ids=lambda f: f.__name__
)
def test_a_vip_is_added_alike(way, operator, cluster, login):
    way(operator=operator, cluster=cluster, login=login)
    assert cluster.vips.filter(address="192.0.2.101/24", label="backend").exists()
    assert entry("vip.create")["changes"] == {
        "address": [None, "192.0.2.101/24"],
        "label": [None, "backend"],
    }


def vip_delete_by_service(operator, vip, **_):
    from clusters.services import vips

    vips.delete_vip(operator, vip, confirm="web")


def vip_delete_by_panel(operator, vip, login, **_):
    login(operator).post(reverse("clusters:vip-delete", args=[vip.pk]), {"confirm": "web"})


def vip_delete_by_admin(vip, admin_client, **_):
    admin_client.post(admin_url(vip, "delete"), {"post": "yes"})


def vip_delete_by_api(operator, vip, **_):
    assert api(operator).delete(f"/api/v1/vips/{vip.pk}/").status_code == 204


@pytest.mark.parametrize(
    "way",
    [vip_delete_by_service, vip_delete_by_panel, vip_delete_by_admin, vip_delete_by_api],
    ids=lambda f: f.__name__,
)
def test_a_vip_is_deleted_alike(way, operator, cluster, login, admin_client):
    vip = cluster.vips.get()
    way(operator=operator, vip=vip, login=login, admin_client=admin_client)
    assert not cluster.vips.exists()
    deleted = entry("vip.delete")
    assert (deleted["cluster"], deleted["result"]) == (cluster.pk, "deleted")
    assert deleted["changes"] == {"address": ["192.0.2.100/24", None], "label": ["frontend", None]}


def credential_create_by_service(admin, key, **_):
    credentials.create_credential(admin, {"name": "k2", "username": "deploy", "private_key": key})


def credential_create_by_panel(admin, key, login, **_):
    return login(admin).post(
        reverse("clusters:credential-create"),
        {"name": "k2", "username": "deploy", "private_key": key},
    )


def credential_create_by_api(admin, key, **_):
    answer = api(admin).post(
        "/api/v1/credentials/", {"name": "k2", "username": "deploy", "private_key": key}
    )
    if roles.has_role(admin, roles.ADMIN):
        assert answer.status_code == 201, answer.content
        assert "private_key" not in answer.json()
    return answer


@pytest.mark.parametrize(
    "way",
    [credential_create_by_service, credential_create_by_panel, credential_create_by_api],
    ids=lambda f: f.__name__,
)
def test_a_credential_is_stored_alike_and_its_key_never_audited(way, admin, login):
    key = make_private_key()
    way(admin=admin, key=key, login=login)
    stored = SSHCredential.objects.get(name="k2")
    assert (stored.username, stored.private_key.strip()) == ("deploy", key.strip())
    created = entry("credential.create")
    # The audit log's one shape for a secret (clusters.audit): never a value, new or old.
    assert created["changes"]["private_key"] == [None, "(set)"]
    assert created["changes"]["username"] == [None, "deploy"]
    assert key.strip().splitlines()[1] not in str(created)


# --- An SSH key or passphrase changed: "(changed)" through every way that changes them -------
# The API stores credentials but does not change them (no PATCH of /api/v1/credentials/).


def key_change_by_service(admin, credential, key, **_):
    credentials.update_credential(admin, credential, {"private_key": key, "passphrase": "p2"})


def key_change_by_panel(admin, credential, key, login, **_):
    client = login(admin)
    form = panel_form(client, "clusters:credential-edit", credential.pk)
    client.post(
        reverse("clusters:credential-update", args=[credential.pk]),
        form_data(form, private_key=key, passphrase="p2"),
    )


def key_change_by_admin(credential, key, admin_client, **_):
    form = change_form(admin_client, credential)
    admin_client.post(admin_url(credential), form_data(form, private_key=key, passphrase="p2"))


@pytest.mark.parametrize(
    "way",
    [key_change_by_service, key_change_by_panel, key_change_by_admin],
    ids=lambda f: f.__name__,
)
def test_a_changed_ssh_key_is_audited_as_changed(way, admin, login, admin_client):
    credential = SSHCredential.objects.create(
        name="k", username="root", private_key=make_private_key(), passphrase="p1"
    )
    key = make_private_key()
    way(admin=admin, credential=credential, key=key, login=login, admin_client=admin_client)
    credential.refresh_from_db()
    assert (credential.private_key.strip(), credential.passphrase) == (key.strip(), "p2")
    changed = entry("credential.update")
    assert changed["changes"] == {
        "passphrase": ["(secret)", "(changed)"],
        "private_key": ["(secret)", "(changed)"],
    }
    assert key.strip().splitlines()[1] not in str(changed) and "p1" not in str(changed)


# --- A field error is the same message wherever it comes from -----------------------------------


def duplicate_priority_by_service(operator, cluster, **_):
    from clusters.services import nodes

    try:
        nodes.create_node(operator, cluster, {**NEW_NODE, "priority": 120})
    except ValidationError as e:
        return e.message_dict


def duplicate_priority_by_panel(operator, cluster, login, **_):
    data = {k: str(v) for k, v in {**NEW_NODE, "priority": 120}.items()}
    answer = login(operator).post(reverse("clusters:node-add", args=[cluster.pk]), data)
    assert answer.status_code == 422
    return answer.context["form"].errors


def duplicate_priority_by_api(operator, cluster, **_):
    answer = api(operator).post(
        f"/api/v1/clusters/{cluster.pk}/nodes/", {**NEW_NODE, "priority": 120}
    )
    assert answer.status_code == 400  # the API's {field: [messages]} shape
    return answer.json()


@pytest.mark.parametrize(
    "way",
    [duplicate_priority_by_service, duplicate_priority_by_panel, duplicate_priority_by_api],
    ids=lambda f: f.__name__,
)
def test_a_duplicate_priority_is_refused_alike(way, operator, cluster, login):
    errors = way(operator=operator, cluster=cluster, login=login)
    assert list(errors) == ["priority"]
    (message,) = errors["priority"]
    assert "web-1" in message and "120" in message
    assert not cluster.nodes.filter(name="web-3").exists()


# --- Roles refused alike: 403 from the panel and the API, Forbidden from the service ------------


def refused_status(call):
    try:
        answer = call()
    except Forbidden:
        return 403
    return answer.status_code


@pytest.mark.parametrize(
    "way",
    [credential_create_by_service, credential_create_by_panel, credential_create_by_api],
    ids=lambda f: f.__name__,
)
def test_an_operator_stores_no_credential_anywhere(way, operator, login):
    def call():  # the admin's ways, taken by an operator
        return way(admin=operator, key=make_private_key(), login=login)

    assert refused_status(call) == 403
    assert not SSHCredential.objects.filter(name="k2").exists()
    assert not AuditEntry.objects.filter(action="credential.create").exists()


@pytest.mark.parametrize("entry_point", ["service", "panel", "api"])
def test_a_viewer_changes_no_cluster_anywhere(entry_point, viewer, cluster, login):
    def call():
        if entry_point == "service":
            return cluster_services.update_cluster(viewer, cluster, {"advert_int": 3})
        if entry_point == "panel":
            return login(viewer).post(
                reverse("clusters:cluster-update", args=[cluster.pk]), {"advert_int": "3"}
            )
        return api(viewer).patch(f"/api/v1/clusters/{cluster.pk}/", {"advert_int": 3})

    assert refused_status(call) == 403
    cluster.refresh_from_db()
    assert cluster.advert_int == 1
    assert not AuditEntry.objects.filter(action="cluster.update").exists()
