"""What drf-spectacular needs beyond the views' own annotations: the token security scheme, each
operation's role (`x-vipanel-role`, from the view's `roles`) and the error answers every
operation may give, so the generated schema at /api/v1/schema/ states the whole contract.
"""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from clusters.api.permissions import role_for


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ConflictSerializer(serializers.Serializer):
    """409: the object's state does not allow it now; may name the push in the way."""

    detail = serializers.CharField()
    active = serializers.DictField(
        allow_null=True,
        required=False,
        help_text="The active push in the way: {id, state}.",
    )


VALIDATION_ERRORS = {
    "type": "object",
    "description": "Messages by field name ('__all__' for the object as a whole).",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "clusters.api.auth.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The word Token, a space, and the key: 'Token vip_...' "
            "(python manage.py create_api_token USER --role viewer|operator|admin).",
        }


class StrictCharFieldSchema(OpenApiSerializerFieldExtension):
    """The model's max_length, which the model checks (StrictCharField leaves it to it)."""

    target_class = "clusters.api.serializers.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if self.target.max_length is not None:
            schema["maxLength"] = self.target.max_length
        return schema


def _json(description, schema):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


class RoleAutoSchema(AutoSchema):
    """Adds the role and the error responses (400, 401, 403, 404, 415, 429) to each operation."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        role = role_for(self.view, method.upper())
        if operation is None or role is None:
            return operation
        operation["x-vipanel-role"] = role
        operation["description"] = f"Needs the {role} role. " + operation.get("description", "")
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        responses = operation["responses"]
        defaults = {
            "401": _json("No valid API token", error),
            "403": _json("The token's user lacks the role", error),
            "429": _json("Too many wrong tokens from this address; see Retry-After", error),
        }
        if "{" in path:
            defaults["404"] = _json("No such object", error)
        queries = [p for p in operation.get("parameters", []) if p["in"] == "query"]
        if method.upper() != "GET" or queries:
            defaults["400"] = _json("Invalid input, by field", VALIDATION_ERRORS)
        if method.upper() != "GET":
            defaults["415"] = _json("The body is not application/json", error)
        for code, response in defaults.items():
            responses.setdefault(code, response)
        if "409" in responses:
            conflict = self.resolve_serializer(ConflictSerializer, "response").ref
            responses["409"] = _json(responses["409"].get("description", "Conflict"), conflict)
        operation["responses"] = dict(sorted(responses.items()))
        return operation


# Objects the API may answer without some of their properties.
PARTIAL_RESPONSES = {"Conflict"}


def require_every_returned_field(result, generator, request, public):
    """POSTPROCESSING_HOOKS: every response object always carries all of its fields (defaults
    included), so the schema says so and a client (or schemathesis) may rely on it."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") or name in PARTIAL_RESPONSES:
            continue
        props = component.get("properties")
        if props:
            component["required"] = sorted(k for k, v in props.items() if not v.get("writeOnly"))
    return result


def refuse_unknown_fields(result, generator, request, public):
    """POSTPROCESSING_HOOKS: request bodies may hold only their fields, as the API enforces
    (an unknown field is a 400 naming it)."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and "properties" in component:
            component["additionalProperties"] = False
    return result
