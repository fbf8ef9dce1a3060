"""When is a cluster "settled" after a reload: the one rule the push and the drill wait for.

`settle_problem` judges one ClusterStatus; `wait_until_settled` probes until it holds or the
VRRP timeout passes. The probe is a parameter so a push can probe over the connections it
already holds (and only the nodes that matter), while the drill probes the whole cluster.
"""

import time

from django.conf import settings

from clusters.status import probe_cluster


def settle_seconds(cluster):
    """3 x advert_int, plus a skew of at most one advert_int, plus a margin for SSH: a backup
    that hears no master takes over after that long, so by then VRRP has settled."""
    advert = max([cluster.advert_int, *cluster.instances.values_list("advert_int", flat=True)])
    return 4 * advert + settings.VIPANEL_VERIFY_MARGIN


def wait_until_settled(
    cluster, node=None, final=False, probe=None, seconds=None, split=None, unseen=()
):
    """Probe until the cluster looks right; -> None, or what was still wrong at the deadline.
    `split`, `unseen`: see settle_problem."""
    probe = probe or (lambda: probe_cluster(cluster))
    deadline = time.monotonic() + (settle_seconds(cluster) if seconds is None else seconds)
    while True:
        problem = settle_problem(cluster, probe(), node, final, split, unseen)
        if problem is None or time.monotonic() > deadline:
            return problem
        time.sleep(0.1)


def settle_problem(cluster, status, node=None, final=False, split=None, unseen=()):
    """What is wrong with the cluster right after `node` was reloaded (None: nothing).

    Mid-push, a VIP just added is held by nobody until the holder (pushed last) has it, so
    only the advertised VIP must have exactly one holder; no VIP may have two. At the end
    (`final`), every VIP must have exactly one holder. `status` may cover only some nodes
    (the one reloaded and the current holders): the expected holder is chosen among those.

    `split` ({vip: [node names]}) names the VIPs several nodes held when the push began (a
    split brain, e.g. a cluster adopted with a VRID per node): the push ends it node by node,
    so mid-push such a VIP may still be held by those of them not reloaded yet, and only by
    them; the expected holder must be one of them, the node just reloaded only if it is that
    one. Nobody else may gain it, and at the end it has one holder like every VIP.

    A VIP no probed node holds is not judged while `unseen` nodes (skipped, never probed) may
    hold it.
    """
    if node is not None:
        me = next((p for p in status.nodes if p.node_id == node.pk), None)
        if me is None or not me.reachable:
            return "the node did not answer the probe"
        if not me.keepalived_running:
            return "keepalived is not running after the reload"
        if me.vrrp_state == "FAULT":
            return "keepalived is in FAULT state"
    if final:
        for p in status.nodes:
            if not p.reachable:
                return f"{p.name} did not answer the probe"
            if p.keepalived_running is False and not p.maintenance:
                return f"keepalived is not running on {p.name}"
            if p.vrrp_state == "FAULT":
                return f"keepalived is in FAULT state on {p.name}"
    nodes = {n.name: n for n in cluster.nodes.all()}
    running = [p.name for p in status.nodes if p.keepalived_running and p.name in nodes]
    candidates = [n for n in running if not nodes[n].maintenance] or running
    instances = cluster.vrrp_instances()
    ending = {} if final else dict(split or {})
    reloaded = node.name if node is not None else None
    for inst in instances:
        problem = _instance_problem(
            inst,
            status,
            nodes,
            candidates,
            final,
            len(instances) > 1,
            ending,
            reloaded,
            bool(unseen),
        )
        if problem:
            return problem
    return None


def _instance_problem(
    inst, status, nodes, candidates, final, named, ending=None, reloaded=None, unseen=False
):
    """settle_problem for one VRRP instance (Cluster.vrrp_instances): its anchor (the VIP in
    its adverts) must have one holder, none of its VIPs two, and with preemption the holder is
    the running node with the highest priority in this instance."""
    where = f" ({inst.name})" if named else ""
    addresses = [v.address for v in inst.vips if v.address in status.holders]
    if unseen:
        # Held by no node we see: it may be on a skipped one, whose keepalived we cannot see.
        addresses = [a for a in addresses if status.holders[a]]
    if not addresses:
        return None
    anchor = addresses[0]
    ending = ending or {}
    for vip in addresses:
        holders = status.holders[vip]
        if len(holders) > 1 and not (
            set(holders) <= set(ending.get(vip, ())) and reloaded not in holders
        ):
            return f"{vip}{where} is held by {len(holders)} nodes ({', '.join(holders)})"
        if not holders and (final or vip == anchor):
            return f"{vip}{where} is held by no node"
    ranked = [n for n in candidates if nodes[n].pk in inst.priorities]
    if inst.preempt and ranked:
        expected = max(ranked, key=lambda n: inst.priorities[nodes[n].pk])
        for vip in addresses if final else [anchor]:
            holders = status.holders[vip]
            if len(holders) > 1 and expected in holders:
                continue  # a split brain from before the push, on nodes not reloaded yet
            if holders != [expected]:
                return (
                    f"{vip}{where} is on {holders[0]}, expected on {expected} "
                    "(highest priority running)"
                )
    return None
