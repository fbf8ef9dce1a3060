"""Removing a stale address: a VIP left on a node whose keepalived is no longer running.

`kill -9` (or a crash) of keepalived leaves its VIPs on the interface; the node answers ARP for
them next to the new holder. The sweep reports it as a stale address, not a split brain
(clusters/history.py); this removes it, over SSH, checked on the node itself at that moment: the
command refuses while keepalived runs there (keepalived owns its addresses then), and removes
only an address vipanel manages, on the interface the config puts it on.

"""

import shlex

from django.core.exceptions import ValidationError
from django.db import transaction

from clusters import audit, remote, roles, ssh, validators
from clusters.services.errors import Forbidden

# Exit code of the command when keepalived runs on the node: nothing is removed.
KEEPALIVED_RUNNING = 3
NOT_THERE = 4


def _command(address, interface):
    ip = shlex.quote(address)
    dev = shlex.quote(interface)
    return (
        f"if pidof keepalived >/dev/null 2>&1; then exit {KEEPALIVED_RUNNING}; fi; "
        f"ip -o addr show dev {dev} | grep -qF ' {address.split('/')[0]}/' "
        f"|| exit {NOT_THERE}; ip addr del {ip} dev {dev}"
    )


def remove_stale_address(user, node, vip):
    """Remove `vip` from `node`'s interface if keepalived is not running there. Operator; audited.

    -> a sentence saying what happened. Raises Forbidden, or ValidationError keyed by the field
    to fix.
    """
    if not roles.can_operate(user):
        raise Forbidden("Removing a stale address needs the operator role.")
    if vip.cluster_id != node.cluster_id:
        raise ValidationError({"vip": f"{vip.address} is not a VIP of {node.name}'s cluster."})
    interface = node.effective_interface
    try:
        validators.validate_vip(vip.address)
        validators.validate_interface(interface)
    except ValidationError as e:
        raise ValidationError({"vip": e.messages}) from None
    try:
        target = remote.target_for(node)
    except ssh.SSHError as e:
        raise ValidationError({"credential": e.message}) from None
    conn = error = None
    try:
        conn = remote.connect(target)
        result = conn.run(_command(vip.address, interface))
    except ssh.SSHError as e:
        error = e
        outcome = f"failed: {e.message}"
    else:
        outcome = {
            0: f"removed {vip.address} from {interface} on {node.name}",
            KEEPALIVED_RUNNING: f"refused: keepalived is running on {node.name} again; it "
            "manages its addresses itself",
            NOT_THERE: f"nothing to do: {vip.address} is not on {interface} of {node.name}",
        }.get(
            result.exit_status,
            f"failed: ip addr del exited {result.exit_status}: {result.stderr.strip()[:120]}",
        )
    finally:
        if conn is not None:
            conn.close()
    remote.settle(target, conn, error)
    with transaction.atomic():
        audit.record(
            user,
            "vip.remove_stale",
            vip,
            cluster=node.cluster,
            changes={"node": node.name, "interface": interface},
            result=outcome,
        )
    return outcome
