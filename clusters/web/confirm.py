"""Confirmation pages: what an action will do (clusters.impact), and a form that names the
cluster before it runs.

Every action that moves traffic or deletes (push, resume, maintenance in and out, failover
drill, deleting a cluster, node, VIP or instance) first posts without `confirm`; the service
refuses it (clusters.services.errors.Unconfirmed) and the view answers with this page: the
prediction, then a button naming the action and the cluster, which posts again with
`confirm=<cluster name>`. Without JavaScript that is a page of its own; with htmx the same
fragment opens in the page's dialog (static/vipanel.js).

Why a button that names the cluster rather than typing its name: these are routine, reversible
actions an operator takes many times a day, and a typed name soon becomes a reflex typed
without reading. What protects here is reading the prediction, so the button sits right under
it and says what it does to which cluster ("Put vpd-n3 of demo into maintenance"). Deleting a
cluster is different (it cannot be undone and its history goes with it): there the name is
typed.
"""

from dataclasses import dataclass, field

from django.urls import reverse

from clusters.web.htmx import render_page


@dataclass
class Confirmation:
    title: str
    cluster: object
    # clusters.impact.Impact.as_dict()
    impact: dict
    # Where the confirmed form posts, its button, and its other fields [(name, value)].
    action: str
    label: str
    fields: list = field(default_factory=list)
    # Type the cluster's name instead of pressing a button that names it.
    typed: bool = False
    danger: bool = False
    # Why it cannot go ahead now ("" when it can).
    blocked: str = ""
    # Nodes that may be left out (unreachable), and where to preview again without them.
    skippable: list = field(default_factory=list)
    skip_action: str = ""
    skip_fields: list = field(default_factory=list)
    # With htmx, where the confirmed answer goes (a section it replaces); "" for a page.
    hx_target: str = ""
    cancel: str = ""
    # Why a confirmation was asked again (a wrong or missing name).
    error: str = ""

    @property
    def skipped(self):
        return [value for name, value in self.fields if name == "skip"]


def answer(request, confirmation, *, preview=None, status=200):
    """The confirmation page, or its fragment for htmx (into the page's dialog)."""
    context = {
        "confirmation": confirmation,
        "cluster": confirmation.cluster,
        "impact": confirmation.impact,
        "preview": preview,
    }
    return render_page(
        request,
        "clusters/confirm.html",
        context,
        fragment="clusters/_confirm.html",
        status=status,
    )


def skip_names(request):
    """The node names posted as `skip` (the unreachable nodes an operator leaves out)."""
    return [name for name in request.POST.getlist("skip") if name][:1000]


def delete_confirmation(request, cluster, impact, *, what, action, hx_target, error=""):
    """The confirmation of deleting `what` (a node, VIP or instance) from `cluster`."""
    return answer(
        request,
        Confirmation(
            title=f"Delete {what} from {cluster.name}?",
            cluster=cluster,
            impact=impact.as_dict(),
            action=action,
            label=f"Delete {what} from {cluster.name}",
            danger=True,
            hx_target=hx_target,
            cancel=reverse("clusters:cluster", args=[cluster.pk]),
            error=error,
        ),
    )
