"""The audit log: who changed or pushed what, when, and the result. Secrets never enter it.

Services write each entry inside the transaction of the change it records (clusters.services),
so a change and its entry are committed together or not at all.
"""

import hashlib
import hmac
import secrets

from clusters.models import AuditEntry

# Fields whose values are never written to the log, only that they changed.
SECRET_FIELDS = {"private_key", "passphrase", "auth_pass", "notify_secret", "notify_key"}
MASK = "********"


# A per-process key: a snapshot can tell two secrets apart without holding either, and its
# digests mean nothing outside this process (snapshots are compared, never stored).
_SNAPSHOT_KEY = secrets.token_bytes(32)


class SecretValue:
    """A secret as a snapshot holds it: equal to another exactly when the secrets are equal,
    never showing the value. A masked string would make every change look like "no change"."""

    __slots__ = ("digest",)

    def __init__(self, value):
        raw = value if isinstance(value, bytes) else str(value).encode()
        self.digest = hmac.new(_SNAPSHOT_KEY, raw, hashlib.sha256).digest()

    def __eq__(self, other):
        return isinstance(other, SecretValue) and hmac.compare_digest(self.digest, other.digest)

    def __hash__(self):
        return hash(self.digest)

    def __repr__(self):
        return MASK


def mask(field, value):
    if field in SECRET_FIELDS:
        return SecretValue(value) if value else ""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def snapshot(instance, fields=None):
    """Field values of a model instance, secrets masked, for diffing before and after."""
    values = {}
    for field in instance._meta.concrete_fields:
        if field.name == "id" or (fields and field.name not in fields):
            continue
        # Relations by id: reading the related object would cost a query per field.
        values[field.name] = mask(field.name, getattr(instance, field.attname))
    return values


def secret_change(old, new):
    """[old, new] as the log shows a secret's change, never its value; None when there is
    none. It says only what happened: "(set)" where there was no secret before, "(changed)"
    where one replaced another, "(removed)" only where one really was there and is gone, and
    nothing for an object deleted or made without one ("" and None: no secret either way)."""
    if old == new or (not old and not new):
        return None
    if not old:
        return [None, "(set)"]
    if new is None:
        return ["(secret)", None]  # the object itself was deleted
    return ["(secret)", "(changed)" if new else "(removed)"]


def diff(before, after):
    """{field: [old, new]} for the fields that differ; secrets as secret_change() says."""
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if name in SECRET_FIELDS:
            change = secret_change(old, new)
            if change is not None:
                changes[name] = change
        elif old != new:
            changes[name] = [old, new]
    return changes


def record(user, action, obj=None, *, cluster=None, changes=None, result="", object_type=""):
    if cluster is None and obj is not None:
        cluster = obj if obj._meta.model_name == "cluster" else getattr(obj, "cluster", None)
    return AuditEntry.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        username=user.get_username() if user is not None and user.is_authenticated else "system",
        action=action,
        object_type=object_type or (obj._meta.verbose_name if obj is not None else ""),
        object_repr=str(obj)[:200] if obj is not None else "",
        cluster=cluster if cluster is not None and cluster.pk else None,
        changes=changes or {},
        result=result[:200],
    )
