"""The rules every service shares: who may do it, and how its audit entry is written."""

from django.core.exceptions import ValidationError

from clusters import audit, roles
from clusters.services.errors import Forbidden


def require(user, role):
    """Raise Forbidden unless `user` has `role`; None is the system (management commands)."""
    if user is not None and not roles.has_role(user, role):
        raise Forbidden(f"This needs the {role} role.")


def apply(instance, data, fields):
    """Set the given fields of `instance` from `data` (keys outside `fields` are refused)."""
    unknown = set(data) - set(fields)
    if unknown:
        raise ValidationError({name: "This field cannot be set here." for name in sorted(unknown)})
    for name, value in data.items():
        setattr(instance, name, value)


def refused(user, action, obj, error, **kwargs):
    """Audit a refusal (outside the rolled-back transaction, so it stays) and re-raise."""
    audit.record(user, action, obj, result=f"refused: {error.text}", **kwargs)
