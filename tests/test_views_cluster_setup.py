"""The guided new cluster: the cluster, its first nodes and its VIP in one form, all or nothing
(clusters.services.cluster_setup), then an SSH test of each node."""

import re

import pytest
from django.urls import reverse

from clusters.models import AuditEntry, Cluster, Node, SSHCredential, VirtualIP
from clusters.web.forms import VRRP_HELP
from tests.cast import *  # noqa: F403
from tests.cast import (
    assert_denies,
    assert_enforces_csrf,
    assert_rejects_get,
    assert_requires_login,
)
from tests.conftest import make_private_key
from tests.test_views_cluster import cluster_data

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("nodes_refuse_ssh")]


def setup_data(nodes=None, **overrides):
    """What the browser posts for the form as shown, filled in: a cluster "db" on
    198.51.100.0/24 with two nodes and one VIP; `nodes` replaces the node rows."""
    # The cluster's fields as its settings form posts them, the VRID left to the panel.
    data = cluster_data(virtual_router_id="", check_type="", check_target="")
    data.update({"vip-address": "198.51.100.100/24", "vip-label": "db"})
    rows = nodes if nodes is not None else [("db-1", "198.51.100.11"), ("db-2", "198.51.100.12")]
    rows = list(rows) + [("", "")] * (3 - len(rows))
    data.update(
        {
            "nodes-TOTAL_FORMS": str(len(rows)),
            "nodes-INITIAL_FORMS": "0",
            "nodes-MIN_NUM_FORMS": "1",
            "nodes-MAX_NUM_FORMS": "10",
        }
    )
    for i, (name, address) in enumerate(rows):
        data.update(
            {
                f"nodes-{i}-name": name,
                f"nodes-{i}-address": address,
                f"nodes-{i}-priority": str(120 - 10 * i),
                f"nodes-{i}-ssh_port": "22",
                f"nodes-{i}-host_key_fingerprint": "",
            }
        )
    data.update(overrides)
    return data


URL = reverse("clusters:cluster-create")

MUTATING = {"cluster-create": (lambda: URL, lambda: setup_data())}


@pytest.fixture(params=sorted(MUTATING))
def mutating(request, credential):
    url, data = MUTATING[request.param]
    return url(), data()


def test_it_rejects_get(login, operator, mutating):
    assert_rejects_get(login, operator, mutating[0])


def test_it_requires_login(mutating):
    assert_requires_login(*mutating)
    assert not Cluster.objects.exists()


def test_it_denies_the_viewer(login, viewer, mutating):
    assert_denies(login, viewer, *mutating)
    assert not Cluster.objects.exists()


def test_it_enforces_csrf(login, operator, mutating):
    assert_enforces_csrf(login, operator, *mutating)
    assert not Cluster.objects.exists()


def messages_of(client, response):
    page = client.get(response["Location"])
    return [(m.level_tag, str(m)) for m in page.context["messages"]]


