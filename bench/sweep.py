"""Part 2: one status sweep of a cluster of N lab nodes (10, 30, 100), as beat's sweep task runs
it (clusters.history.sweep_cluster: probe every node over SSH, record what it saw).

Every node runs keepalived with the config vipanel renders, the top node holding the VIP. Then:
sweeps of the healthy cluster (time per sweep and per node, the process's RSS), then the same
with one node whose SSH traffic is dropped (iptables DROP on port 22 inside it: the connect
times out, the worst kind of dead node), which should cost no more than the probe deadline.
"""

import argparse
import sys
import time

from bench import common

VRID = 92


def sweeps(cluster, count):
    from clusters.history import sweep_cluster

    took = []
    for _ in range(count):
        t0 = time.monotonic()
        status = sweep_cluster(cluster)
        took.append(time.monotonic() - t0)
    return took, status


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nodes", default="10,30,100")
    p.add_argument("--sweeps", type=int, default=10)
    a = p.parse_args(argv)
    common.setup_django("sweep")
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench import labcluster
    from clusters.models import Cluster
    from tests.lab import Lab

    lab = Lab.load(common.PREFIX)
    sizes = [int(x) for x in a.nodes.split(",")]
    rows = []
    rss_start = common.rss_kib()
    try:
        for n in sizes:
            nodes = list(lab)[:n]
            for node in nodes:
                node.reset()
            Cluster.objects.all().delete()
            cluster = labcluster.make_cluster(lab, nodes, f"s{n}", VRID, [labcluster.vip(lab, 200)])
            labcluster.install_directly(cluster, nodes)
            sweeps(cluster, 1)  # warm up: imports, first queries
            took, status = sweeps(cluster, a.sweeps)
            with CaptureQueriesContext(connection) as queries:
                sweeps(cluster, 1)
            reachable = sum(p.reachable for p in status.nodes)
            holders = status.holders
            # One dead node: its SSH packets dropped, so the TCP connect hangs until the deadline.
            dead = nodes[0]
            dead.exec("iptables -I INPUT 1 -p tcp --dport 22 -j DROP")
            try:
                dead_took, dead_status = sweeps(cluster, 3)
            finally:
                dead.exec("iptables -D INPUT -p tcp --dport 22 -j DROP", check=False)
            row = {
                "nodes": n,
                "sweep": common.summary(took),
                "per_node_ms": round(1000 * sorted(took)[len(took) // 2] / n, 1),
                "queries_per_sweep": len(queries.captured_queries),
                "reachable": reachable,
                "holders": holders,
                "dead_node_sweep": common.summary(dead_took),
                "dead_node_error": next((p.error for p in dead_status.nodes if not p.reachable), ""),
                "probe_timeout_s": settings.VIPANEL_PROBE_TIMEOUT,
                "probe_concurrency": settings.VIPANEL_PROBE_CONCURRENCY,
                "rss_kib": common.rss_kib(),
            }
            rows.append(row)
            print(f"sweep n={n}: median {row['sweep']['median']:.2f}s ({row['per_node_ms']} ms/node), "
                  f"max {row['sweep']['max']:.2f}s, {row['queries_per_sweep']} queries, "
                  f"reachable {reachable}/{n}; one dead node: median "
                  f"{row['dead_node_sweep']['median']:.2f}s; RSS {row['rss_kib']}", flush=True)
    finally:
        for node in list(lab)[: max(sizes)]:
            node.reset()
    common.save("sweep", {"rows": rows, "rss_before_kib": rss_start,
                          "command": "make bench BENCH_PARTS=sweep  (or: python -m bench sweep)"})


if __name__ == "__main__":
    sys.exit(main())
