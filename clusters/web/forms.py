"""The panel's own forms (the model forms shared with the admin are in clusters.forms)."""

import datetime as dt

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils import timezone

from clusters import roles, timefmt
from clusters.forms import ClusterForm, NodeForm
from clusters.models import Cluster
from clusters.services import clusters as cluster_services
from clusters.services.users import NO_ROLE


class PanelNodeForm(NodeForm):
    """Maintenance is switched with its own button, which also pushes: not a plain field."""

    class Meta(NodeForm.Meta):
        fields = [f for f in NodeForm.Meta.fields if f != "maintenance"] + ["host_key_fingerprint"]
        labels = {"ssh_port": "SSH port", "host_key_fingerprint": "Host key fingerprint"}
        help_texts = {
            "host_key_fingerprint": "Optional: the node's SHA256:... fingerprint (ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub on its console). Without one, vipanel connects to "
            "nobody until you trust the key the node offers. Empty on an edit: keep the pinned "
            "key.",
        }


def cluster_form(request, *args, **kwargs):
    form = ClusterForm(*args, **kwargs)
    # The rule is the service's (clusters.services.clusters); the form only shows it.
    admin_only = cluster_services.admin_only_fields(request.user)
    for name in admin_only:
        # Disabled, so the stored values stay as they are.
        form.fields[name].disabled = True
        form.fields[name].help_text = roles.ADMIN_ONLY_MESSAGES[name]
    if admin_only and form.instance.check_type != Cluster.CheckType.COMMAND:
        choices = form.fields["check_type"].choices
        form.fields["check_type"].choices = [c for c in choices if c[0] != "command"]
    return form


# The history's presets; "all" (the default) fits the window to the data (clusters.timeline).
RANGES = {
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(days=1),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
ALL = "all"
DATE_FORMATS = [
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
]
DATE_ERROR = "Enter a date and time like 2025-01-31 or 2025-01-31T14:30."
MAX_SPAN = dt.timedelta(days=366)
HISTORY_ROWS = 500


def _moment_field(label, help_text=""):
    # Read in the viewer's zone (the current time zone, clusters.web.timezones); an ISO time
    # with an offset (what a drag on the timeline sends) is taken as it says.
    return forms.DateTimeField(
        label=label,
        required=False,
        input_formats=DATE_FORMATS,
        # Seconds kept (step 1): a zoomed window is redrawn exactly when Show is pressed.
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S"
        ),
        error_messages={"invalid": DATE_ERROR},
        help_text=help_text,
    )


class HistoryFilter(forms.Form):
    vip = forms.ChoiceField(label="VIP", required=False)
    since = _moment_field("From", "Empty: from when the VIPs were made.")
    until = _moment_field("To", "Empty: now.")
    last = forms.ChoiceField(
        label="Or the last",
        required=False,
        choices=[("", "—")] + [(k, k) for k in RANGES] + [(ALL, "all (fits the data)")],
        help_text="Used when From is empty.",
    )
    deleted = forms.BooleanField(label="Show deleted VIPs", required=False)

    def __init__(self, *args, vips=(), deleted=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["vip"].choices = [("", "all VIPs")] + [
            (v, f"{v} (deleted)" if v in deleted else v) for v in vips
        ]

    def clean(self):
        """data["window"]: (since, until), since None when the window is to fit the data."""
        data = super().clean()
        if "since" in self.errors or "until" in self.errors:
            return data
        now = timezone.now()
        until = data.get("until") or now
        since = data.get("since")
        if since is None and data.get("last") in RANGES:
            since = until - RANGES[data["last"]]
        if since is not None:
            if since >= until:
                raise forms.ValidationError("'From' must be before 'To'.")
            if until - since > MAX_SPAN:
                raise forms.ValidationError("Pick a range of at most a year.")
        # A window that reaches into the future ends now: nothing has happened there yet.
        data["window"] = (since, until if since is not None and since >= now else min(until, now))
        return data


class PreferencesForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="Every page shows times in this zone, and reads the dates you type in it.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [("", "my browser's zone")] + [
            (name, name) for name in timefmt.zone_names()
        ]


class AuditFilter(forms.Form):
    cluster = forms.ModelChoiceField(
        Cluster.objects.all(),
        required=False,
        empty_label="all clusters",
        error_messages={"invalid_choice": "There is no such cluster; pick one from the list."},
    )


ROLE_CHOICES = [
    (roles.VIEWER, "viewer: reads"),
    (roles.OPERATOR, "operator: edits and pushes"),
    (roles.ADMIN, "admin: also credentials and users"),
    (NO_ROLE, "no role: no access"),
]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES, required=False)


class NewUserForm(UserCreationForm):
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=roles.VIEWER, required=False)
