"""A cluster's afternoon, as the history records it: a push, a drill, a maintenance push and
a real failure each moving the VIP, a gap with no holder, and a VIP added and later deleted.
For the history's view tests and its browser tests (the README's history screenshot)."""

import datetime as dt

from django.utils import timezone

from clusters import audit
from clusters.models import AuditEntry, ConfigPush, FailoverEvent, VipState

MAIN = "192.0.2.100/24"
GONE = "192.0.2.150/24"


def minutes_ago(now, minutes):
    return now - dt.timedelta(minutes=minutes)


def operation(cluster, kind, now, started, finished):
    push = ConfigPush.objects.create(cluster=cluster, kind=kind, state="succeeded")
    ConfigPush.objects.filter(pk=push.pk).update(
        started=minutes_ago(now, started), finished=minutes_ago(now, finished)
    )
    return push


def move(cluster, now, minutes, src, dst, kind="failover", detail="", vip=MAIN):
    return FailoverEvent.objects.create(
        cluster=cluster,
        vip_address=vip,
        from_node=src,
        to_node=dst,
        kind=kind,
        at=minutes_ago(now, minutes),
        detected_by="drill" if kind == "drill" else "sweep",
        detail=detail,
    )


def seed_afternoon(cluster, now=None):
    """The cluster (web-1, web-2, VIP MAIN) made and pushed 3 hours ago; returns `now`."""
    now = now or timezone.now()
    made = minutes_ago(now, 180)
    type(cluster).objects.filter(pk=cluster.pk).update(created=made)
    cluster.vips.filter(address=MAIN).update(created=made, pushed_at=made)
    push = operation(cluster, "push", now, 172, 168)
    move(cluster, now, 170, "web-2", "web-1", detail=f"During push #{push.pk}.")
    operation(cluster, "drill", now, 121, 118)
    move(cluster, now, 120, "web-1", "web-2", kind="drill", detail="Passed. web-2 took it.")
    maintenance = operation(cluster, "maintenance", now, 92, 88)
    move(cluster, now, 90, "web-2", "web-1", detail=f"During push #{maintenance.pk}.")
    move(cluster, now, 60, "web-1", "web-2")  # nothing of ours ran: a failure
    FailoverEvent.objects.create(
        cluster=cluster, vip_address=MAIN, from_node="web-2", kind="no_holder",
        at=minutes_ago(now, 30), detected_by="sweep",
    )  # fmt: skip
    FailoverEvent.objects.create(
        cluster=cluster, vip_address=MAIN, to_node="web-1", kind="no_holder_end",
        at=minutes_ago(now, 29), detected_by="sweep",
    )  # fmt: skip
    VipState.objects.create(
        vip=cluster.vips.get(address=MAIN),
        holder=cluster.nodes.get(name="web-1"),
        since=minutes_ago(now, 29),
        checked_at=now,
    )
    # A VIP added at -150 min, moved once, deleted at -100 min: audited as the services do.
    for action, minutes, changes in (
        ("vip.create", 150, audit.diff({}, {"address": GONE, "label": "old"})),
        ("vip.delete", 100, audit.diff({"address": GONE, "label": "old"}, {})),
    ):
        entry = AuditEntry.objects.create(
            username="otto", action=action, cluster=cluster, changes=changes, result="done"
        )
        AuditEntry.objects.filter(pk=entry.pk).update(at=minutes_ago(now, minutes))
    move(cluster, now, 140, "web-1", "web-2", vip=GONE)
    return now
