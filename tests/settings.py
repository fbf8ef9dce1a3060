"""Settings for the test suite: production settings, with Celery on a Redis db of its own.

Redis db 0 may belong to a panel running on the same machine (make run), whose worker would
otherwise take the tests' tasks.
"""

import os

from vipanel.settings import *  # noqa: F403

REDIS_URL = os.environ.get("VIPANEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
# Under pytest-xdist each worker process has a db of its own, counted down from the given one,
# since tests empty theirs (tests/worker.py: private_redis).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw"):
    _base, _, _db = REDIS_URL.rpartition("/")
    REDIS_URL = f"{_base}/{(int(_db or 0) - int(_WORKER[2:])) % 16}"
CELERY_BROKER_URL = REDIS_URL
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
}
