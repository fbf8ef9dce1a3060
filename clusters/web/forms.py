"""The panel's own forms (the model forms shared with the admin are in clusters.forms)."""

import datetime as dt

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from clusters import roles, timefmt
from clusters.forms import ClusterForm, NodeForm
from clusters.models import Cluster, Node, SSHCredential, VirtualIP
from clusters.services import clusters as cluster_services
from clusters.services.users import NO_ROLE

# What each VRRP term means, in a sentence or two, wherever the panel asks for it (the guided
# new cluster, its settings, the node forms). Here and not on the models: a model's help_text
# is part of its migrations.
VRRP_HELP = {
    "network": "The L2 segment the nodes share, in CIDR form (e.g. 192.0.2.0/24). Multicast "
    "VRRP needs every node on it.",
    "interface": "The network interface VRRP runs on and the VIPs are added to (e.g. eth0); a "
    "node may have its own.",
    "virtual_router_id": "VRID: the number (1-255) that names this VRRP group. All nodes of the "
    "cluster share it; no other cluster on the same segment may use it, or their adverts "
    "collide.",
    "priority": "1-254: of the nodes that are up, the one with the highest priority holds the "
    "VIPs. Give each node its own (e.g. 120, 110, 100).",
    "advert_int": "Seconds between the holder's VRRP adverts. The others take over after "
    "missing about three, so 1 means a failover within about 3-4 s.",
    "auth_pass": "Optional VRRP password, at most 8 characters. It is not encryption: it only "
    "keeps out adverts of another group sent by mistake.",
    "unicast": "Send adverts to the other nodes' addresses instead of the multicast group "
    "224.0.0.18: for networks without multicast, such as most clouds. Needs two nodes or more.",
    "preempt": "On: a node with a higher priority takes the VIPs back as soon as it is up "
    "again. Off: the VIPs stay where they are until their holder fails (one move fewer).",
    "preempt_delay": "With preempt on: seconds a returning node waits before taking the VIPs "
    "back, so its services are up first. 0: at once.",
    "check_type": "A health check run on every node: when it fails, the node gives up the VIPs. "
    "A free-form command is an admin's.",
    "check_interval": "Seconds between two runs of the health check on each node.",
    "check_weight": "0: a failing check puts the node in FAULT, so it gives up the VIPs. "
    "Otherwise its priority changes by this much, which must exceed the spread of the nodes' "
    "priorities or the VIPs never move.",
    "check_fall": "fall: how many failed checks in a row before the node counts as failing.",
    "check_rise": "rise: how many good checks in a row before a failing node counts as healthy "
    "again.",
}


def with_vrrp_help(form):
    for name, text in VRRP_HELP.items():
        if name in form.fields and not form.fields[name].disabled:
            form.fields[name].help_text = text
    return form


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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["priority"].help_text = VRRP_HELP["priority"]


def cluster_form(request, *args, form_class=ClusterForm, **kwargs):
    form = with_vrrp_help(form_class(*args, **kwargs))
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


# --- The guided new cluster (clusters.services.cluster_setup) ---------------------------------

SETUP_BASICS = ["name", "network", "interface", "credential", "virtual_router_id"]
NODE_ROWS, NODE_ROWS_MAX = 3, 10


class SetupClusterForm(ClusterForm):
    """The cluster part: the basics, then VRRP and the health check (all with defaults).
    A credential is required; the VRID may be left empty for the lowest free one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # As the network is typed, the lowest free VRID on it appears under the VRID (htmx).
        self.fields["network"].widget.attrs.update(
            {
                "hx-get": reverse("clusters:cluster-vrid-hint"),
                "hx-trigger": "input changed delay:400ms, change",
                "hx-target": "#vrid-hint",
                "hx-swap": "outerHTML",
                "placeholder": "192.0.2.0/24",
            }
        )
        vrid = self.fields["virtual_router_id"]
        vrid.required = False
        vrid.help_text = (
            VRRP_HELP["virtual_router_id"] + " Leave it empty to take the lowest one free on "
            "the network."
        )
        # Required, unless there is only one: then it is picked (and taken when left empty,
        # clusters.services.cluster_setup, which says so).
        credential = self.fields["credential"]
        only = list(SSHCredential.objects.order_by("pk")[:2])
        credential.required = len(only) != 1
        credential.empty_label = "pick one"
        credential.error_messages["required"] = (
            "Pick the SSH credential vipanel logs in to the nodes with."
        )
        if len(only) == 1:
            credential.initial = only[0].pk
            # Django renders help text unescaped; the name is an admin's free text.
            credential.help_text = format_html("{} is the only one, so it is picked.", only[0].name)
        elif not only:
            credential.help_text = (
                "None exists yet: an admin adds one under Credentials (a private key whose "
                "public key is in root's authorized_keys on the nodes)."
            )
        else:
            credential.help_text = "How vipanel logs in to the nodes; a node may have its own."

    def basics(self):
        return [self[name] for name in SETUP_BASICS]

    def more(self):
        return [self[name] for name in self.fields if name not in SETUP_BASICS]


class SetupNodeForm(forms.ModelForm):
    class Meta:
        model = Node
        fields = ["name", "address", "priority", "ssh_port", "host_key_fingerprint"]
        labels = {"ssh_port": "SSH port", "host_key_fingerprint": "Host key (optional)"}
        # Explained once above the rows (cluster_setup.html), not under every row's fields.
        help_texts = {name: "" for name in fields}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["host_key_fingerprint"].widget.attrs["placeholder"] = "SHA256:..."


class NodeRows(forms.BaseFormSet):
    """The first nodes, one row each; rows left empty are skipped (the first is required).
    The suggested priorities go down by 10 from 120, so the first row holds the VIPs."""

    def get_form_kwargs(self, index):
        # An initial value per row, not the formset's `initial` (which would make every row
        # an "initial form" that must be filled).
        if index is None:
            return {}
        return {"initial": {"priority": max(1, 120 - 10 * index)}}


def node_rows(data=None, rows=NODE_ROWS):
    factory = forms.formset_factory(
        SetupNodeForm,
        formset=NodeRows,
        extra=max(0, rows - 1),
        min_num=1,
        validate_min=True,
        max_num=NODE_ROWS_MAX,
        validate_max=True,
        absolute_max=NODE_ROWS_MAX,
    )
    return factory(data, prefix="nodes")


class SetupVipForm(forms.ModelForm):
    class Meta:
        model = VirtualIP
        fields = ["address", "label"]
        labels = {"address": "VIP address"}
        help_texts = {
            "address": "The address the nodes share, with its prefix length (e.g. "
            "192.0.2.100/24): an address no host owns, usually inside the cluster's network.",
        }


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
