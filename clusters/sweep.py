"""The fanned-out status sweep: beat's tick hands clusters to workers, one probe per cluster.

A tick (``tick``, the light coordinator task) claims each cluster with a Redis lock and hands
the claimed ones out in batches (``probe_batch``, one task each, on the "sweeps" queue), so any
number of worker processes on any number of machines share a sweep. A cluster is probed by at
most one task at a time:

- the lock's value is a random token: only its owner renews or releases it (compare-and-set
  scripts), so a task that overran its lock can never release someone else's;
- its expiry (``lock_ttl``) is longer than a probe's deadline plus recording, and a batch task
  renews it when it starts (or skips the cluster if the lock is no longer its own: the message
  waited in the queue for longer than the expiry);
- a tick that finds a cluster still locked skips it and counts the skip (SKIPS_KEY, in
  /metrics as vipanel_sweep_skipped_total).

The time from the tick to the last batch's last write is kept for /metrics (SWEEP_SECONDS_KEY):
each tick has a countdown of its batches in Redis, and the batch that ends it writes the time.
"""

import logging
import secrets
import time
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count

from clusters import history, remote
from clusters.models import Cluster

log = logging.getLogger(__name__)

LOCK_PREFIX = "vipanel:sweep:lock:"
TICK_PREFIX = "vipanel:sweep:tick:"
SKIPS_KEY = "vipanel:sweep:skipped"
SWEEP_SECONDS_KEY = history.SWEEP_SECONDS_KEY

# By hand rather than redis-py's Lock: the tick takes the lock and a batch task in another
# process (often another machine) renews and releases it. redis-py's Lock keeps its token in
# the object (thread-local by default); here the token travels in the task's message.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


def lock_ttl() -> float:
    """Seconds: a probe's deadline, its margin, and generous time to record the result."""
    return 2 * settings.VIPANEL_PROBE_TIMEOUT + 10


def lock_key(cluster_id: int) -> str:
    return f"{LOCK_PREFIX}{cluster_id}"


def claim(cluster_id: int) -> str | None:
    """The lock's token, or None when the cluster is being probed."""
    token = secrets.token_hex(8)
    if client().set(lock_key(cluster_id), token, nx=True, px=int(lock_ttl() * 1000)):
        return token
    return None


def renew(cluster_id: int, token: str) -> bool:
    return bool(client().eval(_RENEW, 1, lock_key(cluster_id), token, int(lock_ttl() * 1000)))


def release(cluster_id: int, token: str) -> bool:
    return bool(client().eval(_RELEASE, 1, lock_key(cluster_id), token))


def count_skips(n: int) -> None:
    if n:
        client().incrby(SKIPS_KEY, n)


def skipped_total() -> int:
    return int(client().get(SKIPS_KEY) or 0)


def tick() -> tuple[str, list[list[list]]]:
    """The coordinator (after the sweep task's push housekeeping): claim every free cluster.
    Returns (tick id,
    batches of [cluster id, token]) for the caller to enqueue, one probe_batch task each."""
    started = time.time()
    rows = Cluster.objects.order_by("pk").values_list("pk").annotate(n=Count("nodes"))
    claimed, sizes, skipped = [], [], 0
    for cluster_id, n in rows:
        token = claim(cluster_id)
        if token is None:
            skipped += 1
            continue
        claimed.append([cluster_id, token])
        sizes.append(max(1, n))
    count_skips(skipped)
    if skipped:
        log.info("sweep tick: %d cluster(s) still being probed, skipped", skipped)
    parts = history.batches(claimed, sizes, settings.VIPANEL_SWEEP_BATCH_NODES)
    tick_id = secrets.token_hex(8)
    if parts:
        key = TICK_PREFIX + tick_id
        pipe = client().pipeline()
        pipe.hset(key, mapping={"pending": len(parts), "started": repr(started)})
        pipe.expire(key, int(lock_ttl()) + 60)
        pipe.execute()
    return tick_id, parts


def probe_batch(batch, tick_id: str = "") -> int:
    """Probe and record the clusters of one batch ([cluster id, token] pairs) whose locks are
    still this batch's; release them. Returns how many clusters were swept."""
    # Connections of nodes no batch of this process probes any more (deleted, moved to another
    # worker, or of a cluster now gone) would otherwise stay open until the same node came back.
    remote.POOL.prune()
    owned = {}
    for cluster_id, token in batch:
        if renew(cluster_id, token):
            owned[cluster_id] = token
    count_skips(len(batch) - len(owned))
    swept = 0

    def done(cluster):
        # Released as soon as the cluster is recorded, not at the end of the batch: a dead node
        # in the batch keeps only its own cluster locked until its deadline.
        token = owned.pop(cluster.pk, None)
        if token is not None:
            try:
                release(cluster.pk, token)
            except redis.RedisError:
                log.warning("could not release the sweep lock of cluster %s", cluster.pk)

    try:
        clusters = list(Cluster.objects.filter(pk__in=list(owned)).order_by("pk"))
        if clusters:
            history.sweep_clusters(clusters, after=done)
            swept = len(clusters)
    finally:
        for cluster_id, token in list(owned.items()):  # deleted meanwhile, or a failure
            try:
                release(cluster_id, token)
            except redis.RedisError:
                log.warning("could not release the sweep lock of cluster %s", cluster_id)
        if tick_id:
            _batch_done(tick_id)
    return swept


def probe_now(cluster: Cluster):
    """Probe and record `cluster` now, for a person who asked (the API's refresh, `manage.py
    status`), under the sweep's lock, so it is never probed twice at once: while a sweep holds
    the lock this waits for it (at most the lock's expiry) and probes after it. With Redis down
    there is no lock to take and no sweep running either: it probes all the same.
    -> (ClusterStatus, events recorded)."""
    deadline = time.monotonic() + lock_ttl()
    try:
        while (token := claim(cluster.pk)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
    except redis.RedisError:
        log.warning("Redis unreachable: probing cluster %s without the sweep lock", cluster.pk)
        token = None
    try:
        status = history.probe_cluster(cluster)
        return status, history.record_status(cluster, status)
    finally:
        if token is not None:
            try:
                release(cluster.pk, token)
            except redis.RedisError:
                log.warning("could not release the sweep lock of cluster %s", cluster.pk)


def _batch_done(tick_id: str) -> None:
    key = TICK_PREFIX + tick_id
    try:
        pending = client().hincrby(key, "pending", -1)
        if pending == 0:
            started = float(client().hget(key, "started") or 0)
            client().delete(key)
            if started:
                # For /metrics, which another process serves: the cache is shared (Redis).
                cache.set(SWEEP_SECONDS_KEY, time.time() - started, timeout=None)
    except redis.RedisError:
        log.warning("could not record the end of sweep tick %s", tick_id)
