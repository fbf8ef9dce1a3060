"""Parsing the channel form; the rules themselves live on the model and in alerts.services."""

from django import forms

from alerts.models import EventKind
from clusters.models import Cluster


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.CharField(
        label="Apprise URL",
        required=False,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="e.g. json://hooks.example.net/vipanel, slack://TokenA/TokenB/TokenC, "
        "ntfys://ntfy.sh/topic, mailtos://user:pass@example.net. Stored encrypted; never shown "
        "again.",
    )
    enabled = forms.BooleanField(required=False)
    kinds = forms.MultipleChoiceField(
        label="Events",
        choices=EventKind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    all_clusters = forms.BooleanField(label="All clusters", required=False)
    clusters = forms.ModelMultipleChoiceField(
        queryset=Cluster.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Used when 'All clusters' is not ticked.",
    )

    def __init__(self, *args, channel=None, **kwargs):
        super().__init__(*args, **kwargs)
        if channel is not None:
            self.fields[
                "url"
            ].help_text = (
                f"Now {channel.masked_url}. Leave empty to keep it; a new URL replaces it."
            )
        else:
            self.fields["url"].required = True
