"""keepalived's notify reports: signed, fresh, accepted once; anything else is refused."""

import subprocess
import time

import pytest
from django.test import Client
from django.urls import reverse

from clusters import notify
from clusters.models import FailoverEvent, NotifyNonce, VipState
from tests.pushed import mark_pushed

pytestmark = pytest.mark.django_db


def report(
    cluster, node="web-2", state="MASTER", ts=None, nonce="a1b2c3d4e5f6", signer=None, **override
):
    """POST a report as node `node`, signed with the key of `signer` (default: that node)."""
    ts = str(int(time.time()) if ts is None else ts)
    key_node = cluster.nodes.filter(name=signer or node).first()
    sig = "00"
    if key_node is not None:
        data = notify.message(cluster.pk, node, state, ts, nonce)
        sig = notify._private_key(key_node).sign(data).hex()
    data = {"node": node, "state": state, "ts": ts, "nonce": nonce, "sig": sig}
    data.update(override)
    # No session and no CSRF token, as from the script on a node.
    url = reverse("clusters:notify", args=[cluster.pk])
    return Client(enforce_csrf_checks=True).post(url, data)


def test_a_signed_report_is_accepted_and_moves_the_holder(cluster):
    VipState.objects.create(
        vip=cluster.vips.get(),
        holder=cluster.nodes.get(name="web-1"),
        since="2026-01-01T00:00Z",
        checked_at="2026-01-01T00:00Z",
    )
    response = report(cluster)
    assert response.status_code == 204
    event = FailoverEvent.objects.get()
    assert (event.from_node, event.to_node, event.detected_by) == ("web-1", "web-2", "notify")


def test_it_refuses_a_bad_signature(cluster):
    response = report(cluster, sig="ab" * 64)
    assert response.status_code == 403
    assert b"bad signature" in response.content
    assert not NotifyNonce.objects.exists()


def test_it_refuses_a_stale_report_and_says_so_in_the_log(cluster, caplog):
    """The script on the node shows its answer to nobody: the panel's log says why (a node's
    clock an hour off would otherwise silently lose every report)."""
    response = report(cluster, ts=int(time.time()) - 3600)
    assert response.status_code == 403
    assert b"stale" in response.content
    refused = [r.getMessage() for r in caplog.records if r.name == "clusters.hooks.notify"]
    assert refused == ["notify report from web-2 refused: " + response.content.decode()[9:-1]]


def test_it_refuses_a_replayed_report(cluster):
    assert report(cluster).status_code == 204
    again = report(cluster)
    assert again.status_code == 403
    assert b"replayed" in again.content


def test_one_nodes_key_cannot_speak_for_another(cluster):
    # web-1's key, a report that web-2 became master: refused.
    response = report(cluster, node="web-2", signer="web-1")
    assert response.status_code == 403
    assert b"bad signature" in response.content
    assert not FailoverEvent.objects.exists()


def test_each_node_has_its_own_key(cluster):
    keys = {n.notify_key for n in cluster.nodes.all()}
    assert len(keys) == cluster.nodes.count() and all("PRIVATE KEY" in k for k in keys)


@pytest.mark.parametrize("state", ["master", "EVIL", "MASTER\n"])
def test_it_refuses_unknown_states(cluster, state):
    assert report(cluster, state=state).status_code == 403


def test_it_answers_404_for_an_unknown_node(cluster):
    assert report(cluster, node="ghost").status_code == 404


def test_it_rejects_get(client, cluster):
    assert client.get(reverse("clusters:notify", args=[cluster.pk])).status_code in (302, 405)


def test_the_script_signs_like_the_server(cluster, settings, tmp_path):
    """Run the rendered script's signing lines with the real openssl and the node's key file:
    the panel accepts the signature."""
    settings.VIPANEL_NOTIFY_URL = "http://192.0.2.1:8000"
    node = cluster.nodes.get(name="web-1")
    key = tmp_path / "key"
    key.write_text(node.notify_key)
    key.chmod(0o600)
    script = notify.render_script(node).replace(notify.KEY_PATH, str(key))
    lines = script.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("msg="))
    end = next(i for i, line in enumerate(lines) if line.startswith('rm -f "$msg"'))
    command = (
        "state=MASTER; instance=VI_web; ts=1700000000; nonce=abcdef012345\n"
        + "\n".join(lines[start : end + 1])
        + '\nprintf %s "$sig"'
    )
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    signed = {"now": 1700000000, "instance": "VI_web"}
    assert (
        notify.check_signature(node, "MASTER", "1700000000", "abcdef012345", out, **signed) is None
    )
    assert out == notify.sign(node, "MASTER", "1700000000", "abcdef012345", instance="VI_web")


def test_the_script_holds_no_secret(cluster, settings):
    settings.VIPANEL_NOTIFY_URL = "http://192.0.2.1:8000"
    node = cluster.nodes.get(name="web-1")
    script = notify.render_script(node)
    body = "".join(node.notify_key.splitlines()[1:-1])
    assert body not in script and cluster.notify_secret not in script
    assert "-hmac" not in script


def test_the_push_deploys_the_key_root_only_with_the_script(cluster, settings):
    node = cluster.nodes.get(name="web-1")
    settings.VIPANEL_NOTIFY_URL = ""
    assert notify.files_for(node) == []
    settings.VIPANEL_NOTIFY_URL = "http://192.0.2.1:8000"
    files = {path: (content, mode) for path, content, mode in notify.files_for(node)}
    assert files[notify.KEY_PATH] == (node.notify_key.encode(), 0o600)
    assert files[notify.SCRIPT_PATH] == (notify.render_script(node).encode(), 0o700)


