"""The sweep against misbehaving SSH servers, the per-cluster locks, and the connection pool.

The hostile servers are small Python socket servers on the lab bridge's address (so the nodes
that point at them are lab addresses); the well-behaved nodes are the lab's real sshd.
"""

import socket
import struct
import threading
import time

import paramiko
import pytest
from django.test import override_settings

from clusters import history, remote, ssh, sweep
from clusters.models import Node, NodeState
from clusters.status import probe_cluster
from tests.lab_cluster import make_lab_cluster

DEADLINE = 2


class Hostile:
    """A TCP server on the bridge address that misbehaves in one way, one thread per client."""

    def __init__(self, address, behaviour):
        self.behaviour, self.address = behaviour, address
        self.sock = socket.create_server((address, 0))
        self.port = self.sock.getsockname()[1]
        self.clients = []
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopped.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.clients.append(client)
            threading.Thread(target=self.behaviour, args=(self, client), daemon=True).start()

    def close(self):
        self.stopped.set()
        self.sock.close()
        for c in self.clients:
            c.close()


def _packet(payload: bytes) -> bytes:
    padding = 8 - (len(payload) + 5) % 8 + 8
    return struct.pack(">IB", len(payload) + padding + 1, padding) + payload + b"\0" * padding


def garbage_kexinit(server, client):
    # A KEXINIT whose algorithm lists are not UTF-8: paramiko raises UnicodeDecodeError.
    client.sendall(b"SSH-2.0-hostile\r\n")
    bad = b"\xff\xfe\xfd"
    payload = bytes([20]) + b"\0" * 16
    for _ in range(10):
        payload += struct.pack(">I", len(bad)) + bad
    payload += b"\0" + b"\0\0\0\0"
    client.sendall(_packet(payload))
    server.stopped.wait(30)


def silent(server, client):
    server.stopped.wait(30)  # accepts, never says a word


def close_after_banner(server, client):
    client.sendall(b"SSH-2.0-hostile\r\n")
    client.close()


class _SlowAuth(paramiko.ServerInterface):
    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        time.sleep(30)
        return paramiko.AUTH_FAILED


HOST_KEY = paramiko.ECDSAKey.generate()


def slow_auth(server, client):
    transport = paramiko.Transport(client)
    transport.add_server_key(HOST_KEY)
    try:
        transport.start_server(server=_SlowAuth())
        server.stopped.wait(30)
    except Exception:  # noqa: BLE001 - the client hanging up is the point
        pass
    finally:
        transport.close()


BEHAVIOURS = {
    "garbage": garbage_kexinit,
    "silent": silent,
    "banner-then-close": close_after_banner,
    "slow-auth": slow_auth,
}


@pytest.fixture
def hostile(lab):
    """One server per behaviour, each on an address of its own added to the lab's bridge (a
    node's address is unique)."""
    import subprocess

    servers, added = {}, []
    for i, (name, behaviour) in enumerate(BEHAVIOURS.items()):
        address = str(lab.network[240 + i])
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", lab.bridge], check=True)
        added.append(address)
        servers[name] = Hostile(address, behaviour)
    yield servers
    for server in servers.values():
        server.close()
    for address in added:
        subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", lab.bridge], check=False)


def add_hostile_nodes(cluster, lab, servers):
    for i, (name, server) in enumerate(servers.items()):
        n = Node(
            cluster=cluster,
            name=f"bad-{name}",
            address=server.address,
            ssh_port=server.port,
            priority=10 + i,
            host_key_fingerprint=ssh.fingerprint(HOST_KEY),
        )
        n.full_clean()
        n.save()


@pytest.mark.lab
@pytest.mark.django_db(transaction=True)
@override_settings(VIPANEL_PROBE_TIMEOUT=DEADLINE)
def test_hostile_servers_cost_their_deadline_and_the_other_nodes_are_probed(lab, hostile):
    cluster = make_lab_cluster(lab)
    add_hostile_nodes(cluster, lab, hostile)
    t0 = time.monotonic()
    status = probe_cluster(cluster)
    took = time.monotonic() - t0
    by_name = {p.name: p for p in status.nodes}
    for node in lab:
        assert by_name[node.name].reachable, by_name[node.name].error
    for name in BEHAVIOURS:
        probe = by_name[f"bad-{name}"]
        assert not probe.reachable and probe.error, name
    assert "UnicodeDecodeError" in by_name["bad-garbage"].error
    assert took < DEADLINE + 1.5, took


@pytest.mark.lab
@pytest.mark.django_db(transaction=True)
@override_settings(VIPANEL_PROBE_TIMEOUT=DEADLINE)
def test_a_hostile_cluster_never_stops_the_sweep_of_the_clusters_after_it(lab, hostile):
    bad = make_lab_cluster(lab, name="aaa-bad", vrid=78)
    bad.nodes.all().delete()
    add_hostile_nodes(bad, lab, {"garbage": hostile["garbage"]})
    good = make_lab_cluster(lab, name="zzz-good", vrid=79, vips=[f"{lab.network[201]}/24"])
    history.sweep_all()
    assert NodeState.objects.filter(node__cluster=good, reachable=True).count() == len(lab)
    assert "UnicodeDecodeError" in NodeState.objects.get(node__cluster=bad).error


