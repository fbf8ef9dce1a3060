"""keepalived's notify script: each VRRP state change reported to vipanel within a second.

keepalived runs the script with TYPE NAME STATE PRIORITY on every transition. It writes the
state to a file on the node (the status probe reads it) and POSTs it to the panel, signed with
the cluster's secret (HMAC-SHA256 over cluster, node, state, time and a random nonce). The panel
accepts a report once (nonce), only while fresh (timestamp), and only with a valid signature;
the periodic sweep stays the source of truth and repairs what a lost report missed.
"""

import hashlib
import hmac
import time

from django.conf import settings

from clusters import constants

SCRIPT_PATH = constants.NOTIFY_SCRIPT_PATH
STATES = ("MASTER", "BACKUP", "FAULT", "STOP")


def enabled():
    return bool(settings.VIPANEL_NOTIFY_URL)


def script_path_for(node):
    return SCRIPT_PATH if enabled() else None


def max_age():
    return settings.VIPANEL_NOTIFY_MAX_AGE


def notify_url(cluster):
    return f"{settings.VIPANEL_NOTIFY_URL.rstrip('/')}/notify/{cluster.pk}/"


def message(cluster_id, node, state, ts, nonce):
    return f"{cluster_id}|{node}|{state}|{ts}|{nonce}".encode()


def sign(secret, cluster_id, node, state, ts, nonce):
    return hmac.new(secret.encode(), message(cluster_id, node, state, ts, nonce), hashlib.sha256).hexdigest()


def check_signature(cluster, node, state, ts, nonce, signature, now=None):
    """-> None when the report is authentic and fresh, else the reason it is refused."""
    if state not in STATES:
        return "unknown state"
    if not (nonce.isalnum() and 8 <= len(nonce) <= 64):
        return "bad nonce"
    try:
        ts_int = int(ts)
    except ValueError:
        return "bad timestamp"
    now = time.time() if now is None else now
    if abs(now - ts_int) > max_age():
        return "stale or future timestamp"
    expected = sign(cluster.notify_secret, cluster.pk, node, state, ts, nonce)
    if not hmac.compare_digest(expected, signature or ""):
        return "bad signature"
    return None


def render_script(node):
    """The script for one node. Every interpolated value is from a narrow alphabet:
    node names and the secret are [A-Za-z0-9._-], the URL is checked at settings load."""
    cluster = node.cluster
    return f"""#!/bin/sh
# vipanel: keepalived notify script for cluster {cluster.name}, node {node.name}.
# Managed by vipanel; replaced by the next push. keepalived calls it as: TYPE NAME STATE PRIORITY.
state="$3"
case "$state" in MASTER|BACKUP|FAULT|STOP) ;; *) exit 0 ;; esac
printf '%s\\n' "$state" > {constants.NOTIFY_STATE_FILE}
command -v curl >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 || exit 0
ts=$(date +%s)
nonce=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \\n')
sig=$(printf '%s' "{cluster.pk}|{node.name}|$state|$ts|$nonce" | openssl dgst -sha256 -hmac '{cluster.notify_secret}' -r | cut -d' ' -f1)
# In the background with a deadline: keepalived waits for nobody.
curl -fsS -m 5 -o /dev/null -d "node={node.name}&state=$state&ts=$ts&nonce=$nonce&sig=$sig" \\
  '{notify_url(cluster)}' </dev/null >/dev/null 2>&1 &
exit 0
"""
