"""Forms shared by the admin and the panel. Secrets are write-only in every one of them."""

from django import forms

from clusters.models import Cluster, Node, SSHCredential, VirtualIP


class WriteOnlySecretsForm(forms.ModelForm):
    """Secret fields never render the stored value; left empty on an edit, the value is kept.

    `secret_fields` are write-only; those also in `clearable_secret_fields` get a "remove" box,
    since an empty field cannot mean "remove" when it already means "keep".
    """

    secret_fields = ()
    clearable_secret_fields = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        editing = self.instance.pk is not None
        for name in self.secret_fields:
            field = self.fields[name]
            attrs = {"autocomplete": "new-password"}
            if isinstance(field.widget, forms.Textarea):
                attrs.update(rows=6, placeholder="(stored; paste a new one to replace it)" if editing else "")
                field.widget = forms.Textarea(attrs=attrs)
            else:
                field.widget = forms.PasswordInput(attrs=attrs, render_value=False)
            if editing:
                field.required = False
                field.help_text = "Stored encrypted, never shown. Leave empty to keep it."
        if editing:
            for name in self.clearable_secret_fields:
                self.fields[f"clear_{name}"] = forms.BooleanField(
                    required=False, label=f"Remove the stored {self.fields[name].label.lower()}"
                )

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
    clearable_secret_fields = ("passphrase",)

    class Meta:
        model = SSHCredential
        fields = ["name", "username", "private_key", "passphrase"]


class ClusterForm(WriteOnlySecretsForm):
    secret_fields = ("auth_pass",)
    clearable_secret_fields = ("auth_pass",)

    class Meta:
        model = Cluster
        fields = [
            "name", "network", "virtual_router_id", "interface", "advert_int", "auth_pass",
            "unicast", "preempt", "preempt_delay", "check_script", "check_interval",
            "check_weight", "check_fall", "check_rise", "config_path", "reload_command",
            "credential",
        ]


class NodeForm(forms.ModelForm):
    class Meta:
        model = Node
        fields = ["name", "address", "ssh_port", "priority", "interface", "credential", "maintenance"]


class VirtualIPForm(forms.ModelForm):
    class Meta:
        model = VirtualIP
        fields = ["address", "label"]
