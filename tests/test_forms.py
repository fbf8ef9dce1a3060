"""The ModelForms: the model's rules come back as errors keyed by the field to fix, and secrets
are write-only (never rendered, kept when left empty, removed only by their box)."""

import pytest
from django import forms

from clusters.forms import ClusterForm, NodeForm, SSHCredentialForm, VirtualIPForm
from clusters.models import Cluster, Node, SSHCredential, VirtualIP
from tests.conftest import make_private_key

pytestmark = pytest.mark.django_db

PASSPHRASE = "correct horse battery"
AUTH_PASS = "vrrp9Pw"


def form_data(form, **changes):
    """What a browser would post for an unbound form, with changes applied (None removes)."""
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            value = "on" if value else None
        elif value is None:
            value = ""
        data[form.add_prefix(name)] = value
    for name, value in changes.items():
        data[form.add_prefix(name)] = value
    return {k: v for k, v in data.items() if v is not None and v is not False}


def key_pieces(private_key):
    """Lines of the key's body: any of them in a page would be a leak."""
    return [line for line in private_key.splitlines() if line and not line.startswith("-----")]


def assert_no_secret(html, *secrets):
    for secret in secrets:
        pieces = key_pieces(secret) if secret.startswith("-----BEGIN") else [secret]
        for piece in pieces:
            assert piece not in html


@pytest.fixture
def credential_with_passphrase(credential):
    credential.passphrase = PASSPHRASE
    credential.save()
    return credential


@pytest.fixture
def cluster_with_auth(cluster):
    cluster.auth_pass = AUTH_PASS
    cluster.save()
    return cluster


# --- model rules surface as field errors ------------------------------------------------------


def test_cluster_form_reports_a_duplicate_vrid_on_the_field(cluster):
    form = ClusterForm(
        data=form_data(ClusterForm(), name="db", network="192.0.2.128/25", virtual_router_id=51)
    )
    assert not form.is_valid()
    assert "already used by cluster 'web'" in form.errors["virtual_router_id"][0]
    assert not form.non_field_errors()


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"preempt": None, "preempt_delay": 10}, "preempt_delay"),
        ({"auth_pass": "ninechars"}, "auth_pass"),
        ({"auth_pass": "pw;id"}, "auth_pass"),
        ({"name": "web\n}"}, "name"),
        ({"name": "web"}, "name"),
        ({"interface": "eth0;id"}, "interface"),
        ({"network": "fd00::%$(id)/64"}, "network"),
        ({"virtual_router_id": 256}, "virtual_router_id"),
        ({"check_script": "/bin/sh -c 'id'"}, "check_script"),
        ({"config_path": "/etc/../shadow"}, "config_path"),
        ({"reload_command": "systemctl reload keepalivéd"}, "reload_command"),
    ],
)
def test_cluster_form_reports_rules_on_their_field(cluster, changes, field):
    values = {"name": "db", "network": "198.51.100.0/24", "virtual_router_id": 52, **changes}
    form = ClusterForm(data=form_data(ClusterForm(), **values))
    assert not form.is_valid()
    assert field in form.errors, form.errors
    assert not Cluster.objects.filter(name="db").exists()


def test_cluster_form_reports_a_weak_check_weight(cluster):
    form = ClusterForm(
        data=form_data(
            ClusterForm(instance=cluster), check_script="/usr/bin/pgrep haproxy", check_weight=-5
        ),
        instance=cluster,
    )
    assert not form.is_valid()
    assert "span 10" in form.errors["check_weight"][0]


def test_cluster_form_saves_a_normalized_network(db):
    form = ClusterForm(
        data=form_data(
            ClusterForm(), name="db", network="198.51.100.9/255.255.255.0", virtual_router_id=52
        )
    )
    assert form.is_valid(), form.errors
    assert form.save().network == "198.51.100.0/24"


def node_form(cluster, **changes):
    instance = Node(cluster=cluster)
    values = {"name": "web-3", "address": "192.0.2.13", "priority": 100, "ssh_port": 22}
    return NodeForm(
        data=form_data(NodeForm(instance=instance), **{**values, **changes}), instance=instance
    )