def field_error(page, field_id):
    """The text of the error list Django renders for the field with this id ('' if none)."""
    match = re.search(rf'<ul class="errorlist" id="{field_id}_error">(.*?)</ul>', page, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else ""


# --- The form --------------------------------------------------------------------------------


def test_the_form_is_four_steps_with_every_vrrp_term_explained(login, operator, credential):
    page = login(operator).get(reverse("clusters:cluster-new")).content.decode()
    for step in ("The cluster", "Its first nodes", "The virtual IP", "VRRP and the health check"):
        assert step in page
    for term in (
        "virtual_router_id",
        "priority",
        "advert_int",
        "preempt",
        "preempt_delay",
        "unicast",
        "check_fall",
        "check_rise",
        "check_interval",
        "check_weight",
    ):
        text = VRRP_HELP[term]
        assert text in page, term  # Django renders help text as it is
        # One or two sentences each ("e.g." is not a sentence's end).
        assert len(re.findall(r"[.!?](\s|$)", text.replace("e.g.", "eg"))) <= 2, term
    # The advanced part is folded away; three node rows, the first suggesting priority 120.
    assert re.search(r'<details class="card step" id="step-more">', page)
    assert page.count('class="node-row"') == 3 + 1  # and the template for one more
    assert re.search(r'name="nodes-0-priority" value="120"', page)
    assert re.search(r'name="nodes-2-priority" value="100"', page)


def test_the_only_credential_is_picked_and_said(login, operator, credential):
    response = login(operator).get(reverse("clusters:cluster-new"))
    form = response.context["form"]
    assert form["credential"].value() == credential.pk
    assert "ops is the only one, so it is picked." in response.content.decode()


def test_with_no_credential_it_says_an_admin_adds_one(login, operator):
    client = login(operator)
    page = client.get(reverse("clusters:cluster-new")).content.decode()
    assert "None exists yet: an admin adds one under Credentials" in page
    response = client.post(URL, setup_data())
    assert response.status_code == 422
    assert "Pick the SSH credential" in field_error(response.content.decode(), "id_credential")
    assert not Cluster.objects.exists()


def test_a_credentials_name_is_escaped_in_the_help(login, operator):
    SSHCredential.objects.create(name="<b>x</b>", private_key=make_private_key())
    page = login(operator).get(reverse("clusters:cluster-new")).content.decode()
    assert "&lt;b&gt;x&lt;/b&gt; is the only one" in page and "<b>x</b>" not in page


def test_with_two_credentials_one_must_be_picked(login, operator, credential):
    SSHCredential.objects.create(name="other", private_key=make_private_key())
    response = login(operator).post(URL, setup_data())
    assert response.status_code == 422
    assert "Pick the SSH credential" in field_error(response.content.decode(), "id_credential")
    assert not Cluster.objects.exists()
    other = SSHCredential.objects.get(name="other")
    response = login(operator).post(URL, setup_data(credential=str(other.pk)))
    assert response.status_code == 302
    assert Cluster.objects.get(name="db").credential == other


def test_more_node_rows_without_javascript(login, operator, credential):
    client = login(operator)
    page = client.get(reverse("clusters:cluster-new") + "?nodes=5").content.decode()
    assert 'name="nodes-TOTAL_FORMS" value="5"' in page
    assert 'href="?nodes=6"' in page
    page = client.get(reverse("clusters:cluster-new") + "?nodes=99").content.decode()
    assert 'name="nodes-TOTAL_FORMS" value="10"' in page
    assert 'id="add-node-row"' not in page  # ten is the most
    page = client.get(reverse("clusters:cluster-new") + "?nodes=x").content.decode()
    assert 'name="nodes-TOTAL_FORMS" value="3"' in page


# --- Creating --------------------------------------------------------------------------------


def test_an_operator_creates_a_pushable_cluster_in_one_post(login, operator, credential, cluster):
    client = login(operator)
    response = client.post(URL, setup_data())
    made = Cluster.objects.get(name="db")
    assert response.status_code == 302
    assert response["Location"] == reverse("clusters:cluster", args=[made.pk])
    # The only credential there is, and the lowest VRID free on the segment: both said.
    assert made.credential == credential
    assert made.virtual_router_id == 1
    assert [(n.name, n.priority) for n in made.nodes.order_by("-priority")] == [
        ("db-1", 120),
        ("db-2", 110),
    ]
    assert list(made.vips.values_list("address", "label")) == [("198.51.100.100/24", "db")]
    # Nothing keeps it from a push but the host keys, which a person trusts.
    assert made.readiness_errors() == {}
    # The same audit entries as made one by one, by this operator.
    entries = AuditEntry.objects.filter(cluster=made).order_by("id")
    assert [(e.action, e.object_repr, e.username) for e in entries] == [
        ("cluster.create", "db", "otto-operator"),
        ("node.create", "db-1", "otto-operator"),
        ("node.create", "db-2", "otto-operator"),
        ("vip.create", "198.51.100.100/24", "otto-operator"),
    ]
    said = messages_of(client, response)
    assert said[0] == (
        "success",
        "Cluster db created with 2 nodes (db-1, db-2) and VIP 198.51.100.100/24. Nothing is on "
        "the nodes until you push.",
    )
    assert ("info", "SSH credential: ops, the only one there is.") in said
    assert ("info", "VRID 1: the lowest one free on 198.51.100.0/24.") in said
    # Each node was tried at once (here they refuse, as a node without sshd does).
    assert (
        "warning",
        "SSH test: db-1: not reachable: connection refused by 198.51.100.11 (is sshd running?)",
    ) in said


def test_a_typed_vrid_and_fingerprint_are_kept(login, operator, credential):
    fingerprint = "SHA256:" + "k" * 43
    data = setup_data(virtual_router_id="42")
    data["nodes-0-host_key_fingerprint"] = fingerprint
    assert login(operator).post(URL, data).status_code == 302
    made = Cluster.objects.get(name="db")
    assert made.virtual_router_id == 42
    assert made.nodes.get(name="db-1").host_key_fingerprint == fingerprint
    assert made.nodes.get(name="db-2").host_key_fingerprint == ""


def test_a_vip_outside_the_network_is_created_with_a_warning(login, operator, credential):
    client = login(operator)
    response = client.post(URL, setup_data(**{"vip-address": "203.0.113.10/24"}))
    assert response.status_code == 302
    assert VirtualIP.objects.get().address == "203.0.113.10/24"
    assert (
        "warning",
        "VIP 203.0.113.10/24 is outside the network 198.51.100.0/24 its VRRP instance runs on. "
        "That is right only for an address routed to the holder; otherwise check for a typo.",
    ) in messages_of(client, response)


def assert_nothing_made():
    assert not Cluster.objects.filter(name="db").exists()
    assert not Node.objects.filter(name__startswith="db-").exists()
    assert not VirtualIP.objects.filter(address__startswith="198.51.100.").exists()
    assert not AuditEntry.objects.exists()


def test_a_bad_second_node_leaves_no_half_made_cluster(login, operator, credential):
    data = setup_data()
    data["nodes-1-priority"] = "120"  # the first node's
    response = login(operator).post(URL, data)
    assert response.status_code == 422
    page = response.content.decode()
    assert_nothing_made()
    # The error is on that row's field, and said at the top naming the row.
    assert "Priority 120 is already used by node &#x27;db-1&#x27;" in field_error(
        page, "id_nodes-1-priority"
    )
    assert field_error(page, "id_nodes-0-priority") == ""
    assert "<strong>Node 2 · Priority</strong>" in page
    # Everything typed is still there.
    for value in ('value="db"', 'value="198.51.100.0/24"', 'value="db-2"', 'value="198.51.100.12"'):
        assert value in page, value
    assert 'value="198.51.100.100/24"' in page


def test_a_bad_vip_leaves_nothing(login, operator, credential):
    response = login(operator).post(URL, setup_data(**{"vip-address": "198.51.100.12/24"}))
    assert response.status_code == 422
    assert "is the address of node &#x27;db-2&#x27;" in field_error(
        response.content.decode(), "id_vip-address"
    )
    assert_nothing_made()


def test_two_rows_with_one_address_leave_nothing(login, operator, credential):
    data = setup_data(nodes=[("db-1", "198.51.100.11"), ("db-2", "198.51.100.11")])
    response = login(operator).post(URL, data)
    assert response.status_code == 422
    assert "Another node already has this address" in field_error(
        response.content.decode(), "id_nodes-1-address"
    )
    assert_nothing_made()


def test_a_vrid_clash_says_which_is_free(login, operator, cluster):
    response = login(operator).post(
        URL,
        setup_data(
            network="192.0.2.0/24",
            virtual_router_id="51",
            nodes=[("db-1", "192.0.2.21")],
            **{"vip-address": "192.0.2.200/24"},
        ),
    )
    assert response.status_code == 422
    error = field_error(response.content.decode(), "id_virtual_router_id")
    assert "VRID 51 is already used by cluster &#x27;web&#x27;" in error
    assert "Pick another VRID, e.g. 1." in error
    assert not Cluster.objects.filter(name="db").exists()


def test_unicast_with_one_node_leaves_nothing(login, operator, credential):
    data = setup_data(nodes=[("db-1", "198.51.100.11")], unicast="on")
    response = login(operator).post(URL, data)
    assert response.status_code == 422
    assert "Unicast needs at least two nodes" in field_error(
        response.content.decode(), "id_unicast"
    )
    assert_nothing_made()


def test_a_check_weight_too_small_for_the_priorities_names_the_node(login, operator, credential):
    data = setup_data(check_type="process", check_target="haproxy", check_weight="5")
    response = login(operator).post(URL, data)
    assert response.status_code == 422
    assert "can only move the VIPs while the priorities span less than 5" in field_error(
        response.content.decode(), "id_nodes-1-priority"
    )
    assert_nothing_made()


def test_the_first_node_row_is_required(login, operator, credential):
    response = login(operator).post(URL, setup_data(nodes=[]))
    assert response.status_code == 422
    assert field_error(response.content.decode(), "id_nodes-0-name") == "This field is required."
    assert_nothing_made()


def test_empty_rows_between_filled_ones_are_skipped(login, operator, credential):
    data = setup_data(nodes=[("db-1", "198.51.100.11"), ("", ""), ("db-3", "198.51.100.13")])
    assert login(operator).post(URL, data).status_code == 302
    assert sorted(Node.objects.values_list("name", "priority")) == [("db-1", 120), ("db-3", 100)]


# Hostile input in every field of the flow that reaches keepalived.conf, iptables, a shell or
# the SSH connection: refused with the field named, nothing made, nothing audited.
HOSTILE = [
    ("name", "db\nvrrp_instance evil {", "id_name"),
    ("name", "db$(reboot)", "id_name"),
    ("network", "198.51.100.0/24; reboot", "id_network"),
    ("interface", "eth0 }\nglobal_defs {", "id_interface"),
    ("interface", "eth0;reboot", "id_interface"),
    ("virtual_router_id", "300", "id_virtual_router_id"),
    ("virtual_router_id", "1; reboot", "id_virtual_router_id"),
    ("auth_pass", "a\nb", "id_auth_pass"),
    ("auth_pass", "123456789", "id_auth_pass"),
    ("advert_int", "0", "id_advert_int"),
    ("nodes-0-name", "db-1\n}", "id_nodes-0-name"),
    ("nodes-0-name", "`id`", "id_nodes-0-name"),
    ("nodes-0-address", "198.51.100.11 -o ProxyCommand=sh", "id_nodes-0-address"),
    ("nodes-0-address", "$(reboot)", "id_nodes-0-address"),
    ("nodes-0-priority", "255", "id_nodes-0-priority"),
    ("nodes-0-ssh_port", "22 -oProxyCommand=x", "id_nodes-0-ssh_port"),
    ("nodes-0-ssh_port", "70000", "id_nodes-0-ssh_port"),
    ("nodes-0-host_key_fingerprint", "SHA256:$(reboot)", "id_nodes-0-host_key_fingerprint"),
    ("vip-address", "198.51.100.100/24 dev eth0", "id_vip-address"),
    ("vip-address", "198.51.100.100/24\n}", "id_vip-address"),
    ("vip-label", 'db"; rm -rf /', "id_vip-label"),
    ("vip-label", "x\ny", "id_vip-label"),
]


@pytest.mark.parametrize(
    "name, value, field_id", HOSTILE, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(HOSTILE)]
)
def test_hostile_input_is_refused_naming_the_field(
    login, operator, credential, name, value, field_id
):
    response = login(operator).post(URL, setup_data(**{name: value}))
    assert response.status_code == 422
    assert field_error(response.content.decode(), field_id), (name, value)
    assert_nothing_made()


