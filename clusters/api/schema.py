"""The OpenAPI 3 description of /api/v1/, served at /api/v1/schema/.

Paths are written by hand; the object schemas are derived from the same Resource definitions
the serializers use (clusters/api/serializers.py), so a field added there appears here.
tests/test_api_schema.py checks that every route and method in urls.py is described, and that
every described object has exactly the fields the API returns.
"""

from django.db import models

from clusters.api.base import DEFAULT_LIMIT, MAX_LIMIT
from clusters.api.serializers import CLUSTER, CREDENTIAL, NODE, VIP
from clusters.models import ConfigPush, FailoverEvent, PushStep

VERSION = "1.0.0"


def _field_schema(model, name):
    field = model._meta.get_field(name)
    if field.is_relation:
        schema = {
            "type": "integer",
            "description": f"id of the {field.related_model._meta.verbose_name}",
        }
    elif isinstance(field, models.BooleanField):
        schema = {"type": "boolean"}
    elif isinstance(field, models.IntegerField):
        schema = {"type": "integer"}
        for validator in field.validators:
            if validator.code == "min_value":
                schema["minimum"] = validator.limit_value
            elif validator.code == "max_value":
                schema["maximum"] = validator.limit_value
    elif isinstance(field, models.DateTimeField):
        schema = {"type": "string", "format": "date-time"}
    else:
        schema = {"type": "string"}
        if field.max_length:
            schema["maxLength"] = field.max_length
    if field.null:
        schema["nullable"] = True
    if field.help_text and "description" not in schema:
        schema["description"] = str(field.help_text)
    if field.has_default() and not callable(field.default):
        schema["default"] = field.default
    return schema


def _required(model, names):
    """Fields a create must send: not blank and without a default."""
    required = []
    for name in names:
        field = model._meta.get_field(name)
        if not field.blank and not field.has_default() and not field.null:
            required.append(name)
    return required


def _object(resource, computed=None, notes=None):
    properties = {}
    for name in resource.output:
        if name in resource.computed:
            properties[name] = dict(computed[name], readOnly=True)
            continue
        schema = _field_schema(resource.model, name)
        if name in resource.read_only:
            schema["readOnly"] = True
        properties[name] = schema
    for name in resource.write_only:
        schema = _field_schema(resource.model, name)
        schema["writeOnly"] = True
        schema["description"] = "Write-only: stored encrypted, never returned. " + schema.get(
            "description", ""
        )
        properties[name] = schema
    for name, note in (notes or {}).items():
        properties[name]["description"] = (
            properties[name].get("description", "") + " " + note
        ).strip()
    return {
        "type": "object",
        "properties": properties,
        "required": _required(resource.model, resource.writable),
        "additionalProperties": False,
    }


def _enum(choices):
    return {"type": "string", "enum": [value for value, _ in choices]}


STRING = {"type": "string"}
NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}
INTEGER = {"type": "integer"}

