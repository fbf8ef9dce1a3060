"""What a use case answers when it will not do what was asked. Entry points map these to their
own answers: the panel to 403/409/422 pages, the API to 403/409/400, commands to CommandError."""

from django.core.exceptions import PermissionDenied


class Forbidden(PermissionDenied):
    """The user's role does not allow this (HTTP 403)."""


class Refused(Exception):
    """The use case cannot go ahead now; `errors` is keyed by field like a ValidationError
    ("__all__" for the whole), `active` the push or drill in the way, if any."""

    def __init__(self, errors, active=None):
        self.errors = errors
        self.active = active
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))

    @property
    def text(self):
        return " ".join(str(v) for v in self.errors.values())


class Busy(Refused):
    """Another push or drill of the same cluster is active (HTTP 409)."""


class Unconfirmed(Refused):
    """A person's action that moves traffic or deletes was not confirmed by naming the cluster:
    the panel answers with the confirmation page (nothing happened, nothing is audited)."""


class Unreachable(Refused):
    """A push must change nodes that do not answer; `nodes` names them, so the answer can offer
    to skip them."""

    def __init__(self, errors, nodes, active=None):
        super().__init__(errors, active)
        self.nodes = nodes
