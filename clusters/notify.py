"""keepalived's notify script: each VRRP state change reported to vipanel within a second.

keepalived runs the script with TYPE NAME STATE PRIORITY on every transition. It writes the
state to a file on the node (the status probe reads it) and POSTs it to the panel, signed with
the node's own ed25519 key. The panel accepts a report once (nonce), only while fresh
(timestamp), only with a valid signature of the node it names, and at most
VIPANEL_NOTIFY_RATE_LIMIT per node per VIPANEL_NOTIFY_RATE_WINDOW seconds; the periodic sweep
stays the source of truth and repairs what a lost report missed (clusters/history.py).

Nothing secret is ever on a command line on the node (any user can read /proc/*/cmdline): the
private key is a root-only file (KEY_PATH, mode 0600) that `openssl pkeyutl -inkey` reads, and
the message signed is written to a private temporary file (openssl 3.0's pkeyutl cannot sign
ed25519 from a pipe). A node's key speaks for that node only: a stolen key can report only its
own node as master, and a database dump holds only encrypted keys.

The push deploys files_for(node): the script and the key file.
"""

import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.utils import timezone

from clusters import constants, crypto
from clusters.models import NotifyNonce

SCRIPT_PATH = constants.NOTIFY_SCRIPT_PATH
KEY_PATH = constants.NOTIFY_KEY_PATH
STATES = ("MASTER", "BACKUP", "FAULT", "STOP")
SCRIPT_MODE, KEY_MODE = 0o700, 0o600


def enabled():
    return bool(settings.VIPANEL_NOTIFY_URL)


def script_path_for(node):
    return SCRIPT_PATH if enabled() else None


def max_age():
    return settings.VIPANEL_NOTIFY_MAX_AGE


def notify_url(cluster):
    return f"{settings.VIPANEL_NOTIFY_URL.rstrip('/')}/notify/{cluster.pk}/"


# --- Keys ---------------------------------------------------------------------------------------


# Made where the model's default needs it (clusters.crypto sits below the models).
new_key = crypto.new_ed25519_key


def _private_key(node):
    return serialization.load_pem_private_key(node.notify_key.encode(), password=None)


def message(cluster_id, node, state, ts, nonce, instance=None):
    """What a report signs. v3 names the vrrp_instance (keepalived's NAME argument), so a
    MASTER report claims that instance's VIPs; v2, from scripts pushed before v3, names none."""
    if instance is None:
        return f"vipanel-notify-v2|{cluster_id}|{node}|{state}|{ts}|{nonce}".encode()
    return f"vipanel-notify-v3|{cluster_id}|{node}|{instance}|{state}|{ts}|{nonce}".encode()


def sign(node, state, ts, nonce, instance=None) -> str:
    """The hex signature the node's script sends (for tests and tools; the node signs itself)."""
    data = message(node.cluster_id, node.name, state, ts, nonce, instance)
    return _private_key(node).sign(data).hex()


def valid_instance(name):
    """keepalived instance names as vipanel renders them (VI_<cluster>[_<instance>])."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 100
        and name.isascii()
        and all(c.isalnum() or c in "_.-" for c in name)
    )


def check_signature(node, state, ts, nonce, signature, now=None, instance=None):
    """-> None when the report is authentic (signed by `node`'s key) and fresh, else why not."""
    if state not in STATES:
        return "unknown state"
    if instance is not None and not valid_instance(instance):
        return "bad instance name"
    if not (
        isinstance(nonce, str) and nonce.isascii() and nonce.isalnum() and 8 <= len(nonce) <= 64
    ):
        return "bad nonce"
    if not (isinstance(ts, str) and ts.isascii() and ts.isdigit() and len(ts) <= 12):
        return "bad timestamp"
    now = time.time() if now is None else now
    if abs(now - int(ts)) > max_age():
        return "stale or future timestamp"
    try:
        raw = bytes.fromhex(signature or "")
        public = _private_key(node).public_key()
        public.verify(raw, message(node.cluster_id, node.name, state, ts, nonce, instance))
    except (ValueError, InvalidSignature):
        return "bad signature"
    return None


# --- Receiving a report -------------------------------------------------------------------------


def rate_limited(node, now=None):
    """True when `node` has had VIPANEL_NOTIFY_RATE_LIMIT reports accepted within the window."""

    now = now or timezone.now()
    since = now - timezone.timedelta(seconds=settings.VIPANEL_NOTIFY_RATE_WINDOW)
    recent = NotifyNonce.objects.filter(node=node, received__gte=since).count()
    return recent >= settings.VIPANEL_NOTIFY_RATE_LIMIT


# --- What the push deploys ----------------------------------------------------------------------


def render_script(node):
    """The script for one node. Every interpolated value is from a narrow alphabet: node names
    are [A-Za-z0-9._-], ids are numbers, the URL is checked at settings load. No secret is in it:
    it names the key file, which only root can read."""
    cluster = node.cluster
    names = "|".join(
        [cluster.instance_name, *(i.keepalived_name for i in cluster.instances.order_by("id"))]
    )
    return f"""#!/bin/sh
# vipanel: keepalived notify script for cluster {cluster.name}, node {node.name}.
# Managed by vipanel; replaced by the next push. keepalived calls it as: TYPE NAME STATE PRIORITY.
# Signed with the node's own key, {KEY_PATH} (root only); no secret is on a command line.
state="$3"
case "$state" in MASTER|BACKUP|FAULT|STOP) ;; *) exit 0 ;; esac
instance="$2"
case "$instance" in ""|*[!A-Za-z0-9_.-]*) exit 0 ;; esac
# Only this cluster's instances as the push that wrote this script knows them: keepalived reports
# FAULT for an instance a reload removed, which is no news about the node.
case "$instance" in {names}) ;; *) exit 0 ;; esac
printf '%s\\n' "$state" > {constants.NOTIFY_STATE_FILE}
command -v curl >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 || exit 0
[ -r {KEY_PATH} ] || exit 0
ts=$(date +%s)
nonce=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \\n')
msg=$(umask 077 && mktemp) || exit 0
printf '%s' "vipanel-notify-v3|{cluster.pk}|{node.name}|$instance|$state|$ts|$nonce" > "$msg"
sig=$(openssl pkeyutl -sign -inkey {KEY_PATH} -rawin -in "$msg" | od -An -v -tx1 | tr -d ' \\n')
rm -f "$msg"
# In the background with a deadline: keepalived waits for nobody.
curl -fsS -m 5 -o /dev/null \\
  -d "node={node.name}&instance=$instance&state=$state&ts=$ts&nonce=$nonce&sig=$sig" \\
  '{notify_url(cluster)}' </dev/null >/dev/null 2>&1 &
exit 0
"""


def files_for(node):
    """-> [(path, content bytes, mode)]: the files a push puts on `node` for notify reports
    (none when reports are off). The key file must be written with its mode from the start
    (ssh.Connection.put/put_temp do), and restored like the script if the push fails."""
    if not enabled():
        return []
    return [
        (KEY_PATH, node.notify_key.encode(), KEY_MODE),
        (SCRIPT_PATH, render_script(node).encode(), SCRIPT_MODE),
    ]
