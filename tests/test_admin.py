"""The admin: every page loads for a superuser and none shows a secret; secrets stay write-only."""

import pytest
from django.contrib import admin
from django.urls import path, reverse

from clusters.models import Cluster, Node, SSHCredential, VirtualIP
from tests.conftest import make_private_key
from tests.test_forms import AUTH_PASS, PASSPHRASE, assert_no_secret, form_data

# The admin on its own: these tests are about the admin, not the panel's views.
urlpatterns = [path("admin/", admin.site.urls)]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

MODELS = [SSHCredential, Cluster, Node, VirtualIP]


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    # Creating the superuser for every test with PBKDF2 costs most of this module's run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def secrets(cluster, credential):
    credential.passphrase = PASSPHRASE
    credential.save()
    cluster.auth_pass = AUTH_PASS
    cluster.save()
    return [credential.private_key, PASSPHRASE, AUTH_PASS, cluster.notify_secret]


def url(model, view, *args):
    return reverse(f"admin:clusters_{model._meta.model_name}_{view}", args=args)


def instance_of(model, cluster):
    return {
        SSHCredential: cluster.credential,
        Cluster: cluster,
        Node: cluster.nodes.first(),
        VirtualIP: cluster.vips.first(),
    }[model]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("view", ["changelist", "add", "change", "history", "delete"])
def test_every_admin_page_loads_without_secrets(admin_client, cluster, secrets, model, view):
    args = () if view in ("changelist", "add") else (instance_of(model, cluster).pk,)
    response = admin_client.get(url(model, view, *args))
    assert response.status_code == 200
    assert_no_secret(response.content.decode(), *secrets)


def test_the_changelist_search_does_not_match_secrets(admin_client, secrets):
    # Searching for a secret must not reveal which row holds it.
    response = admin_client.get(url(SSHCredential, "changelist"), {"q": PASSPHRASE})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 0


def change_form(admin_client, obj):
    response = admin_client.get(url(type(obj), "change", obj.pk))
    return response.context["adminform"].form


def inline_data(response):
    """The management form and every row of each inline, as the browser would post them."""
    data = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(form_data(formset.management_form))
        for form in formset.forms:
            data.update(form_data(form))
    return data


