"""Records the panel writes itself (pushes, failover events, observations, nonces): only an
admin deletes one, by hand in the admin site, and that deletion is audited like any change."""

from django.db import transaction

from clusters import audit, roles
from clusters.services import _rules


def delete_record(user, obj):
    _rules.require(user, roles.ADMIN)
    with transaction.atomic():
        audit.record(user, f"{obj._meta.model_name}.delete", obj, result="deleted")
        obj.delete()
