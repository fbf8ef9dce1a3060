"""A node's own page: its rendered files (shown and downloaded, secrets masked but for an admin
who asks), the live file's diff, keepalived as last probed, its host key in full, its events,
and "test SSH now". Nodes are reached through our own boundary (clusters.remote.connect)."""

import re
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters import render, ssh
from clusters.models import AuditEntry, FailoverEvent, Node, NodeState
from tests.cast import *  # noqa: F403
from tests.cast import (
    assert_denies,
    assert_enforces_csrf,
    assert_rejects_get,
    assert_requires_login,
)
from tests.test_instances import instance

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("nodes_refuse_ssh")]

PINNED = "SHA256:" + "P" * 20 + "q" * 23
OFFERED = "SHA256:" + "O" * 43
SECRET = "s3cret"


@pytest.fixture
def web1(cluster):
    node = cluster.nodes.get(name="web-1")
    Node.objects.filter(pk=node.pk).update(host_key_fingerprint=PINNED)
    cluster.auth_pass = SECRET
    cluster.save()
    node.refresh_from_db()
    return node


def page_url(node):
    return reverse("clusters:node", args=[node.pk])


MUTATING = {
    "node-config-secrets": lambda n: reverse("clusters:node-config-secrets", args=[n.pk]),
    "node-live-diff": lambda n: reverse("clusters:node-live-diff", args=[n.pk]),
    "node-test-ssh": lambda n: reverse("clusters:node-test-ssh", args=[n.pk]),
}


@pytest.fixture(params=sorted(MUTATING))
def mutating(request, web1):
    return MUTATING[request.param](web1), {}


def test_each_action_rejects_get(login, admin, mutating):
    assert_rejects_get(login, admin, mutating[0])


def test_each_action_requires_login(mutating, nodes_refuse_ssh):
    assert_requires_login(*mutating)
    nodes_refuse_ssh.assert_not_called()


def test_each_action_denies_the_viewer(login, viewer, mutating, nodes_refuse_ssh):
    assert_denies(login, viewer, *mutating)
    nodes_refuse_ssh.assert_not_called()


def test_each_action_enforces_csrf(login, admin, mutating, nodes_refuse_ssh):
    assert_enforces_csrf(login, admin, *mutating)
    nodes_refuse_ssh.assert_not_called()


# --- What the page shows ---------------------------------------------------------------------


def test_a_viewer_reads_the_files_the_state_the_key_and_the_events(login, viewer, web1):
    now = timezone.now()
    NodeState.objects.create(
        node=web1,
        checked_at=now,
        reachable=True,
        keepalived_running=True,
        vrrp_state="MASTER",
        holds=["192.0.2.100/24"],
        drift=False,
    )
    event = dict(cluster=web1.cluster, vip_address="192.0.2.100/24", at=now, detected_by="sweep")
    FailoverEvent.objects.create(from_node="web-2", to_node="web-1", **event)
    FailoverEvent.objects.create(kind="split_brain", to_node="web-2, web-1", **event)
    FailoverEvent.objects.create(from_node="web-2", to_node="web-10", **event)  # not this one
    response = login(viewer).get(page_url(web1))
    page = response.content.decode()
    assert response.status_code == 200
    # keepalived.conf as a push sends it, auth_pass masked; the iptables rules.
    config = response.context["config"]
    assert config.masked and SECRET not in page
    assert "auth_pass ********" in page and "virtual_router_id 51" in page
    assert "-A VIPANEL-VRRP -d 224.0.0.18/32 -i eth0 -p 112 -j ACCEPT" in page
    assert f'href="{reverse("clusters:node-config", args=[web1.pk])}" download' in page
    assert f'href="{reverse("clusters:node-iptables", args=[web1.pk, 4])}" download' in page
    # The pinned key in full, with a copy button that only JavaScript shows.
    assert f'<code id="pinned-fingerprint">{PINNED}</code>' in page
    assert re.search(
        r'<button type="button" class="copy" data-copy="pinned-fingerprint" [^>]*hidden>Copy<', page
    )
    # The last probe and when it was.
    assert '<span class="good">MASTER</span>' in page
    assert f'datetime="{timezone.localtime(now).strftime("%Y-%m-%dT%H:%M:%S")}' in page
    assert "holds 192.0.2.100/24" in page
    # The events naming it, and only those.
    events = response.context["events"]
    assert [(e.from_node, e.to_node) for e in events] == [("", "web-2, web-1"), ("web-2", "web-1")]
    assert "web-10" not in page
    # A viewer gets no button that connects to a node or reads a secret.
    for action in ("Test SSH now", "Compare with the live file", "Download with auth_pass"):
        assert action not in page


