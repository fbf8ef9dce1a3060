"""The OpenAPI schema describes exactly the API: every route and method, every returned field."""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import json
import re

import pytest

from clusters.api import serializers
from clusters.api import urls as api_urls
from clusters.api.schema import SCHEMA
from clusters.models import ConfigPush, FailoverEvent, PushStep
from tests.test_api_support import anon_api, viewer, viewer_api  # noqa: F401

pytestmark = pytest.mark.django_db

SCHEMAS = SCHEMA["components"]["schemas"]


def openapi_path(route):
    return "/api/v1/" + re.sub(r"<int:(\w+)>", r"{\1}", route)


def url_operations():
    return {
        (openapi_path(str(p.pattern)), method.lower())
        for p in api_urls.urlpatterns
        for method in p.callback.api_methods
    }


def schema_operations():
    return {
        (path, method)
        for path, item in SCHEMA["paths"].items()
        for method in item
        if method != "parameters"
    }


def test_every_route_and_method_is_in_the_schema_and_nothing_else():
    assert url_operations() == schema_operations()


def test_path_parameters_match_the_routes():
    for path, item in SCHEMA["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert names == declared, path


def test_every_operation_names_its_role_and_responses():
    for path, item in SCHEMA["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or path.endswith("/schema/"):
                continue
            assert operation["x-vipanel-role"] in ("viewer", "operator", "admin"), path
            handler = next(
                p.callback.api_handlers[method.upper()]
                for p in api_urls.urlpatterns
                if openapi_path(str(p.pattern)) == path
            )
            assert operation["x-vipanel-role"] == handler.role, (path, method)
            assert "401" in operation["responses"] and "403" in operation["responses"]


def refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_every_reference_resolves():
    for ref in refs(SCHEMA):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in SCHEMAS, ref


def test_the_schema_is_served_as_json(anon_api):
    response = anon_api.get("/api/v1/schema/")
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == json.loads(json.dumps(SCHEMA))


def returned(name):
    props = SCHEMAS[name]["properties"]
    return {k for k, v in props.items() if not v.get("writeOnly")}


@pytest.mark.parametrize(
    "resource, name",
    [
        (serializers.CREDENTIAL, "Credential"),
        (serializers.CLUSTER, "Cluster"),
        (serializers.NODE, "Node"),
        (serializers.VIP, "VirtualIP"),
    ],
)
def test_object_schemas_have_exactly_the_returned_fields(cluster, resource, name):
    instance = {
        "Credential": cluster.credential,
        "Cluster": cluster,
        "Node": cluster.nodes.first(),
        "VirtualIP": cluster.vips.first(),
    }[name]
    assert set(serializers.to_dict(resource, instance)) == returned(name)
    write_only = {k for k, v in SCHEMAS[name]["properties"].items() if v.get("writeOnly")}
    assert write_only == set(resource.write_only)


def test_secrets_are_write_only_in_the_schema():
    for name, field in [
        ("Credential", "private_key"),
        ("Credential", "passphrase"),
        ("Cluster", "auth_pass"),
    ]:
        assert SCHEMAS[name]["properties"][field]["writeOnly"] is True
    assert "notify_secret" not in json.dumps(SCHEMA)


def test_operation_schemas_match_what_the_api_returns(viewer_api, cluster):
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.FAILED)
    PushStep.objects.create(push=push, node_name="web-1", position=1)
    event = FailoverEvent.objects.create(
        cluster=cluster, vip_address="192.0.2.100/24", at=push.created, detected_by="sweep"
    )
    push_body = viewer_api.get(f"/api/v1/pushes/{push.pk}/").json()
    assert set(push_body) == returned("Push")
    assert set(push_body["steps"][0]) == returned("PushStep")
    assert set(viewer_api.get(f"/api/v1/clusters/{cluster.pk}/pushes/").json()[0]) == returned(
        "PushSummary"
    )
    status = viewer_api.get(f"/api/v1/clusters/{cluster.pk}/status/").json()
    assert set(status) == returned("Status") - {"events"}
    assert set(status["vips"][0]) == returned("VipStatus")
    assert set(status["nodes"][0]) == returned("NodeStatus")
    assert set(serializers.failover_dict(event)) == returned("Failover")


def test_required_fields_are_those_a_create_must_send():
    assert SCHEMAS["Cluster"]["required"] == ["name", "network", "virtual_router_id"]
    assert SCHEMAS["Node"]["required"] == ["name", "address", "priority"]
    assert SCHEMAS["VirtualIP"]["required"] == ["address"]
    assert SCHEMAS["Credential"]["required"] == ["name", "private_key"]
