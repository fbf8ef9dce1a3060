"""The generated OpenAPI schema describes exactly the API: every route and method, every
returned field, the roles and the errors; the docs page is served from our own static files."""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import json
import re
from html.parser import HTMLParser

import pytest
from django.urls import URLPattern

from alerts import api_urls as alerts_api_urls
from clusters.api import urls as api_urls
from clusters.models import ConfigPush, FailoverEvent, PushStep
from tests.api_schema import generated, operations
from tests.test_api_support import anon_api, viewer, viewer_api  # noqa: F401

pytestmark = pytest.mark.django_db

SCHEMA = generated()
SCHEMAS = SCHEMA["components"]["schemas"]
UNDOCUMENTED = {"schema/", "docs/"}  # the schema itself and its page


# Where each URL module is mounted (vipanel/urls.py): the alerts API shares the one schema.
MOUNTS = [("/api/v1/", api_urls), ("/api/v1/alerts/", alerts_api_urls)]


def openapi_path(route, prefix="/api/v1/"):
    return prefix + re.sub(r"<int:(\w+)>", r"{\1}", route)


def api_patterns():
    """[(OpenAPI path, URL pattern)] of every API route."""
    return [
        (openapi_path(str(p.pattern), prefix), p)
        for prefix, module in MOUNTS
        for p in module.urlpatterns
    ]


def url_operations():
    found = set()
    for path, pattern in api_patterns():
        assert isinstance(pattern, URLPattern)
        if str(pattern.pattern) in UNDOCUMENTED:
            continue
        view = pattern.callback.view_class
        for method in view.http_method_names:
            if hasattr(view, method):
                found.add((path, method.upper()))
    return found


def test_every_route_and_method_is_in_the_schema_and_nothing_else():
    assert url_operations() == {(path, method) for method, path, _ in operations()}


def test_the_schema_is_valid_openapi_3():
    from drf_spectacular.validation import validate_schema

    validate_schema(json.loads(json.dumps(SCHEMA)))
    assert SCHEMA["openapi"].startswith("3.")


def test_path_parameters_are_integers():
    for path, item in SCHEMA["paths"].items():
        for method, operation in item.items():
            names = set(re.findall(r"{(\w+)}", path))
            params = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "path"}
            assert set(params) == names, (path, method)
            assert all(p["schema"]["type"] == "integer" for p in params.values())


def test_every_operation_names_its_role_its_errors_and_the_token():
    assert SCHEMA["components"]["securitySchemes"]["token"] == {
        **SCHEMA["components"]["securitySchemes"]["token"],
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
    }
    for path, item in SCHEMA["paths"].items():
        for method, operation in item.items():
            view = next(p.callback.view_class for route, p in api_patterns() if route == path)
            assert operation["x-vipanel-role"] == view.roles[method.upper()], (path, method)
            assert operation["security"] == [{"token": []}]
            for code in ("401", "403", "429"):
                assert code in operation["responses"], (path, method, code)
            if "{" in path:
                assert "404" in operation["responses"], (path, method)
            if method != "get":
                assert "400" in operation["responses"], (path, method)


def test_the_status_codes_are_the_documented_ones():
    def codes(path, method):
        return {c for c in SCHEMA["paths"][path][method]["responses"] if c.startswith("2")}

    assert codes("/api/v1/clusters/", "post") == {"201"}
    assert codes("/api/v1/clusters/{cluster_id}/", "delete") == {"204"}
    assert codes("/api/v1/clusters/{cluster_id}/pushes/", "post") == {"202"}
    assert codes("/api/v1/pushes/{push_id}/resume/", "post") == {"202"}
    assert "409" in SCHEMA["paths"]["/api/v1/clusters/{cluster_id}/pushes/"]["post"]["responses"]


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


