"""The panel's own forms (the model forms shared with the admin are in clusters.forms)."""

import datetime as dt

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils import timezone

from clusters import roles
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


RANGES = {
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(days=1),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
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


class HistoryFilter(forms.Form):
    vip = forms.ChoiceField(label="VIP", required=False)
    since = forms.DateTimeField(
        label="From",
        required=False,
        input_formats=DATE_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": DATE_ERROR},
    )
    until = forms.DateTimeField(
        label="To",
        required=False,
        input_formats=DATE_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": DATE_ERROR},
        help_text="Empty: now.",
    )
    last = forms.ChoiceField(
        label="Or the last",
        required=False,
        choices=[("", "—")] + [(k, k) for k in RANGES],
        help_text="Used when From is empty (default 24h).",
    )

    def __init__(self, *args, vips=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["vip"].choices = [("", "all VIPs")] + [(v, v) for v in vips]

    def clean(self):
        data = super().clean()
        now = timezone.now()
        until = data.get("until") or now
        since = data.get("since") or until - RANGES.get(data.get("last") or "24h")
        if "since" in self.errors or "until" in self.errors:
            return data
        if since >= until:
            raise forms.ValidationError("'From' must be before 'To'.")
        if until - since > MAX_SPAN:
            raise forms.ValidationError("Pick a range of at most a year.")
        data["window"] = (since, min(until, now) if since < now else until)
        return data


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
