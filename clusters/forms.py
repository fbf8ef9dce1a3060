"""Forms shared by the admin and the panel. Secrets are write-only in every one of them."""

from django import forms

from clusters.models import Cluster, Node, SSHCredential, VirtualIP, VrrpInstance


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value, not even the one just submitted with an error."""

    def format_value(self, value):
        return None


class WriteOnlySecretsForm(forms.ModelForm):
    """Secret fields never render a value; left empty on an edit, the stored value is kept.

    `secret_fields` are write-only; `multiline_secret_fields` (a private key) get a textarea, the
    others a password input. A secret that may be removed gets a declared `clear_<name>` box,
    since an empty field cannot mean "remove" when it already means "keep". The boxes are
    declared on the class (so the admin lays them out) and dropped when adding.
    """

    secret_fields = ()
    multiline_secret_fields = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        editing = self.instance.pk is not None
        for name in self.secret_fields:
            field = self.fields[name]
            attrs = {"autocomplete": "new-password"}
            if name in self.multiline_secret_fields:
                attrs["rows"] = 6
                if editing:
                    attrs["placeholder"] = "(stored; paste a new one to replace it)"
                field.widget = WriteOnlyTextarea(attrs=attrs)
            else:
                field.widget = forms.PasswordInput(attrs=attrs, render_value=False)
            if editing:
                field.required = False
                field.help_text = "Stored encrypted, never shown. Leave empty to keep it."
        offered = self.clear_fields_for(self.instance)
        for name in self.clear_field_names():
            if name not in offered:
                del self.fields[name]

    @classmethod
    def clear_field_names(cls):
        return [f"clear_{name}" for name in cls.secret_fields if f"clear_{name}" in cls.base_fields]

    @classmethod
    def clear_fields_for(cls, instance):
        """The "remove the stored ..." boxes that mean something for `instance`: only for a
        secret it has stored (a box to remove what is not there only invites a no-op)."""
        if instance is None or instance.pk is None:
            return []
        return [
            f"clear_{name}"
            for name in cls.secret_fields
            if f"clear_{name}" in cls.base_fields and getattr(instance, name)
        ]

    def get_initial_for_field(self, field, field_name):
        if field_name in self.secret_fields:
            return ""
        return super().get_initial_for_field(field, field_name)

    def _post_clean(self):
        if self.instance.pk is not None:
            stored = type(self.instance).objects.get(pk=self.instance.pk)
            for name in self.secret_fields:
                if self.cleaned_data.get(f"clear_{name}"):
                    self.cleaned_data[name] = ""
                elif not self.cleaned_data.get(name):
                    self.cleaned_data[name] = getattr(stored, name)
        super()._post_clean()


class SSHCredentialForm(WriteOnlySecretsForm):
    secret_fields = ("private_key", "passphrase")
    multiline_secret_fields = ("private_key",)

    clear_passphrase = forms.BooleanField(required=False, label="Remove the stored passphrase")

    class Meta:
        model = SSHCredential
        fields = ["name", "username", "private_key", "passphrase", "clear_passphrase"]


class ClusterForm(WriteOnlySecretsForm):
    secret_fields = ("auth_pass",)

    clear_auth_pass = forms.BooleanField(
        required=False, label="Remove the stored auth_pass (no VRRP authentication)"
    )

    class Meta:
        model = Cluster
        fields = [
            "name",
            "network",
            "virtual_router_id",
            "interface",
            "advert_int",
            "auth_pass",
            "clear_auth_pass",
            "unicast",
            "preempt",
            "preempt_delay",
            "check_type",
            "check_target",
            "check_script",
            "check_interval",
            "check_weight",
            "check_fall",
            "check_rise",
            "config_path",
            "reload_command",
            "credential",
        ]


class NodeForm(forms.ModelForm):
    class Meta:
        model = Node
        fields = [
            "name",
            "address",
            "ssh_port",
            "priority",
            "interface",
            "credential",
            "maintenance",
        ]


class VirtualIPForm(forms.ModelForm):
    class Meta:
        model = VirtualIP
        fields = ["address", "label", "instance"]

    def __init__(self, *args, **kwargs):
        # Its own ids: the cluster page also has the add-node form, whose "Address" would
        # otherwise be what this form's label points at.
        kwargs.setdefault("auto_id", "vip_%s")
        super().__init__(*args, **kwargs)
        # Only this cluster's further instances; empty is the main instance.
        field = self.fields["instance"]
        field.queryset = VrrpInstance.objects.filter(cluster_id=self.instance.cluster_id)
        field.empty_label = "main instance"
        if not field.queryset.exists():
            field.widget = forms.HiddenInput()


class VrrpInstanceForm(WriteOnlySecretsForm):
    secret_fields = ("auth_pass",)

    clear_auth_pass = forms.BooleanField(
        required=False, label="Remove the stored auth_pass (no VRRP authentication)"
    )

    class Meta:
        model = VrrpInstance
        fields = [
            "name",
            "virtual_router_id",
            "interface",
            "network",
            "advert_int",
            "auth_pass",
            "clear_auth_pass",
            "unicast",
            "preempt",
            "preempt_delay",
            "track_check",
        ]


class SyncGroupForm(forms.Form):
    name = forms.CharField(
        max_length=30, help_text="Rendered as vrrp_sync_group VG_<cluster>_<name>."
    )
    includes_main = forms.BooleanField(required=False, label="The main instance is a member")
    members = forms.ModelMultipleChoiceField(
        queryset=VrrpInstance.objects.none(),
        required=False,
        help_text="Further instances that change state with the others.",
    )

    def __init__(self, *args, cluster=None, **kwargs):
        super().__init__(*args, **kwargs)
        if cluster is not None:
            self.fields["members"].queryset = cluster.instances.order_by("id")


class ActiveActiveForm(forms.Form):
    name = forms.CharField(max_length=30, initial="B", help_text="The new instance's name.")
    vip = forms.CharField(
        max_length=50, label="VIP", help_text="Its virtual IP, e.g. 192.0.2.200/24."
    )
