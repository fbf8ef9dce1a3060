"""Model instances to JSON and JSON onto model instances, as plain functions.

Input is checked for its JSON type here (a string where a number belongs is a 400, not coerced)
and then handed to the model: the instance is built and `full_clean()` decides, so the API
answers with the same rules and messages as the forms and the admin. Secrets are write-only:
no function here ever puts one in its output.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models

from clusters import audit
from clusters.models import Cluster, FailoverEvent, Node, SSHCredential, VirtualIP
from clusters.preview import mask_secrets


@dataclass(frozen=True)
class Resource:
    """How one model looks in the API, by model field name."""

    model: type
    # Names the object in audit actions ("node.update"), as the panel's views do.
    audit_name: str
    # Accepted in input and returned.
    fields: tuple
    # Accepted in input, never returned (secrets).
    write_only: tuple = ()
    # Returned, never accepted (a field may be echoed back unchanged, so GET -> PATCH works).
    read_only: tuple = ("id",)
    # Returned values that are no model field: name -> function of the instance.
    computed: dict = field(default_factory=dict)

    @property
    def writable(self):
        return self.fields + self.write_only

    @property
    def output(self):
        return self.read_only[:1] + self.fields + self.read_only[1:]


CREDENTIAL = Resource(
    SSHCredential,
    "credential",
    fields=("name", "username"),
    write_only=("private_key", "passphrase"),
    read_only=("id", "created", "updated"),
)

CLUSTER = Resource(
    Cluster,
    "cluster",
    fields=(
        "name",
        "network",
        "virtual_router_id",
        "interface",
        "advert_int",
        "unicast",
        "preempt",
        "preempt_delay",
        "check_type",
        "check_target",
        "check_script",
        "check_interval",
        "check_weight",
        "check_fall",
        "check_rise",
        "config_path",
        "reload_command",
        "credential",
    ),
    write_only=("auth_pass",),
    read_only=("id", "auth_pass_set", "created", "updated"),
    # Whether VRRP authentication is on, without a hint of the password.
    computed={"auth_pass_set": lambda cluster: bool(cluster.auth_pass)},
)

NODE = Resource(
    Node,
    "node",
    fields=(
        "name",
        "address",
        "ssh_port",
        "priority",
        "interface",
        "credential",
        "maintenance",
        "host_key_fingerprint",
    ),
    read_only=("id", "cluster", "offered_host_key_fingerprint", "created", "updated"),
)

VIP = Resource(
    VirtualIP,
    "vip",
    fields=("address", "label"),
    read_only=("id", "cluster", "host_address", "created"),
)


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_dict(resource, instance):
    data = {}
    for name in resource.output:
        if name in resource.computed:
            data[name] = resource.computed[name](instance)
            continue
        model_field = resource.model._meta.get_field(name)
        data[name] = _json_value(getattr(instance, model_field.attname))
    return data


def _type_error(model_field, value):
    """What is wrong with the JSON type of value for model_field, or None."""
    if value is None:
        if model_field.null:
            return None
        if isinstance(model_field, (models.CharField, models.TextField)):
            return "This field may not be null; send an empty string to leave it empty."
        return "This field may not be null."
    if model_field.is_relation:
        ok, wanted = isinstance(value, int) and not isinstance(value, bool), "an id (a number)"
    elif isinstance(model_field, models.BooleanField):
        ok, wanted = isinstance(value, bool), "true or false"
    elif isinstance(model_field, models.IntegerField):
        ok, wanted = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    else:
        ok, wanted = isinstance(value, str), "a string"
        if ok and "\x00" in value:
            return "Remove the NUL character."
    if not ok:
        return f"Expected {wanted}, got {_json_type(value)}."
    return None


def _json_type(value):
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def apply(resource, instance, data):
    """Set data's fields on instance and validate it with full_clean().

    Returns {field: [messages]} (empty when the instance may be saved). Nothing is saved here.
    """
    if not isinstance(data, dict):
        return {"__all__": ["Send a JSON object of fields."]}
    errors = {}
    current = to_dict(resource, instance) if instance.pk else {}
    for name, value in data.items():
        if name in resource.writable:
            problem = _type_error(resource.model._meta.get_field(name), value)
            if problem:
                errors[name] = [problem]
        elif name in resource.output:
            if name not in current or current[name] != value:
                errors[name] = ["This field is read-only."]
        else:
            errors[name] = [f"Unknown field; the fields are {', '.join(resource.writable)}."]
    if errors:
        return errors
    for name, value in data.items():
        if name in resource.writable:
            setattr(instance, resource.model._meta.get_field(name).attname, value)
    try:
        instance.full_clean()
    except ValidationError as e:
        return e.message_dict
    return {}


# --- Operations ------------------------------------------------------------------------------


def scrub(text, secrets):
    """text with auth_pass lines masked and any of the given secret values replaced."""
    text = mask_secrets(text or "")
    for secret in secrets:
        if secret:
            text = text.replace(secret, audit.MASK)
    return text


def cluster_secrets(cluster):
    return [cluster.auth_pass, cluster.notify_secret]


def push_dict(push, steps=None, secrets=()):
    """A push and its steps. Node output is kept (keepalived -t's messages), secrets scrubbed."""
    steps = push.steps.all() if steps is None else steps
    return {
        "id": push.pk,
        "cluster": push.cluster_id,
        "kind": push.kind,
        "state": push.state,
        "requested_by": push.requested_by.get_username() if push.requested_by else None,
        "created": _json_value(push.created),
        "started": _json_value(push.started),
        "finished": _json_value(push.finished),
        "detail": scrub(push.detail, secrets),
        "steps": [
            {
                "node": step.node_name,
                "node_id": step.node_id,
                "position": step.position,
                "state": step.state,
                "detail": scrub(step.detail, secrets),
                "exit_code": step.exit_code,
                "output": scrub(step.output, secrets),
                "started": _json_value(step.started),
                "finished": _json_value(step.finished),
            }
            for step in steps
        ],
    }


def push_summary(push):
    """A push in a list: no steps, no log."""
    return {
        "id": push.pk,
        "cluster": push.cluster_id,
        "kind": push.kind,
        "state": push.state,
        "created": _json_value(push.created),
        "finished": _json_value(push.finished),
    }


def failover_dict(event: FailoverEvent):
    return {
        "id": event.pk,
        "at": _json_value(event.at),
        "vip": event.vip_address,
        "vip_id": event.vip_id,
        "from_node": event.from_node,
        "to_node": event.to_node,
        "kind": event.kind,
        "detected_by": event.detected_by,
        "detail": event.detail,
    }


def status_dict(cluster):
    """What the last sweep (or notify report) saw of a cluster, from NodeState and VipState.

    Two queries whatever the cluster's size. A node never probed has reachable null.
    """
    nodes = list(cluster.nodes.select_related("state").order_by("-priority", "pk"))
    vips = list(cluster.vips.select_related("state__holder").order_by("pk"))
    states = {n.pk: getattr(n, "state", None) for n in nodes}
    node_rows = []
    for node in nodes:
        state = states[node.pk]
        node_rows.append(
            {
                "id": node.pk,
                "name": node.name,
                "maintenance": node.maintenance,
                "checked_at": _json_value(state.checked_at) if state else None,
                "reachable": state.reachable if state else None,
                "keepalived_running": state.keepalived_running if state else None,
                "vrrp_state": state.vrrp_state if state else "UNKNOWN",
                "holds": list(state.holds) if state else [],
                "drift": state.drift if state else None,
                "error": state.error if state else "",
                "host_key_problem": state.host_key_problem if state else False,
            }
        )
    vip_rows = []
    for vip in vips:
        state = getattr(vip, "state", None)
        holders = [row["name"] for row in node_rows if vip.address in row["holds"]]
        settled = state is not None and not state.split_brain and not state.no_holder
        vip_rows.append(
            {
                "id": vip.pk,
                "address": vip.address,
                "holder": state.holder.name if settled and state.holder else None,
                "holders": holders,
                "since": _json_value(state.since) if state else None,
                "split_brain": state.split_brain if state else False,
                "no_holder": state.no_holder if state else False,
            }
        )
    checked = [s.checked_at for s in states.values() if s is not None]
    checked += [v.state.checked_at for v in vips if getattr(v, "state", None) is not None]
    return {
        "cluster": cluster.pk,
        "name": cluster.name,
        "checked_at": _json_value(max(checked)) if checked else None,
        "split_brain": any(row["split_brain"] for row in vip_rows),
        "vips": vip_rows,
        "nodes": node_rows,
    }
