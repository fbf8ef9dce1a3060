"""A real Celery worker (and beat) in a subprocess, on the test database and a private Redis db.

The worker must see what the test wrote, so tests using it run with `transaction=True`, and it
opens the same database: the SQLite test file, or PostgreSQL's test database.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
ALL_QUEUES = ",".join(
    sorted({route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {"celery"})
)


def database_env():
    """Environment that makes a subprocess open the database this test session uses."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"VIPANEL_SQLITE_PATH": str(db["NAME"]), "DATABASE_URL": ""}
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    user = db.get("USER") or "root"
    return {"DATABASE_URL": f"postgres://{user}@{host}:{port}/{db['NAME']}"}


class Process:
    """A Celery worker or beat, with its log in a file so the test can show it on failure."""

    def __init__(self, kind, log_path, env, queues=None, concurrency=1):
        self.kind, self.log_path, self.env = kind, log_path, env
        # Every routed queue unless told: one test worker stands for all of production's.
        self.queues = queues or ALL_QUEUES
        self.concurrency = concurrency
        self.proc = None

    def start(self, timeout=60):
        argv = [sys.executable, "-m", "celery", "-A", "vipanel"]
        if self.kind == "worker":
            argv += [
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                "--pool=prefork",
                f"--queues={self.queues}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{os.getpid()}-{self.log_path.stem}@%h",
            ]
        else:
            argv += ["beat", "--loglevel=INFO", "-s", str(self.log_path.with_suffix(".schedule"))]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.kind == "worker":
            deadline = time.monotonic() + timeout
            while b" ready." not in self.log_path.read_bytes():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"celery worker did not start:\n{self.tail()}")
                time.sleep(0.1)

    def tail(self, lines=60):
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self):
        """SIGKILL the whole process group: a worker dying mid-task, as in a crash."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "log", None):
            self.log.close()


def process_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        VIPANEL_TEST_REDIS_URL=settings.REDIS_URL,
        FIELD_ENCRYPTION_KEY=settings.FIELD_ENCRYPTION_KEY,
        SECRET_KEY=settings.SECRET_KEY,
        VIPANEL_NOTIFY_URL=settings.VIPANEL_NOTIFY_URL,
        VIPANEL_VERIFY_MARGIN=str(settings.VIPANEL_VERIFY_MARGIN),
    )
    env.update(database_env())
    env.update(extra or {})
    return env


@pytest.fixture
def private_redis():
    """The tests' Redis db (tests/settings.py), emptied before and after."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def start_worker(private_redis, tmp_path):
    """start_worker() -> a running real Celery worker (every queue unless ``queues="a,b"``);
    all are stopped after the test."""
    started = []

    def start(kind="worker", queues=None, concurrency=1, **extra_env):
        process = Process(
            kind,
            tmp_path / f"{kind}-{len(started)}.log",
            process_env(extra_env),
            queues,
            concurrency,
        )
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()
