"""Write docs/BENCHMARKS.md from bench/results/*.json (python -m bench --report-only)."""

import json
import statistics

from bench import common

DOC = common.ROOT / "docs" / "BENCHMARKS.md"


def load(name):
    path = common.RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def f(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def verdict(ok):
    return "met" if ok else "**missed**"


def machine_table(results):
    m = next((r["machine"] for r in results if r), None)
    if not m:
        return ""
    rows = [
        ("CPU", m["cpu"]), ("nproc", m["nproc"]), ("memory", f"{m['memory_gib']} GiB"),
        ("kernel", m["kernel"]), ("OS", m["os"]), ("Python", m["python"]),
        ("Django", m["django"]), ("paramiko", m["paramiko"]), ("keepalived", m["keepalived"]),
        ("OpenSSH", m["openssh"]), ("ansible-core", m["ansible_core"] or "not installed"),
        ("SQLite", m["sqlite"]),
        ("vipanel commit of each part", ", ".join(
            f"{r['name']} {r['machine']['commit']}" for r in results if r)),
    ]
    lines = ["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
    loads = ", ".join(f"{r['name']} {'/'.join(r['machine'].get('loadavg', []))}" for r in results
                      if r and r["machine"].get("loadavg"))
    if loads:
        lines.append(f"| load average when each part finished (1/5/15 min) | {loads} |")
    return "\n".join(lines)


def push_section(data):
    if not data:
        return "Not run yet.\n"
    runs = data["runs"]
    for r in runs:
        r.setdefault("scenario", "changed")
    out = [
        "| scenario | nodes | method | wall s (median) | min–max | VRRP wait / verify s | "
        "the rest s | execs per node | vipanel ÷ method | runs ok |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    verdicts = []
    targets = {("changed", "openssh"): 3.0, ("changed", "ansible"): 0.15,
               ("unchanged", "openssh"): 1.3}
    for scenario in data.get("scenarios", ["changed"]):
        sizes = sorted({r["nodes"] for r in runs if r["scenario"] == scenario})
        for n in sizes:
            here = [r for r in runs if r["nodes"] == n and r["scenario"] == scenario]
            ours = med([r["wall_s"] for r in here if r["method"] == "vipanel"])
            for method in data["methods"]:
                rs = [r for r in here if r["method"] == method]
                if not rs:
                    continue
                wall = med([r["wall_s"] for r in rs])
                ratio = ours / wall if ours and wall else None
                out.append(
                    f"| {scenario} | {n} | {method} | {f(wall)} | "
                    f"{f(min(r['wall_s'] for r in rs))}–{f(max(r['wall_s'] for r in rs))} | "
                    f"{f(med([r['settle_s'] for r in rs]))} | "
                    f"{f(med([r['rest_s'] for r in rs]))} | "
                    f"{f(med([r.get('execs_per_node') for r in rs]), 1)} | "
                    f"{'1' if method == 'vipanel' else f(ratio)} | "
                    f"{sum(r['ok'] for r in rs)}/{len(rs)} |"
                )
                target = targets.get((scenario, method))
                if target and ratio:
                    verdicts.append(f"{scenario}, N={n}: vipanel {f(ratio)} x {method} "
                                    f"(target ≤ {target}): {verdict(ratio <= target)}")
            if scenario == "bare" and ours is not None:
                verdicts.append(f"bare cluster, N={n}: first push {f(ours)} s (target ≤ 6 s): "
                                f"{verdict(ours <= 6)}")
    failed = [r for r in runs if not r["ok"]]
    text = "\n".join(out) + "\n\n" + "".join(f"- {v}\n" for v in verdicts)
    if failed:
        text += "\nRuns that did not end in the expected state (shown as not ok above):\n\n"
        text += "".join(f"- {r['scenario']} N={r['nodes']} {r['method']} rep {r['rep']}: "
                        f"{r['detail'][:300]!r}\n" for r in failed)
    return text + (f"\n{data['reps']} runs per method, scenario and size, methods interleaved; "
                   f"{data['when']}.\n")


def sweep_section(data):
    if not data:
        return "Not run yet.\n"
    out = [
        "| nodes | sweep s median | p95 | max | ms per node | DB queries per sweep | "
        "one dead node: sweep s median / max | RSS after (MiB) | peak RSS (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    verdicts = []
    for r in data["rows"]:
        out.append(
            f"| {r['nodes']} | {f(r['sweep']['median'])} | {f(r['sweep']['p95'])} | "
            f"{f(r['sweep']['max'])} | {r['per_node_ms']} | {r['queries_per_sweep']} | "
            f"{f(r['dead_node_sweep']['median'])} / {f(r['dead_node_sweep']['max'])} | "
            f"{r['rss_kib']['VmRSS'] / 1024:.0f} | {r['rss_kib']['VmHWM'] / 1024:.0f} |"
        )
        deadline = r["probe_timeout_s"]
        extra = r["dead_node_sweep"]["max"] - deadline
        verdicts.append(
            f"N={r['nodes']}: one dead node makes the sweep {f(r['dead_node_sweep']['max'])} s at "
            f"worst against a {deadline} s deadline ({f(extra)} s over it)"
        )
        if r["nodes"] == 100:
            verdicts.insert(0, f"100 nodes: {f(r['sweep']['median'])} s median, "
                               f"{f(r['sweep']['max'])} s worst (target ≤ 2 s): "
                               f"{verdict(r['sweep']['max'] <= 2)}")
    before = data.get("rss_before_kib", {})
    return ("\n".join(out) + "\n\n" + "".join(f"- {v}\n" for v in verdicts)
            + f"\nRSS is the sweeping process's (Django loaded, same as a worker's), "
              f"{before.get('VmRSS', 0) / 1024:.0f} MiB before the first sweep. "
              f"Probe deadline {data['rows'][0]['probe_timeout_s']} s, "
              f"{data['rows'][0]['probe_concurrency']} probes at once; {data['when']}.\n")


def failover_section(data):
    if not data:
        return "Not run yet.\n"
    out = [
        "| detection | runs | (i) keepalived takeover s: median / max | (ii) event recorded s: "
        "median / max | (ii) − (i) s: median / max | target | |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, label, target in (("notify", "notify reports", 0.5),
                               ("sweep_only", "sweep only", data["sweep_interval_s"])):
        s = data.get(key)
        if not s or not s["lag"]:
            out.append(f"| {label} | 0 | | | | ≤ {target} s | not measured |")
            continue
        out.append(
            f"| {label} | {s['lag']['n']} (+{s['missed']} missed) | {f(s['takeover']['median'])} / "
            f"{f(s['takeover']['max'])} | {f(s['recorded']['median'])} / {f(s['recorded']['max'])} "
            f"| {f(s['lag']['median'])} / {f(s['lag']['max'])} | ≤ {target} s | "
            f"{verdict(s['lag']['max'] <= target and not s['missed'])} |"
        )
    return "\n".join(out) + f"\n\nTimes from the moment keepalived was sent SIGTERM; {data['when']}.\n"


def dashboard_section(data):
    if not data:
        return "Not run yet.\n"
    out = [
        "| clusters | nodes | failover events | queries per request | p50 ms | p95 ms | max ms | "
        "page size |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in data["rows"]:
        out.append(
            f"| {r['clusters']} | {r['nodes']} | {r['events']} | {r['queries']} | "
            f"{r['ms']['median']} | {r['ms']['p95']} | {r['ms']['max']} | "
            f"{r['bytes'] / 1024:.0f} KiB |"
        )
    rows = data["rows"]
    big = max(rows, key=lambda r: r["clusters"])
    constant = len({r["queries"] for r in rows}) == 1
    text = "\n".join(out) + "\n\n"
    text += (f"- Queries constant in the number of clusters: {verdict(constant)} "
             f"({', '.join(str(r['queries']) for r in rows)}).\n")
    text += (f"- p50 at {big['clusters']} clusters: {big['ms']['median']} ms (target ≤ 100 ms): "
             f"{verdict(big['ms']['median'] <= 100)}.\n")
    if data.get("page_size"):
        text += (f"- Page measured: `/`, the first page a user lands on, {data['page_size']} "
                 f"clusters of {big['clusters']} (problems first), header counts over all.\n")
    text += (f"\nView benchmarked: commit {data['view_commit']}"
             f"{' (with uncommitted changes in the working tree)' if data['view_uncommitted_changes'] else ''}; "
             f"{data['requests']} requests per size; {data['when']}.\n")
    return text


def write():
    push, sweep, failover, dashboard = (load(n) for n in ("push", "sweep", "failover", "dashboard"))
    lab, run = load("lab"), load("run")
    notes = (common.ROOT / "bench" / "NOTES.md").read_text()
    generated = {
        "MACHINE": machine_table([push, sweep, failover, dashboard]),
        "PUSH": push_section(push),
        "SWEEP": sweep_section(sweep),
        "FAILOVER": failover_section(failover),
        "DASHBOARD": dashboard_section(dashboard),
        "LAB": (f"A lab of {lab['nodes']} nodes came up in {lab['lab_up_s']} s and went down in "
                f"{lab['lab_down_s']} s, leaving {lab['netns_left_after_down']} namespaces."
                if lab else ""),
        "RUN": (f"The last full run took {run['total_s'] / 60:.0f} minutes "
                f"({', '.join(f'{k} {v / 60:.1f} min' for k, v in run['took_s'].items())})"
                f"{' (--quick)' if run['quick'] else ''}." if run else ""),
    }
    for key, value in generated.items():
        notes = notes.replace("{{" + key + "}}", value.strip())
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(notes)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    write()