def test_a_credential_edited_with_empty_secrets_keeps_them(admin_client, secrets):
    credential = SSHCredential.objects.get()
    original_key = credential.private_key
    data = form_data(change_form(admin_client, credential), username="deploy")
    assert data["private_key"] == "" and data["passphrase"] == ""
    response = admin_client.post(url(SSHCredential, "change", credential.pk), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    credential.refresh_from_db()
    assert (credential.username, credential.private_key, credential.passphrase) == (
        "deploy",
        original_key,
        PASSPHRASE,
    )


def test_the_remove_box_clears_the_passphrase(admin_client, secrets):
    credential = SSHCredential.objects.get()
    original_key = credential.private_key
    page = admin_client.get(url(SSHCredential, "change", credential.pk)).content.decode()
    assert 'name="clear_passphrase"' in page
    data = form_data(change_form(admin_client, credential), clear_passphrase="on")
    response = admin_client.post(url(SSHCredential, "change", credential.pk), data)
    assert response.status_code == 302
    credential.refresh_from_db()
    assert (credential.private_key, credential.passphrase) == (original_key, "")


def test_the_add_page_offers_no_remove_box(admin_client, db):
    page = admin_client.get(url(SSHCredential, "add")).content.decode()
    assert "clear_passphrase" not in page
    page = admin_client.get(url(Cluster, "add")).content.decode()
    assert "clear_auth_pass" not in page


def test_a_credential_page_with_errors_does_not_echo_the_submitted_secrets(admin_client, secrets):
    credential = SSHCredential.objects.get()
    new_key = make_private_key()
    data = form_data(
        change_form(admin_client, credential),
        username="Not Valid",
        private_key=new_key,
        passphrase="fresh passphrase",
    )
    response = admin_client.post(url(SSHCredential, "change", credential.pk), data)
    assert response.status_code == 200
    assert "username" in response.context["adminform"].form.errors
    assert_no_secret(response.content.decode(), new_key, "fresh passphrase", *secrets)


def test_adding_a_credential_stores_it_encrypted(admin_client, db):
    key = make_private_key()
    data = {"name": "new", "username": "root", "private_key": key, "passphrase": "pp"}
    response = admin_client.post(url(SSHCredential, "add"), data)
    assert response.status_code == 302
    stored = SSHCredential.objects.get(name="new")
    assert (stored.private_key, stored.passphrase) == (key.strip(), "pp")


def cluster_post(admin_client, cluster, **changes):
    response = admin_client.get(url(Cluster, "change", cluster.pk))
    data = {**form_data(response.context["adminform"].form, **changes), **inline_data(response)}
    return admin_client.post(url(Cluster, "change", cluster.pk), data)


def test_a_cluster_edited_with_an_empty_auth_pass_keeps_it(admin_client, cluster, secrets):
    response = cluster_post(admin_client, cluster, advert_int=2)
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert (cluster.advert_int, cluster.auth_pass) == (2, AUTH_PASS)


def test_the_remove_box_clears_the_auth_pass(admin_client, cluster, secrets):
    response = cluster_post(admin_client, cluster, clear_auth_pass="on")
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert cluster.auth_pass == ""


def test_the_cluster_admin_shows_model_rules_on_their_field(admin_client, cluster, secrets):
    Cluster.objects.create(name="other", network="192.0.2.0/25", virtual_router_id=60)
    response = cluster_post(
        admin_client, cluster, virtual_router_id=60, check_script="/bin/true", check_weight=3
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "cluster 'other'" in errors["virtual_router_id"][0]
    assert "span 10" in errors["check_weight"][0]
    assert_no_secret(response.content.decode(), *secrets)
    cluster.refresh_from_db()
    assert cluster.virtual_router_id == 51


def test_the_node_inline_shows_a_duplicate_priority_on_its_field(admin_client, cluster, secrets):
    response = admin_client.get(url(Cluster, "change", cluster.pk))
    data = {**form_data(response.context["adminform"].form), **inline_data(response)}
    web2 = next(k for k, v in data.items() if v == "web-2").replace("-name", "")
    data[f"{web2}-priority"] = "120"
    response = admin_client.post(url(Cluster, "change", cluster.pk), data)
    assert response.status_code == 200
    node_errors = [f.errors for f in response.context["inline_admin_formsets"][0].formset.forms]
    assert any("already used by node 'web-1'" in e.get("priority", [""])[0] for e in node_errors)
    assert sorted(cluster.nodes.values_list("priority", flat=True)) == [110, 120]


def test_the_node_admin_shows_a_duplicate_priority_on_its_field(admin_client, cluster):
    data = {
        "cluster": cluster.pk,
        "name": "web-3",
        "address": "192.0.2.13",
        "ssh_port": 22,
        "priority": 110,
    }
    response = admin_client.post(url(Node, "add"), data)
    assert response.status_code == 200
    assert (
        "already used by node 'web-2'" in response.context["adminform"].form.errors["priority"][0]
    )
    assert cluster.nodes.count() == 2


def test_the_vip_admin_shows_a_taken_address_on_its_field(admin_client, cluster):
    other = Cluster.objects.create(name="db", network="198.51.100.0/24", virtual_router_id=52)
    response = admin_client.post(
        url(VirtualIP, "add"), {"cluster": other.pk, "address": "192.0.2.100/26"}
    )
    assert response.status_code == 200
    assert "cluster 'web'" in response.context["adminform"].form.errors["address"][0]


def test_the_pushed_and_drifted_configs_are_never_shown(admin_client, cluster, secrets):
    from django.utils import timezone

    from clusters.models import NodeState
    from tests.pushed import mark_pushed

    mark_pushed(cluster)  # with the auth_pass now set: the pushed file holds it
    node = cluster.nodes.first()
    assert AUTH_PASS in Node.objects.get(pk=node.pk).pushed_config
    state = NodeState.objects.create(
        node=node,
        checked_at=timezone.now(),
        drift=True,
        drift_config=f"auth_pass {AUTH_PASS}\n",
        drift_config_sha="f" * 64,
    )
    for page in (
        url(Node, "change", node.pk),
        reverse("admin:clusters_nodestate_change", args=[state.pk]),
        reverse("admin:clusters_nodestate_changelist"),
    ):
        response = admin_client.get(page)
        assert response.status_code == 200
        assert_no_secret(response.content.decode(), *secrets)
