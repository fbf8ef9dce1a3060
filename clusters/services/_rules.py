"""The rules every service shares: who may do it, and how its audit entry is written."""

from django.core.exceptions import ValidationError

from clusters import audit, roles
from clusters.services.errors import Forbidden, Unconfirmed


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


class _Explicit:
    def __repr__(self):
        return "EXPLICIT"


# The confirmation of a caller whose own request names the action and the cluster: an API call
# (scripts written before confirmations existed keep working), a management command, the admin
# (its own "Are you sure?" page). Not a string, so no form can post it.
EXPLICIT = _Explicit()


def confirm(user, cluster, confirmation, what):
    """A person's action that moves traffic or deletes goes ahead only when confirmed by naming
    the cluster it acts on (the panel's confirmation page posts it; an API client may send it
    to be sure of the cluster its id names). None is the system (commands, tests)."""
    if user is None or confirmation is EXPLICIT:
        return
    if not isinstance(confirmation, str) or confirmation.strip() != cluster.name:
        # What was sent is not echoed: it may be anything.
        said = "does not name this cluster" if confirmation else "is missing"
        text = f"{what}: the confirmation {said}; send the cluster's name, {cluster.name}."
        raise Unconfirmed({"confirm": text})
