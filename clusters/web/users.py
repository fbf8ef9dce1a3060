"""Users and their roles (admin), through clusters.services.users."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from clusters import roles
from clusters.roles import ADMIN, require_role
from clusters.services import users as services
from clusters.services.errors import Refused
from clusters.services.users import NO_ROLE
from clusters.web.forms import NewUserForm, RoleForm
from clusters.web.htmx import UNPROCESSABLE


@require_safe
@require_role(ADMIN)
def user_list(request):
    users = list(get_user_model().objects.prefetch_related("groups").order_by("username"))
    for user in users:
        names = {g.name for g in user.groups.all()}
        user.role = next((r for r in reversed(roles.ROLES) if r in names), NO_ROLE)
        user.role_form = RoleForm(initial={"role": user.role}, auto_id=f"id_%s_{user.pk}")
    return render(request, "clusters/users.html", {"users": users})


@require_safe
@require_role(ADMIN)
def user_new(request):
    return render(request, "clusters/user_form.html", {"form": NewUserForm()})


@require_POST
@require_role(ADMIN)
def user_create(request):
    form = NewUserForm(request.POST)
    if not form.is_valid():
        return render(request, "clusters/user_form.html", {"form": form}, status=UNPROCESSABLE)
    # The form checked the password (validators, both fields equal); the service stores it.
    user = services.create_user(
        request.user,
        form.cleaned_data["username"],
        form.cleaned_data["password1"],
        form.cleaned_data["role"],
    )
    messages.success(request, f"User {user.get_username()} created.")
    return redirect("clusters:users")


@require_POST
@require_role(ADMIN)
def user_role(request, pk):
    target = get_object_or_404(get_user_model(), pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick one of the roles offered.")
        return redirect("clusters:users")
    new = form.cleaned_data["role"]
    try:
        services.set_role(request.user, target, new)
    except Refused as e:
        messages.error(request, e.text)
        return redirect("clusters:users")
    messages.success(request, f"{target.get_username()} is now {new or 'without a role'}.")
    return redirect("clusters:users")