def test_an_outsider_cannot_read_it(login, outsider, web1):
    assert login(outsider).get(page_url(web1)).status_code == 403
    url = reverse("clusters:node-config", args=[web1.pk])
    assert login(outsider).get(url).status_code == 403


def test_an_operator_gets_the_actions_first_and_an_admin_the_secret_download(
    login, operator, admin, web1
):
    page = login(operator).get(page_url(web1)).content.decode()
    assert page.index("Test SSH now") < page.index("keepalived.conf")
    assert "Compare with the live file" in page and "Download with auth_pass" not in page
    page = login(admin).get(page_url(web1)).content.decode()
    assert "Download with auth_pass (admin)" in page


def test_a_node_not_trusted_yet_shows_the_offered_key_to_trust(login, operator, web1):
    Node.objects.filter(pk=web1.pk).update(
        host_key_fingerprint="", offered_host_key_fingerprint=OFFERED
    )
    page = login(operator).get(page_url(web1)).content.decode()
    assert f'<code id="offered-fingerprint">{OFFERED}</code>' in page
    assert f'<input type="hidden" name="fingerprint" value="{OFFERED}">' in page


def test_trusting_from_the_node_page_comes_back_to_it(login, operator, web1):
    Node.objects.filter(pk=web1.pk).update(
        host_key_fingerprint="", offered_host_key_fingerprint=OFFERED
    )
    response = login(operator).post(
        reverse("clusters:node-repin", args=[web1.pk]),
        {"fingerprint": OFFERED, "next": page_url(web1)},
    )
    assert response["Location"] == page_url(web1)
    # Anywhere else is not followed: the cluster page.
    Node.objects.filter(pk=web1.pk).update(
        host_key_fingerprint="", offered_host_key_fingerprint=OFFERED
    )
    response = login(operator).post(
        reverse("clusters:node-repin", args=[web1.pk]),
        {"fingerprint": OFFERED, "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("clusters:cluster", args=[web1.cluster_id])


def test_a_cluster_not_ready_says_why_instead_of_a_file(login, viewer, cluster):
    cluster.vips.all().delete()
    node = cluster.nodes.get(name="web-1")
    page = login(viewer).get(page_url(node)).content.decode()
    assert "Cannot be rendered yet" in page
    response = login(viewer).get(reverse("clusters:node-config", args=[node.pk]))
    assert response.status_code == 409
    assert "Content-Disposition" not in response


# --- Downloads -------------------------------------------------------------------------------


def test_the_config_downloads_as_a_file_with_its_secret_masked(login, viewer, web1):
    response = login(viewer).get(reverse("clusters:node-config", args=[web1.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="keepalived-web-web-1.conf"'
    text = response.content.decode()
    assert SECRET not in text and "auth_pass ********" in text
    # Said at the top: "********" is itself a valid auth_pass, so this copy must not be used.
    assert text.startswith("# auth_pass is masked (********) in this copy")
    assert (
        text.splitlines()[1:] == render.node_config(web1).replace(SECRET, "********").splitlines()
    )


def test_without_a_secret_the_download_is_the_file_itself(login, viewer, cluster):
    node = cluster.nodes.get(name="web-1")
    response = login(viewer).get(reverse("clusters:node-config", args=[node.pk]))
    assert response.content.decode() == render.node_config(node)


def test_an_admin_downloads_the_file_with_its_secret_and_it_is_audited(login, admin, web1):
    response = login(admin).post(reverse("clusters:node-config-secrets", args=[web1.pk]))
    assert response.status_code == 200
    assert response.content.decode() == render.node_config(web1)
    assert f"auth_pass {SECRET}" in response.content.decode()
    assert response["Content-Disposition"] == 'attachment; filename="keepalived-web-web-1.conf"'
    assert "no-store" in response["Cache-Control"]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.username, entry.object_repr, entry.cluster) == (
        "node.config_download",
        "ada-admin",
        "web-1",
        web1.cluster,
    )
    assert SECRET not in str(entry.changes) + entry.result


def test_an_operator_never_receives_the_secret(login, operator, web1):
    response = login(operator).post(reverse("clusters:node-config-secrets", args=[web1.pk]))
    assert response.status_code == 403
    assert SECRET not in response.content.decode()
    assert not AuditEntry.objects.exists()


def test_the_iptables_rules_download_per_address_family(login, viewer, web1):
    url = reverse("clusters:node-iptables", args=[web1.pk, 4])
    response = login(viewer).get(url)
    assert response["Content-Disposition"] == 'attachment; filename="iptables-web-web-1.v4"'
    assert response.content.decode() == render.render_iptables(web1, 4)
    # No IPv6 instance on this node: nothing to download.
    url6 = reverse("clusters:node-iptables", args=[web1.pk, 6])
    assert login(viewer).get(url6).status_code == 404


def test_a_dual_stack_node_has_both_families(login, viewer, web1):
    instance(
        web1.cluster,
        name="v6",
        vrid=62,
        network="2001:db8::/64",
        prios={"web-1": 120, "web-2": 110},
        vips=["2001:db8::100/64"],
    )
    page = login(viewer).get(page_url(web1)).content.decode()
    assert 'id="rules-v4"' in page and 'id="rules-v6"' in page
    assert "-A VIPANEL-VRRP -d ff02::12/128 -i eth0 -p 112 -j ACCEPT" in page
    response = login(viewer).get(reverse("clusters:node-iptables", args=[web1.pk, 6]))
    assert response["Content-Disposition"] == 'attachment; filename="ip6tables-web-web-1.v6"'
    assert response.content.decode() == render.render_iptables(web1, 6)


# --- The live file's diff ----------------------------------------------------------------------


class FakeNode:
    """What clusters.remote.connect returns: a node that answers with the pinned key, whose
    live file is `live` and whose probe prints `probe`."""

    def __init__(self, live=None, probe=""):
        self.live, self.probe = live, probe
        self.fingerprint = PINNED
        self.commands = []

    def get(self, path):
        return self.live

    def run(self, command, timeout=None):
        self.commands.append(command)
        return ssh.Result(0, self.probe, "")

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def answering(fake):
    return mock.patch("clusters.remote.connect", return_value=fake)


def test_the_live_diff_masks_secrets_on_both_sides(login, operator, web1):
    live = render.node_config(web1).replace("priority 120", "priority 99").encode()
    with answering(FakeNode(live=live)):
        response = login(operator).post(
            reverse("clusters:node-live-diff", args=[web1.pk]), HTTP_HX_REQUEST="true"
        )
    body = response.content.decode()
    assert body.startswith('<div id="live-diff">') and "<html" not in body
    assert "differs" in body
    assert '<span class="del">-    priority 99</span>' in body
    assert '<span class="add">+    priority 120</span>' in body
    assert SECRET not in body


def test_the_live_diff_of_an_unreachable_node_says_why(login, operator, web1):
    response = login(operator).post(reverse("clusters:node-live-diff", args=[web1.pk]))
    page = response.content.decode()
    assert response.status_code == 200 and "<html" in page  # without htmx, the whole page
    assert "Cannot read it: connection refused by 192.0.2.11" in page


# --- Test SSH now ----------------------------------------------------------------------------


def steps_of(page):
    """{step: outcome} of the SSH test shown on the page."""
    return dict(re.findall(r'data-step="(\w+)" data-outcome="([\w ]+)"', page))


PROBE = "user=root\nversion=Keepalived v2.2.7 (01/16,2022)\nrunning=1\nconfig=1\n"


def test_ssh_test_of_a_working_node(login, operator, web1):
    fake = FakeNode(probe=PROBE)
    with answering(fake):
        response = login(operator).post(
            reverse("clusters:node-test-ssh", args=[web1.pk]), HTTP_HX_REQUEST="true"
        )
    body = response.content.decode()
    assert body.startswith('<div id="ssh-check">')
    assert steps_of(body) == {
        "credential": "ok",
        "connect": "ok",
        "host_key": "ok",
        "auth": "ok",
        "keepalived": "ok",
        "config": "ok",
    }
    assert "web-1: SSH works (as root); running (Keepalived v2.2.7 (01/16,2022)); " in body
    # The probe only reads, and names the cluster's config path quoted.
    (command,) = fake.commands
    assert "/etc/keepalived/keepalived.conf" in command
    for word in (" rm ", " > ", "kill", "systemctl", "reload", "iptables"):
        assert word not in command
    # Nothing changed, so nothing is audited.
    assert not AuditEntry.objects.exists()


def test_ssh_test_of_a_node_whose_key_nobody_trusted_offers_it_and_pins_nothing(
    login, operator, cluster
):
    node = cluster.nodes.get(name="web-2")
    refusal = ssh.HostKeyNotTrusted("192.0.2.12", OFFERED)
    with mock.patch("clusters.remote.connect", side_effect=refusal):
        response = login(operator).post(reverse("clusters:node-test-ssh", args=[node.pk]))
    page = response.content.decode()
    node.refresh_from_db()
    assert node.host_key_fingerprint == ""  # never pinned by a machine
    assert node.offered_host_key_fingerprint == OFFERED  # shown for a person to trust
    assert f"web-2: reachable; host key not trusted yet: {OFFERED}." in page
    steps = steps_of(page)
    assert steps["connect"] == "ok" and steps["host_key"] == "bad"
    assert steps["auth"] == steps["keepalived"] == "not tried"
    assert f'<input type="hidden" name="fingerprint" value="{OFFERED}">' in page
    assert not AuditEntry.objects.exists()


def test_ssh_test_of_a_node_whose_key_changed_sends_nothing(login, operator, web1):
    refusal = ssh.HostKeyMismatch("192.0.2.11", PINNED, OFFERED)
    with mock.patch("clusters.remote.connect", side_effect=refusal):
        page = login(operator).post(reverse("clusters:node-test-ssh", args=[web1.pk]))
    web1.refresh_from_db()
    assert web1.host_key_fingerprint == PINNED
    assert f"changed: pinned {PINNED}, the node offers {OFFERED}" in page.content.decode()


def test_ssh_test_of_a_node_that_refuses(login, operator, web1):
    page = login(operator).post(reverse("clusters:node-test-ssh", args=[web1.pk]))
    text = page.content.decode()
    assert "web-1: not reachable: connection refused by 192.0.2.11 (is sshd running?)" in text
    assert steps_of(text) == {
        "credential": "ok",
        "connect": "bad",
        "host_key": "not tried",
        "auth": "not tried",
        "keepalived": "not tried",
        "config": "not tried",
    }


def test_ssh_test_without_a_credential_says_so(login, operator, cluster):
    cluster.credential = None
    cluster.save()
    node = cluster.nodes.get(name="web-1")
    page = login(operator).post(reverse("clusters:node-test-ssh", args=[node.pk]))
    assert "web-1: no usable SSH credential: web-1: no SSH credential" in page.content.decode()


# --- The cluster page leads here ---------------------------------------------------------------


def test_the_cluster_page_links_each_node_and_shows_its_key_in_full(login, viewer, web1):
    page = login(viewer).get(reverse("clusters:cluster", args=[web1.cluster_id])).content.decode()
    assert f'<a href="{page_url(web1)}">web-1</a>' in page
    assert f'<code class="small" id="fp-{web1.pk}">{PINNED}</code>' in page
    assert f'data-copy="fp-{web1.pk}" hidden' in page
