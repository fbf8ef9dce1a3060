"""Part 4: the dashboard (clusters:dashboard) over 500 clusters x 4 nodes and 10,000 failover
events, synthetic rows in a throwaway SQLite file. No lab.

For each size: queries per request (it should not grow with the number of clusters) and the
server time of a full-page GET through Django's test Client (middleware, view, template), p50
and p95 over --requests requests after one warm-up request, as a logged-in viewer. The page is
the one a user lands on, `/`: the first page of clusters (problems first, DASHBOARD_PAGE_SIZE
of them), under a header that counts every cluster. The view's code is whatever the working
tree holds; its commit is recorded.
"""

import argparse
import cProfile
import io
import ipaddress
import pstats
import subprocess
import sys
import time

from bench import common

NODES_PER_CLUSTER = 4
EVENTS = 10_000


def populate(count, events):
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from clusters.models import (
        Cluster,
        ConfigPush,
        FailoverEvent,
        Node,
        NodeState,
        VipState,
        VirtualIP,
    )

    now = timezone.now()
    nets = list(ipaddress.ip_network("198.18.0.0/15").subnets(new_prefix=24))
    clusters = Cluster.objects.bulk_create(
        Cluster(name=f"c{i:03d}", network=str(nets[i]), virtual_router_id=1 + i % 255)
        for i in range(count)
    )
    nodes = Node.objects.bulk_create(
        Node(
            cluster=c,
            name=f"c{i:03d}-n{j}",
            address=str(nets[i].network_address + 11 + j),
            priority=100 + 10 * j,
            host_key_fingerprint="SHA256:x",
        )
        for i, c in enumerate(clusters)
        for j in range(NODES_PER_CLUSTER)
    )
    vips = VirtualIP.objects.bulk_create(
        VirtualIP(cluster=c, address=f"{nets[i].network_address + 200}/24")
        for i, c in enumerate(clusters)
    )
    by_cluster = {}
    for n in nodes:
        by_cluster.setdefault(n.cluster_id, []).append(n)
    NodeState.objects.bulk_create(
        NodeState(
            node=n,
            checked_at=now,
            reachable=True,
            keepalived_running=True,
            vrrp_state="MASTER" if j == NODES_PER_CLUSTER - 1 else "BACKUP",
            holds=[vips[i].address] if j == NODES_PER_CLUSTER - 1 else [],
            drift=False,
        )
        for i, c in enumerate(clusters)
        for j, n in enumerate(by_cluster[c.pk])
    )
    VipState.objects.bulk_create(
        VipState(vip=v, holder=by_cluster[v.cluster_id][-1], since=now, checked_at=now)
        for v in vips
    )
    ConfigPush.objects.bulk_create(
        ConfigPush(cluster=c, state="succeeded", started=now, finished=now) for c in clusters
    )
    FailoverEvent.objects.bulk_create(
        FailoverEvent(
            cluster=clusters[k % count],
            vip=vips[k % count],
            vip_address=vips[k % count].address,
            from_node="a",
            to_node="b",
            at=now - timezone.timedelta(minutes=k),
            kind="failover",
            detected_by="sweep",
        )
        for k in range(events)
    )
    user = User.objects.create_user("bench-viewer", password="x")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    return user


def measure(user, requests, profile=False):
    from django.db import connection, reset_queries
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(user)
    url = reverse("clusters:dashboard")
    first = client.get(url)
    assert first.status_code == 200, first.status_code
    # Django resets connection.queries_log when a request starts, which defeats
    # CaptureQueriesContext around a test-client request: read the log the request leaves.
    connection.force_debug_cursor = True
    reset_queries()
    response = client.get(url)
    queries = list(connection.queries_log)
    connection.force_debug_cursor = False
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - t0)
    top = ""
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        client.get(url)
        prof.disable()
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("cumulative").print_stats(
            r"clusters|template/(loader_tags|defaulttags)", 25
        )
        stats.sort_stats("tottime").print_stats(15)
        top = out.getvalue()
    return {
        "queries": len(queries),
        "bytes": len(response.content),
        "ms": {k: round(v * 1000, 1) if k != "n" else v for k, v in common.summary(times).items()},
        "profile_top": top,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", default="50,500")
    p.add_argument("--requests", type=int, default=50)
    a = p.parse_args(argv)
    rows = []
    sizes = [int(x) for x in a.sizes.split(",")]
    common.setup_django("dashboard")
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    for count in sizes:
        call_command("flush", interactive=False, verbosity=0)
        events = EVENTS if count == max(sizes) else EVENTS * count // max(sizes)
        t0 = time.monotonic()
        user = populate(count, events)
        took = time.monotonic() - t0
        row = {
            "clusters": count,
            "nodes": count * NODES_PER_CLUSTER,
            "events": events,
            "populate_s": round(took, 1),
            **measure(user, a.requests, profile=count == max(sizes)),
        }
        rows.append(row)
        print(
            f"dashboard {count} clusters / {events} events: {row['queries']} queries, "
            f"p50 {row['ms']['median']} ms, p95 {row['ms']['p95']} ms, {row['bytes']} bytes",
            flush=True,
        )

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(common.ROOT), *args], capture_output=True, text=True
        ).stdout.strip()

    from clusters.web.dashboard import DASHBOARD_PAGE_SIZE

    watched = [
        "clusters/web/dashboard.py",
        "templates/clusters/dashboard.html",
        "templates/clusters/_dashboard.html",
    ]
    common.save(
        "dashboard",
        {
            "rows": rows,
            "requests": a.requests,
            "page_size": DASHBOARD_PAGE_SIZE,
            "view_commit": git("log", "-1", "--format=%h %s", "--", *watched),
            "view_uncommitted_changes": bool(git("status", "--porcelain", "--", *watched)),
            "command": "make bench BENCH_PARTS=dashboard  (or: python -m bench dashboard)",
        },
    )


if __name__ == "__main__":
    sys.exit(main())
