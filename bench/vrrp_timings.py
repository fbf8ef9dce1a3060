"""How fast keepalived moves a VIP, measured on the lab: the numbers clusters.impact uses.

    VIPANEL_LAB_PREFIX=vqc python -m tests.lab up --nodes 3 --prefix vqc
    python -m bench.vrrp_timings --prefix vqc [--runs 3] [CASE ...]

Three nodes with priorities 100/110/120 (advert_int 1) run hand-written files like vipanel's
(state BACKUP, the first VIP advertised, a second one excluded). A loop inside each node writes
every 10 ms whether the VIP is on its eth0, so the times come from the nodes' own clocks, not
from SSH round trips. Each case changes one thing and reports when the new holder had the VIP,
when the old one dropped it and the longest time no node had it. docs/impact.md has the results.
"""

import argparse
import time

from tests.lab import Lab, wait_until

PRIOS = (100, 110, 120)


def conf(node, prio, anchor, other, preempt=True, delay=0):
    lines = [
        f"global_defs {{\n    router_id {node.name}\n}}",
        "vrrp_instance VI_t {",
        "    state BACKUP",
        "    interface eth0",
        "    virtual_router_id 199",
        f"    priority {prio}",
        "    advert_int 1",
        *([] if preempt else ["    nopreempt"]),
        *([f"    preempt_delay {delay}"] if delay else []),
        "    virtual_ipaddress {",
        f"        {anchor} dev eth0",
        "    }",
        "    virtual_ipaddress_excluded {",
        f"        {other} dev eth0",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


class Bench:
    def __init__(self, lab):
        self.lab = lab
        net = lab.network
        self.vip = f"{net.network_address + 100}/{net.prefixlen}"
        self.other = f"{net.network_address + 101}/{net.prefixlen}"

    def write(self, node, prio, **kw):
        anchor, other = kw.pop("swap", False) and (self.other, self.vip) or (self.vip, self.other)
        (node.config_dir / "keepalived.conf").write_text(conf(node, prio, anchor, other, **kw))

    def start(self, prios, **kw):
        """Every node with its file, the highest started first (nopreempt keeps a first
        master), and the highest holding the VIP; then the watchers."""
        self.lab.reset()
        for node, prio in zip(self.lab, prios, strict=True):
            self.write(node, prio, **kw)
        order = sorted(range(len(prios)), key=lambda i: -prios[i])
        for i in order:
            self.lab[i].start_keepalived()
        top = self.lab[order[0]]
        wait_until(lambda: top.holds(self.vip), timeout=20, message="no election")
        time.sleep(2)
        ip = self.vip.split("/")[0]
        for node in self.lab:
            node.exec(
                "nohup sh -c 'while :; do if ip -o -4 addr show dev eth0 | grep -q \" "
                + ip
                + '/"; then v=1; else v=0; fi; echo "$(date +%s.%N) $v"; sleep 0.01; done\''
                " >/run/vrrp-watch.log 2>/dev/null &",
                check=False,
            )
        time.sleep(0.5)

    def now(self):
        return float(self.lab[0].exec("date +%s.%N").stdout)

    def timeline(self, node):
        out = node.exec("cat /run/vrrp-watch.log", check=False).stdout
        return [
            (float(t), v == "1") for t, v in (line.split() for line in out.splitlines() if line)
        ]

    def result(self, t0, case, new=None, old=None, wait=12):
        time.sleep(wait)
        lines = {n.name: self.timeline(n) for n in self.lab}

        def first(name, value):
            return next((t - t0 for t, v in lines[name] if t >= t0 and v == value), None)

        def held(at):
            return any(
                next((v for t, v in reversed(pts) if t <= at), False) for pts in lines.values()
            )

        stamps = sorted({t for pts in lines.values() for t, _ in pts if t >= t0})
        gap, since = 0.0, None
        for t in stamps[::3]:
            if not held(t):
                since = since or t
            elif since:
                gap, since = max(gap, t - since), None
        out = {"case": case, "gap": round(gap, 2)}
        if new:
            out["taken_after"] = first(new.name, True)
        if old:
            out["dropped_after"] = first(old.name, False)
        out["holders"] = [n.name for n in self.lab if n.holds(self.vip)]
        print({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}, flush=True)

    def stop(self):
        for node in self.lab:
            node.exec("pkill -f vrrp-watch", check=False)
        self.lab.reset()


def cases(bench):
    n1, n2, n3 = bench.lab[0], bench.lab[1], bench.lab[2]

    def sigterm():
        bench.start(PRIOS)
        t0 = bench.now()
        n3.exec("pkill -TERM -x keepalived")
        bench.result(t0, "holder stopped (SIGTERM)", new=n2, old=n3)

    def sigkill():
        bench.start(PRIOS)
        t0 = bench.now()
        n3.exec("pkill -KILL -x keepalived")
        bench.result(t0, "holder killed (SIGKILL)", new=n2)

    def maintenance():
        bench.start(PRIOS)
        bench.write(n3, 1)
        t0 = bench.now()
        n3.exec(n3.reload_command)
        bench.result(t0, "holder reloaded with priority 1", new=n2, old=n3)

    def nopreempt():
        bench.start(PRIOS, preempt=False)
        bench.write(n3, 1, preempt=False)
        t0 = bench.now()
        n3.exec(n3.reload_command)
        bench.result(t0, "the same with nopreempt", new=n2, old=n3)

    def back():
        bench.start((100, 110, 1))
        bench.write(n3, 120)
        t0 = bench.now()
        n3.exec(n3.reload_command)
        bench.result(t0, "priority 120 given back", new=n3, old=n2)

    def delay():
        bench.start((100, 110, 1), delay=5)
        bench.write(n3, 120, delay=5)
        t0 = bench.now()
        n3.exec(n3.reload_command)
        bench.result(t0, "the same with preempt_delay 5", new=n3, old=n2, wait=16)

    def anchor():
        bench.start(PRIOS)
        bench.write(n1, 100, swap=True)
        t0 = bench.now()
        n1.exec(n1.reload_command)
        bench.result(t0, "another advertised VIP on n1 only", new=n1, wait=10)

    return {f.__name__: f for f in (sigterm, sigkill, maintenance, nopreempt, back, delay, anchor)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.vrrp_timings", description=__doc__)
    parser.add_argument("--prefix", default="vpl")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("case", nargs="*")
    args = parser.parse_args(argv)
    bench = Bench(Lab.load(args.prefix))
    table = cases(bench)
    try:
        for name in args.case or list(table):
            for _ in range(args.runs):
                table[name]()
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