def test_the_schema_is_served_as_json_without_a_token(anon_api):
    response = anon_api.get("/api/v1/schema/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["paths"].keys() == SCHEMA["paths"].keys()


def properties(name):
    return SCHEMAS[name]["properties"]


@pytest.mark.parametrize(
    "url, name",
    [
        ("/api/v1/clusters/{cluster}/", "Cluster"),
        ("/api/v1/nodes/{node}/", "Node"),
        ("/api/v1/vips/{vip}/", "VirtualIP"),
    ],
)
def test_object_schemas_have_exactly_the_returned_fields(viewer_api, cluster, url, name):
    ids = {"cluster": cluster.pk, "node": cluster.nodes.first().pk, "vip": cluster.vips.first().pk}
    body = viewer_api.get(url.format(**ids)).json()
    assert set(body) == set(properties(name))
    assert set(SCHEMAS[name]["required"]) == set(body)


def test_the_credential_schema_has_the_returned_fields(cluster):
    assert set(properties("Credential")) == {"id", "name", "username", "created", "updated"}


def test_secrets_are_write_only_in_the_schema():
    for name, field in [
        ("CredentialRequest", "private_key"),
        ("CredentialRequest", "passphrase"),
        ("ClusterRequest", "auth_pass"),
        ("PatchedClusterRequest", "auth_pass"),
    ]:
        assert properties(name)[field]["writeOnly"] is True
    for name in ("Credential", "Cluster"):
        assert not {"private_key", "passphrase", "auth_pass"} & set(properties(name))
    assert "notify_secret" not in json.dumps(SCHEMA)


def test_operation_schemas_match_what_the_api_returns(viewer_api, cluster):
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.FAILED)
    PushStep.objects.create(push=push, node_name="web-1", position=1)
    FailoverEvent.objects.create(
        cluster=cluster, vip_address="192.0.2.100/24", at=push.created, detected_by="sweep"
    )
    push_body = viewer_api.get(f"/api/v1/pushes/{push.pk}/").json()
    assert set(push_body) == set(properties("Push"))
    assert set(push_body["steps"][0]) == set(properties("PushStep"))
    summary = viewer_api.get(f"/api/v1/clusters/{cluster.pk}/pushes/").json()[0]
    assert set(summary) == set(properties("PushSummary"))
    status = viewer_api.get(f"/api/v1/clusters/{cluster.pk}/status/").json()
    assert set(status) == set(properties("Status"))
    assert set(status["vips"][0]) == set(properties("VipStatus"))
    assert set(status["nodes"][0]) == set(properties("NodeStatus"))
    event = viewer_api.get(f"/api/v1/clusters/{cluster.pk}/failovers/").json()[0]
    assert set(event) == set(properties("Failover"))


def test_required_fields_are_those_a_create_must_send():
    assert set(SCHEMAS["ClusterRequest"]["required"]) == {"name", "network", "virtual_router_id"}
    assert set(SCHEMAS["NodeRequest"]["required"]) == {"name", "address", "priority"}
    assert set(SCHEMAS["VirtualIPRequest"]["required"]) == {"address"}
    assert set(SCHEMAS["CredentialRequest"]["required"]) == {"name", "private_key"}
    assert "required" not in SCHEMAS["PatchedClusterRequest"]


def test_constraints_come_from_the_model():
    vrid = properties("ClusterRequest")["virtual_router_id"]
    assert (vrid["type"], vrid["minimum"], vrid["maximum"]) == ("integer", 1, 255)
    assert properties("ClusterRequest")["name"]["maxLength"] == 63
    limit = next(
        p for p in SCHEMA["paths"]["/api/v1/clusters/"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 1000)


class Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def test_the_docs_page_loads_only_our_own_static_files(anon_api, client):
    response = anon_api.get("/api/v1/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assets = Assets()
    assets.feed(page)
    assert assets.urls, "the page loads its scripts and styles"
    for url in assets.urls:
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        assert client.get(url).status_code == 200, url
    assert "cdn" not in page.lower() and "https://" not in page
    assert "/api/v1/schema/" in page
