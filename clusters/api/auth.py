"""Token authentication for the JSON API and /metrics: `Authorization: Token KEY`.

Only the token counts: a session cookie sent along is ignored, so a browser that happens to be
logged in can never be made to call the API (no CSRF), and the API never acts as anyone but the
token's user. Only a sha256 of each key is stored (ApiToken.hash_key).

Wrong tokens are rate-limited per client address (TokenAuthentication): past
VIPANEL_API_TOKEN_FAILURES failures in a window of VIPANEL_API_TOKEN_FAILURE_WINDOW seconds,
every token request from that address is answered 429 with Retry-After until the window ends.
"""

import logging
import time

import redis
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions

from clusters.models import ApiToken

SCHEME = "token"
REALM = 'Token realm="vipanel"'
# last_used is a hint for people cleaning up tokens, not an access log: one write per token per
# this many seconds keeps a busy scraper from writing on every request.
LAST_USED_RESOLUTION = 60
FAILURES_KEY = "vipanel:api-token-failures:{address}:{window}"
# What the cache raises when Redis is away: without it the API still answers, unlimited.
CACHE_ERRORS = (redis.RedisError, OSError)
log = logging.getLogger(__name__)


def key_from(request):
    """The key in the Authorization header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != SCHEME or not key or " " in key:
        return None
    return key


def user_for_key(key):
    """The active user a key belongs to, or None; records last_used."""
    # Looked up by hash: the key is never compared (or stored) as it is.
    token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash_key(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    stale = now - timezone.timedelta(seconds=LAST_USED_RESOLUTION)
    if token.last_used is None or token.last_used < stale:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
    return token.user


def authenticate(request):
    """The active user the request's token belongs to, or None (used by /metrics)."""
    key = key_from(request)
    return None if key is None else user_for_key(key)


class FailureLimit:
    """Failures per client address in fixed windows, counted in the shared (Redis) cache."""

    def __init__(self, address):
        self.address = address or "unknown"
        self.window = max(1, settings.VIPANEL_API_TOKEN_FAILURE_WINDOW)
        self.limit = settings.VIPANEL_API_TOKEN_FAILURES
        now = time.time()
        self.number = int(now // self.window)
        self.retry_after = max(1, int(self.window - now % self.window + 0.999))
        self.key = FAILURES_KEY.format(address=self.address, window=self.number)

    def exceeded(self):
        try:
            return (cache.get(self.key) or 0) >= self.limit
        except CACHE_ERRORS as e:
            log.warning("API token failure limit unavailable (cache: %s)", e)
            return False

    def count(self):
        try:
            # add() creates the counter with the window's lifetime; incr() is atomic in Redis.
            cache.add(self.key, 0, timeout=self.window + 1)
            try:
                cache.incr(self.key)
            except ValueError:  # expired between add() and incr()
                cache.set(self.key, 1, timeout=self.window + 1)
        except CACHE_ERRORS as e:
            log.warning("API token failure not counted (cache: %s)", e)


class TokenFailuresThrottled(exceptions.Throttled):
    default_detail = "Too many requests with a wrong API token from this address."
    extra_detail_singular = "Retry in {wait} second."
    extra_detail_plural = "Retry in {wait} seconds."


class TokenAuthentication(authentication.BaseAuthentication):
    """DRF authentication over ApiToken. No header: anonymous (401 or 403 follows from the
    permission); a wrong or malformed token: 401, counted against the client's address."""

    def authenticate(self, request):
        header = request.headers.get("Authorization")
        if not header:
            return None
        limit = FailureLimit(request.META.get("REMOTE_ADDR"))
        if limit.exceeded():
            raise TokenFailuresThrottled(wait=limit.retry_after)
        key = key_from(request)
        user = user_for_key(key) if key is not None else None
        if user is None:
            limit.count()
            raise exceptions.AuthenticationFailed(
                "Send a valid API token: 'Authorization: Token KEY' (create_api_token)."
            )
        return user, None

    def authenticate_header(self, request):
        return REALM
