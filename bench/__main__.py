"""python -m bench [PART ...] [--quick]: bring the lab up, run the parts, tear it down, write
docs/BENCHMARKS.md.

Parts: push, sweep, failover (need the lab), dashboard (no lab). With no part named, all run.
The lab (prefix vpb, 100 nodes) is brought up once and always torn down, even on errors; each
part runs in its own process with its own throwaway SQLite file under /tmp/vipanel-bench.
"""

import argparse
import json
import subprocess
import sys
import time

from bench import common

LAB_PARTS = ("push", "sweep", "failover")
PARTS = (*LAB_PARTS, "dashboard")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("parts", nargs="*", help=f"any of {', '.join(PARTS)}")
    p.add_argument("--quick", action="store_true", help="fewer sizes and repetitions (a smoke run)")
    p.add_argument("--report-only", action="store_true", help="only rewrite docs/BENCHMARKS.md")
    a = p.parse_args(argv)
    parts = a.parts or list(PARTS)
    if a.report_only:
        parts = []
    args = {
        "push": (
            ["--nodes", "3,10", "--reps", "1"] if a.quick else ["--nodes", "3,10,30", "--reps", "2"]
        ),
        "sweep": ["--sweeps", "3", "--beat-seconds", "12"] if a.quick else [],
        "failover": ["--reps", "2"] if a.quick else ["--reps", "7"],
        "dashboard": ["--sizes", "50", "--requests", "10"] if a.quick else [],
    }
    started = time.monotonic()
    took = {}
    lab_parts = [x for x in parts if x in LAB_PARTS]
    failed = []
    if lab_parts:
        # The sweep part's shape is 50 clusters of 4 nodes; failover runs with them present.
        big = {"sweep", "failover"} & set(lab_parts)
        nodes = 200 if big else 30 if not a.quick else 10
        timings = {}
        with common.lab_of(nodes, timings) as lab:
            print(f"lab {common.PREFIX}: {len(lab)} nodes up in {timings['lab_up_s']}s", flush=True)
            for part in lab_parts:
                t0 = time.monotonic()
                rc = subprocess.run(
                    [sys.executable, "-m", f"bench.{part}", *args[part]],
                    cwd=common.ROOT,
                    check=False,
                ).returncode
                took[part] = round(time.monotonic() - t0, 1)
                if rc:
                    failed.append(part)
        timings["nodes"] = nodes
        print(
            f"lab down in {timings['lab_down_s']}s; namespaces left: "
            f"{timings['netns_left_after_down']}",
            flush=True,
        )
        (common.RESULTS).mkdir(parents=True, exist_ok=True)
        (common.RESULTS / "lab.json").write_text(json.dumps(timings, indent=2) + "\n")
    if "dashboard" in parts:
        t0 = time.monotonic()
        rc = subprocess.run(
            [sys.executable, "-m", "bench.dashboard", *args["dashboard"]],
            cwd=common.ROOT,
            check=False,
        ).returncode
        took["dashboard"] = round(time.monotonic() - t0, 1)
        if rc:
            failed.append("dashboard")
    if parts:
        # Each part's latest time, kept across runs of single parts; the lab's up and down too.
        run_file = common.RESULTS / "run.json"
        run = json.loads(run_file.read_text()) if run_file.exists() else {}
        run_took = {**run.get("took_s", {}), **took}
        run.update(
            quick=a.quick,
            took_s=run_took,
            total_s=round(sum(run_took.values()), 1),
            last_parts=parts,
            last_total_s=round(time.monotonic() - started, 1),
        )
        run_file.write_text(json.dumps(run, indent=2) + "\n")
    from bench import report

    report.write()
    if failed:
        print(f"parts that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
