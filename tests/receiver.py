"""A real HTTP receiver for alert webhooks: a threading http.server on 127.0.0.1, port 0.

Apprise's json:// URL posts {"title", "message", "type", ...} to it; the test reads what came,
when it came, or makes the receiver answer with an error status.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    def __init__(self):
        self.messages = []  # (monotonic time, path, decoded JSON body, wall-clock time)
        self.status = 200
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                self.send_response(receiver.status)
                self.end_headers()
                with receiver.arrived:
                    if receiver.status < 300:
                        receiver.messages.append(
                            (time.monotonic(), self.path, json.loads(body), time.time())
                        )
                    receiver.arrived.notify_all()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path="hook"):
        return f"json://127.0.0.1:{self.port}/{path}"

    def wait_for(self, count, timeout=5):
        """The messages once `count` have arrived; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.messages)} of {count} messages arrived in {timeout}s: "
                        f"{[m[2].get('title') for m in self.messages]}"
                    )
                self.arrived.wait(left)
            return list(self.messages)

    def titles(self):
        return [m[2]["title"] for m in self.messages]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def eager_alerts():
    """Deliveries run in the process that queues them (on commit), not on a worker."""
    from vipanel.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
