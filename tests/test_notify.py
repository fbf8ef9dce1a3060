"""keepalived's notify reports: signed, fresh, accepted once; anything else is refused."""

import subprocess
import time

import pytest
from django.test import Client
from django.urls import reverse

from clusters import notify
from clusters.models import FailoverEvent, NotifyNonce, VipState

pytestmark = pytest.mark.django_db


def report(cluster, node="web-2", state="MASTER", ts=None, nonce="a1b2c3d4e5f6", secret=None, **override):
    ts = str(int(time.time()) if ts is None else ts)
    data = {"node": node, "state": state, "ts": ts, "nonce": nonce,
            "sig": notify.sign(secret or cluster.notify_secret, cluster.pk, node, state, ts, nonce)}
    data.update(override)
    # No session and no CSRF token, as from the script on a node.
    return Client(enforce_csrf_checks=True).post(reverse("clusters:notify", args=[cluster.pk]), data)


def test_a_signed_report_is_accepted_and_moves_the_holder(cluster):
    VipState.objects.create(vip=cluster.vips.get(), holder=cluster.nodes.get(name="web-1"),
                            since="2026-01-01T00:00Z", checked_at="2026-01-01T00:00Z")
    response = report(cluster)
    assert response.status_code == 204
    event = FailoverEvent.objects.get()
    assert (event.from_node, event.to_node, event.detected_by) == ("web-1", "web-2", "notify")


def test_it_refuses_a_bad_signature(cluster):
    response = report(cluster, secret="not-the-secret")
    assert response.status_code == 403
    assert b"bad signature" in response.content
    assert not NotifyNonce.objects.exists()


def test_it_refuses_a_stale_report(cluster):
    response = report(cluster, ts=int(time.time()) - 3600)
    assert response.status_code == 403
    assert b"stale" in response.content


def test_it_refuses_a_replayed_report(cluster):
    assert report(cluster).status_code == 204
    again = report(cluster)
    assert again.status_code == 403
    assert b"replayed" in again.content


def test_it_refuses_a_signature_for_another_node(cluster):
    response = report(cluster, node="web-2", sig=notify.sign(cluster.notify_secret, cluster.pk, "web-1", "MASTER", "1", "x"))
    assert response.status_code == 403


@pytest.mark.parametrize("state", ["master", "EVIL", "MASTER\n"])
def test_it_refuses_unknown_states(cluster, state):
    assert report(cluster, state=state).status_code == 403


def test_it_answers_404_for_an_unknown_node(cluster):
    assert report(cluster, node="ghost").status_code == 404


def test_it_rejects_get(client, cluster):
    assert client.get(reverse("clusters:notify", args=[cluster.pk])).status_code in (302, 405)


def test_the_script_signs_like_the_server(cluster, settings, tmp_path):
    """Run the rendered script's signing line with the real openssl: same HMAC as Python's."""
    settings.VIPANEL_NOTIFY_URL = "http://192.0.2.1:8000"
    node = cluster.nodes.get(name="web-1")
    script = notify.render_script(node)
    sig_line = next(line for line in script.splitlines() if line.startswith("sig="))
    command = f"state=MASTER; ts=1700000000; nonce=abcdef012345; {sig_line}; printf %s \"$sig\""
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    assert out == notify.sign(cluster.notify_secret, cluster.pk, "web-1", "MASTER", "1700000000", "abcdef012345")


def test_the_script_contains_no_shell_syntax_from_data(cluster, settings):
    settings.VIPANEL_NOTIFY_URL = "http://192.0.2.1:8000"
    script = notify.render_script(cluster.nodes.get(name="web-1"))
    syntax = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