def test_a_hostile_health_check_target_is_refused(login, operator, credential):
    data = setup_data(check_type="process", check_target="haproxy;reboot")
    response = login(operator).post(URL, data)
    assert response.status_code == 422
    assert field_error(response.content.decode(), "id_check_target")
    # Step 4 opens by itself to show it.
    assert '<details class="card step" id="step-more" open>' in response.content.decode()
    assert_nothing_made()


def test_an_operator_cannot_set_what_runs_as_root(login, operator, credential):
    page = login(operator).get(reverse("clusters:cluster-new")).content.decode()
    tag = re.search(r'<input[^>]*name="reload_command"[^>]*>', page).group(0)
    assert "disabled" in tag
    data = setup_data(reload_command="rm -rf /", check_type="command", check_script="/bin/x")
    response = login(operator).post(URL, data)
    # A disabled field keeps its default, and a free-form check is not among the choices.
    assert response.status_code == 422
    assert field_error(response.content.decode(), "id_check_type")
    assert_nothing_made()
    assert login(operator).post(URL, setup_data(reload_command="rm -rf /")).status_code == 302
    assert Cluster.objects.get(name="db").reload_command == "systemctl reload-or-restart keepalived"


def test_an_admin_sets_the_reload_command(login, admin, credential):
    data = setup_data(reload_command="service keepalived reload")
    assert login(admin).post(URL, data).status_code == 302
    assert Cluster.objects.get(name="db").reload_command == "service keepalived reload"


