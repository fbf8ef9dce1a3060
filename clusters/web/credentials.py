"""SSH credentials (admin): list, add, edit (clusters.services.credentials). Secrets are
write-only in the form and audited as changed, never with their value."""

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from clusters.forms import SSHCredentialForm
from clusters.models import SSHCredential
from clusters.roles import ADMIN, require_role
from clusters.services import credentials as services
from clusters.web.common import form_data, save_through
from clusters.web.htmx import UNPROCESSABLE


@require_safe
@require_role(ADMIN)
def credential_list(request):
    credentials = SSHCredential.objects.annotate(
        cluster_count=Count("clusters", distinct=True), node_count=Count("nodes", distinct=True)
    )
    return render(request, "clusters/credentials.html", {"credentials": credentials})


@require_safe
@require_role(ADMIN)
def credential_new(request):
    return render(request, "clusters/credential_form.html", {"form": SSHCredentialForm()})


@require_POST
@require_role(ADMIN)
def credential_create(request):
    form = SSHCredentialForm(request.POST)
    credential = None
    if form.is_valid():
        credential = save_through(
            form, services.create_credential, request.user, form_data(form, services.FIELDS)
        )
    if credential is None:
        return render(
            request, "clusters/credential_form.html", {"form": form}, status=UNPROCESSABLE
        )
    messages.success(request, f"Credential {credential.name} saved.")
    return redirect("clusters:credentials")


@require_safe
@require_role(ADMIN)
def credential_edit(request, pk):
    credential = get_object_or_404(SSHCredential, pk=pk)
    return render(
        request,
        "clusters/credential_form.html",
        {"form": SSHCredentialForm(instance=credential), "credential": credential},
    )


@require_POST
@require_role(ADMIN)
def credential_update(request, pk):
    credential = get_object_or_404(SSHCredential, pk=pk)
    form = SSHCredentialForm(request.POST, instance=credential)
    saved = None
    if form.is_valid():
        saved = save_through(
            form,
            services.update_credential,
            request.user,
            credential,
            form_data(form, services.FIELDS),
        )
    if saved is None:
        return render(
            request,
            "clusters/credential_form.html",
            {"form": form, "credential": SSHCredential.objects.get(pk=pk)},
            status=UNPROCESSABLE,
        )
    messages.success(request, f"Credential {saved.name} saved.")
    return redirect("clusters:credentials")
