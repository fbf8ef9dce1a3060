"""The endpoint keepalived's notify script posts to: not a page, no session, no CSRF token.
Verification is clusters.notify's; recording is clusters.history's."""

from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from clusters import history, notify
from clusters.models import Cluster, NotifyNonce


# keepalived's notify script on a node has no session and no CSRF token: it proves itself with
# the cluster's HMAC secret instead, and each report is accepted once (nonce) while fresh.
@csrf_exempt
@login_not_required
@require_POST
def notify_report(request, cluster_id):
    cluster = get_object_or_404(Cluster, pk=cluster_id)
    fields = {k: request.POST.get(k, "") for k in ("node", "state", "ts", "nonce", "sig")}
    reason = notify.check_signature(
        cluster, fields["node"], fields["state"], fields["ts"], fields["nonce"], fields["sig"]
    )
    if reason:
        return HttpResponseForbidden(f"refused: {reason}\n")
    node = cluster.nodes.filter(name=fields["node"]).first()
    if node is None:
        return HttpResponseNotFound("unknown node\n")
    try:
        with transaction.atomic():
            NotifyNonce.objects.create(nonce=fields["nonce"])
    except IntegrityError:
        return HttpResponseForbidden("refused: replayed report\n")
    history.record_notify(cluster, node, fields["state"])
    # Nonces older than the freshness window can no longer be replayed: the timestamp check
    # refuses them first, so they need not be kept.
    cutoff = timezone.now() - timezone.timedelta(seconds=2 * notify.max_age())
    NotifyNonce.objects.filter(received__lt=cutoff).delete()
    return HttpResponse(status=204)
