"""Roles as Django groups: viewer reads, operator edits and pushes, admin also manages
credentials and users. One place decides what each role may do."""

import ipaddress
from functools import wraps
from urllib.parse import urlsplit

from django.core.exceptions import PermissionDenied, ValidationError

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
# Each role includes the ones before it.
_RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}


# Who may have a secret back (a node's keepalived.conf with its auth_pass, to place by hand):
# everyone else gets it masked. Forms and the API never show a secret to anyone.
SECRETS_READER = ADMIN


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


# --- Fields only an admin sets ---------------------------------------------------------------
# Each runs as root on every node or names the file root writes there: an operator who could set
# one would be root on the nodes. The one rule, called by the web forms, the API and services.
ADMIN_ONLY_CLUSTER_FIELDS = ("reload_command", "check_script", "config_path")
ADMIN_ONLY_MESSAGES = {
    "reload_command": "Only an admin may set reload_command: it runs as a shell command on "
    "every node.",
    "check_script": "Only an admin may set a free-form check command: it runs as root on every "
    "node. Pick a process, TCP port, URL or file check instead.",
    "config_path": "Only an admin may change config_path: it names the file written as root on "
    "every node.",
    "check_target": "Only an admin may point a URL check at another host: every node would "
    "fetch it as root every few seconds. Check a URL on the node itself (127.0.0.1, [::1] or "
    "localhost), or ask an admin.",
}


def _url_elsewhere(check_type, target):
    """Whether an HTTP check's URL is on a host other than the node itself: each node's
    keepalived would fetch it as root, which reaches whatever the nodes' network reaches."""
    if check_type != "http" or not target:
        return False
    try:
        host = urlsplit(target).hostname or ""
    except ValueError:
        return True
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a DNS name


def admin_only_violations(user, cluster, data):
    """{field: message} for each admin-only field `data` would change, unless user is an admin.

    `cluster` is the stored cluster (or an unsaved one with the model defaults, for a create);
    `data` maps field names to the new values. Clearing the free-form check command (going back
    to no check, or to a typed one) takes no power away from anyone, so any operator may do it.
    A check type of 'command' counts as setting check_script, and a URL check of another host
    than the node itself counts as admin-only too.
    """
    if can_admin(user):
        return {}
    refused = {}
    for name in ADMIN_ONLY_CLUSTER_FIELDS:
        if name not in data:
            continue
        new, old = data[name], getattr(cluster, name)
        if new == old or (name == "check_script" and not new):
            continue
        refused[name] = ADMIN_ONLY_MESSAGES[name]
    if (
        data.get("check_type") == "command"
        and getattr(cluster, "check_type", "") != "command"
        and "check_script" not in refused
    ):
        refused["check_type"] = ADMIN_ONLY_MESSAGES["check_script"]
    check_type = data.get("check_type", getattr(cluster, "check_type", ""))
    target = data.get("check_target", getattr(cluster, "check_target", ""))
    changed = (check_type, target) != (
        getattr(cluster, "check_type", ""),
        getattr(cluster, "check_target", ""),
    )
    if changed and _url_elsewhere(check_type, target):
        refused["check_target"] = ADMIN_ONLY_MESSAGES["check_target"]
    return refused


def check_admin_only(user, cluster, data):
    """Raise a field-keyed ValidationError when admin_only_violations() finds any."""

    refused = admin_only_violations(user, cluster, data)
    if refused:
        raise ValidationError(refused)


# Where a node is reached (address, SSH port) decides which host receives its file. A node
# adopted with carried text (clusters.models.CarriedBlock: its own LVS blocks, notify lines...)
# gets that text back in every push; on another host it would run someone else's commands as
# root there. So moving such a node is an admin's, like the other root-level fields.
READDRESS_FIELDS = ("address", "ssh_port")


def readdress_violations(user, node, data, carried):
    """{field: message} for each of READDRESS_FIELDS `data` would change on a `node` that has
    `carried` text, unless `user` is an admin (None is the system)."""
    if not carried or user is None or can_admin(user):
        return {}
    return {
        name: f"Only an admin may change the {name.replace('_', ' ')} of node {node.name}: it "
        "carries statements adopted from its own keepalived.conf (run as root there), which "
        "vipanel writes back to the host it reaches at this address only."
        for name in READDRESS_FIELDS
        if name in data and str(data[name]) != str(getattr(node, name))
    }
