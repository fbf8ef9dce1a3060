"""'Test SSH now' and adding a node, against the namespace lab: real sshd, real keepalived, a
node nobody has trusted yet, one that is not there, one whose sshd is down. Nothing patched."""

import ipaddress
import re
import time

import pytest
from django.conf import settings
from django.urls import reverse

from clusters.models import AuditEntry, Cluster, Node, SSHCredential
from tests.cast import *  # noqa: F403
from tests.conftest import make_private_key
from tests.lab_cluster import make_lab_cluster, place_configs

pytestmark = [pytest.mark.lab, pytest.mark.django_db]


def steps_of(page):
    return dict(re.findall(r'data-step="(\w+)" data-outcome="([\w ]+)"', page))


def texts_of(page):
    return {
        key: re.sub(r"<[^>]+>", "", text).strip()
        for key, text in re.findall(
            r'data-step="(\w+)" data-outcome="[\w ]+">(.*?)</dd>', page, re.S
        )
    }


def ssh_test(client, node):
    response = client.post(
        reverse("clusters:node-test-ssh", args=[node.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    return response.content.decode()


def node_snapshot(lab_node):
    """What a harmless probe must leave as it was: the node's files, processes and rules."""
    files = sorted(p.name for p in lab_node.config_dir.iterdir())
    processes = lab_node.exec("ps -e -o args=").stdout.splitlines()
    # The probe's own SSH session may still be closing: count the lasting ones only.
    processes = sorted(p for p in processes if "sshd:" not in p and not p.startswith("ps "))
    rules = lab_node.exec("iptables -S").stdout
    return files, processes, rules


def test_ssh_now_on_a_trusted_lab_node_says_what_it_found_and_changes_nothing(
    clean_lab, login, operator
):
    cluster = make_lab_cluster(clean_lab, name="probe")
    node = cluster.nodes.get(name=clean_lab[0].name)
    before = node_snapshot(clean_lab[0])
    page = ssh_test(login(operator), node)
    assert steps_of(page) == {
        "credential": "ok",
        "connect": "ok",
        "host_key": "ok",
        "auth": "ok",
        "keepalived": "bad",
        "config": "bad",
    }
    texts = texts_of(page)
    assert texts["host_key"] == f"ok the pinned key {clean_lab[0].fingerprint}"
    assert texts["auth"] == "ok as root"
    assert re.fullmatch(
        r"no installed \(Keepalived v[\d.]+ .*\) but not running; .*", texts["keepalived"]
    )
    assert (
        texts["config"]
        == "no /etc/keepalived/keepalived.conf is not there yet; the first push writes it"
    )
    assert node_snapshot(clean_lab[0]) == before
    assert not AuditEntry.objects.exists()
    node.refresh_from_db()
    assert (node.host_key_fingerprint, node.offered_host_key_fingerprint) == (
        clean_lab[0].fingerprint,
        "",
    )

    # Once its config is there and keepalived runs, the same test says so.
    place_configs(clean_lab, cluster)
    page = ssh_test(login(operator), node)
    assert set(steps_of(page).values()) == {"ok"}
    assert re.search(r"running \(Keepalived v[\d.]+", texts_of(page)["keepalived"])
    assert "SSH test of" in page and f"{node.name}: SSH works (as root); running" in page


def test_adding_a_lab_node_nobody_trusted_yet_shows_its_key_then_trusting_it_works(
    clean_lab, login, operator
):
    cluster = make_lab_cluster(clean_lab, name="grow")
    third = cluster.nodes.get(name=clean_lab[2].name)
    third.delete()  # added again below, as a person would, with no fingerprint
    client = login(operator)
    response = client.post(
        reverse("clusters:node-add", args=[cluster.pk]),
        {
            "name": clean_lab[2].name,
            "address": clean_lab[2].address,
            "ssh_port": "22",
            "priority": "130",
        },
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert response.status_code == 200
    offered = clean_lab[2].fingerprint
    assert f"{clean_lab[2].name}: reachable; host key not trusted yet: {offered}." in page
    steps = steps_of(page)
    assert (steps["connect"], steps["host_key"], steps["auth"]) == ("ok", "bad", "not tried")
    node = Node.objects.get(cluster=cluster, name=clean_lab[2].name)
    # Recorded for a person to compare; pinned by nobody.
    assert (node.host_key_fingerprint, node.offered_host_key_fingerprint) == ("", offered)
    # The node's row offers exactly that key to trust.
    assert f'<input type="hidden" name="fingerprint" value="{offered}">' in page
    response = client.post(reverse("clusters:node-repin", args=[node.pk]), {"fingerprint": offered})
    assert response.status_code == 302
    page = ssh_test(client, node)
    assert steps_of(page)["auth"] == "ok"


def test_adding_a_node_that_is_not_there_says_so_within_the_deadline(clean_lab, login, operator):
    cluster = make_lab_cluster(clean_lab, name="ghost")
    nobody = str(ipaddress.ip_network(clean_lab.network).network_address + 250)
    started = time.monotonic()
    response = login(operator).post(
        reverse("clusters:node-add", args=[cluster.pk]),
        {"name": "ghost-9", "address": nobody, "ssh_port": "22", "priority": "90"},
        HTTP_HX_REQUEST="true",
    )
    took = time.monotonic() - started
    page = response.content.decode()
    assert response.status_code == 200
    assert Node.objects.filter(name="ghost-9").exists()  # added all the same: it may come up later
    assert steps_of(page)["connect"] == "bad"
    assert re.search(
        rf"ghost-9: not reachable: (timed out connecting to|cannot connect to) {nobody}", page
    )
    # One deadline for the whole test: two connect timeouts and the probe's few seconds.
    assert took < 2 * settings.VIPANEL_SSH_CONNECT_TIMEOUT + 5 + 3, took


def test_a_node_whose_sshd_is_down_is_refused_at_once(clean_lab, login, operator):
    cluster = make_lab_cluster(clean_lab, name="down")
    node = cluster.nodes.get(name=clean_lab[1].name)
    clean_lab[1].stop_sshd()
    page = ssh_test(login(operator), node)
    assert (
        f"{node.name}: not reachable: connection refused by {node.address} (is sshd running?)"
        in page
    )


def test_a_credential_the_node_does_not_accept_fails_at_login(clean_lab, login, operator):
    cluster = make_lab_cluster(clean_lab, name="wrongkey")
    stranger = SSHCredential.objects.create(name="stranger", private_key=make_private_key())
    Cluster.objects.filter(pk=cluster.pk).update(credential=stranger)
    node = cluster.nodes.get(name=clean_lab[0].name)
    page = ssh_test(login(operator), node)
    steps = steps_of(page)
    assert (steps["connect"], steps["host_key"], steps["auth"]) == ("ok", "ok", "bad")
    assert f"authentication failed for root@{node.address}: the key was not accepted" in page


def test_adding_a_node_with_a_mistyped_fingerprint_sends_it_nothing(clean_lab, login, operator):
    cluster = make_lab_cluster(clean_lab, name="typo")
    cluster.nodes.get(name=clean_lab[2].name).delete()
    wrong = "SHA256:" + "W" * 43
    page = (
        login(operator)
        .post(
            reverse("clusters:node-add", args=[cluster.pk]),
            {
                "name": clean_lab[2].name,
                "address": clean_lab[2].address,
                "ssh_port": "22",
                "priority": "130",
                "host_key_fingerprint": wrong,
            },
            HTTP_HX_REQUEST="true",
        )
        .content.decode()
    )
    assert f"changed: pinned {wrong}, the node offers {clean_lab[2].fingerprint}" in page
    assert steps_of(page)["auth"] == "not tried"
    node = cluster.nodes.get(name=clean_lab[2].name)
    assert node.host_key_fingerprint == wrong  # what the person typed: nothing re-pins by itself
    assert node.offered_host_key_fingerprint == clean_lab[2].fingerprint  # shown for a re-pin
