"""Nodes: the inline add form, edit, delete, maintenance (which pushes) and host-key re-pin."""

import re
from unittest import mock

import pytest
from django.urls import reverse

from clusters.models import AuditEntry, ConfigPush, Node
from tests.cast import *  # noqa: F403
from tests.cast import (
    assert_denies,
    assert_enforces_csrf,
    assert_rejects_get,
    assert_requires_login,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("nodes_refuse_ssh")]

OLD_KEY = "SHA256:" + "o" * 43
NEW_KEY = "SHA256:" + "N" * 43


def node_data(**overrides):
    data = {
        "name": "web-3",
        "address": "192.0.2.13",
        "ssh_port": "22",
        "priority": "100",
        "interface": "",
        "credential": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def web1(cluster):
    return cluster.nodes.get(name="web-1")


@pytest.fixture
def changed_key(web1):
    Node.objects.filter(pk=web1.pk).update(
        host_key_fingerprint=OLD_KEY, offered_host_key_fingerprint=NEW_KEY
    )
    web1.refresh_from_db()
    return web1


@pytest.fixture
def enqueued():
    """The Celery hand-off, patched: our boundary, so no worker is needed here."""
    with mock.patch("clusters.services.pushes.enqueue") as enqueue:
        yield enqueue


MUTATING = {
    "node-add": (lambda c, n: reverse("clusters:node-add", args=[c.pk]), lambda n: node_data()),
    "node-update": (
        lambda c, n: reverse("clusters:node-update", args=[n.pk]),
        lambda n: node_data(name="web-1", address="192.0.2.11", priority="120"),
    ),
    "node-delete": (lambda c, n: reverse("clusters:node-delete", args=[n.pk]), lambda n: {}),
    "node-maintenance": (
        lambda c, n: reverse("clusters:node-maintenance", args=[n.pk]),
        lambda n: {"maintenance": "on"},
    ),
    "node-repin": (
        lambda c, n: reverse("clusters:node-repin", args=[n.pk]),
        lambda n: {"fingerprint": NEW_KEY},
    ),
    # sec: removing a stale address (tests/test_sec_stale.py has the rest).
    "node-remove-stale": (
        lambda c, n: reverse("clusters:node-remove-stale", args=[n.pk, c.vips.first().pk]),
        lambda n: {},
    ),
}


@pytest.fixture(params=sorted(MUTATING))
def mutating(request, cluster, changed_key, enqueued):
    url, data = MUTATING[request.param]
    return url(cluster, changed_key), data(changed_key)


def test_each_mutating_view_rejects_get(login, operator, mutating):
    assert_rejects_get(login, operator, mutating[0])


def test_each_mutating_view_requires_login(mutating):
    assert_requires_login(*mutating)


def test_each_mutating_view_denies_the_viewer(login, viewer, mutating):
    assert_denies(login, viewer, *mutating)


def test_each_mutating_view_enforces_csrf(login, operator, mutating):
    assert_enforces_csrf(login, operator, *mutating)


# --- Adding a node in place ---------------------------------------------------------------


def add(client, cluster, htmx=True, **fields):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(
        reverse("clusters:node-add", args=[cluster.pk]), node_data(**fields), **headers
    )


def field_errors(body, name):
    """The error list Django renders for field `name` (empty when it has none)."""
    match = re.search(rf'<ul class="errorlist" id="id_{name}_error">(.*?)</ul>', body, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else ""


def test_it_adds_a_node_and_returns_the_table_with_the_new_row(login, operator, cluster):
    response = add(login(operator), cluster)
    body = response.content.decode()
    node = cluster.nodes.get(name="web-3")
    assert response.status_code == 200
    assert body.lstrip().startswith('<section class="card" id="nodes"')  # the fragment only
    assert f'<tr id="node-{node.pk}" data-node="web-3">' in body
    assert "Node web-3 added" in body
    # A fresh, empty form to add the next one.
    name_input = re.search(r'<input[^>]*name="name"[^>]*>', body).group(0)
    assert "value=" not in name_input
    entry = AuditEntry.objects.get(action="node.create")
    assert entry.changes["address"] == [None, "192.0.2.13"] and entry.username == "otto-operator"


def test_it_rejects_duplicate_priority(login, operator, cluster):
    response = add(login(operator), cluster, priority="120")
    body = response.content.decode()
    assert response.status_code == 422
    error = field_errors(body, "priority")
    assert "Priority 120 is already used by node &#x27;web-1&#x27;" in error
    assert 'value="web-3"' in body  # what was typed stays
    assert not cluster.nodes.filter(name="web-3").exists()
    assert not AuditEntry.objects.exists()


def test_it_rejects_a_bad_address(login, operator, cluster):
    body = add(login(operator), cluster, address="192.0.2.300").content.decode()
    assert "Enter a valid IPv4 or IPv6 address" in field_errors(body, "address")


def test_it_rejects_an_address_outside_the_clusters_network(login, operator, cluster):
    body = add(login(operator), cluster, address="10.9.9.9").content.decode()
    assert "outside the cluster&#x27;s network 192.0.2.0/24" in field_errors(body, "address")


def test_it_rejects_a_vip_as_a_nodes_address(login, operator, cluster):
    body = add(login(operator), cluster, address="192.0.2.100").content.decode()
    assert "is a virtual IP of cluster" in field_errors(body, "address")


def test_it_rejects_a_duplicate_name(login, operator, cluster):
    body = add(login(operator), cluster, name="web-1").content.decode()
    assert "Another node of this cluster has this name" in field_errors(body, "name")


def test_without_javascript_it_redirects_after_adding(login, operator, cluster):
    response = add(login(operator), cluster, htmx=False)
    assert response.status_code == 302
    assert response["Location"] == reverse("clusters:cluster", args=[cluster.pk]) + "#nodes"


def test_without_javascript_errors_come_back_on_the_whole_page(login, operator, cluster):
    response = add(login(operator), cluster, htmx=False, priority="120")
    body = response.content.decode()
    assert response.status_code == 422
    assert "<html" in body and "Priority 120 is already used" in body


def test_the_add_form_posts_normally_and_through_htmx(login, operator, cluster):
    page = login(operator).get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    url = reverse("clusters:node-add", args=[cluster.pk])
    form = re.search(r'<form[^>]*id="node-add-form"[^>]*>', page).group(0)
    assert f'action="{url}"' in form and f'hx-post="{url}"' in form
    assert 'hx-target="#nodes"' in form and 'method="post"' in form


# --- Editing and deleting -----------------------------------------------------------------


def test_the_edit_form_shows_the_node(login, operator, web1):
    page = login(operator).get(reverse("clusters:node-edit", args=[web1.pk])).content.decode()
    assert 'value="192.0.2.11"' in page and 'value="120"' in page


def test_it_saves_an_edited_node_and_audits_the_diff(login, operator, web1):
    response = login(operator).post(
        reverse("clusters:node-update", args=[web1.pk]),
        node_data(name="web-1", address="192.0.2.11", priority="130"),
    )
    assert response.status_code == 302
    web1.refresh_from_db()
    assert web1.priority == 130
    entry = AuditEntry.objects.get(action="node.update")
    assert entry.changes == {"priority": [120, 130]}


def test_an_edit_with_a_clashing_priority_shows_the_error(login, operator, web1):
    response = login(operator).post(
        reverse("clusters:node-update", args=[web1.pk]),
        node_data(name="web-1", address="192.0.2.11", priority="110"),
    )
    assert response.status_code == 422
    assert "Priority 110 is already used by node &#x27;web-2&#x27;" in response.content.decode()
    web1.refresh_from_db()
    assert web1.priority == 120


def test_it_deletes_a_node_in_place(login, operator, cluster, web1):
    response = login(operator).post(
        reverse("clusters:node-delete", args=[web1.pk]), {"confirm": "web"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-node="web-1"' not in body and 'data-node="web-2"' in body
    assert not Node.objects.filter(pk=web1.pk).exists()
    entry = AuditEntry.objects.get(action="node.delete")
    assert entry.cluster == cluster and entry.changes["name"] == ["web-1", None]


def test_the_delete_button_asks_first(login, operator, cluster, web1):
    page = login(operator).get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    url = reverse("clusters:node-delete", args=[web1.pk])
    # With htmx the confirmation opens in the page's dialog; without, it is a page.
    assert f'hx-post="{url}" hx-target="#confirm-dialog"' in page
    client = login(operator)
    asked = client.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in asked and "Delete node web-1 from web?" in asked
    assert f'hx-post="{url}" hx-target="#nodes" hx-swap="outerHTML"' in asked
    assert "vipanel never connects to it again" in asked
    assert "<html" in client.post(url).content.decode()
    assert Node.objects.filter(pk=web1.pk).exists() and not AuditEntry.objects.exists()


# --- Maintenance --------------------------------------------------------------------------


def test_maintenance_on_marks_the_node_and_starts_a_maintenance_push(
    login, operator, web1, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(operator).post(
            reverse("clusters:node-maintenance", args=[web1.pk]),
            {"maintenance": "on", "confirm": "web"},
        )
    push = ConfigPush.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "clusters:push", args=[push.pk]
    )
    assert push.kind == ConfigPush.Kind.MAINTENANCE and push.requested_by == operator
    enqueued.assert_called_once_with(push.pk)
    web1.refresh_from_db()
    assert web1.maintenance
    entry = AuditEntry.objects.get(action="maintenance on")
    assert entry.changes == {
        "maintenance": [False, True],
        "push": [None, push.pk],
        "nodes": [None, "web-2, web-1"],
    }
    assert entry.result == f"push #{push.pk}"


def test_maintenance_off_starts_a_normal_push(login, operator, web1, enqueued):
    Node.objects.filter(pk=web1.pk).update(maintenance=True)
    login(operator).post(
        reverse("clusters:node-maintenance", args=[web1.pk]),
        {"maintenance": "off", "confirm": "web"},
    )
    web1.refresh_from_db()
    assert not web1.maintenance
    assert ConfigPush.objects.get().kind == ConfigPush.Kind.PUSH


def test_maintenance_changes_nothing_when_the_push_is_refused(
    login, operator, cluster, web1, enqueued
):
    running = ConfigPush.objects.create(cluster=cluster, state="running")
    response = login(operator).post(
        reverse("clusters:node-maintenance", args=[web1.pk]),
        {"maintenance": "on", "confirm": "web"},
    )
    body = response.content.decode()
    assert response.status_code == 409
    assert f"Push #{running.pk} of cluster web is running" in body
    assert f'href="/pushes/{running.pk}/"' in body
    web1.refresh_from_db()
    assert not web1.maintenance
    assert AuditEntry.objects.get().result.startswith("refused:")


def test_maintenance_needs_on_or_off(login, operator, web1, enqueued):
    response = login(operator).post(
        reverse("clusters:node-maintenance", args=[web1.pk]), {"maintenance": "maybe"}
    )
    assert response.status_code == 400
    assert not ConfigPush.objects.exists()


# --- Host keys ----------------------------------------------------------------------------


def test_the_cluster_page_flags_a_changed_host_key(login, viewer, operator, cluster, changed_key):
    url = reverse("clusters:cluster", args=[cluster.pk])
    assert "Review the new key" in login(operator).get(url).content.decode()
    page = login(viewer).get(url).content.decode()
    assert "changed" in page and "Review the new key" not in page


def test_the_host_key_page_shows_old_and_new_fingerprints(login, operator, changed_key):
    page = (
        login(operator)
        .get(reverse("clusters:node-host-key", args=[changed_key.pk]))
        .content.decode()
    )
    assert f'<code id="old-fingerprint">{OLD_KEY}</code>' in page
    assert f'<code id="new-fingerprint">{NEW_KEY}</code>' in page


def test_repin_trusts_the_offered_key_and_is_audited(login, operator, changed_key):
    response = login(operator).post(
        reverse("clusters:node-repin", args=[changed_key.pk]), {"fingerprint": NEW_KEY}
    )
    assert response.status_code == 302
    changed_key.refresh_from_db()
    assert changed_key.host_key_fingerprint == NEW_KEY
    assert changed_key.offered_host_key_fingerprint == ""
    entry = AuditEntry.objects.get(action="node.repin")
    assert entry.changes == {"host_key_fingerprint": [OLD_KEY, NEW_KEY]}


def test_repin_refuses_a_key_other_than_the_one_offered(login, operator, changed_key):
    other = "SHA256:" + "x" * 43
    response = login(operator).post(
        reverse("clusters:node-repin", args=[changed_key.pk]), {"fingerprint": other}
    )
    assert response.status_code == 409
    changed_key.refresh_from_db()
    assert changed_key.host_key_fingerprint == OLD_KEY
    # The refusal is on record, and nothing was pinned.
    entry = AuditEntry.objects.get()
    assert entry.action == "node.repin" and entry.result.startswith("refused")
