"""Part 1: pushes of N nodes: vipanel vs the plain OpenSSH script vs Ansible serial 1.

Scenarios (issue 14), all on the same lab nodes in one run:
- changed: every node's file changes, no VIP moves (below); vipanel, plain, Ansible;
- unchanged: the same push again, nothing to do; vipanel vs the plain script re-doing it all;
- bare: the first push of a bare 4-node cluster (no keepalived anywhere); vipanel only.
The plain script is bench/openssh_push.sh with PLAIN=1: ControlMaster, copy, test, rename,
reload per node, no checks in between. Times are the push record's (created -> finished).

Every run starts from the same state, written from the host without SSH: each node has the
config vipanel renders for a cluster with one VIP, its iptables chain, keepalived running, and
the highest-priority node holding the VIP. The change is a second VIP: every node's file
changes (the VIP goes into virtual_ipaddress_excluded, so the adverts do not), and each method
puts the same rendered bytes on every node, one node at a time in vipanel's order (lowest
priority first, the holder last), waiting after each node for VRRP to settle by the same rule.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

from bench import common, labcluster
from bench.labcluster import make_cluster

VRID = 91
_dirty = set()


def lab_nodes_for(lab, n):
    return list(lab)[:n]


def reset(lab_nodes):
    for node in lab_nodes:
        node.reset()


def ssh_opts(work, lab_nodes, lab):
    known = work / "known_hosts"

    def public_key(n):
        kind, key = n.host_key.with_name(n.host_key.name + ".pub").read_text().split()[:2]
        return f"{kind} {key}"

    known.write_text("".join(f"{n.address} {public_key(n)}\n" for n in lab_nodes))
    return [
        "-i",
        str(lab.key_path),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={known}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "LogLevel=ERROR",
    ]


def write_workdir(work, cluster, lab_nodes, lab):
    """The rendered files and the node list the OpenSSH and Ansible runs read."""
    from clusters.render import render_iptables, render_keepalived

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    nodes = list(cluster.nodes.order_by("priority", "pk"))  # vipanel's order: holder last
    for node in nodes:
        (work / f"{node.name}.conf").write_text(render_keepalived(node))
        (work / f"{node.name}.rules").write_text(render_iptables(node))
    (work / "hosts").write_text("".join(f"{n.name} {n.address} {n.priority}\n" for n in nodes))
    vips = cluster.vips.order_by("pk")
    (work / "vips").write_text(",".join(v.address.split("/")[0] for v in vips))
    opts = ssh_opts(work, lab_nodes, lab)
    (work / "ssh_opts").write_text(" ".join(opts))
    inventory = ["[cluster]"] + [f"{n.name} ansible_host={n.address}" for n in nodes]
    inventory += [
        "",
        "[cluster:vars]",
        "ansible_user=root",
        f"ansible_ssh_private_key_file={lab.key_path}",
        "ansible_python_interpreter=/usr/bin/python3",
    ]
    (work / "inventory.ini").write_text("\n".join(inventory) + "\n")
    return opts


def settle_log(work):
    path = work / "settle.log"
    if not path.exists():
        return 0.0, []
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return sum(float(x[1]) for x in lines), lines


def check_result(cluster, lab_nodes):
    """Every node has the rendered file, and the top node holds every VIP: the work was done."""
    from clusters.render import render_keepalived

    by_name = {n.name: n for n in lab_nodes}
    for node in cluster.nodes.all():
        live = (by_name[node.name].config_dir / "keepalived.conf").read_text()
        if live != render_keepalived(node):
            return f"{node.name}: config differs from the rendered one"
    for v in cluster.vips.all():
        holders = [n.name for n in lab_nodes if n.holds(v.address)]
        if holders != [lab_nodes[-1].name]:
            return f"{v.address} on {holders}"
    return None


def run_vipanel(cluster, expect="applied"):
    from clusters import push as push_module
    from clusters import ssh as ssh_module
    from clusters.models import ConfigPush
    from clusters.push import run_push
    from clusters.services.pushes import start_push

    execs = {"n": 0}
    original_run = ssh_module.Connection.run

    def counted_run(self, *args, **kwargs):
        execs["n"] += 1
        return original_run(self, *args, **kwargs)

    ssh_module.Connection.run = counted_run

    settle = {"total": 0.0, "calls": 0, "probes": 0}
    original_wait, original_probe = push_module.wait_until_settled, push_module.Rollout.probe

    def timed_wait(*args, **kwargs):
        t0 = time.monotonic()
        try:
            return original_wait(*args, **kwargs)
        finally:
            settle["total"] += time.monotonic() - t0
            settle["calls"] += 1

    def counted_probe(self, node_ids=None, prefix=""):
        settle["probes"] += len(self.nodes) if node_ids is None else len(node_ids)
        return original_probe(self, node_ids, prefix)

    push_module.wait_until_settled = timed_wait
    push_module.Rollout.probe = counted_probe
    try:
        t0 = time.monotonic()
        push = start_push(None, cluster, queue=False)
        run_push(push.pk)
        wall = time.monotonic() - t0
    finally:
        push_module.wait_until_settled, push_module.Rollout.probe = original_wait, original_probe
        ssh_module.Connection.run = original_run
    push.refresh_from_db()
    ok = push.state == ConfigPush.State.SUCCEEDED
    states = sorted(set(push.steps.values_list("state", flat=True)))
    n = push.steps.count()
    return {
        # The push record's own time, from its creation to its end: no start-up counted.
        "wall_s": (push.finished - push.created).total_seconds(),
        "outer_wall_s": wall,
        "settle_s": settle["total"],
        "settle_calls": settle["calls"],
        "probes": settle["probes"],
        "ok": ok and states == [expect],
        "execs": execs["n"],
        "execs_per_node": round(execs["n"] / max(1, n), 2),
        "detail": "" if ok else f"{push.state}: {push.detail}",
        "steps": states,
    }


def open_masters(work, lab_nodes_or_hosts):
    """The operator's ControlMaster connections, opened before the clock starts (as they are
    in the operator's shell), then reused by every scp and ssh of the plain script."""
    opts = (work / "ssh_opts").read_text().split()
    control = [
        "-o",
        "ControlMaster=auto",
        "-o",
        f"ControlPath={work}/cm-%h",
        "-o",
        "ControlPersist=120",
    ]
    (work / "ssh_opts").write_text(" ".join(opts + control))
    hosts = [line.split()[1] for line in (work / "hosts").read_text().splitlines() if line.strip()]
    for address in hosts:
        subprocess.run(["ssh", *opts, *control, "-fN", f"root@{address}"], check=True)
    return hosts, opts + control


