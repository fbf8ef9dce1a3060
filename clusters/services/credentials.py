"""SSH credentials (admin only): create, update, delete. Secrets are audited as changed, never
with their value (clusters.audit)."""

from django.db import transaction
from django.db.models import ProtectedError

from clusters import audit, roles
from clusters.models import SSHCredential
from clusters.services import _rules
from clusters.services.errors import Refused

FIELDS = ["name", "username", "private_key", "passphrase"]


def create_credential(user, data):
    _rules.require(user, roles.ADMIN)
    credential = SSHCredential()
    _rules.apply(credential, data, FIELDS)
    credential.full_clean()
    with transaction.atomic():
        credential.save()
        audit.record(
            user,
            "credential.create",
            credential,
            changes=audit.diff({}, audit.snapshot(credential, FIELDS)),
            result="created",
        )
    return credential


def update_credential(user, credential, data):
    """`data` holds the fields to change; a secret left out is kept, "" removes it."""
    _rules.require(user, roles.ADMIN)
    credential = SSHCredential.objects.get(pk=credential.pk)
    before = audit.snapshot(credential, FIELDS)
    _rules.apply(credential, data, FIELDS)
    credential.full_clean()
    with transaction.atomic():
        credential.save()
        changes = audit.diff(before, audit.snapshot(credential, FIELDS))
        # Saving what was already there is no change, and the audit log lists changes.
        if changes:
            audit.record(user, "credential.update", credential, changes=changes, result="saved")
    return credential


def delete_credential(user, credential):
    """Refused while a cluster or node uses it (the database protects it too)."""
    _rules.require(user, roles.ADMIN)
    before = audit.snapshot(credential, FIELDS)
    try:
        with transaction.atomic():
            audit.record(
                user,
                "credential.delete",
                credential,
                changes=audit.diff(before, {}),
                result="deleted",
            )
            credential.delete()
    except ProtectedError:
        error = Refused(
            {
                "__all__": f"Credential {credential.name} is in use by a cluster or "
                "node; give those another credential first."
            }
        )
        _rules.refused(user, "credential.delete", credential, error)
        raise error from None
