"""Users and their roles (admin only). Passwords never enter the audit log."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from clusters import audit, roles
from clusters.models import ApiToken
from clusters.services import _rules
from clusters.services.errors import Refused

NO_ROLE = ""


def _assign(target, role):
    if role:
        roles.assign(target, role)
    else:
        target.groups.remove(*Group.objects.filter(name__in=roles.ROLES))
        target.__dict__.pop("_vipanel_role", None)


def set_role(user, target, role):
    """Give `target` exactly `role` (NO_ROLE: no access). A superuser is always an admin, and
    nobody takes the admin role from themselves (they could not give it back)."""
    _rules.require(user, roles.ADMIN)
    if role not in (*roles.ROLES, NO_ROLE):
        raise Refused({"role": "Pick one of the roles offered."})
    if target.is_superuser and role != roles.ADMIN:
        raise Refused(
            {"role": f"{target.get_username()} is a superuser: always an admin whatever the role."}
        )
    if user is not None and target.pk == user.pk and role != roles.ADMIN:
        raise Refused({"role": "You cannot take the admin role from yourself; ask another admin."})
    old = roles.role_of(target) or "none"
    with transaction.atomic():
        _assign(target, role)
        audit.record(
            user,
            "user.role",
            target,
            object_type="user",
            changes={"role": [old, role or "none"]},
            result="saved",
        )
    return target


def create_user(user, username, password=None, role=roles.VIEWER):
    """A new user with `role`; password None: no usable password (token-only users)."""
    _rules.require(user, roles.ADMIN)
    target = get_user_model()(username=username)
    if password is None:
        target.set_unusable_password()
    else:
        target.set_password(password)
    target.full_clean(exclude=["password"])
    with transaction.atomic():
        target.save()
        _assign(target, role)
        audit.record(
            user,
            "user.create",
            target,
            object_type="user",
            changes={"role": [None, role or "none"]},
            result="created",
        )
    return target


def create_superuser(user, username, password):
    """The first admin (`manage.py create_admin`); Refused if one exists already."""
    _rules.require(user, roles.ADMIN)
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        raise Refused({"__all__": "An admin user exists already; log in with it."})
    with transaction.atomic():
        target = User.objects.create_superuser(username=username, password=password, email="")
        audit.record(
            user,
            "user.create",
            target,
            object_type="user",
            changes={"role": [None, roles.ADMIN]},
            result="created (superuser)",
        )
    return target


def issue_api_token(user, target, name=""):
    """-> (ApiToken, key). The key is shown this once; only its hash is stored."""
    _rules.require(user, roles.ADMIN)
    if not target.is_active:
        raise Refused(
            {"__all__": f"'{target.get_username()}' is inactive: a token for them would not work."}
        )
    with transaction.atomic():
        token, key = ApiToken.issue(target, name=name)
        audit.record(
            user,
            "token.create",
            target,
            object_type="user",
            changes={"token": [None, token.prefix]},
            result="issued",
        )
    return token, key


def revoke_api_token(user, token):
    _rules.require(user, roles.ADMIN)
    owner = token.user
    with transaction.atomic():
        audit.record(
            user,
            "token.delete",
            owner,
            object_type="user",
            changes={"token": [token.prefix, None]},
            result="revoked",
        )
        token.delete()


def record_admin_change(user, target, action, changes):
    """An admin changed a user or group in the admin site (django.contrib.auth's own forms):
    audited in the admin's transaction like every other change. No password value enters."""
    _rules.require(user, roles.ADMIN)
    # Saving what was already there is no change, and the audit log lists changes.
    if changes:
        audit.record(
            user,
            action,
            target,
            object_type=target._meta.model_name,
            changes=changes,
            result="saved",
        )


def record_unlock(user, username, address):
    """An admin removed a login lockout (django-axes' AccessAttempt) in the admin site."""
    _rules.require(user, roles.ADMIN)
    audit.record(
        user,
        "login.unlock",
        object_type="login lockout",
        changes={
            "locked out": [f"{username or '(any user)'} from {address or '(any address)'}", None]
        },
        result="unlocked",
    )


def delete_user(user, target):
    _rules.require(user, roles.ADMIN)
    if user is not None and target.pk == user.pk:
        raise Refused({"__all__": "You cannot delete yourself; ask another admin."})
    with transaction.atomic():
        audit.record(
            user,
            "user.delete",
            target,
            object_type="user",
            changes={"role": [roles.role_of(target) or "none", None]},
            result="deleted",
        )
        target.delete()