def close_masters(hosts, opts):
    for address in hosts:
        subprocess.run(
            ["ssh", *opts, "-O", "exit", f"root@{address}"], capture_output=True, check=False
        )


def run_openssh(work, plain=True):
    hosts, opts = open_masters(work, None)
    try:
        return _run_openssh(work, plain)
    finally:
        close_masters(hosts, opts)


def _run_openssh(work, plain=True):
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(common.ROOT / "bench" / "openssh_push.sh"), str(work)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PLAIN": "1" if plain else "0"},
    )
    wall = time.monotonic() - t0
    settle, lines = settle_log(work)
    return {
        "wall_s": wall,
        "settle_s": settle,
        "settle_calls": len(lines),
        "probes": sum(int(x[2]) for x in lines),
        "ok": proc.returncode == 0,
        "detail": proc.stderr[-2000:],
    }


def run_ansible(work, opts):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        # Ansible's own ControlPersist defaults, plus the lab's key and host keys pinned.
        "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=60s " + " ".join(opts[2:]),
        "ANSIBLE_CONTROL_PATH_DIR": str(work / "cp"),
        # Pipelining: fewer round trips per task, the fastest documented setting.
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_LOCAL_TEMP": str(work / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
    }
    cmd = [
        str(common.ANSIBLE_VENV / "bin" / "ansible-playbook"),
        "-i",
        str(work / "inventory.ini"),
        str(common.ROOT / "bench" / "push.yml"),
        "-e",
        f"work={work}",
        "-e",
        f"bench={common.ROOT / 'bench'}",
        "-e",
        f"vips={(work / 'vips').read_text()}",
        "-e",
        f"ssh_opts='{' '.join(opts)}'",
    ]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - t0
    subprocess.run(
        ["ssh", "-O", "exit", "-o", f"ControlPath={work / 'cp'}/x"],
        capture_output=True,
        check=False,
    )
    settle, lines = settle_log(work)
    return {
        "wall_s": wall,
        "settle_s": settle,
        "settle_calls": len(lines),
        "probes": sum(int(x[2]) for x in lines),
        "ok": proc.returncode == 0,
        "detail": proc.stdout[-3000:] if proc.returncode else "",
    }


