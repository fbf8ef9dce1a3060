"""What every page module shares: lookups, the answers to a refusal, handing form data to a
service (clusters.services) and its validation errors back to the form."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404

from clusters.models import Cluster, Node
from clusters.services.errors import Busy
from clusters.web.htmx import UNPROCESSABLE

CONFLICT = 409


def get_cluster(pk):
    return get_object_or_404(Cluster.objects.select_related("credential"), pk=pk)


def get_node(pk):
    return get_object_or_404(Node.objects.select_related("cluster", "credential"), pk=pk)


def refusal_status(error):
    """409 when something else is in the way (Busy), 422 when the request itself cannot be
    done as it stands (a cluster not ready)."""
    return CONFLICT if isinstance(error, Busy) or error.active is not None else UNPROCESSABLE


def form_data(form, fields):
    """The cleaned values of `fields` the form has, for a service's `data`."""
    return {name: form.cleaned_data[name] for name in fields if name in form.cleaned_data}


def save_through(form, service, *args):
    """Call `service(*args, data)` with the form's values; on a ValidationError put its
    messages on the form and return None (the form already validated, so this is rare)."""
    try:
        return service(*args)
    except ValidationError as e:
        if hasattr(e, "error_dict"):
            for field, errors in e.error_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, e)
        return None


def ssh_messages(request, checks):
    """Each SSH test's one-line summary (clusters.nodecheck) as a message, for the page a
    redirect leads to: info when vipanel got in, a warning when it did not."""
    for check in checks:
        say = messages.info if check.logged_in else messages.warning
        say(request, f"SSH test: {check.summary}")
