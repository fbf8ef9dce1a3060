"""schemathesis against the API's own generated schema, every operation, as a viewer and as an
operator, in-process through Django's WSGI application.

Checked for every generated request: no 5xx; status code, content type, headers and body as the
schema documents them; data the schema forbids is rejected (negative mode); data the schema
allows is never refused for its shape (positive mode: no type, unknown-field or paging error -
the model's own rules, such as a VRID already used on the segment, may still refuse it).

Every example runs in a savepoint that is rolled back, so each starts from the same cluster;
nothing is ever committed, so a push is at most created, never run. SSH is faked at our
boundary (clusters.ssh.connect): preview and refresh see unreachable nodes.
"""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import collections

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from alerts.models import Channel, Delivery, Incident
from clusters.models import ConfigPush, Node
from clusters.roles import ADMIN, OPERATOR, VIEWER
from tests.api_schema import operations
from tests.test_api_support import (  # noqa: F401
    FINGERPRINT,
    OTHER_FINGERPRINT,
    fake_ssh,
    operator,
    token_for,
    viewer,
)

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

# Examples per operation, role and mode: 34 operations x 2 roles x 2 modes x this, plus the
# 6 admin-only alert channel operations as an admin.
MAX_EXAMPLES = 25

# Messages that refuse a request for its shape, which the schema already describes: a request
# the schema allows must never get one of these.
SHAPE_ERRORS = (
    "Expected ",
    "Unknown field",
    "This field is read-only.",
    "Send a JSON object",
    "Send an empty body",
    "The body is not valid JSON",
    "Use a whole number from",
    "Use an ISO 8601",
    "This field may not be null.",
    "This field is required.",
)


@schemathesis.check
def positive_data_has_the_right_shape(ctx, response, case):
    """A request the schema allows is refused, if at all, by the model's rules, never its shape."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    assert response.status_code not in (405, 415), f"{response.status_code} for valid data"
    if response.status_code == 400:
        body = response.json()
        messages = [m for ms in body.values() for m in (ms if isinstance(ms, list) else [ms])]
        shaped = [m for m in messages if str(m).startswith(SHAPE_ERRORS)]
        assert not shaped, f"valid data refused for its shape: {body}"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_has_the_right_shape,
]


@pytest.fixture(scope="module")
def wsgi_app():
    # As Django's test client does: a request must not close the test's connection (it would
    # end the transaction every example runs in).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def api_schema(wsgi_app):
    # Loaded once: generating the schema needs no database.
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)
    # Unknown query parameters are ignored (as ever), not a violation to probe.
    schema.config.generation.update(
        max_examples=MAX_EXAMPLES, deterministic=True, allow_extra_parameters=False
    )
    return schema


@pytest.fixture
def world(cluster, fake_ssh, settings):
    """One of everything, so the generated ids can hit real objects."""
    # Negative cases send broken tokens on purpose; the failure limit has its own tests.
    settings.VIPANEL_API_TOKEN_FAILURES = 10**9
    node = cluster.nodes.first()
    Node.objects.filter(pk=node.pk).update(
        host_key_fingerprint=FINGERPRINT, offered_host_key_fingerprint=OTHER_FINGERPRINT
    )
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.FAILED)
    now = timezone.now()
    incident = Incident.objects.create(
        kind="split_brain",
        cluster=cluster,
        key="vip:1",
        subject="x",
        title="Split brain",
        started=now,
        last_seen=now,
        opened=now,
    )
    Delivery.objects.create(incident=incident, channel_name="pager", purpose="opened")
    channel = Channel.objects.create(name="pager", url="json://hooks.example.net/x")
    return {
        "cluster_id": cluster.pk,
        "node_id": node.pk,
        "vip_id": cluster.vips.first().pk,
        "push_id": push.pk,
        "incident_id": incident.pk,
        "channel_id": channel.pk,
    }


def run_examples(strategy, headers, counts):
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        with transaction.atomic():
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            counts[response.status_code] += 1
            transaction.set_rollback(True)

    run()


def fuzz(api_schema, method, path, headers, ids):
    """Both modes; returns the status codes seen in each."""
    operation = api_schema[path][method]
    params = {name: ids[name] for name in ids if "{" + name + "}" in path}
    seen = {}
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        # Positive cases aim at the real objects; negative ones also try impossible ids.
        fixed = params if mode == GenerationMode.POSITIVE else None
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)
        seen[mode] = collections.Counter()
        run_examples(strategy, headers, seen[mode])
    return seen


OPERATIONS = [(m, p, role) for m, p, role in operations()]
RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}


def check_seen(by_mode, role, needed):
    seen = by_mode[GenerationMode.POSITIVE]
    assert seen and 401 not in seen and 429 not in seen, seen  # the token always worked
    if RANK[role] >= RANK[needed]:
        # Let through: some requests got past the role check to the operation itself.
        assert set(seen) - {403}, seen
    else:
        assert set(seen) <= {403, 404}, seen  # refused, whatever the input


@pytest.mark.parametrize("method, path, needed", OPERATIONS, ids=lambda x: str(x))
def test_as_a_viewer(api_schema, world, viewer, method, path, needed):
    headers = {"Authorization": f"Token {token_for(viewer)}"}
    check_seen(fuzz(api_schema, method, path, headers, world), VIEWER, needed)


# Admin-only operations of the alerts API: viewers and operators above only get 403 from them.
ADMIN_OPERATIONS = [
    (m, p, role) for m, p, role in OPERATIONS if role == ADMIN and p.startswith("/api/v1/alerts/")
]


@pytest.mark.parametrize("method, path, needed", ADMIN_OPERATIONS, ids=lambda x: str(x))
def test_the_alert_channels_as_an_admin(api_schema, world, admin_user, method, path, needed):
    headers = {"Authorization": f"Token {token_for(admin_user)}"}
    check_seen(fuzz(api_schema, method, path, headers, world), ADMIN, needed)


@pytest.mark.parametrize("method, path, needed", OPERATIONS, ids=lambda x: str(x))
def test_as_an_operator(api_schema, world, operator, method, path, needed):
    headers = {"Authorization": f"Token {token_for(operator)}"}
    check_seen(fuzz(api_schema, method, path, headers, world), OPERATOR, needed)
