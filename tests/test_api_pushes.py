"""/api/v1/clusters/{id}/pushes/ and /api/v1/pushes/{id}/: start, follow and resume a push."""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import pytest

from clusters.models import AuditEntry, ConfigPush, PushStep
from tests.test_api_support import (  # noqa: F401
    AUTH_PASS,
    operator,
    operator_api,
    viewer,
    viewer_api,
)

pytestmark = pytest.mark.django_db


def pushes_url(cluster):
    return f"/api/v1/clusters/{cluster.pk}/pushes/"


def test_it_queues_a_push_and_answers_202(
    operator, operator_api, cluster, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator_api.post(pushes_url(cluster))
    assert response.status_code == 202, response.content
    body = response.json()
    push = ConfigPush.objects.get()
    assert body["id"] == push.pk and body["state"] == "queued"
    assert [(s["node"], s["state"]) for s in body["steps"]] == [
        ("web-2", "pending"),
        ("web-1", "pending"),
    ]
    assert push.requested_by == operator
    # Enqueued once the transaction commits (the worker is not part of these tests).
    assert len(callbacks) == 1
    entry = AuditEntry.objects.get(action="push.start")
    assert entry.cluster == cluster and f"#{push.pk}" in entry.result


def test_it_answers_409_while_another_push_of_the_cluster_runs(operator_api, cluster):
    running = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.RUNNING)
    response = operator_api.post(pushes_url(cluster))
    assert response.status_code == 409
    assert response.json()["active"] == {"id": running.pk, "state": "running"}
    assert f"Push #{running.pk}" in response.json()["detail"]
    assert ConfigPush.objects.count() == 1
    # The refusal is on record too, as the panel records it.
    assert AuditEntry.objects.get(action="push.start").result.startswith("refused: ")


def test_it_answers_400_by_field_when_the_cluster_is_not_ready(operator_api, cluster):
    cluster.vips.all().delete()
    response = operator_api.post(pushes_url(cluster))
    assert response.status_code == 400
    assert response.json() == {"vips": ["Add at least one virtual IP."]}


def test_a_push_takes_no_fields(operator_api, cluster):
    response = operator_api.post(pushes_url(cluster), {"force": True})
    assert response.status_code == 400
    assert list(response.json()) == ["force"]
    assert not ConfigPush.objects.exists()


def failed_push(cluster, output=""):
    push = ConfigPush.objects.create(
        cluster=cluster, state=ConfigPush.State.FAILED, detail="web-2: keepalived -t rejected"
    )
    for position, node in enumerate(cluster.nodes.order_by("priority"), start=1):
        PushStep.objects.create(
            push=push,
            node=node,
            node_name=node.name,
            position=position,
            state=PushStep.State.FAILED if position == 1 else PushStep.State.PENDING,
            detail="keepalived -t rejected the new config (exit 1)" if position == 1 else "",
            exit_code=1 if position == 1 else None,
            output=output if position == 1 else "",
        )
    return push


def test_it_shows_a_push_with_its_steps(viewer_api, cluster):
    push = failed_push(cluster)
    body = viewer_api.get(f"/api/v1/pushes/{push.pk}/").json()
    assert body["state"] == "failed"
    assert body["steps"][0] == {
        **body["steps"][0],
        "node": "web-2",
        "state": "failed",
        "detail": "keepalived -t rejected the new config (exit 1)",
        "exit_code": 1,
    }
    assert [s["node"] for s in body["steps"]] == ["web-2", "web-1"]


def test_node_output_never_shows_a_secret(viewer_api, cluster):
    cluster.auth_pass = AUTH_PASS
    cluster.save()
    output = f"line 7: auth_pass {AUTH_PASS}\nunknown keyword near '{AUTH_PASS}'"
    push = failed_push(cluster, output=output)
    body = viewer_api.get(f"/api/v1/pushes/{push.pk}/").content.decode()
    assert AUTH_PASS not in body
    assert cluster.notify_secret not in body
    assert "auth_pass ********" in body


def test_it_lists_a_clusters_pushes_newest_first(viewer_api, cluster):
    first = failed_push(cluster)
    second = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.SUCCEEDED)
    body = viewer_api.get(pushes_url(cluster)).json()
    assert [p["id"] for p in body] == [second.pk, first.pk]


def test_it_resumes_a_failed_push(operator_api, cluster, django_capture_on_commit_callbacks):
    push = failed_push(cluster)
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator_api.post(f"/api/v1/pushes/{push.pk}/resume/")
    assert response.status_code == 202, response.content
    assert response.json()["state"] == "queued"
    assert [s["state"] for s in response.json()["steps"]] == ["pending", "pending"]
    assert len(callbacks) == 1
    assert AuditEntry.objects.get(action="push.resume").cluster == cluster


def test_it_answers_409_to_resuming_a_push_that_succeeded(operator_api, cluster):
    push = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.SUCCEEDED)
    response = operator_api.post(f"/api/v1/pushes/{push.pk}/resume/")
    assert response.status_code == 409
    assert "only a failed or interrupted push" in response.json()["detail"]


def test_it_answers_409_to_resuming_while_another_push_runs(operator_api, cluster):
    push = failed_push(cluster)
    running = ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.RUNNING)
    response = operator_api.post(f"/api/v1/pushes/{push.pk}/resume/")
    assert response.status_code == 409
    assert response.json()["active"] == {"id": running.pk, "state": "running"}
    push.refresh_from_db()
    assert push.state == "failed"


def test_an_unknown_push_is_404(viewer_api, operator_api):
    assert viewer_api.get("/api/v1/pushes/999999/").status_code == 404
    assert operator_api.post("/api/v1/pushes/999999/resume/").status_code == 404
