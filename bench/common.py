"""What every part of the bench shares: a throwaway database, the lab, the machine's description."""

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = Path(os.environ.get("VIPANEL_BENCH_DIR", "/tmp/vipanel-bench"))
PREFIX = os.environ.get("VIPANEL_BENCH_LAB_PREFIX", "vpb")
ANSIBLE_VENV = WORK / "ansible-venv"
# Pinned; `make bench` installs exactly this into ANSIBLE_VENV (bench/requirements-ansible.txt).
ANSIBLE_CORE = "2.19.14"


def setup_django(db_name):
    """Point Django at a fresh SQLite file under WORK and migrate it.

    Call before any model import."""
    data = WORK / "data"
    data.mkdir(parents=True, exist_ok=True)
    db = data / f"{db_name}.sqlite3"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vipanel.settings")
    os.environ["VIPANEL_DATA_DIR"] = str(data)
    os.environ["VIPANEL_SQLITE_PATH"] = str(db)
    os.environ["DATABASE_URL"] = ""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return db


def up_lab(nodes):
    """A lab of `nodes` nodes under the bench's own prefix (never the tests' vpl/vpw). The lab
    itself hides the host's ~/.bashrc from the nodes (tests/lab/lab.py, EMPTY_BASHRC)."""
    from tests.lab import lab as lab_module

    t0 = time.monotonic()
    lab = lab_module.Lab.up(nodes, prefix=PREFIX)
    return lab, time.monotonic() - t0


@contextmanager
def lab_of(nodes, timings=None):
    from tests.lab import lab as lab_module

    lab = None
    try:
        lab, took = up_lab(nodes)
        if timings is not None:
            timings["lab_up_s"] = round(took, 1)
        yield lab
    finally:
        t0 = time.monotonic()
        if lab is not None:
            lab.down()
        else:
            lab_module.down(PREFIX)
        if timings is not None:
            timings["lab_down_s"] = round(time.monotonic() - t0, 1)
            listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
            left = [ns for ns in listed.stdout.splitlines() if ns.startswith(f"{PREFIX}-")]
            timings["netns_left_after_down"] = len(left)


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""

    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    import django
    import paramiko

    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "cpu": cpu or platform.processor(),
        "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "python": platform.python_version(),
        "django": django.get_version(),
        "paramiko": paramiko.__version__,
        "keepalived": sh("keepalived --version 2>&1 | head -1"),
        "openssh": sh("ssh -V 2>&1"),
        "ansible_core": sh(
            f"{ANSIBLE_VENV}/bin/python -c 'import ansible.release as r; "
            "print(r.__version__)' 2>/dev/null"
        ),
        "sqlite": sh(f"{sys.executable} -c 'import sqlite3; print(sqlite3.sqlite_version)'"),
        "commit": sh(f"git -C {ROOT} rev-parse --short HEAD"),
        # The machine is shared: other work running at the same time shows here.
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def save(name, data):
    RESULTS.mkdir(parents=True, exist_ok=True)
    when = time.strftime("%Y-%m-%d %H:%M:%S %z")
    data = {"name": name, "when": when, "machine": machine(), **data}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    return data


def summary(values):
    values = sorted(values)
    if not values:
        return {}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 3),
        "min": round(values[0], 3),
        "max": round(values[-1], 3),
        "p95": round(values[min(len(values) - 1, int(0.95 * len(values)))], 3),
    }


def rss_kib(pid="self"):
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields
