"""Token authentication for the JSON API and /metrics: `Authorization: Token KEY`.

Only the token counts: a session cookie sent along is ignored, so a browser that happens to be
logged in can never be made to call the API (no CSRF), and the API never acts as anyone but the
token's user.
"""

from django.utils import timezone

from clusters.models import ApiToken

SCHEME = "token"
# last_used is a hint for people cleaning up tokens, not an access log: one write per token per
# this many seconds keeps a busy scraper from writing on every request.
LAST_USED_RESOLUTION = 60


def key_from(request):
    """The key in the Authorization header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != SCHEME or not key or " " in key:
        return None
    return key


def authenticate(request):
    """The active user the request's token belongs to, or None."""
    key = key_from(request)
    if key is None:
        return None
    # Looked up by hash: the key is never compared (or stored) as it is.
    token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash_key(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    stale = now - timezone.timedelta(seconds=LAST_USED_RESOLUTION)
    if token.last_used is None or token.last_used < stale:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
    return token.user
