"""Alert channels, incidents, their deliveries, and the time the panel watched each VIP.

A channel is an Apprise URL (encrypted at rest; only its masked form is ever shown) with the
kinds of event and the clusters it wants. An incident is one problem from its first sighting to
its end: it sends one message when it opens and one when it resolves, however many sweeps saw
it. Each message to each channel is a Delivery with its outcome.
"""

from django.core.exceptions import ValidationError
from django.db import models

from alerts import transport
from clusters.crypto import EncryptedTextField
from clusters.models import Cluster, FailoverEvent, Node, VirtualIP


class EventKind(models.TextChoices):
    FAILOVER = "failover", "Failover"
    SPLIT_BRAIN = "split_brain", "Split brain"
    NO_HOLDER = "no_holder", "No holder"
    NODE_UNREACHABLE = "node_unreachable", "Node unreachable"
    HOST_KEY = "host_key", "Host key changed"
    DRIFT = "drift", "Config drift"
    PUSH_FAILED = "push_failed", "Push failed or interrupted"
    DRILL = "drill", "Drill result"


def _all_kinds():
    return list(EventKind.values)


class Channel(models.Model):
    name = models.CharField(
        max_length=100,
        unique=True,
        error_messages={"unique": "Another channel has this name; pick a different one."},
    )
    # Holds tokens and passwords (Slack webhook paths, SMTP passwords): write-only.
    url = EncryptedTextField(
        "Apprise URL",
        help_text="Where to send, as an Apprise URL, e.g. json://hooks.example.net/vipanel, "
        "slack://T.../B.../..., mailtos://user:pass@example.net. Stored encrypted.",
    )
    # The URL as apprise prints it with its secrets replaced by ****, for lists and logs.
    masked_url = models.CharField(max_length=500, editable=False, blank=True)
    kinds = models.JSONField(default=_all_kinds, blank=True)
    all_clusters = models.BooleanField(
        default=True, help_text="Alerts of every cluster, now and future ones."
    )
    clusters = models.ManyToManyField(
        Cluster, blank=True, related_name="+", help_text="Used when not all clusters."
    )
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):

        errors = {}
        if self.url:
            try:
                self.masked_url = transport.masked(self.url)
            except transport.BadURL as e:
                errors["url"] = str(e)
        unknown = sorted(set(self.kinds or []) - set(EventKind.values))
        if not isinstance(self.kinds, list) or unknown:
            errors["kinds"] = f"Unknown kinds {unknown}; choose from {', '.join(EventKind.values)}."
        elif not self.kinds:
            errors["kinds"] = "Choose at least one kind of event, or disable the channel."
        if errors:
            raise ValidationError(errors)

    def kind_labels(self):
        return [EventKind(k).label for k in self.kinds if k in EventKind.values]


class Incident(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"  # seen, not yet for the minimum duration
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    ACTIVE_STATES = (State.PENDING, State.OPEN)

    kind = models.CharField(max_length=20, choices=EventKind.choices)
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="incidents")
    vip = models.ForeignKey(
        VirtualIP, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    node = models.ForeignKey(
        Node, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    event = models.ForeignKey(
        FailoverEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What the problem is about ("vip:12", "node:3", "push:cluster:4"): one active incident each.
    key = models.CharField(max_length=64)
    # Names as they were, so the incident reads the same after renames and deletions.
    subject = models.CharField(max_length=100)
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    started = models.DateTimeField(help_text="First seen.")
    last_seen = models.DateTimeField()
    opened = models.DateTimeField(null=True, blank=True, help_text="When it alerted.")
    resolved = models.DateTimeField(null=True, blank=True)
    # Why no message goes out (a node in maintenance, during push #N, during a drill).
    expected = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-started", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(state__in=["pending", "open"]),
                name="%(app_label)s_%(class)s_one_active_per_key",
                violation_error_message="This problem already has an active incident.",
            ),
        ]
        indexes = [models.Index(fields=["cluster", "-started"], name="alerts_incident_cluster")]

    def __str__(self):
        return f"incident #{self.pk}: {self.title}"

    @property
    def alerted(self):
        return self.opened is not None and not self.expected

    @property
    def duration(self):
        if self.resolved:
            return self.resolved - self.started
        return self.last_seen - self.started


class Delivery(models.Model):
    class Purpose(models.TextChoices):
        OPENED = "opened"
        RESOLVED = "resolved"
        TEST = "test"

    class State(models.TextChoices):
        QUEUED = "queued"
        RETRYING = "retrying"
        SENT = "sent"
        FAILED = "failed"

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.SET_NULL, null=True, related_name="deliveries"
    )
    channel_name = models.CharField(max_length=100)
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Why it failed, with the channel's secrets masked.
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "deliveries"

    def __str__(self):
        return f"{self.purpose} to {self.channel_name}: {self.state}"

    @property
    def is_done(self):
        return self.state in (self.State.SENT, self.State.FAILED)


class VipCoverage(models.Model):
    """A span of time during which the panel kept observing a VIP (sweeps or notify reports).

    Each observation extends the latest span when it comes within VIPANEL_ALERT_COVERAGE_GAP
    seconds of its end, else starts a new one. Time outside every span is "unknown" in the
    availability figures: the panel (or its sweeps) was down and saw nothing.
    """

    vip = models.ForeignKey(VirtualIP, on_delete=models.CASCADE, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField()

    class Meta:
        ordering = ["vip", "start"]
        indexes = [models.Index(fields=["vip", "-end"], name="alerts_coverage_vip_end")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gte=models.F("start")),
                name="%(app_label)s_%(class)s_end_after_start",
            ),
        ]
