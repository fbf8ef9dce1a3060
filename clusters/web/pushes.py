"""Preview, push, resume and drill pages. Every action is a POST to a service
(clusters.services.pushes, .drills); what a push shows is scrubbed of secrets."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseStopPolling

from clusters import preview
from clusters.models import ConfigPush, PushStep, VrrpInstance
from clusters.roles import OPERATOR, VIEWER, require_role
from clusters.services import drills, pushes
from clusters.services.errors import Refused
from clusters.web.clusters import cluster_context
from clusters.web.common import CONFLICT, get_cluster, refusal_status
from clusters.web.htmx import render_page, wants_fragment


@require_POST
@require_role(OPERATOR)
def push_preview(request, pk):
    """What a push would change on each node (read over SSH; secrets masked)."""
    cluster = get_cluster(pk)
    previews = pushes.preview(request.user, cluster)
    context = {
        "cluster": cluster,
        "previews": previews,
        "changed": sum(1 for p in previews if p.changed),
        "readiness": cluster.readiness_errors(),
    }
    return render_page(request, "clusters/preview.html", context, fragment="clusters/_preview.html")


def push_refused(request, cluster, error, **extra):
    context = cluster_context(
        request, cluster, push_errors=error.errors, refused_by=error.active, **extra
    )
    return render(request, "clusters/cluster.html", context, status=refusal_status(error))


@require_POST
@require_role(OPERATOR)
def push_start(request, pk):
    cluster = get_cluster(pk)
    try:
        push = pushes.start_push(request.user, cluster)
    except Refused as e:
        return push_refused(request, cluster, e)
    return redirect("clusters:push", push.pk)


def _push_context(push):
    secrets = preview.cluster_secrets(push.cluster)
    steps = list(push.steps.select_related("node").order_by("position"))
    for step in steps:
        # The API scrubs the same way (clusters.preview.scrub): output never shows a secret.
        step.output = preview.scrub(step.output, secrets)
        step.detail = preview.scrub(step.detail, secrets)
    push.log = preview.scrub(push.log, secrets)
    push.detail = preview.scrub(push.detail, secrets)
    done_count = sum(1 for s in steps if s.is_done)
    failed = [s for s in steps if s.state == PushStep.State.FAILED]
    return {
        "push": push,
        "cluster": push.cluster,
        "steps": steps,
        "total": len(steps),
        "done_count": done_count,
        "percent": round(100 * done_count / len(steps)) if steps else 100,
        "failed": failed,
    }


@require_safe
@require_role(VIEWER)
def push_detail(request, pk):
    """A push as it runs; htmx polls this URL and is told to stop (286) once it has ended."""
    push = get_object_or_404(ConfigPush.objects.select_related("cluster", "requested_by"), pk=pk)
    context = _push_context(push)
    if wants_fragment(request) and not push.is_active:
        return HttpResponseStopPolling(render(request, "clusters/_push_live.html", context).content)
    return render_page(request, "clusters/push.html", context, fragment="clusters/_push_live.html")


@require_POST
@require_role(OPERATOR)
def push_resume(request, pk):
    push = get_object_or_404(ConfigPush.objects.select_related("cluster"), pk=pk)
    try:
        push = pushes.resume_push(request.user, push)
    except Refused as e:
        push.refresh_from_db()
        context = _push_context(push)
        context.update(push_errors=e.errors, refused_by=e.active)
        return render(request, "clusters/push.html", context, status=CONFLICT)
    return redirect("clusters:push", push.pk)


@require_POST
@require_role(OPERATOR)
def cluster_drill(request, pk):
    """Stop keepalived on the holder on purpose and check the VIPs move (clusters.drill runs
    it in a worker and records the outcome in the failover history)."""
    cluster = get_cluster(pk)
    # An optional instance (its id): the drill then judges that instance's failover.
    instance = None
    if request.POST.get("instance"):
        instance = get_object_or_404(VrrpInstance, pk=request.POST["instance"], cluster=cluster)
    try:
        drills.start_drill(request.user, cluster, instance)
    except Refused as e:
        return push_refused(request, cluster, e, refused_title="The drill did not start")
    messages.success(
        request,
        f"Failover drill started on {cluster.name}: keepalived stops on the holder and the "
        "panel checks the VIPs move. The outcome appears under Recent failovers.",
    )
    return redirect(reverse("clusters:cluster", args=[cluster.pk]) + "#failovers")