def test_the_script_contains_no_shell_syntax_from_data(cluster, settings):
    settings.VIPANEL_NOTIFY_URL = "http://192.0.2.1:8000"
    script = notify.render_script(cluster.nodes.get(name="web-1"))
    syntax = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


def test_the_script_signs_the_instance_it_was_called_for(cluster, settings, tmp_path):
    """keepalived calls the script with TYPE NAME STATE PRIORITY: the report names NAME, signed,
    and a NAME outside keepalived's alphabet as vipanel renders it sends nothing."""
    from clusters.services import instances

    settings.VIPANEL_NOTIFY_URL = "http://192.0.2.1:8000"
    instances.create_instance(None, cluster, {"name": "b", "virtual_router_id": 52})
    node = cluster.nodes.get(name="web-1")
    key = tmp_path / "key"
    key.write_text(node.notify_key)
    key.chmod(0o600)
    posted = tmp_path / "posted"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A curl that records what it would post (the real one would need a server).
    (bin_dir / "curl").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {posted}\n')
    (bin_dir / "curl").chmod(0o755)
    script = (
        notify.render_script(node)
        .replace(notify.KEY_PATH, str(key))
        .replace(notify.constants.NOTIFY_STATE_FILE, str(tmp_path / "state"))
        .replace(" </dev/null >/dev/null 2>&1 &", " </dev/null")
    )
    path = tmp_path / "notify.sh"
    path.write_text(script)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    subprocess.run(["sh", str(path), "INSTANCE", "VI_web_b", "MASTER", "100"], env=env, check=True)
    [body] = [line for line in posted.read_text().splitlines() if line.startswith("node=")]
    fields = dict(pair.split("=", 1) for pair in body.split("&"))
    assert fields["instance"] == "VI_web_b"
    assert (
        notify.check_signature(
            node, "MASTER", fields["ts"], fields["nonce"], fields["sig"], instance="VI_web_b"
        )
        is None
    )
    # The same signature does not pass for another instance, nor as a v2 report.
    assert (
        notify.check_signature(
            node, "MASTER", fields["ts"], fields["nonce"], fields["sig"], instance="VI_web"
        )
        == "bad signature"
    )
    posted.unlink()
    subprocess.run(
        ["sh", str(path), "INSTANCE", "VI_$(reboot)", "MASTER", "1"], env=env, check=True
    )
    assert not posted.exists()


def test_a_master_report_naming_an_instance_claims_that_instances_vips_only(cluster):
    from clusters.services import instances, vips

    b = instances.create_instance(None, cluster, {"name": "b", "virtual_router_id": 52})
    b_vip = vips.create_vip(None, cluster, {"address": "192.0.2.101/24", "instance": b})
    mark_pushed(cluster)  # both on the nodes: a report of a VIP never pushed claims nothing
    main_vip = cluster.vips.get(instance__isnull=True)
    web1, web2 = cluster.nodes.get(name="web-1"), cluster.nodes.get(name="web-2")
    for vip in (main_vip, b_vip):
        VipState.objects.create(
            vip=vip, holder=web1, since="2026-01-01T00:00Z", checked_at="2026-01-01T00:00Z"
        )
    ts, nonce = str(int(time.time())), "b1b2c3d4e5f6"
    sig = notify.sign(web2, "MASTER", ts, nonce, instance=b.keepalived_name)
    response = report(
        cluster, node="web-2", ts=ts, nonce=nonce, sig=sig, instance=b.keepalived_name
    )
    assert response.status_code == 204, response.content
    assert VipState.objects.get(vip=b_vip).holder == web2
    assert VipState.objects.get(vip=main_vip).holder == web1  # the other instance stays
    event = FailoverEvent.objects.get()
    assert (event.vip_address, event.from_node, event.to_node) == (b_vip.address, "web-1", "web-2")
    # A report without an instance (a v2 script) claims nothing while there are several.
    assert report(cluster, node="web-2", nonce="c1c2c3d4e5f6").status_code == 204
    assert VipState.objects.get(vip=main_vip).holder == web1


def test_a_report_with_a_hostile_instance_name_is_refused(cluster):
    ts, nonce = str(int(time.time())), "d1d2c3d4e5f6"
    node = cluster.nodes.get(name="web-2")
    name = "VI_web\n}"
    sig = notify.sign(node, "MASTER", ts, nonce, instance=name)
    response = report(cluster, ts=ts, nonce=nonce, sig=sig, instance=name)
    assert response.status_code == 403 and b"bad instance name" in response.content
    assert not NotifyNonce.objects.exists()


def test_a_report_for_an_instance_the_cluster_no_longer_has_is_not_sent(
    cluster, settings, tmp_path
):
    """keepalived reports FAULT for an instance a reload removed: the script the same push
    deployed knows the cluster's instances and neither records nor sends it."""
    from clusters.services import instances

    settings.VIPANEL_NOTIFY_URL = "http://192.0.2.1:8000"
    instances.create_instance(None, cluster, {"name": "b", "virtual_router_id": 52})
    node = cluster.nodes.get(name="web-1")
    state = tmp_path / "state"
    script = (
        notify.render_script(node)
        .replace(notify.constants.NOTIFY_STATE_FILE, str(state))
        .replace(notify.KEY_PATH, str(tmp_path / "no-key"))  # stops before sending
    )
    path = tmp_path / "notify.sh"
    path.write_text(script)
    for name, recorded in (("VI_web_gone", False), ("VI_web_b", True), ("VI_web", True)):
        state.unlink(missing_ok=True)
        subprocess.run(["sh", str(path), "INSTANCE", name, "FAULT", "0"], check=True)
        assert state.exists() == recorded, name
