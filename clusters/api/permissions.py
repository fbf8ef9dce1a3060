"""Roles (clusters/roles.py) as DRF permission classes, one role per HTTP method of a view.

A view names its roles in `roles = {"GET": VIEWER, "POST": OPERATOR}`; RoleByMethod turns a
missing token into 401 and a missing role into 403, in that order. Methods a view does not
handle are let through here so they are answered 405 (by the view), as before.
"""

from rest_framework import permissions

from clusters import roles


def role_for(view, method):
    return getattr(view, "roles", {}).get(method)


class RoleByMethod(permissions.BasePermission):
    def has_permission(self, request, view):
        role = role_for(view, request.method)
        if role is None:
            return True
        if not request.user or not request.user.is_authenticated:
            return False  # DRF answers 401 (NotAuthenticated) for an anonymous request
        if not roles.has_role(request.user, role):
            self.message = f"This needs the {role} role."
            return False
        return True