def test_node_form_reports_a_duplicate_priority_on_the_field(cluster):
    form = node_form(cluster, priority=110)
    assert not form.is_valid()
    assert form.errors["priority"] == [
        (
            "Priority 110 is already used by node 'web-2'; every node of a cluster needs its "
            "own priority. Pick another, e.g. 109."
        )
    ]
    assert not form.non_field_errors()


@pytest.mark.parametrize(
    "changes, field, text",
    [
        ({"name": "web-1"}, "name", "Another node of this cluster has this name"),
        ({"address": "192.0.2.11"}, "address", "Another node already has this address"),
        ({"address": "192.0.2.100"}, "address", "virtual IP of cluster 'web'"),
        ({"address": "198.51.100.13"}, "address", "outside the cluster's network"),
        ({"address": "fe80::1%eth0"}, "address", "zone id"),
        ({"address": "192.0.2.13/24"}, "address", "prefix length"),
        ({"priority": 255}, "priority", "254"),
        ({"ssh_port": 65536}, "ssh_port", "65535"),
        ({"interface": "eth0'"}, "interface", "Linux interface name"),
    ],
)
def test_node_form_reports_rules_on_their_field(cluster, changes, field, text):
    form = node_form(cluster, **changes)
    assert not form.is_valid()
    assert any(text in message for message in form.errors[field]), form.errors
    assert cluster.nodes.count() == 2


def test_node_form_saves_a_valid_node(cluster):
    form = node_form(cluster)
    assert form.is_valid(), form.errors
    assert form.save().cluster == cluster


def vip_form(cluster, **changes):
    instance = VirtualIP(cluster=cluster)
    return VirtualIPForm(
        data=form_data(
            VirtualIPForm(instance=instance), **{"address": "192.0.2.101/24", **changes}
        ),
        instance=instance,
    )


@pytest.mark.parametrize(
    "changes, text",
    [
        ({"address": "192.0.2.100/25"}, "already a virtual IP of cluster 'web'"),
        ({"address": "192.0.2.11/24"}, "address of node 'web-1'"),
        ({"address": "2001:db8::10/64"}, "VIPs are IPv4"),
        ({"address": "192.0.2.101"}, "prefix length"),
    ],
)
def test_vip_form_reports_rules_on_the_address(cluster, changes, text):
    form = vip_form(cluster, **changes)
    assert not form.is_valid()
    assert text in form.errors["address"][0]


def test_vip_form_reports_a_hostile_label(cluster):
    form = vip_form(cluster, label="front'; $(id) #")
    assert not form.is_valid()
    assert "label" in form.errors


def test_vip_form_saves_a_normalized_address(cluster):
    form = vip_form(cluster, address="192.0.2.101/255.255.255.0")
    assert form.is_valid(), form.errors
    assert form.save().address == "192.0.2.101/24"


def test_credential_form_reports_a_bad_key_and_user_on_their_fields(db):
    form = SSHCredentialForm(
        data={"name": "x", "username": "Root", "private_key": "ssh-ed25519 AAAA"}
    )
    assert not form.is_valid()
    assert set(form.errors) == {"username", "private_key"}


# --- secrets are write-only -------------------------------------------------------------------


def test_secret_fields_use_inputs_that_do_not_echo(credential_with_passphrase, cluster_with_auth):
    credential_form = SSHCredentialForm(instance=credential_with_passphrase)
    assert isinstance(credential_form.fields["passphrase"].widget, forms.PasswordInput)
    assert isinstance(credential_form.fields["private_key"].widget, forms.Textarea)
    assert isinstance(
        ClusterForm(instance=cluster_with_auth).fields["auth_pass"].widget, forms.PasswordInput
    )


def test_an_edit_form_never_renders_the_stored_secrets(
    credential_with_passphrase, cluster_with_auth
):
    html = str(SSHCredentialForm(instance=credential_with_passphrase))
    assert_no_secret(html, credential_with_passphrase.private_key, PASSPHRASE)
    html = str(ClusterForm(instance=cluster_with_auth))
    assert_no_secret(html, AUTH_PASS, cluster_with_auth.notify_secret)
    assert "notify_secret" not in html


