"""Roles as Django groups: viewer reads, operator edits and pushes, admin also manages
credentials and users. One place decides what each role may do."""

from functools import wraps

from django.core.exceptions import PermissionDenied

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
# Each role includes the ones before it.
_RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}


def role_of(user):
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    cached = getattr(user, "_vipanel_role", False)
    if cached is not False:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = next((r for r in reversed(ROLES) if r in names), None)
    user._vipanel_role = role
    return role


def has_role(user, role):
    current = role_of(user)
    return current is not None and _RANK[current] >= _RANK[role]


def can_view(user):
    return has_role(user, VIEWER)


def can_operate(user):
    return has_role(user, OPERATOR)


def can_admin(user):
    return has_role(user, ADMIN)


def require_role(role):
    """View decorator: 403 unless the user has `role` (login itself is enforced globally)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def assign(user, role):
    """Give `user` exactly one vipanel role."""
    # Lazy: this module is imported while Django loads apps (the template tags), before
    # django.contrib.auth.models may be imported; not a cycle of ours.
    from django.contrib.auth.models import Group

    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    user.__dict__.pop("_vipanel_role", None)
