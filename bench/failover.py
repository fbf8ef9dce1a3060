"""Part 3: failover detection on a 3-node lab cluster.

The holder's keepalived is stopped (SIGTERM, as `systemctl stop` does) at t0. Measured:
(i)  keepalived's own takeover: when the VIP appears on the next node, polled from the host
     with `ip -o addr` inside that node every few milliseconds;
(ii) when vipanel has recorded the FailoverEvent (its row is visible in the database, polled
     every 10 ms), with notify reports (keepalived's notify script POSTs to a live server on
     the lab bridge) and without (only the periodic sweep, every VIPANEL_SWEEP_INTERVAL s, as
     beat schedules it; here a thread calls the same sweep function on that schedule).
The figure is (ii) - (i): how long after the VIP really moved the panel knows it.

With --extra-clusters N (default 49: 50 clusters in all, issue 13), N more clusters of 4 lab
nodes are present, and the sweep thread sweeps every cluster each time (clusters.history.
sweep_all: the batches the workers run, in one process), so the figure holds at that scale.
"""

import argparse
import random
import sys
import threading
import time

from bench import common

VRID = 93


def poll_vip(node, address, stop, found):
    """Record the first time.time() at which `address` is on `node` (nsenter per poll)."""
    while not stop.is_set():
        out = node.exec("ip -o -4 addr show dev eth0", check=False).stdout
        if f" {address}/" in out:
            found.append(time.time())
            return
        time.sleep(0.002)


def wait_event(cluster, after, timeout):
    from django.db import close_old_connections

    from clusters.models import FailoverEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        close_old_connections()
        event = FailoverEvent.objects.filter(cluster=cluster, kind="failover", pk__gt=after).first()
        if event:
            return time.time(), event
        time.sleep(0.01)
    return None, None


class Sweeper(threading.Thread):
    """beat's schedule in a thread: a sweep every `interval` seconds, at a fixed rate as beat
    sends them (a tick does not wait for the previous sweep's end; one still running when the
    next is due makes that tick start late, as a busy worker would)."""

    def __init__(self, cluster, interval, every_cluster=False):
        super().__init__(daemon=True)
        self.cluster, self.interval, self.every_cluster = cluster, interval, every_cluster
        self.stop = threading.Event()
        self.took = []

    def run(self):
        from django.db import connection

        from clusters.history import sweep_all, sweep_cluster

        try:
            due = time.monotonic() + self.interval
            while not self.stop.wait(max(0.0, due - time.monotonic())):
                due += self.interval
                t0 = time.monotonic()
                if self.every_cluster:
                    sweep_all()
                else:
                    sweep_cluster(self.cluster)
                self.took.append(time.monotonic() - t0)
        finally:
            connection.close()


