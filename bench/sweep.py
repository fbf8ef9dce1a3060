"""Part 2: the fanned-out status sweep at the shape operators run: many small clusters.

50 clusters of 4 lab nodes (200 nodes). Real Celery workers serve the "sweeps" queue (one
worker process, then two); the bench sends beat's task (clusters.tasks.sweep_task) and times
the sweep from that moment to the last NodeState written. Cold (first, with SSH handshakes)
and warm (connections kept by each worker process's pool) sweeps; SSH handshakes per warm
sweep counted in the nodes' sshd logs ("Accepted publickey"); the workers' RSS and CPU, and the
rest of the machine's CPU (the nodes' sshd and shells, and whatever else runs here) apart.
Then one dead node (SSH packets dropped) in every tenth cluster. Then beat itself, at its
interval, with the dead nodes: every tick that found a cluster still being probed skipped it.

Keepalived does not run on these nodes: a probe's cost (one exec of pidof, cat, sha256sum,
ip) does not depend on it, and 50 elections would take minutes of the bench's time.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import common

CLUSTERS, PER_CLUSTER = 50, 4
REDIS_URL = os.environ.get("VIPANEL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")


def cpu_ticks(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


def tree(pid):
    out = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    for kid in kids:
        out += tree(int(kid))
    return out


def machine_busy():
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # minus idle and iowait


def accepted(lab):
    total = 0
    for node in lab:
        log = node.dir / "sshd.log"
        if log.exists():
            total += log.read_text(errors="replace").count("Accepted publickey")
    return total


def start_workers(concurrency, env, log):
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "vipanel",
        "worker",
        "--loglevel=WARNING",
        f"--concurrency={concurrency}",
        "--queues=sweeps",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"bench{concurrency}@%h",
    ]
    out = open(log, "ab")
    proc = subprocess.Popen(
        argv, cwd=common.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    # Ready when its pool processes exist and it consumes: a ping through the broker.
    from vipanel.celery import app

    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5, destination=[f"bench{concurrency}@{os.uname()[1]}"])
        if replies:
            break
    r.close()
    return proc


def stop(proc):
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


HEALTHY = {}  # the bench's note of when the clusters without a dead node were all recorded


def one_sweep(expected, timeout=60, healthy_ids=None):
    """Send beat's task; seconds until every node's NodeState is newer than the send (and, with
    healthy_ids, when those nodes' were, into HEALTHY["last"])."""
    from django.utils import timezone

    from clusters.models import NodeState
    from clusters.tasks import sweep_task

    sent = timezone.now()
    t0 = time.monotonic()
    sweep_task.delay()
    HEALTHY.pop("last", None)
    while time.monotonic() - t0 < timeout:
        fresh = NodeState.objects.filter(checked_at__gte=sent)
        if healthy_ids and "last" not in HEALTHY:
            if fresh.filter(node_id__in=healthy_ids).count() >= len(healthy_ids):
                HEALTHY["last"] = time.monotonic() - t0
        if fresh.count() >= expected:
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


def measure(
    lab, concurrency, env, sweeps, expected, label, warmups=4, healthy_ids=None, unreachable=0
):
    proc = start_workers(concurrency, env, common.WORK / f"worker-{label}.log")
    try:
        pids = tree(proc.pid)
        acc_cold = accepted(lab)
        cold = one_sweep(expected)
        time.sleep(0.3)  # the last batch releases its locks and counts down after its writes
        # Each worker process keeps its own pool, and a batch goes to whichever process is free:
        # until every process has met every node, warm sweeps still shake hands (a whole
        # batch's worth at once when Celery first hands a batch to the other process). Warm up
        # until they have, within a limit, and count what is left in the measured sweeps.
        warmup = []
        met_all = concurrency * (expected - unreachable)
        while len(warmup) < warmups or (
            accepted(lab) - acc_cold < met_all and len(warmup) < 5 * warmups
        ):
            warmup.append(one_sweep(expected))
            time.sleep(0.3)
        acc_warmup = accepted(lab)
        acc0, cpu0, busy0 = accepted(lab), sum(cpu_ticks(p) for p in pids), machine_busy()
        warm, healthy = [], []
        for _ in range(sweeps):
            warm.append(one_sweep(expected, healthy_ids=healthy_ids))
            if "last" in HEALTHY:
                healthy.append(HEALTHY["last"])
            time.sleep(0.3)
        acc1 = accepted(lab)
        pids = tree(proc.pid)
        cpu1, busy1 = sum(cpu_ticks(p) for p in pids), machine_busy()
        hz = os.sysconf("SC_CLK_TCK")
        rss = {p: common.rss_kib(p).get("VmRSS") for p in pids}
        ok = [w for w in warm if w is not None]
        return {
            "workers": concurrency,
            "cold_s": round(cold, 3) if cold else None,
            "warmup_sweeps_s": [round(w, 3) if w else None for w in warmup],
            "handshakes_cold_and_warmup": acc_warmup - acc_cold,
            "warm": common.summary(ok),
            "warm_missed": len(warm) - len(ok),
            "healthy_clusters_recorded": common.summary(healthy),
            "per_node_ms": round(1000 * common.summary(ok)["median"] / expected, 2) if ok else None,
            "handshakes_per_warm_sweep": round((acc1 - acc0) / max(1, len(warm)), 2),
            "worker_cpu_s_per_sweep": round((cpu1 - cpu0) / hz / max(1, len(warm)), 3),
            "rest_cpu_s_per_sweep": round(
                ((busy1 - busy0) - (cpu1 - cpu0)) / hz / max(1, len(warm)), 3
            ),
            "worker_rss_kib": rss,
        }
    finally:
        stop(proc)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sweeps", type=int, default=8)
    p.add_argument("--beat-seconds", type=int, default=30)
    a = p.parse_args(argv)
    os.environ["REDIS_URL"] = REDIS_URL
    db = common.setup_django("sweep")
    from django.conf import settings

    from bench import labcluster
    from clusters import sweep
    from clusters.models import NodeState
    from tests.lab import Lab

    lab = Lab.load(common.PREFIX)
    assert len(lab) >= CLUSTERS * PER_CLUSTER, f"need {CLUSTERS * PER_CLUSTER} lab nodes"
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    # A fleet in service: each cluster pushed, its keepalived running, its VIP held. Unicast:
    # each cluster's adverts reach its own nodes, as on separate segments. (With multicast on
    # the lab's one bridge, every node's keepalived would read all 50 masters' adverts, 10,000
    # packets a second on our 2 cores: the lab's cost, not what a sweep costs.)
    offsets = labcluster.free_vip_offsets(lab, CLUSTERS)
    fleet = []
    for c in range(CLUSTERS):
        nodes = list(lab)[c * PER_CLUSTER : (c + 1) * PER_CLUSTER]
        vip = labcluster.vip(lab, offsets[c])
        fleet.append(
            (labcluster.make_cluster(lab, nodes, f"c{c:02d}", 1 + c, [vip], unicast=True), nodes)
        )
    labcluster.start_many(fleet, lab)
    expected = CLUSTERS * PER_CLUSTER
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vipanel.settings",
        "VIPANEL_SQLITE_PATH": str(db),
        "DATABASE_URL": "",
        "REDIS_URL": REDIS_URL,
    }
    rows = []
    for concurrency in (1, 2):
        row = measure(lab, concurrency, env, a.sweeps, expected, f"{concurrency}")
        rows.append(row)
        print(
            f"sweep {expected} nodes, {concurrency} worker(s): cold {row['cold_s']}s, warm "
            f"{row['warm']}, {row['handshakes_per_warm_sweep']} handshakes/warm sweep, worker "
            f"CPU {row['worker_cpu_s_per_sweep']}s, rest {row['rest_cpu_s_per_sweep']}s",
            flush=True,
        )
    dead = [list(lab)[c * PER_CLUSTER] for c in range(0, CLUSTERS, 10)]
    for node in dead:
        node.exec("iptables -I INPUT 1 -p tcp --dport 22 -j DROP")
    try:
        from clusters.models import Node

        dead_clusters = [c for c in range(0, CLUSTERS, 10)]
        healthy_ids = list(
            Node.objects.exclude(
                cluster__name__in=[f"c{c:02d}" for c in dead_clusters]
            ).values_list("pk", flat=True)
        )
        dead_row = measure(
            lab, 2, env, 3, expected, "dead", healthy_ids=healthy_ids, unreachable=len(dead)
        )
        print(
            f"with {len(dead)} dead nodes, 2 workers: {dead_row['warm']}; the clusters "
            f"without one: {dead_row['healthy_clusters_recorded']}",
            flush=True,
        )
        # beat at its interval, with the dead nodes: ticks that find a cluster still probed skip.
        proc = start_workers(2, env, common.WORK / "worker-beat.log")
        beat = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "vipanel",
                "beat",
                "--loglevel=WARNING",
                "-s",
                str(common.WORK / "beat.schedule"),
            ],
            cwd=common.ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        skips0 = sweep.skipped_total()
        time.sleep(a.beat_seconds)
        stop(beat)
        stop(proc)
        skips = sweep.skipped_total() - skips0
    finally:
        for node in dead:
            node.exec("iptables -D INPUT -p tcp --dport 22 -j DROP", check=False)
    states = NodeState.objects.count()
    common.save(
        "sweep",
        {
            "shape": f"{CLUSTERS} clusters x {PER_CLUSTER} nodes",
            "rows": rows,
            "dead_nodes": len(dead),
            "dead": dead_row,
            "beat": {
                "seconds": a.beat_seconds,
                "interval_s": settings.VIPANEL_SWEEP_INTERVAL,
                "skipped_clusters": skips,
            },
            "node_states": states,
            "probe_timeout_s": settings.VIPANEL_PROBE_TIMEOUT,
            "batch_nodes": settings.VIPANEL_SWEEP_BATCH_NODES,
            "probe_concurrency": settings.VIPANEL_PROBE_CONCURRENCY,
            "command": "flock /work/coord/bench.lock python -m bench sweep",
        },
    )
    print(f"beat {a.beat_seconds}s with dead nodes: {skips} cluster probes skipped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
