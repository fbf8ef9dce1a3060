"""The audit log: who changed or pushed what, when, and the result. Secrets never enter it."""

from clusters.models import AuditEntry

# Fields whose values are never written to the log, only that they changed.
SECRET_FIELDS = {"private_key", "passphrase", "auth_pass", "notify_secret", "notify_key"}
MASK = "********"


def mask(field, value):
    if field in SECRET_FIELDS:
        return MASK if value else ""
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


def diff(before, after):
    """{field: [old, new]} for the fields that differ (secrets appear only as masked)."""
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            if name in SECRET_FIELDS:
                changes[name] = ["(secret)", "(changed)" if new else "(removed)"]
            else:
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
