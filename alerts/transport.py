"""The one module that talks to Apprise: parse and mask a URL, send one message.

Errors carry a readable message with the URL's secret parts masked, and a permanent flag: a URL
apprise cannot use will not work on a retry, a refused or timed-out send might.
"""

import logging
import re
from urllib.parse import urlsplit, urlunsplit

import apprise

MASK = "****"
# How long one send may take, in seconds: a dead receiver must not hold a worker for long.
TIMEOUT = 10


class BadURL(ValueError):
    pass


class DeliveryError(Exception):
    def __init__(self, message, permanent=False):
        super().__init__(message)
        self.message, self.permanent = message, permanent


def _plugin(url):
    url = (url or "").strip()
    if not url or any(c.isspace() for c in url):
        raise BadURL("Enter one Apprise URL with no spaces, e.g. json://hooks.example.net/path.")
    plugin = apprise.Apprise.instantiate(url)
    if not plugin:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        raise BadURL(
            f"Apprise cannot use this URL (scheme '{scheme or '?'}'): check the scheme and its "
            "parts against the Apprise documentation for the service, e.g. "
            "json://host/path, slack://TokenA/TokenB/TokenC, mailtos://user:pass@host."
        )
    return plugin


def _mask_segment(segment):
    if len(segment) <= 3 or "..." in segment or MASK in segment:
        return segment
    return segment[:2] + MASK


def warm():
    """Load Apprise's plugins now (about half a second, once per process) rather than on the
    first alert: a worker calls this when it starts."""
    apprise.Apprise.instantiate("json://localhost/")


def masked(url):
    """The URL with its secrets hidden, for lists, logs and errors (raises BadURL).

    Apprise's privacy form hides what each service calls a token or password, but keeps the
    path of a generic webhook (json://host/hooks/<token>) and its query: those are cut to two
    characters and dropped here too.
    """
    shown = urlsplit(_plugin(url).url(privacy=True))
    path = "/".join(_mask_segment(s) for s in shown.path.split("/"))
    return urlunsplit((shown.scheme, shown.netloc, path, "", ""))[:500]


def secrets_of(url):
    """The parts of `url` that its masked form hides, longest first, for scrubbing text."""
    try:
        shown = masked(url)
    except BadURL:
        shown = ""
    parts = {p for p in re.split(r"[/:@?&=#,]+", url) if len(p) >= 4 and p not in shown}
    parts.add(url)
    return sorted(parts, key=len, reverse=True)


def scrub(text, url):
    for part in secrets_of(url):
        text = text.replace(part, MASK)
    return text


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        if record.levelno >= logging.WARNING:
            self.lines.append(record.getMessage())


def send(url, title, body, failure=True):
    """Send one message; raises DeliveryError with the reason, secrets masked."""
    try:
        plugin = _plugin(url)
    except BadURL as e:
        raise DeliveryError(str(e), permanent=True) from None
    plugin.socket_read_timeout = plugin.socket_connect_timeout = TIMEOUT
    sender = apprise.Apprise()
    sender.add(plugin)
    handler = _Collect()
    logger = logging.getLogger("apprise")
    logger.addHandler(handler)
    try:
        ok = sender.notify(
            title=title,
            body=body,
            notify_type=apprise.NotifyType.FAILURE if failure else apprise.NotifyType.SUCCESS,
        )
    except Exception as e:  # a plugin's own bug must not look like a lost message
        raise DeliveryError(scrub(f"{type(e).__name__}: {e}", url)) from None
    finally:
        logger.removeHandler(handler)
    if not ok:
        reason = "; ".join(handler.lines[-3:]) or "the service refused the message"
        raise DeliveryError(scrub(reason, url)[:1000])
