"""The paper estimate's backing: 2,500 clusters of 4 nodes (10,000) swept by the real engine
(clusters.history.sweep_clusters in batches of VIPANEL_SWEEP_BATCH_NODES, the real recording
into the database), with a stand-in transport at clusters.remote.pooled whose one exec per
probe takes the latency measured on the lab. A fleet in service (each cluster's highest
priority holds its VIP), already swept once. Measures the worker side only: wall time and CPU
per batch, database queries and writes per node; the Redis operations per tick are counted
from the protocol of clusters.sweep (claim, renew, release per cluster; one message per batch).
"""

import argparse
import contextlib
import sys
import time

from bench import common


class StandIn:
    def __init__(self, latency, holds, config_sha=""):
        self.latency, self.holds, self.config_sha = latency, holds, config_sha
        self.fingerprint = "SHA256:" + "A" * 43

    def run_kept(self, command, timeout=None):  # the sweep's probe (ssh.Connection)
        return self.run(command, timeout)

    def run(self, command, timeout=None, stdin=None):
        from clusters import ssh

        time.sleep(self.latency)
        # The node runs what vipanel last pushed there (sha256sum's output format).
        config = f"config={self.config_sha}  -" if self.config_sha else "config="
        state = "MASTER" if self.holds else "BACKUP"
        lines = [
            "running=1",
            f"state={state}",
            config,
            "addresses:",
            "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever",
            *(f"2: eth0    inet {a} scope global secondary eth0\\" for a in self.holds),
        ]
        return ssh.Result(0, "\n".join(lines) + "\n", "")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clusters", type=int, default=2500)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--batches", type=int, default=20, help="batches to time (of all)")
    a = p.parse_args(argv)
    common.setup_django("sweep_sim")
    from django.conf import settings
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from clusters import history, remote
    from clusters.models import Cluster, Node, SSHCredential, VirtualIP
    from tests.conftest import make_private_key
    from tests.pushed import mark_pushed

    cred = SSHCredential.objects.create(name="sim", username="root", private_key=make_private_key())
    with transaction.atomic():
        for c in range(a.clusters):
            net = f"10.{c // 250}.{c % 250}.0/24"
            cluster = Cluster.objects.create(
                name=f"s{c}", network=net, virtual_router_id=51, interface="eth0", credential=cred
            )
            base = net.rsplit(".", 1)[0]
            Node.objects.bulk_create(
                [
                    Node(
                        cluster=cluster,
                        name=f"s{c}-{i}",
                        address=f"{base}.{10 + i}",
                        priority=100 + i,
                        host_key_fingerprint="SHA256:" + "A" * 43,
                    )
                    for i in range(4)
                ]
            )
            VirtualIP.objects.create(cluster=cluster, address=f"{base}.100/24")
            # As a push leaves it (what vipanel would send is what it sent), so the sweep does
            # the steady-state work of a fleet in service, not a first look.
            mark_pushed(cluster)
    pushed = dict(Node.objects.values_list("pk", "pushed_config_sha"))
    # A fleet in service: each cluster's highest priority holds its VIP.
    holders = {}
    for cluster in Cluster.objects.prefetch_related("nodes", "vips"):
        top = max(cluster.nodes.all(), key=lambda n: n.priority)
        holders[top.pk] = [v.address for v in cluster.vips.all()]

    @contextlib.contextmanager
    def pooled(node_target, deadline=None):
        node_id = node_target.node_id
        yield StandIn(a.latency_ms / 1000, holders.get(node_id, []), pushed.get(node_id, ""))

    remote.pooled = pooled
    clusters = list(Cluster.objects.order_by("pk"))
    parts = history.batches(clusters, [4] * len(clusters), settings.VIPANEL_SWEEP_BATCH_NODES)
    walls, cpus, queries = [], [], []
    # A fleet already watched: the first sweep of a cluster creates its state rows and records
    # its holders; the steady state, timed below, is every sweep after that.
    for batch in parts[: a.batches]:
        history.sweep_clusters(batch)
    for batch in parts[: a.batches]:
        w0, c0 = time.monotonic(), time.process_time()
        with CaptureQueriesContext(connection) as q:
            history.sweep_clusters(batch)
        walls.append(time.monotonic() - w0)
        cpus.append(time.process_time() - c0)
        queries.append(q.captured_queries)
    nodes_per_batch = settings.VIPANEL_SWEEP_BATCH_NODES
    writes = sum(
        1
        for qs in queries
        for x in qs
        if x["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")
    )
    total = sum(len(qs) for qs in queries)
    timed_nodes = nodes_per_batch * len(queries)
    wall = common.summary(walls)
    cpu = common.summary(cpus)
    n_nodes = 4 * a.clusters
    interval = 5
    cpu_per_sweep = cpu["median"] * len(parts)
    result = {
        "clusters": a.clusters,
        "nodes": n_nodes,
        "latency_ms": a.latency_ms,
        "batch_nodes": nodes_per_batch,
        "batches_per_sweep": len(parts),
        "batch_wall_s": wall,
        "batch_cpu_s": cpu,
        "queries_per_node": round(total / timed_nodes, 2),
        "writes_per_node": round(writes / timed_nodes, 2),
        "worker_cpu_s_per_sweep": round(cpu_per_sweep, 1),
        "worker_processes_for_5s_by_cpu": round(cpu_per_sweep / interval, 1),
        "worker_processes_for_5s_by_wall": round(wall["median"] * len(parts) / interval, 1),
        "db_writes_per_s_at_5s": round(writes / timed_nodes * n_nodes / interval),
        "db_queries_per_s_at_5s": round(total / timed_nodes * n_nodes / interval),
        # Per tick: claim (SET NX) per cluster; per batch: one message published and consumed
        # (about 3 Redis commands with kombu's ack), renew and release per cluster, countdown.
        "redis_ops_per_s_at_5s": round((3 * a.clusters + 4 * len(parts) + 4) / interval),
        "celery_messages_per_s_at_5s": round((len(parts) + 1) / interval, 1),
    }
    common.save("sweep_sim", result)
    print(result, flush=True)


if __name__ == "__main__":
    sys.exit(main())