def test_the_auth_pass_is_stored_but_never_shown_back(login, operator, credential):
    data = setup_data(auth_pass="s3cret")
    data["nodes-1-priority"] = "120"
    response = login(operator).post(URL, data)
    assert response.status_code == 422
    assert "s3cret" not in response.content.decode()
    assert "except the auth_pass, which is never shown back" in response.content.decode()
    data["nodes-1-priority"] = "110"
    assert login(operator).post(URL, data).status_code == 302
    made = Cluster.objects.get(name="db")
    assert made.auth_pass == "s3cret"
    entry = AuditEntry.objects.get(action="cluster.create")
    assert entry.changes["auth_pass"] == [None, "(set)"]
    assert "s3cret" not in str(entry.changes)


# --- The suggested VRID ----------------------------------------------------------------------


def test_the_vrid_hint_names_the_lowest_free_and_who_uses_the_others(login, operator, cluster):
    url = reverse("clusters:cluster-vrid-hint")
    client = login(operator)
    fragment = client.get(url, {"network": "192.0.2.0/25"}, HTTP_HX_REQUEST="true")
    text = fragment.content.decode()
    assert "<html" not in text
    assert 'Lowest VRID free on 192.0.2.0/25: <strong data-free-vrid="1">1</strong>' in text
    assert "In use there: 51 (cluster &#x27;web&#x27;)" in text
    # Another segment: nothing in use.
    text = client.get(url, {"network": "10.9.0.0/16"}).content.decode()
    assert "Lowest VRID free on 10.9.0.0/16" in text and "In use there" not in text
    text = client.get(url, {"network": "no<script>"}).content.decode()
    assert "Type the network" in text and "<script>" not in text


def test_the_vrid_hint_is_an_operators(login, viewer):
    url = reverse("clusters:cluster-vrid-hint")
    assert login(viewer).get(url, {"network": "10.0.0.0/24"}).status_code == 403