@pytest.mark.django_db
def test_any_exception_of_one_node_is_that_nodes_error(cluster, monkeypatch):
    cluster.nodes.update(host_key_fingerprint="SHA256:" + "A" * 43)
    calls = []

    def connect(target, deadline=None):
        calls.append(target.host)
        raise (RuntimeError("boom") if target.host == "192.0.2.11" else ssh.SSHError("refused"))

    monkeypatch.setattr(ssh, "connect", connect)
    status = probe_cluster(cluster, timeout=1)
    errors = {p.name: p.error for p in status.nodes}
    assert "RuntimeError: boom" in errors["web-1"] and errors["web-2"] == "refused"
    assert sorted(calls) == ["192.0.2.11", "192.0.2.12"]


# Locks


@pytest.fixture
def redis_db(private_redis):
    return private_redis


@pytest.mark.django_db
def test_a_tick_skips_a_cluster_still_being_probed_and_counts_it(cluster, redis_db):
    tick_id, batches = sweep.tick()
    assert [[c for c, _ in b] for b in batches] == [[cluster.pk]]
    before = sweep.skipped_total()
    assert sweep.tick()[1] == []  # still locked by the first tick's batch
    assert sweep.skipped_total() == before + 1
    token = batches[0][0][1]
    assert not sweep.release(cluster.pk, "not-the-owner")
    assert sweep.release(cluster.pk, token)
    assert len(sweep.tick()[1]) == 1


@pytest.mark.django_db
def test_a_batch_whose_lock_expired_and_was_taken_skips_the_cluster(cluster, redis_db, monkeypatch):
    _, batches = sweep.tick()
    redis_db.delete(sweep.lock_key(cluster.pk))  # expired...
    other = sweep.claim(cluster.pk)  # ...and the next tick claimed it
    probed = []
    monkeypatch.setattr(
        history, "sweep_clusters", lambda clusters, after=None: probed.append(clusters)
    )
    assert sweep.probe_batch(batches[0]) == 0 and probed == []
    # The late batch did not release the new owner's lock.
    assert redis_db.get(sweep.lock_key(cluster.pk)).decode() == other


@pytest.mark.django_db
def test_a_batch_closes_the_connections_idle_too_long(redis_db):
    """A deleted node's connection is never asked for again: the batches' pruning closes it."""

    class Idle:
        active, closed = True, False

        def close(self):
            self.closed = True

    old, fresh = Idle(), Idle()
    now = time.monotonic()
    remote.POOL._idle[1] = ((), now - remote.POOL.idle_seconds - 1, old)
    remote.POOL._idle[2] = ((), now, fresh)
    sweep.probe_batch([])
    assert old.closed and not fresh.closed
    assert len(remote.POOL) == 1


def test_the_lock_outlives_the_probe_deadline():
    from django.conf import settings

    assert sweep.lock_ttl() > settings.VIPANEL_PROBE_TIMEOUT + 1


def test_batches_hold_about_the_given_number_of_nodes():
    assert history.batches("abcde", [4, 4, 4, 60, 4], 8) == [["a", "b"], ["c"], ["d"], ["e"]]


# The pool


@pytest.mark.lab
@pytest.mark.django_db(transaction=True)
def test_warm_sweeps_reuse_connections_and_a_changed_target_reconnects(lab):
    cluster = make_lab_cluster(lab)
    remote.POOL.clear()
    start = remote.POOL.stats.handshakes
    probe_cluster(cluster)
    assert remote.POOL.stats.handshakes - start == len(lab)
    probe_cluster(cluster)
    probe_cluster(cluster)
    assert remote.POOL.stats.handshakes - start == len(lab)  # warm: no new handshake
    node = cluster.nodes.get(name=lab[0].name)
    node.host_key_fingerprint = "SHA256:" + "B" * 43
    node.save()
    status = probe_cluster(cluster)
    assert remote.POOL.stats.handshakes - start == len(lab) + 1
    assert "changed" in next(p for p in status.nodes if p.name == lab[0].name).error


@pytest.mark.lab
@pytest.mark.django_db(transaction=True)
def test_a_dropped_connection_costs_at_most_one_failed_probe(clean_lab):
    cluster = make_lab_cluster(clean_lab)
    remote.POOL.clear()
    assert all(p.reachable for p in probe_cluster(cluster).nodes)
    clean_lab[0].reset()  # kills sshd and every session: the kept transport is dead
    results = [
        next(p for p in probe_cluster(cluster).nodes if p.name == clean_lab[0].name).reachable
        for _ in range(2)
    ]
    assert results[-1] and results.count(False) <= 1


@pytest.mark.lab
@pytest.mark.django_db(transaction=True)
@override_settings(VIPANEL_PROBE_TIMEOUT=DEADLINE)
def test_a_batch_releases_each_cluster_when_recorded_not_when_its_slowest_ends(
    lab, hostile, private_redis, monkeypatch
):
    slow = make_lab_cluster(lab, name="slow", vrid=80)
    slow.nodes.all().delete()
    add_hostile_nodes(slow, lab, {"silent": hostile["silent"]})
    quick = make_lab_cluster(lab, name="quick", vrid=81, vips=[f"{lab.network[202]}/24"])
    _, batches = sweep.tick()
    assert len(batches) == 1
    released = {}
    real_release = sweep.release

    def release(cluster_id, token):
        released[cluster_id] = time.monotonic()
        return real_release(cluster_id, token)

    monkeypatch.setattr(sweep, "release", release)
    t0 = time.monotonic()
    assert sweep.probe_batch(batches[0]) == 2
    assert released[quick.pk] - t0 < DEADLINE - 0.5 < released[slow.pk] - t0