SCHEMAS = {
    "Credential": _object(CREDENTIAL),
    "Cluster": _object(
        CLUSTER,
        computed={
            "auth_pass_set": {
                "type": "boolean",
                "description": "Whether an auth_pass is stored (the value is never returned).",
            }
        },
        notes={
            "reload_command": "Only an admin may set it (403 otherwise).",
            "auth_pass": "In a PATCH, an empty string removes it; leave it out to keep it.",
        },
    ),
    "Node": _object(
        NODE,
        notes={
            "host_key_fingerprint": "Pinned on first contact; once pinned it changes only "
            "through POST /nodes/{node_id}/repin/.",
        },
    ),
    "VirtualIP": _object(VIP),
    "PushStep": {
        "type": "object",
        "properties": {
            "node": STRING,
            "node_id": {"type": "integer", "nullable": True},
            "position": INTEGER,
            "state": _enum(PushStep.State.choices),
            "detail": STRING,
            "exit_code": {"type": "integer", "nullable": True},
            "output": {"type": "string", "description": "The node's output (keepalived -t)."},
            "started": NULLABLE_TIME,
            "finished": NULLABLE_TIME,
        },
    },
    "PushSummary": {
        "type": "object",
        "properties": {
            "id": INTEGER,
            "cluster": INTEGER,
            "kind": _enum(ConfigPush.Kind.choices),
            "state": _enum(ConfigPush.State.choices),
            "created": {"type": "string", "format": "date-time"},
            "finished": NULLABLE_TIME,
        },
    },
    "Push": {
        "type": "object",
        "properties": {
            "id": INTEGER,
            "cluster": INTEGER,
            "kind": _enum(ConfigPush.Kind.choices),
            "state": _enum(ConfigPush.State.choices),
            "requested_by": {"type": "string", "nullable": True},
            "created": {"type": "string", "format": "date-time"},
            "started": NULLABLE_TIME,
            "finished": NULLABLE_TIME,
            "detail": STRING,
            "steps": {"type": "array", "items": {"$ref": "#/components/schemas/PushStep"}},
        },
    },
    "NodePreview": {
        "type": "object",
        "properties": {
            "node": STRING,
            "node_id": INTEGER,
            "changed": {
                "type": "boolean",
                "nullable": True,
                "description": "null when the live file could not be read (see error).",
            },
            "diff": {
                "type": "string",
                "description": "Unified diff, live -> rendered; auth_pass masked.",
            },
            "error": STRING,
            "maintenance": {"type": "boolean"},
        },
    },
    "Preview": {
        "type": "object",
        "properties": {
            "cluster": INTEGER,
            "nodes": {"type": "array", "items": {"$ref": "#/components/schemas/NodePreview"}},
        },
    },
    "VipStatus": {
        "type": "object",
        "properties": {
            "id": INTEGER,
            "address": STRING,
            "holder": {
                "type": "string",
                "nullable": True,
                "description": "The one node holding it; null in split brain or with no holder.",
            },
            "holders": {"type": "array", "items": STRING},
            "since": NULLABLE_TIME,
            "split_brain": {"type": "boolean"},
            "no_holder": {"type": "boolean"},
        },
    },
    "NodeStatus": {
        "type": "object",
        "properties": {
            "id": INTEGER,
            "name": STRING,
            "maintenance": {"type": "boolean"},
            "checked_at": NULLABLE_TIME,
            "reachable": {
                "type": "boolean",
                "nullable": True,
                "description": "null: never probed.",
            },
            "keepalived_running": {"type": "boolean", "nullable": True},
            "vrrp_state": {
                "type": "string",
                "description": "MASTER, BACKUP, FAULT, STOPPED or UNKNOWN.",
            },
            "holds": {"type": "array", "items": STRING},
            "drift": {
                "type": "boolean",
                "nullable": True,
                "description": "The live config differs from what vipanel renders.",
            },
            "error": STRING,
            "host_key_problem": {"type": "boolean"},
        },
    },
    "Status": {
        "type": "object",
        "properties": {
            "cluster": INTEGER,
            "name": STRING,
            "checked_at": NULLABLE_TIME,
            "split_brain": {"type": "boolean"},
            "vips": {"type": "array", "items": {"$ref": "#/components/schemas/VipStatus"}},
            "nodes": {"type": "array", "items": {"$ref": "#/components/schemas/NodeStatus"}},
            "events": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Failover"},
                "description": "Only from POST .../refresh/: the events this probe found.",
            },
        },
    },
    "Failover": {
        "type": "object",
        "properties": {
            "id": INTEGER,
            "at": {"type": "string", "format": "date-time"},
            "vip": STRING,
            "vip_id": {"type": "integer", "nullable": True},
            "from_node": STRING,
            "to_node": STRING,
            "kind": _enum(FailoverEvent.Kind.choices),
            "detected_by": _enum(FailoverEvent.DetectedBy.choices),
            "detail": STRING,
        },
    },
    "Error": {
        "type": "object",
        "properties": {"detail": STRING},
        "additionalProperties": True,
    },
    "ValidationErrors": {
        "type": "object",
        "description": "Messages by field name ('__all__' for the object as a whole).",
        "additionalProperties": {"type": "array", "items": STRING},
    },
}


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description, schema):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list(name):
    return {"type": "array", "items": _ref(name)}