def one(lab_nodes, cluster, with_notify, interval, every_cluster=False):
    from clusters.history import sweep_cluster
    from clusters.models import FailoverEvent

    holder, next_node = lab_nodes[-1], lab_nodes[-2]
    address = cluster.vips.get().address.split("/")[0]
    sweep_cluster(cluster)  # the baseline: the panel knows who holds the VIP
    last = FailoverEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    sweeper = None
    if not with_notify:
        sweeper = Sweeper(cluster, interval, every_cluster)
        sweeper.start()
        # A failover falls at any phase of the sweep schedule.
        time.sleep(interval * random.random())
    stop, found = threading.Event(), []
    poller = threading.Thread(target=poll_vip, args=(next_node, address, stop, found), daemon=True)
    poller.start()
    t0 = time.time()
    holder.exec("pkill -TERM -x keepalived", check=False)
    seen_at, event = wait_event(cluster, last, timeout=interval * 3 + 15)
    stop.set()
    poller.join(5)
    if sweeper:
        sweeper.stop.set()
        sweeper.join(interval + 10)
    takeover = found[0] - t0 if found else None
    recorded = seen_at - t0 if seen_at else None
    return {
        "notify": with_notify,
        "takeover_s": round(takeover, 3) if takeover is not None else None,
        "recorded_s": round(recorded, 3) if recorded is not None else None,
        "lag_s": round(recorded - takeover, 3) if None not in (takeover, recorded) else None,
        "detected_by": event.detected_by if event else "",
        "to_node": event.to_node if event else "",
        "sweep_s": [round(t, 2) for t in sweeper.took] if sweeper else [],
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--extra-clusters", type=int, default=49)
    a = p.parse_args(argv)
    common.setup_django("failover")
    from django.conf import settings
    from pytest_django.live_server_helper import LiveServer

    from bench import labcluster
    from clusters import history, notify
    from clusters.models import Cluster
    from tests.lab import Lab

    lab = Lab.load(common.PREFIX)
    lab_nodes = list(lab)[:3]
    extra = min(a.extra_clusters, (len(lab) - 3) // 4)
    # The other clusters of a fleet in service (pushed, keepalived running, VIPs held), swept
    # with the measured one every time; unicast, as in the sweep part (bench/sweep.py).
    offsets = labcluster.free_vip_offsets(lab, extra, exclude=(230,))
    fleet = []
    for c in range(extra):
        nodes = list(lab)[3 + 4 * c : 7 + 4 * c]
        vip = labcluster.vip(lab, offsets[c])
        fleet.append(
            (labcluster.make_cluster(lab, nodes, f"x{c:02d}", 1 + c, [vip], unicast=True), nodes)
        )
    labcluster.start_many(fleet, lab)
    interval = settings.VIPANEL_SWEEP_INTERVAL
    server = LiveServer(f"{lab.bridge_address}:0")
    runs = []
    try:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, lab.bridge_address]
        for with_notify in (True, False):
            settings.VIPANEL_NOTIFY_URL = server.url if with_notify else ""
            if extra and not with_notify:
                # A panel in service has swept its fleet before: its connections are warm. (The
                # first sweep after a restart pays a handshake per node: bench/sweep.py's cold.)
                history.sweep_all()
            for rep in range(1, a.reps + 1):
                for node in lab_nodes:
                    node.reset()
                Cluster.objects.filter(name="f").delete()
                cluster = labcluster.make_cluster(
                    lab, lab_nodes, "f", VRID, [labcluster.vip(lab, 230)]
                )
                if with_notify:
                    # A push installs the notify script and the node's signing key; here they
                    # are written from the host, like the config, before keepalived starts.
                    for node in cluster.nodes.all():
                        config_dir = next(n for n in lab_nodes if n.name == node.name).config_dir
                        for path, content, mode in notify.files_for(node):
                            target = config_dir / path.rsplit("/", 1)[1]
                            target.write_bytes(content)
                            target.chmod(mode)
                labcluster.install_directly(
                    cluster, lab_nodes, notify_script=notify.script_path_for(None)
                )
                row = one(lab_nodes, cluster, with_notify, interval, every_cluster=extra > 0)
                row["rep"] = rep
                runs.append(row)
                print(
                    f"failover notify={with_notify} rep={rep}: takeover {row['takeover_s']}s, "
                    f"recorded {row['recorded_s']}s, lag {row['lag_s']}s by {row['detected_by']}",
                    flush=True,
                )
    finally:
        server.stop()
        for node in lab_nodes:
            node.reset()
    result = {
        "runs": runs,
        "sweep_interval_s": interval,
        "clusters": extra + 1,
        "nodes": 3 + 4 * extra,
        "command": "make bench BENCH_PARTS=failover  (or: python -m bench failover)",
    }
    for with_notify in (True, False):
        subset = [r for r in runs if r["notify"] == with_notify and r["lag_s"] is not None]
        key = "notify" if with_notify else "sweep_only"
        result[key] = {
            "takeover": common.summary([r["takeover_s"] for r in subset]),
            "recorded": common.summary([r["recorded_s"] for r in subset]),
            "lag": common.summary([r["lag_s"] for r in subset]),
            "missed": sum(1 for r in runs if r["notify"] == with_notify and r["lag_s"] is None),
        }
    common.save("failover", result)


if __name__ == "__main__":
    sys.exit(main())
