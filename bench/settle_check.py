#!/usr/bin/env python3
"""Wait until VRRP has settled, asking every node over plain OpenSSH (the `ssh` binary).

The OpenSSH and Ansible runs of the push bench both call this after each node's reload, so the
two do the same settle work, and it applies vipanel's criterion
(clusters.convergence.settle_problem):

- after node X was reloaded (--node X): X answers, keepalived runs on X and is not in FAULT;
  no VIP is held by two nodes; the anchor VIP (the first, the only one in the adverts) is held
  by exactly one node, the highest-priority node running keepalived;
- at the end (--final): every VIP is held by exactly one node, that same node.

It polls every 0.25 s (like vipanel) until that holds or the deadline passes (vipanel's:
4 x advert_int + 3 s), asking all nodes at once, and appends the time it took to --log.
Standard library only: Ansible runs it on the controller with its own Python.
"""

import argparse
import ipaddress
import subprocess
import sys
import time


def ask(node, ssh_opts):
    cmd = [
        "ssh",
        *ssh_opts,
        f"root@{node['address']}",
        (
            "if pidof keepalived >/dev/null 2>&1; then echo running=1; else echo running=0; fi; "
            "echo state=$(cat /run/vipanel-vrrp.state 2>/dev/null); ip -o addr show"
        ),
    ]
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


def probe(nodes, ssh_opts):
    procs = [(n, ask(n, ssh_opts)) for n in nodes]
    seen = {}
    for node, proc in procs:
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out = None
        if proc.returncode != 0 or out is None:
            seen[node["name"]] = None
            continue
        running = "running=1" in out
        state = ""
        addresses = set()
        for line in out.splitlines():
            if line.startswith("state="):
                state = line[6:].strip().upper()
            words = line.split()
            if "inet" in words:
                addresses.add(str(ipaddress.ip_interface(words[words.index("inet") + 1]).ip))
        seen[node["name"]] = (running, state, addresses)
    return seen


def problem(nodes, vips, seen, node_name, final):
    if node_name:
        me = seen.get(node_name)
        if me is None:
            return "the node did not answer"
        if not me[0]:
            return "keepalived is not running"
        if me[1] == "FAULT":
            return "FAULT"
    holders = {
        v: [n["name"] for n in nodes if seen.get(n["name"]) and v in seen[n["name"]][2]]
        for v in vips
    }
    anchor = vips[0]
    for vip, names in holders.items():
        if len(names) > 1:
            return f"{vip} held by {names}"
        if not names and (final or vip == anchor):
            return f"{vip} held by nobody"
    running = [n for n in nodes if seen.get(n["name"]) and seen[n["name"]][0]]
    if running:
        expected = max(running, key=lambda n: n["priority"])["name"]
        for vip in vips if final else [anchor]:
            if holders[vip] != [expected]:
                return f"{vip} on {holders[vip]}, expected on {expected}"
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hosts", required=True, help="file: name address priority, one per line")
    p.add_argument("--vips", required=True, help="comma-separated VIP addresses, anchor first")
    p.add_argument("--node", default="")
    p.add_argument("--final", action="store_true")
    p.add_argument("--deadline", type=float, default=7.0)
    p.add_argument("--log", default="")
    p.add_argument("--ssh-opts", default="", help="extra ssh options, space separated")
    a = p.parse_args()
    nodes = []
    with open(a.hosts) as hosts:
        lines = hosts.read().splitlines()
    for line in lines:
        if line.strip():
            name, address, priority = line.split()
            nodes.append({"name": name, "address": address, "priority": int(priority)})
    vips = [v.split("/")[0] for v in a.vips.split(",")]
    ssh_opts = a.ssh_opts.split()
    t0 = time.monotonic()
    deadline = t0 + a.deadline
    polls = 0
    while True:
        polls += 1
        why = problem(nodes, vips, probe(nodes, ssh_opts), a.node, a.final)
        if why is None or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    took = time.monotonic() - t0
    if a.log:
        with open(a.log, "a") as f:
            f.write(f"{a.node or 'final'} {took:.3f} {polls} {why or 'ok'}\n")
    if why:
        print(f"not settled after {took:.1f}s: {why}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
