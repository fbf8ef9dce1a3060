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
        ("CPU", m["cpu"]),
        ("nproc", m["nproc"]),
        ("memory", f"{m['memory_gib']} GiB"),
        ("kernel", m["kernel"]),
        ("OS", m["os"]),
        ("Python", m["python"]),
        ("Django", m["django"]),
        ("paramiko", m["paramiko"]),
        ("keepalived", m["keepalived"]),
        ("OpenSSH", m["openssh"]),
        ("ansible-core", m["ansible_core"] or "not installed"),
        ("SQLite", m["sqlite"]),
        (
            "vipanel commit of each part",
            ", ".join(f"{r['name']} {r['machine']['commit']}" for r in results if r),
        ),
    ]
    lines = ["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
    loads = ", ".join(
        f"{r['name']} {'/'.join(r['machine'].get('loadavg', []))}"
        for r in results
        if r and r["machine"].get("loadavg")
    )
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
    targets = {
        ("changed", "openssh"): 3.0,
        ("changed", "ansible"): 0.15,
        ("unchanged", "openssh"): 1.3,
    }
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
                    verdicts.append(
                        f"{scenario}, N={n}: vipanel {f(ratio)} x {method} "
                        f"(target ≤ {target}): {verdict(ratio <= target)}"
                    )
            if scenario == "bare" and ours is not None:
                verdicts.append(
                    f"bare cluster, N={n}: first push {f(ours)} s (target ≤ 6 s): "
                    f"{verdict(ours <= 6)}"
                )
    failed = [r for r in runs if not r["ok"]]
    text = "\n".join(out) + "\n\n" + "".join(f"- {v}\n" for v in verdicts)
    if failed:
        text += "\nRuns that did not end in the expected state (shown as not ok above):\n\n"
        text += "".join(
            f"- {r['scenario']} N={r['nodes']} {r['method']} rep {r['rep']}: "
            f"{r['detail'][:300]!r}\n"
            for r in failed
        )
    return text + (
        f"\n{data['reps']} runs per method, scenario and size, methods interleaved; "
        f"{data['when']}.\n"
    )


def sweep_section(data):
    if not data or "shape" not in data:
        return "Not run yet.\n"
    out = [
        "| worker processes | cold sweep s | warm-up sweeps s | warm sweep s median | p95 | max "
        "| ms per node | SSH handshakes per warm sweep | worker CPU s per sweep | rest of the "
        "machine's CPU s per sweep | worker RSS (MiB, each process) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [*data["rows"], {**data["dead"], "label": f"2, {data['dead_nodes']} dead nodes"}]
    for r in rows:
        rss = ", ".join(f"{v / 1024:.0f}" for v in r["worker_rss_kib"].values() if v)
        warmups = ", ".join(f(w) if w else "-" for w in r.get("warmup_sweeps_s", []))
        out.append(
            f"| {r.get('label', r['workers'])} | {f(r['cold_s']) if r['cold_s'] else '-'} | "
            f"{warmups} | {f(r['warm']['median'])} | {f(r['warm']['p95'])} | "
            f"{f(r['warm']['max'])} | {r['per_node_ms']} | {r['handshakes_per_warm_sweep']} | "
            f"{r['worker_cpu_s_per_sweep']} | {r['rest_cpu_s_per_sweep']} | {rss} |"
        )
    one, two = data["rows"][0]["warm"], data["rows"][1]["warm"]
    beat = data["beat"]
    verdicts = [
        f"{data['shape']}, one worker process: {f(one['median'])} s median, {f(one['max'])} s "
        f"worst (target ≤ 2 s): {verdict(one['max'] <= 2)}",
        f"two worker processes: {f(two['median'])} s median, {f(two['max'])} s worst "
        f"(target ≤ 1.2 s): {verdict(two['max'] <= 1.2)}",
        f"with {data['dead_nodes']} dead nodes (one in every tenth cluster), two workers: the "
        f"last NodeState (a dead node's) after {f(data['dead']['warm']['median'])} s, every "
        "cluster without a dead node recorded after "
        f"{f(data['dead'].get('healthy_clusters_recorded', {}).get('median'))} s (median)",
        f"beat at its {beat['interval_s']} s interval for {beat['seconds']} s with the dead nodes: "
        f"{beat['skipped_clusters']} cluster probes skipped because the previous one still ran "
        "(the lock; never two probes of one cluster at once)",
    ]
    return (
        "\n".join(out)
        + "\n\n"
        + "".join(f"- {v}\n" for v in verdicts)
        + f"\nProbe deadline {data['probe_timeout_s']} s, batches of about "
        f"{data['batch_nodes']} nodes, {data['probe_concurrency']} probes at once per "
        f"batch; {data['when']}.\n"
    )


def sim_section(data):
    if not data:
        return "Not run yet.\n"
    return (
        f"{data['clusters']} clusters of 4 nodes ({data['nodes']}), stand-in exec of "
        f"{data['latency_ms']} ms, batches of {data['batch_nodes']} nodes "
        f"({data['batches_per_sweep']} per sweep): a batch takes "
        f"{f(data['batch_wall_s']['median'])}"
        f" s of wall time and {f(data['batch_cpu_s']['median'])} s of worker CPU (median); "
        f"{data['queries_per_node']} queries and {data['writes_per_node']} writes per node. "
        f"So one sweep costs {data['worker_cpu_s_per_sweep']} s of worker CPU: at a 5 s interval "
        f"that is {data['worker_processes_for_5s_by_cpu']} busy worker processes by CPU "
        f"({data['worker_processes_for_5s_by_wall']} by wall time), "
        f"{data['db_writes_per_s_at_5s']} database writes/s ({data['db_queries_per_s_at_5s']} "
        f"queries/s), about {data['redis_ops_per_s_at_5s']} Redis commands/s and "
        f"{data['celery_messages_per_s_at_5s']} Celery messages/s. {data['when']}.\n"
    )


def failover_section(data):
    if not data:
        return "Not run yet.\n"
    out = [
        "| detection | runs | (i) keepalived takeover s: median / max | (ii) event recorded s: "
        "median / max | (ii) − (i) s: median / max | target | |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, label, target in (
        ("notify", "notify reports", 0.5),
        ("sweep_only", "sweep only", data["sweep_interval_s"]),
    ):
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
    return (
        "\n".join(out) + f"\n\nTimes from the moment keepalived was sent SIGTERM; {data['when']}.\n"
    )


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
    text += (
        f"- Queries constant in the number of clusters: {verdict(constant)} "
        f"({', '.join(str(r['queries']) for r in rows)}).\n"
    )
    text += (
        f"- p50 at {big['clusters']} clusters: {big['ms']['median']} ms (target ≤ 100 ms): "
        f"{verdict(big['ms']['median'] <= 100)}.\n"
    )
    if data.get("page_size"):
        text += (
            f"- Page measured: `/`, the first page a user lands on, {data['page_size']} "
            f"clusters of {big['clusters']} (problems first), header counts over all.\n"
        )
    dirty = data["view_uncommitted_changes"]
    text += (
        f"\nView benchmarked: commit {data['view_commit']}"
        f"{' (with uncommitted changes in the working tree)' if dirty else ''}; "
        f"{data['requests']} requests per size; {data['when']}.\n"
    )
    return text


def write():
    push, sweep, failover, dashboard = (load(n) for n in ("push", "sweep", "failover", "dashboard"))
    sweep_sim = load("sweep_sim")
    lab, run = load("lab"), load("run")
    notes = (common.ROOT / "bench" / "NOTES.md").read_text()
    generated = {
        "MACHINE": machine_table([push, sweep, failover, dashboard]),
        "PUSH": push_section(push),
        "SWEEP": sweep_section(sweep),
        "SWEEP_SIM": sim_section(sweep_sim),
        "FAILOVER": failover_section(failover),
        "DASHBOARD": dashboard_section(dashboard),
        "LAB": (
            f"A lab of {lab['nodes']} nodes came up in {lab['lab_up_s']} s and went down in "
            f"{lab['lab_down_s']} s, leaving {lab['netns_left_after_down']} namespaces."
            if lab
            else ""
        ),
        "RUN": (
            f"The last full run took {run['total_s'] / 60:.0f} minutes "
            f"({', '.join(f'{k} {v / 60:.1f} min' for k, v in run['took_s'].items())})"
            f"{' (--quick)' if run['quick'] else ''}."
            if run
            else ""
        ),
    }
    for key, value in generated.items():
        notes = notes.replace("{{" + key + "}}", value.strip())
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(notes)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    write()
