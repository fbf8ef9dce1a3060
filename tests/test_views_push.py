"""Preview, push, the live view of a push, and resume."""

import re
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters import impact
from clusters.models import AuditEntry, Cluster, ConfigPush, PushStep
from clusters.preview import NodePreview, Preview
from tests.cast import *  # noqa: F403
from tests.cast import (
    assert_denies,
    assert_enforces_csrf,
    assert_rejects_get,
    assert_requires_login,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued():
    with mock.patch("clusters.services.pushes.enqueue") as enqueue:
        yield enqueue


@pytest.fixture
def previews():
    """clusters.preview.preview_cluster patched: one node changes, one does not."""
    diff = (
        "--- web-1:/etc/keepalived/keepalived.conf (live)\n"
        "+++ web-1:/etc/keepalived/keepalived.conf (vipanel)\n"
        "@@ -1,2 +1,2 @@\n"
        "-    priority 100\n"
        "+    priority 120\n"
        "     auth_pass ********\n"
    )
    result = Preview(
        [NodePreview("web-1", 1, True, diff), NodePreview("web-2", 2, False, "")],
        impact.Impact(
            "push",
            "web",
            nodes=[impact.NodeImpact("web-1", "changes"), impact.NodeImpact("web-2", "unchanged")],
        ),
    )
    with mock.patch("clusters.preview.preview_cluster", return_value=result) as patched:
        yield patched


def make_push(cluster, state="running", steps=("applied", "running"), **fields):
    push = ConfigPush.objects.create(cluster=cluster, state=state, **fields)
    for i, (node, step_state) in enumerate(
        zip(cluster.nodes.order_by("priority"), steps, strict=False), 1
    ):
        PushStep.objects.create(
            push=push, node=node, node_name=node.name, position=i, state=step_state
        )
    return push


MUTATING = {
    "push-preview": lambda c: reverse("clusters:push-preview", args=[c.pk]),
    "push-start": lambda c: reverse("clusters:push-start", args=[c.pk]),
    "push-resume": lambda c: reverse(
        "clusters:push-resume", args=[make_push(c, "failed", ("applied", "failed")).pk]
    ),
}


@pytest.fixture(params=sorted(MUTATING))
def mutating(request, cluster, enqueued, previews):
    return MUTATING[request.param](cluster), {}


def test_each_mutating_view_rejects_get(login, operator, mutating):
    assert_rejects_get(login, operator, mutating[0])


def test_each_mutating_view_requires_login(mutating):
    assert_requires_login(*mutating)


def test_each_mutating_view_denies_the_viewer(login, viewer, mutating):
    assert_denies(login, viewer, *mutating)


def test_each_mutating_view_enforces_csrf(login, operator, mutating):
    assert_enforces_csrf(login, operator, *mutating)


# --- Preview ------------------------------------------------------------------------------


def test_preview_shows_what_changes_per_node_and_unchanged_nodes(
    login, operator, cluster, previews
):
    response = login(operator).post(
        reverse("clusters:push-preview", args=[cluster.pk]), HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    previews.assert_called_once_with(cluster, maintenance=None, skip=(), action="push")
    assert "1 of 2 nodes would change" in body
    # The button that pushes names the cluster, and says how many nodes change.
    assert '<input type="hidden" name="confirm" value="web">' in body
    assert "Push 1 node of web</button>" in body
    web1 = re.search(r'<article[^>]*data-node="web-1".*?</article>', body, re.S).group(0)
    web2 = re.search(r'<article[^>]*data-node="web-2".*?</article>', body, re.S).group(0)
    assert '<span class="del">-    priority 100</span>' in web1
    assert '<span class="add">+    priority 120</span>' in web1
    assert "auth_pass ********" in web1
    assert "unchanged" in web2 and "Nothing would change" in web2


def test_preview_shows_a_node_it_could_not_read(login, operator, cluster):
    node = NodePreview("web-1", 1, None, "", "web-1: connection refused")
    result = Preview([node], impact.Impact("push", "web"))
    with mock.patch("clusters.preview.preview_cluster", return_value=result):
        body = (
            login(operator)
            .post(reverse("clusters:push-preview", args=[cluster.pk]))
            .content.decode()
        )
    assert "<html" in body  # without htmx: a page of its own
    assert "cannot read" in body and "web-1: connection refused" in body
    assert 'id="confirm-button"' not in body and "Preview skipping web-1" in body


def test_preview_is_not_audited(login, operator, cluster, previews):
    login(operator).post(reverse("clusters:push-preview", args=[cluster.pk]))
    assert not AuditEntry.objects.exists()


# --- Push ---------------------------------------------------------------------------------


def test_push_starts_the_rolling_push_and_shows_it(
    login, operator, cluster, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(operator).post(
            reverse("clusters:push-start", args=[cluster.pk]), {"confirm": "web"}
        )
    push = ConfigPush.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("clusters:push", args=[push.pk])
    assert push.requested_by == operator and push.kind == ConfigPush.Kind.PUSH
    enqueued.assert_called_once_with(push.pk)
    entry = AuditEntry.objects.get(action="push.start")
    assert entry.changes == {"push": [None, push.pk], "nodes": [None, "web-2, web-1"]}
    assert entry.result == f"push #{push.pk} queued for web-2, web-1"


def test_push_without_the_confirmation_shows_the_preview_and_starts_nothing(
    login, operator, cluster, enqueued, previews
):
    response = login(operator).post(reverse("clusters:push-start", args=[cluster.pk]))
    assert response.status_code == 200 and b"Push 1 node of web" in response.content
    assert not ConfigPush.objects.exists() and not AuditEntry.objects.exists()


def test_push_refused_names_the_push_already_running(login, operator, cluster, enqueued):
    running = make_push(cluster)
    response = login(operator).post(
        reverse("clusters:push-start", args=[cluster.pk]), {"confirm": "web"}
    )
    body = response.content.decode()
    assert response.status_code == 409
    assert f"Push #{running.pk} of cluster web is running" in body
    assert f'<a href="/pushes/{running.pk}/">Watch push #{running.pk} (running)</a>' in body
    assert ConfigPush.objects.count() == 1
    assert AuditEntry.objects.get(action="push.start").result.startswith("refused: Push #")


def test_push_refused_says_what_the_cluster_lacks(login, operator, cluster, enqueued):
    cluster.vips.all().delete()
    response = login(operator).post(
        reverse("clusters:push-start", args=[cluster.pk]), {"confirm": "web"}
    )
    assert response.status_code == 422
    assert "Add at least one virtual IP." in response.content.decode()
    assert not ConfigPush.objects.exists()


# --- The live view ------------------------------------------------------------------------


def test_the_live_view_shows_steps_progress_and_log(login, viewer, cluster):
    push = make_push(cluster, log="12:00:00 push started: web-2, web-1\n")
    page = login(viewer).get(reverse("clusters:push", args=[push.pk])).content.decode()
    assert '<progress id="push-progress" class="busy" max="2" value="1">' in page
    assert "1 of 2 nodes done" in page
    assert re.search(r'data-node="web-2" data-state="applied"', page)
    assert re.search(r'data-node="web-1" data-state="running"', page)
    assert "push started: web-2, web-1" in page
    url = reverse("clusters:push", args=[push.pk])
    assert f'hx-get="{url}" hx-trigger="every 1s" hx-swap="outerHTML"' in page


def test_polling_an_active_push_returns_the_fragment(login, viewer, cluster):
    push = make_push(cluster)
    response = login(viewer).get(reverse("clusters:push", args=[push.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="push-live"')
    assert "<html" not in body and "hx-trigger" in body


def test_polling_stops_with_286_once_the_push_has_ended(login, viewer, cluster):
    push = make_push(cluster, "succeeded", ("applied", "unchanged"), finished=timezone.now())
    response = login(viewer).get(reverse("clusters:push", args=[push.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 286
    body = response.content.decode()
    assert 'data-state="succeeded"' in body and "hx-trigger" not in body
    assert "2 of 2 nodes done" in body
    # A browser without htmx just gets the page.
    assert login(viewer).get(reverse("clusters:push", args=[push.pk])).status_code == 200


def test_polling_goes_on_until_the_prediction_is_judged(login, viewer, cluster):
    """Moves reported a few seconds after a push ends still count for its verdict: the live
    view keeps polling through that window, then stops, its verdict shown."""
    held = ("web-1",)
    vip = impact.VipImpact("192.0.2.100", "VI_web", held, held, [])
    prediction = impact.Impact("push", cluster.name, vips=[vip]).as_dict()
    ended = timezone.now()
    push = make_push(cluster, "succeeded", ("applied", "unchanged"), finished=ended)
    ConfigPush.objects.filter(pk=push.pk).update(
        prediction=prediction,
        started=ended - timezone.timedelta(seconds=5),
        observed={"192.0.2.100/24": ["web-1"]},
    )
    url = reverse("clusters:push", args=[push.pk])
    response = login(viewer).get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "hx-trigger" in response.content.decode()
    assert "pending" in response.content.decode()
    later = ended - timezone.timedelta(minutes=5)
    ConfigPush.objects.filter(pk=push.pk).update(
        finished=later, started=later - timezone.timedelta(seconds=5)
    )
    response = login(viewer).get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 286 and "hx-trigger" not in response.content.decode()


def test_a_failed_step_shows_keepalived_t_output_and_exit_code(login, viewer, cluster):
    push = make_push(
        cluster,
        "failed",
        ("applied", "failed"),
        detail="web-1: keepalived -t rejected the new config (exit 1).",
    )
    step = push.steps.get(state="failed")
    step.detail = "keepalived -t rejected the new config (exit 1); the node still runs its old one."
    step.exit_code = 1
    step.output = "(/tmp/x.conf: Line 7) WARNING - interface eth9 for vrrp_instance doesn't exist"
    step.save()
    page = login(viewer).get(reverse("clusters:push", args=[push.pk])).content.decode()
    assert "Output (exit 1)" in page
    assert "interface eth9 for vrrp_instance doesn&#x27;t exist" in page
    assert 'class="badge bad">failed<' in page


def test_a_viewer_sees_no_resume_button(login, viewer, operator, cluster):
    push = make_push(cluster, "failed", ("applied", "failed"))
    url = reverse("clusters:push", args=[push.pk])
    assert "Resume push" not in login(viewer).get(url).content.decode()
    assert "Resume push" in login(operator).get(url).content.decode()


# --- Resume -------------------------------------------------------------------------------


def test_resume_queues_a_failed_push_again(
    login, operator, cluster, enqueued, django_capture_on_commit_callbacks
):
    push = make_push(cluster, "failed", ("applied", "failed"))
    with django_capture_on_commit_callbacks(execute=True):
        response = login(operator).post(
            reverse("clusters:push-resume", args=[push.pk]), {"confirm": "web"}
        )
    assert response.status_code == 302
    push.refresh_from_db()
    assert push.state == "queued"
    assert list(push.steps.values_list("state", flat=True)) == ["applied", "pending"]
    enqueued.assert_called_once_with(push.pk)
    entry = AuditEntry.objects.get(action="push.resume")
    assert entry.changes == {"push": [None, push.pk], "nodes": [None, "web-2, web-1"]}
    assert "queued again" in entry.result


def test_resume_without_the_confirmation_is_refused_and_says_so(login, operator, cluster, enqueued):
    push = make_push(cluster, "failed", ("applied", "failed"))
    response = login(operator).post(reverse("clusters:push-resume", args=[push.pk]))
    assert response.status_code == 422
    assert "send the cluster&#x27;s name, web" in response.content.decode()
    push.refresh_from_db()
    assert push.state == "failed" and not AuditEntry.objects.exists()


def test_a_push_that_could_not_reach_a_node_offers_to_resume_skipping_it(
    login, operator, viewer, cluster, enqueued
):
    push = make_push(
        cluster,
        "failed",
        ("pending", "failed"),
        detail="web-1 could not be reached, so no node was changed.",
    )
    push.steps.filter(state="failed").update(detail="connection refused by 192.0.2.11:22")
    page = login(operator).get(reverse("clusters:push", args=[push.pk])).content.decode()
    assert "Resume skipping web-1</button>" in page
    assert '<input type="hidden" name="skip" value="web-1">' in page
    assert f"Resume push #{push.pk} of web</button>" in page
    # The words once: the push's detail says what happened, the step why.
    assert page.count("connection refused") == 1 and page.count("could not be reached") == 1
    assert (
        "Resume skipping"
        not in login(viewer).get(reverse("clusters:push", args=[push.pk])).content.decode()
    )
    response = login(operator).post(
        reverse("clusters:push-resume", args=[push.pk]), {"confirm": "web", "skip": "web-1"}
    )
    assert response.status_code == 302
    push.refresh_from_db()
    assert push.state == "queued" and push.skipped_names == ["web-1"]
    entry = AuditEntry.objects.get(action="push.resume")
    assert entry.changes["skipped"] == [None, "web-1 (unreachable)"]
    assert entry.result.endswith("skipping web-1")
    page = login(viewer).get(reverse("clusters:push", args=[push.pk])).content.decode()
    assert "Skipped: web-1 (by otto-operator)" in page


def test_resume_refuses_a_push_that_succeeded(login, operator, cluster, enqueued):
    push = make_push(cluster, "succeeded", ("applied", "applied"))
    response = login(operator).post(
        reverse("clusters:push-resume", args=[push.pk]), {"confirm": "web"}
    )
    assert response.status_code == 409
    assert "only a failed or interrupted push can be resumed" in response.content.decode()
    assert AuditEntry.objects.get(action="push.resume").result.startswith("refused:")


def test_resume_refuses_while_another_push_runs(login, operator, cluster, enqueued):
    failed = make_push(cluster, "failed", ("applied", "failed"))
    running = make_push(cluster)
    body = (
        login(operator)
        .post(reverse("clusters:push-resume", args=[failed.pk]), {"confirm": "web"})
        .content.decode()
    )
    assert f"Push #{running.pk} of this cluster is active" in body
    failed.refresh_from_db()
    assert failed.state == "failed"


def test_the_push_page_scrubs_secrets_from_step_output(login, viewer, cluster):
    """The API and the page scrub with one function (clusters.preview.scrub)."""
    Cluster.objects.filter(pk=cluster.pk).update(auth_pass="pw_9xq")
    cluster.refresh_from_db()
    push = ConfigPush.objects.create(
        cluster=cluster,
        state=ConfigPush.State.FAILED,
        detail="failed near pw_9xq",
        log=f"posted with {cluster.notify_secret}\n",
    )
    PushStep.objects.create(
        push=push,
        node=cluster.nodes.first(),
        node_name="web-1",
        position=1,
        state=PushStep.State.FAILED,
        exit_code=1,
        detail="rejected pw_9xq",
        output="Line 12: auth_pass pw_9xq\nbad keyword\n",
    )
    page = login(viewer).get(reverse("clusters:push", args=[push.pk])).content.decode()
    assert "auth_pass ********" in page and "bad keyword" in page
    assert "pw_9xq" not in page and cluster.notify_secret not in page