def one_run(lab, n, method, rep, scenario="changed"):
    from clusters.models import Cluster

    lab_nodes = lab_nodes_for(lab, n)
    # Every node a run touched goes back to normal, so nothing of it is left for the next.
    reset([node for node in lab if node.name in _dirty])
    _dirty.update(node.name for node in lab_nodes)
    Cluster.objects.all().delete()
    cluster = make_cluster(lab, lab_nodes, f"b{n}", VRID, [labcluster.vip(lab, 200)])
    for node in cluster.nodes.all():
        # Pinned up front, as a person trusts them (nothing auto-pins any more).
        lab_node = next(x for x in lab_nodes if x.name == node.name)
        node.host_key_fingerprint = lab_node.fingerprint
        node.save(update_fields=["host_key_fingerprint"])
    start_s = 0.0
    if scenario != "bare":
        start_s = labcluster.install_directly(cluster, lab_nodes)
    if scenario == "changed":
        # The change: a second VIP, so every node's file differs from what it runs.
        cluster.vips.create(address=labcluster.vip(lab, 201))
    work = common.WORK / "push" / f"{method}-{scenario}-{n}"
    opts = write_workdir(work, cluster, lab_nodes, lab)
    if method == "vipanel":
        result = run_vipanel(cluster, expect="unchanged" if scenario == "unchanged" else "applied")
    elif method == "openssh":
        result = run_openssh(work)
    else:
        result = run_ansible(work, opts)
    problem = check_result(cluster, lab_nodes)
    if problem:
        result["ok"] = False
        result["detail"] = (result.get("detail", "") + f" | after: {problem}").strip()
    result.update(
        nodes=n, method=method, rep=rep, scenario=scenario, start_settle_s=round(start_s, 2)
    )
    result["rest_s"] = result["wall_s"] - result["settle_s"]
    for key in ("wall_s", "settle_s", "rest_s", "outer_wall_s"):
        if key in result:
            result[key] = round(result[key], 3)
    print(
        f"push {scenario:9} n={n} {method:8} rep={rep} wall={result['wall_s']:.2f}s "
        f"settle={result['settle_s']:.2f}s execs/node={result.get('execs_per_node', '-')} "
        f"ok={result['ok']} {result['detail'][:300]}",
        flush=True,
    )
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nodes", default="3,10,30")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--methods", default="vipanel,openssh,ansible")
    p.add_argument("--scenarios", default="changed,unchanged,bare")
    p.add_argument("--bare-nodes", type=int, default=4)
    a = p.parse_args(argv)
    scenarios = a.scenarios.split(",")
    common.setup_django("push")
    from tests.lab import Lab

    sizes = [int(x) for x in a.nodes.split(",")]
    methods = a.methods.split(",")
    lab = Lab.load(common.PREFIX)
    runs = []
    try:
        for n in sizes:
            for rep in range(1, a.reps + 1):
                # Methods interleaved, so a slow minute of the machine hits them alike.
                for scenario in [s for s in scenarios if s != "bare"]:
                    for method in methods:
                        if scenario == "unchanged" and method == "ansible":
                            continue
                        runs.append(one_run(lab, n, method, rep, scenario))
        if "bare" in scenarios:
            for rep in range(1, a.reps + 1):
                runs.append(one_run(lab, a.bare_nodes, "vipanel", rep, "bare"))
    finally:
        reset([node for node in lab if node.name in _dirty])
    common.save(
        "push",
        {
            "runs": runs,
            "sizes": sizes,
            "reps": a.reps,
            "methods": methods,
            "scenarios": scenarios,
            "command": "make bench BENCH_PARTS=push  (or: python -m bench push)",
        },
    )


if __name__ == "__main__":
    sys.exit(main())