ERROR_RESPONSES = {
    "400": _json("Invalid input, by field", _ref("ValidationErrors")),
    "401": _json("No valid API token", _ref("Error")),
    "403": _json("The token's user lacks the role", _ref("Error")),
    "404": _json("No such object", _ref("Error")),
}


def _param(name, where="path", schema=None, description=""):
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema or INTEGER,
        **({"description": description} if description else {}),
    }


PAGE = [
    _param(
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        'At most this many items. When more follow, a Link header with rel="next" gives them.',
    ),
    _param("offset", "query", {"type": "integer", "minimum": 0, "default": 0}),
]


def _op(summary, role, responses, body=None, params=(), codes=("401", "403", "404")):
    operation = {
        "summary": summary,
        "description": f"Needs the {role} role.",
        "x-vipanel-role": role,
        "responses": {**responses, **{c: ERROR_RESPONSES[c] for c in codes}},
    }
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    if params:
        operation["parameters"] = list(params)
    return operation


def _patch_body(name):
    """A PATCH sends any subset of the writable fields."""
    return {"allOf": [_ref(name)], "description": "Any subset of the fields."}


CONFLICT = {"409": _json("Not possible in the current state", _ref("Error"))}
NO_CONTENT = {"204": {"description": "Deleted"}}
WRITE = ("400", "401", "403", "404")
CLUSTER_ID = _param("cluster_id")
NODE_ID = _param("node_id")
VIP_ID = _param("vip_id")
PUSH_ID = _param("push_id")

