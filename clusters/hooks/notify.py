"""The endpoint keepalived's notify script posts to: not a page, no session, no CSRF token.
Signatures and rate limits are clusters.notify's; recording is clusters.history's."""

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from clusters import history, notify
from clusters.models import Cluster, Node, NotifyNonce

log = logging.getLogger(__name__)


# keepalived's notify script on a node has no session and no CSRF token: it proves itself with
# its node's signing key instead, and each report is accepted once (nonce) while fresh.
@csrf_exempt
@login_not_required
@require_POST
def notify_report(request, cluster_id):
    return receive(cluster_id, request.POST)


def receive(cluster_id, data):
    """The notify endpoint's whole work: one POSTed report in, the HTTP response out.

    `data` is the POST (node, instance, state, ts, nonce, sig; instance is absent from scripts
    pushed before reports named it). The view is one call to this.
    """
    fields = {k: data.get(k, "") for k in ("node", "state", "ts", "nonce", "sig")}
    instance = data.get("instance")
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    node = cluster.nodes.filter(name=fields["node"]).first() if cluster else None
    if node is None:
        log.warning("notify report refused: unknown cluster %s or node %r", cluster_id, fields)
        return HttpResponseNotFound("unknown cluster or node\n")
    reason = notify.check_signature(
        node, fields["state"], fields["ts"], fields["nonce"], fields["sig"], instance=instance
    )
    # The node's script cannot show its answer to anyone (keepalived waits for nobody): a
    # refusal is said here, or an operator never learns why reports are not arriving.
    if reason:
        log.warning("notify report from %s refused: %s", node.name, reason)
        return HttpResponseForbidden(f"refused: {reason}\n")
    with transaction.atomic():
        # One report of a node at a time, so the rate count cannot be raced past.
        Node.objects.select_for_update().filter(pk=node.pk).first()
        if notify.rate_limited(node):
            log.warning("notify report from %s refused: too many reports", node.name)
            return HttpResponse("refused: too many reports from this node\n", status=429)
        try:
            with transaction.atomic():
                NotifyNonce.objects.create(nonce=fields["nonce"], node=node)
        except IntegrityError:
            log.warning("notify report from %s refused: replayed", node.name)
            return HttpResponseForbidden("refused: replayed report\n")
    history.record_notify(cluster, node, fields["state"], instance=instance)
    # Nonces older than the freshness window can no longer be replayed (the timestamp check
    # refuses them first), and older than the rate window no longer count: both may go.
    keep = max(2 * notify.max_age(), settings.VIPANEL_NOTIFY_RATE_WINDOW)
    cutoff = timezone.now() - timezone.timedelta(seconds=keep)
    NotifyNonce.objects.filter(received__lt=cutoff).delete()
    return HttpResponse(status=204)