def test_a_form_with_errors_does_not_echo_a_submitted_secret(credential_with_passphrase):
    new_key = make_private_key()
    form = SSHCredentialForm(
        data=form_data(
            SSHCredentialForm(instance=credential_with_passphrase),
            username="Bad User",
            private_key=new_key,
            passphrase="a new passphrase",
        ),
        instance=credential_with_passphrase,
    )
    assert not form.is_valid()
    assert_no_secret(str(form), new_key, "a new passphrase", credential_with_passphrase.private_key)


def test_leaving_secrets_empty_keeps_them(credential_with_passphrase):
    original_key = credential_with_passphrase.private_key
    form = SSHCredentialForm(
        data=form_data(SSHCredentialForm(instance=credential_with_passphrase), username="deploy"),
        instance=credential_with_passphrase,
    )
    assert form.is_valid(), form.errors
    form.save()
    stored = SSHCredential.objects.get(pk=credential_with_passphrase.pk)
    assert (stored.username, stored.private_key, stored.passphrase) == (
        "deploy",
        original_key,
        PASSPHRASE,
    )


def test_a_new_secret_replaces_the_stored_one(credential_with_passphrase):
    new_key = make_private_key()
    form = SSHCredentialForm(
        data=form_data(
            SSHCredentialForm(instance=credential_with_passphrase),
            private_key=new_key,
            passphrase="new one",
        ),
        instance=credential_with_passphrase,
    )
    assert form.is_valid(), form.errors
    form.save()
    stored = SSHCredential.objects.get(pk=credential_with_passphrase.pk)
    assert (stored.private_key, stored.passphrase) == (new_key.strip(), "new one")


def test_the_remove_box_clears_the_passphrase(credential_with_passphrase):
    original_key = credential_with_passphrase.private_key
    form = SSHCredentialForm(
        data=form_data(
            SSHCredentialForm(instance=credential_with_passphrase), clear_passphrase="on"
        ),
        instance=credential_with_passphrase,
    )
    assert form.is_valid(), form.errors
    form.save()
    stored = SSHCredential.objects.get(pk=credential_with_passphrase.pk)
    assert (stored.private_key, stored.passphrase) == (original_key, "")


def test_the_remove_box_is_only_offered_when_editing(credential_with_passphrase, cluster_with_auth):
    assert "clear_passphrase" not in SSHCredentialForm().fields
    assert "clear_passphrase" in SSHCredentialForm(instance=credential_with_passphrase).fields
    assert "clear_auth_pass" not in ClusterForm().fields
    assert "clear_auth_pass" in ClusterForm(instance=cluster_with_auth).fields


def test_a_private_key_is_required_when_adding(db):
    form = SSHCredentialForm(data={"name": "x", "username": "root", "private_key": ""})
    assert not form.is_valid()
    assert "private_key" in form.errors


@pytest.mark.parametrize(
    "changes, stored",
    [({}, AUTH_PASS), ({"auth_pass": "other1"}, "other1"), ({"clear_auth_pass": "on"}, "")],
)
def test_auth_pass_is_kept_replaced_or_removed(cluster_with_auth, changes, stored):
    form = ClusterForm(
        data=form_data(ClusterForm(instance=cluster_with_auth), **changes),
        instance=cluster_with_auth,
    )
    assert form.is_valid(), form.errors
    form.save()
    assert Cluster.objects.get(pk=cluster_with_auth.pk).auth_pass == stored


def test_a_kept_auth_pass_is_still_validated_against_the_other_fields(cluster_with_auth):
    # The stored secret is put back before full_clean(), so other rules see the whole cluster.
    form = ClusterForm(
        data=form_data(ClusterForm(instance=cluster_with_auth), preempt=None, preempt_delay=5),
        instance=cluster_with_auth,
    )
    assert not form.is_valid()
    assert list(form.errors) == ["preempt_delay"]
    assert Cluster.objects.get(pk=cluster_with_auth.pk).auth_pass == AUTH_PASS