PATHS = {
    "/api/v1/schema/": {
        "get": {
            "summary": "This description (no token needed)",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3 document"}},
        }
    },
    "/api/v1/credentials/": {
        "get": _op(
            "SSH credentials: names and user names only",
            "operator",
            {"200": _json("Credentials by name", _list("Credential"))},
            params=PAGE,
            codes=("400", "401", "403"),
        ),
        "post": _op(
            "Store an SSH credential (the key and passphrase are write-only)",
            "admin",
            {"201": _json("Stored", _ref("Credential"))},
            body=_ref("Credential"),
            codes=("400", "401", "403"),
        ),
    },
    "/api/v1/clusters/": {
        "get": _op(
            "Clusters by name",
            "viewer",
            {"200": _json("Clusters", _list("Cluster"))},
            params=PAGE,
            codes=("400", "401", "403"),
        ),
        "post": _op(
            "Create a cluster",
            "operator",
            {"201": _json("Created", _ref("Cluster"))},
            body=_ref("Cluster"),
            codes=("400", "401", "403"),
        ),
    },
    "/api/v1/clusters/{cluster_id}/": {
        "parameters": [CLUSTER_ID],
        "get": _op("A cluster", "viewer", {"200": _json("The cluster", _ref("Cluster"))}),
        "patch": _op(
            "Change a cluster",
            "operator",
            {"200": _json("Changed", _ref("Cluster"))},
            body=_patch_body("Cluster"),
            codes=WRITE,
        ),
        "delete": _op(
            "Delete a cluster with its nodes, VIPs and history (409 while a push is active)",
            "operator",
            {**NO_CONTENT, **CONFLICT},
        ),
    },
    "/api/v1/clusters/{cluster_id}/nodes/": {
        "parameters": [CLUSTER_ID],
        "get": _op(
            "A cluster's nodes, highest priority first",
            "viewer",
            {"200": _json("Nodes", _list("Node"))},
            params=PAGE,
            codes=WRITE,
        ),
        "post": _op(
            "Add a node",
            "operator",
            {"201": _json("Added", _ref("Node"))},
            body=_ref("Node"),
            codes=WRITE,
        ),
    },
    "/api/v1/nodes/{node_id}/": {
        "parameters": [NODE_ID],
        "get": _op("A node", "viewer", {"200": _json("The node", _ref("Node"))}),
        "patch": _op(
            "Change a node",
            "operator",
            {"200": _json("Changed", _ref("Node"))},
            body=_patch_body("Node"),
            codes=WRITE,
        ),
        "delete": _op("Delete a node", "operator", NO_CONTENT),
    },
    "/api/v1/nodes/{node_id}/repin/": {
        "parameters": [NODE_ID],
        "post": _op(
            "Accept the host key the node now offers (409 when it offers none)",
            "operator",
            {"200": _json("Re-pinned", _ref("Node")), **CONFLICT},
            body={
                "type": "object",
                "properties": {
                    "fingerprint": {
                        "type": "string",
                        "description": "Optional: the offered key you compared; 409 if the "
                        "node offers another by now.",
                    }
                },
                "additionalProperties": False,
            },
            codes=WRITE,
        ),
    },
    "/api/v1/clusters/{cluster_id}/vips/": {
        "parameters": [CLUSTER_ID],
        "get": _op(
            "A cluster's virtual IPs",
            "viewer",
            {"200": _json("VIPs", _list("VirtualIP"))},
            params=PAGE,
            codes=WRITE,
        ),
        "post": _op(
            "Add a virtual IP",
            "operator",
            {"201": _json("Added", _ref("VirtualIP"))},
            body=_ref("VirtualIP"),
            codes=WRITE,
        ),
    },
    "/api/v1/vips/{vip_id}/": {
        "parameters": [VIP_ID],
        "get": _op("A virtual IP", "viewer", {"200": _json("The VIP", _ref("VirtualIP"))}),
        "delete": _op("Delete a virtual IP", "operator", NO_CONTENT),
    },
    "/api/v1/clusters/{cluster_id}/pushes/": {
        "parameters": [CLUSTER_ID],
        "get": _op(
            "A cluster's pushes, newest first",
            "viewer",
            {"200": _json("Pushes", _list("PushSummary"))},
            params=PAGE,
            codes=WRITE,
        ),
        "post": _op(
            "Start a rolling push (400 when the cluster is not ready, 409 while another runs)",
            "operator",
            {"202": _json("Queued", _ref("Push")), **CONFLICT},
            codes=WRITE,
        ),
    },
    "/api/v1/pushes/{push_id}/": {
        "parameters": [PUSH_ID],
        "get": _op("A push and its steps", "viewer", {"200": _json("The push", _ref("Push"))}),
    },
    "/api/v1/pushes/{push_id}/resume/": {
        "parameters": [PUSH_ID],
        "post": _op(
            "Resume a failed or interrupted push (409 otherwise)",
            "operator",
            {"202": _json("Queued again", _ref("Push")), **CONFLICT},
            codes=WRITE,
        ),
    },
    "/api/v1/clusters/{cluster_id}/preview/": {
        "parameters": [CLUSTER_ID],
        "get": _op(
            "What a push would change on each node (reads the live files over SSH)",
            "operator",
            {"200": _json("Per node", _ref("Preview"))},
        ),
    },
    "/api/v1/clusters/{cluster_id}/status/": {
        "parameters": [CLUSTER_ID],
        "get": _op(
            "What the last sweep saw: VIP holders, node states, split brain",
            "viewer",
            {"200": _json("Status", _ref("Status"))},
        ),
    },
    "/api/v1/clusters/{cluster_id}/refresh/": {
        "parameters": [CLUSTER_ID],
        "post": _op(
            "Probe every node now, record it, and return the status",
            "operator",
            {"200": _json("Fresh status", _ref("Status"))},
            codes=WRITE,
        ),
    },
    "/api/v1/clusters/{cluster_id}/failovers/": {
        "parameters": [CLUSTER_ID],
        "get": _op(
            "Failover history, newest first",
            "viewer",
            {"200": _json("Events", _list("Failover"))},
            params=[
                _param(
                    "since",
                    "query",
                    {"type": "string", "format": "date-time"},
                    "Only events at or after this ISO 8601 time (no offset: the server's "
                    "TIME_ZONE).",
                ),
                *PAGE,
            ],
            codes=WRITE,
        ),
    },
}

SCHEMA = {
    "openapi": "3.0.3",
    "info": {
        "title": "vipanel API",
        "version": VERSION,
        "description": "Clusters, nodes and virtual IPs of keepalived VRRP clusters; pushes, "
        "status and failover history. Authenticate with 'Authorization: Token KEY' (python "
        "manage.py create_api_token USER --role viewer|operator|admin). Secrets are write-only.",
    },
    "servers": [{"url": "/"}],
    "security": [{"token": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "token": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "The word Token, a space, and the key: 'Token vip_...'.",
            }
        },
    },
}
