"""How the panel writes times: the one rule for every page, the timeline and its form inputs.

Moments are shown in the viewer's zone (Django's current time zone, which the middleware in
clusters.web.timezones activates per request) as ISO dates: 2026-12-01 19:05, never "12-01
19:05" without its year. Durations say their unit and go down to seconds: "42 s", never "0
minutes". Nothing here reads the database or the request.
"""

import datetime as dt
import functools
import zoneinfo

from django.utils import timezone

UTC_NAME = "UTC"
# IANA names are short ("America/Argentina/ComodRivadavia" is the longest in use): a longer
# value from a cookie or a form is not a zone.
ZONE_NAME_MAX = 64

DATE = "%Y-%m-%d"
MINUTE = "%Y-%m-%d %H:%M"
SECOND = "%Y-%m-%d %H:%M:%S"
TIME = "%H:%M:%S"
FORMATS = {"minute": MINUTE, "second": SECOND, "time": TIME, "date": DATE}


@functools.cache
def zone_names():
    """Every IANA zone name this machine knows, sorted."""
    return tuple(sorted(zoneinfo.available_timezones() | {UTC_NAME}))


def zone(name):
    """The ZoneInfo called `name`, or None when it is no zone this machine knows (anything a
    browser or a person could send: the name is checked against the list before it is used)."""
    if not isinstance(name, str) or not name or len(name) > ZONE_NAME_MAX:
        return None
    if name not in zone_names():
        return None
    return zoneinfo.ZoneInfo(name)


def local(moment, tz=None):
    """An aware moment in `tz` (default: the current zone)."""
    return moment.astimezone(tz or timezone.get_current_timezone())


def when(moment, precision="minute", tz=None):
    """'2026-12-01 19:05' (precision "minute"), '2026-12-01 19:05:42' ("second"), '19:05:42'
    ("time") or '2026-12-01' ("date"), in `tz` (default: the current zone)."""
    if moment is None:
        return ""
    return local(moment, tz).strftime(FORMATS[precision])


def duration(seconds):
    """'42 s', '5 min', '3 h 12 min', '2 d 4 h': the two largest units that matter.

    Seconds are said below a minute and minutes keep their seconds below ten minutes, so a
    failover a moment ago reads "for 42 s", not "for 0 minutes"."""
    if isinstance(seconds, dt.timedelta):
        seconds = seconds.total_seconds()
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 10:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    if minutes < 60:
        return f"{minutes} min"
    hours, m = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {m} min" if m else f"{hours} h"
    days, h = divmod(hours, 24)
    return f"{days} d {h} h" if h else f"{days} d"


def age(moment, now=None):
    """How long ago `moment` was, as duration() says it ("42 s")."""
    if moment is None:
        return ""
    return duration(((now or timezone.now()) - moment).total_seconds())
