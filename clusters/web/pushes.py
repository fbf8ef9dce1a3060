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
from clusters.services.errors import Refused, Unconfirmed, Unreachable
from clusters.web import confirm
from clusters.web.clusters import cluster_context
from clusters.web.common import CONFLICT, get_cluster, refusal_status
from clusters.web.htmx import UNPROCESSABLE, render_page, wants_fragment


def _push_confirmation(request, cluster, result, skip, error=""):
    """The push's confirmation: its preview (diffs and prediction), then a button naming the
    cluster and what is skipped, or why it cannot start and what may be skipped."""
    changed = result.impact.changing_nodes
    label = f"Push {len(changed)} node{'s' if len(changed) != 1 else ''} of {cluster.name}"
    if not changed:
        label = f"Push {cluster.name} (no file changes)"
    if skip:
        label += f", skipping {', '.join(skip)}"
    return confirm.Confirmation(
        title=f"Push {cluster.name}?",
        cluster=cluster,
        impact=result.impact.as_dict(),
        action=reverse("clusters:push-start", args=[cluster.pk]),
        label=label,
        fields=[("skip", name) for name in skip],
        blocked=result.blocked,
        skippable=[] if result.skip_problem else result.unreachable,
        skip_action=reverse("clusters:push-preview", args=[cluster.pk]),
        cancel=reverse("clusters:cluster", args=[cluster.pk]),
        error=error,
    )


def preview_page(request, cluster, skip=(), error="", status=200):
    """The push's preview, which is also its confirmation page."""
    result = pushes.preview(request.user, cluster, skip=skip)
    confirmation = _push_confirmation(request, cluster, result, skip, error)
    return confirm.answer(request, confirmation, preview=result, status=status)


@require_POST
@require_role(OPERATOR)
def push_preview(request, pk):
    """What a push would change on each node (read over SSH; secrets masked) and what it would
    do to the VIPs, with the button that starts it."""
    cluster = get_cluster(pk)
    try:
        return preview_page(request, cluster, confirm.skip_names(request))
    except Refused as e:  # a skipped name that is no node of the cluster
        return push_refused(request, cluster, e)


def push_refused(request, cluster, error, **extra):
    context = cluster_context(
        request, cluster, push_errors=error.errors, refused_by=error.active, **extra
    )
    return render(request, "clusters/cluster.html", context, status=refusal_status(error))


@require_POST
@require_role(OPERATOR)
def push_start(request, pk):
    cluster = get_cluster(pk)
    skip = confirm.skip_names(request)
    try:
        push = pushes.start_push(
            request.user, cluster, confirm=request.POST.get("confirm"), skip=skip
        )
    except Unconfirmed:
        # Not confirmed (a form from before confirmations, or a wrong name): ask, with the
        # prediction.
        return preview_page(request, cluster, skip)
    except Unreachable as e:
        return preview_page(request, cluster, skip, error=e.text, status=CONFLICT)
    except Refused as e:
        return push_refused(request, cluster, e)
    return redirect("clusters:push", push.pk)


def _push_context(push):
    """The push page's context: its steps and log scrubbed of secrets, its prediction and the
    verdict on it, and the nodes a resume may skip (those it could not reach)."""
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
        "impact": push.prediction,
        "verdict": pushes.verdict(push),
        # A failed step whose node answered nothing: a resume can leave it out.
        "skippable": [s.node_name for s in failed if s.node_id and _unreached(s)],
    }


def _unreached(step):
    """Whether a failed step failed because its node could not be reached (the push's plan
    found it so, or the last probe did): nothing was done there."""
    state = getattr(step.node, "state", None) if step.node else None
    return not step.commands or (state is not None and state.reachable is False)


@require_safe
@require_role(VIEWER)
def push_detail(request, pk):
    """A push as it runs; htmx polls this URL and is told to stop (286) once it has ended and
    its prediction is judged (moves reported a few seconds after the end still count)."""
    push = get_object_or_404(ConfigPush.objects.select_related("cluster", "requested_by"), pk=pk)
    context = _push_context(push)
    context["watching"] = push.is_active or context["verdict"].status == "pending"
    if wants_fragment(request) and not context["watching"]:
        return HttpResponseStopPolling(render(request, "clusters/_push_live.html", context).content)
    return render_page(request, "clusters/push.html", context, fragment="clusters/_push_live.html")


@require_POST
@require_role(OPERATOR)
def push_resume(request, pk):
    push = get_object_or_404(ConfigPush.objects.select_related("cluster"), pk=pk)
    skip = confirm.skip_names(request)
    try:
        push = pushes.resume_push(
            request.user, push, confirm=request.POST.get("confirm"), skip=skip
        )
    except Refused as e:
        push.refresh_from_db()
        context = _push_context(push)
        context.update(push_errors=e.errors, refused_by=e.active)
        status = UNPROCESSABLE if isinstance(e, Unconfirmed) else CONFLICT
        return render(request, "clusters/push.html", context, status=status)
    return redirect("clusters:push", push.pk)


def _drill_confirmation(cluster, instance, impact, error=""):
    target = instance.keepalived_name if instance else cluster.instance_name
    holder = next((v["before"][0] for v in impact["vips"] if len(v["before"]) == 1), None)
    fields = [("instance", instance.pk)] if instance else []
    return confirm.Confirmation(
        title=f"Failover drill of {cluster.name}?",
        cluster=cluster,
        impact=impact,
        action=reverse("clusters:drill", args=[cluster.pk]),
        label=f"Stop keepalived on {holder} of {cluster.name}"
        if holder
        else f"Run the drill of {cluster.name}",
        fields=fields,
        danger=True,
        cancel=reverse("clusters:cluster", args=[cluster.pk]),
        error=error,
        blocked="" if holder else f"No single node holds the VIPs of {target}: nothing to drill.",
    )


@require_POST
@require_role(OPERATOR)
def cluster_drill(request, pk):
    """Stop keepalived on the holder on purpose and check the VIPs move (clusters.drill runs
    it in a worker and records the outcome in the failover history). Asked first: the page
    says where the VIPs go and for how long."""
    cluster = get_cluster(pk)
    # An optional instance (its id): the drill then judges that instance's failover.
    instance = None
    if request.POST.get("instance"):
        instance = get_object_or_404(VrrpInstance, pk=request.POST["instance"], cluster=cluster)
    try:
        record = drills.start_drill(
            request.user, cluster, instance, confirm=request.POST.get("confirm")
        )
    except Unconfirmed:
        impact = drills.preview(request.user, cluster, instance).as_dict()
        return confirm.answer(request, _drill_confirmation(cluster, instance, impact))
    except Refused as e:
        return push_refused(request, cluster, e, refused_title="The drill did not start")
    messages.success(
        request,
        f"Failover drill started on {cluster.name}: keepalived stops on the holder and the "
        "panel checks the VIPs move.",
    )
    return redirect("clusters:push", record.pk)
