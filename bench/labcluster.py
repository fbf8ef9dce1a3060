"""A vipanel cluster over the first N lab nodes, and putting nodes in a known starting state."""

import ipaddress
import time

from tests.lab import wait_until

ADVERT_INT = 1


def vip(lab, offset):
    net = lab.network
    return f"{net.network_address + offset}/{net.prefixlen}"


def priority(i):
    # Distinct priorities, highest last: node N is the holder.
    return 100 + i


def make_cluster(lab, nodes, name, vrid, vips, **fields):
    from clusters.models import Cluster, Node, SSHCredential, VirtualIP

    credential, _ = SSHCredential.objects.get_or_create(
        name="lab", defaults={"username": "root", "private_key": lab.private_key}
    )
    cluster = Cluster(
        name=name,
        network=str(ipaddress.ip_network(lab.network)),
        virtual_router_id=vrid,
        interface="eth0",
        advert_int=ADVERT_INT,
        reload_command=lab[0].reload_command,
        credential=credential,
        **fields,
    )
    cluster.full_clean()
    cluster.save()
    for i, node in enumerate(nodes, start=1):
        # Host keys pinned up front, as after a first push: every method starts equal.
        n = Node(
            cluster=cluster,
            name=node.name,
            address=node.address,
            priority=priority(i),
            host_key_fingerprint=node.fingerprint,
        )
        n.full_clean()
        n.save()
    for address in vips:
        v = VirtualIP(cluster=cluster, address=address)
        v.full_clean()
        v.save()
    return cluster


def as_pushed(cluster, lab_nodes):
    """Each node's config written from the host (no SSH, no keepalived) and recorded as pushed,
    as a cluster a push set up looks: no node "pending push", no VIP too new to count, no drift.
    (A cluster never pushed is only configuration: the sweep and notify record nothing of it.)"""
    from clusters.render import node_config
    from tests.pushed import mark_pushed

    by_name = {n.name: n for n in lab_nodes}
    for node in cluster.nodes.select_related("cluster"):
        conf = by_name[node.name].config_dir / "keepalived.conf"
        conf.write_text(node_config(node))
        conf.chmod(0o640)
    return mark_pushed(cluster)


def install_directly(cluster, lab_nodes, notify_script=None):
    """Write each node's rendered config and rules from the host (no SSH), start keepalived and
    wait until the highest-priority node holds every VIP: the same start for every method.
    The cluster is recorded as pushed (tests.pushed.mark_pushed), as after a push."""
    from clusters.render import iptables_jump_command, render_iptables, render_keepalived
    from tests.pushed import mark_pushed

    by_name = {n.name: n for n in lab_nodes}
    nodes = list(cluster.nodes.order_by("priority"))
    for node in nodes:
        lab_node = by_name[node.name]
        conf = lab_node.config_dir / "keepalived.conf"
        conf.write_text(render_keepalived(node, notify_script=notify_script))
        conf.chmod(0o640)
        lab_node.exec("iptables-restore -w --noflush", input=render_iptables(node))
        lab_node.exec(iptables_jump_command(node))
    # Recorded as pushed before keepalived starts, as a push does: the election's reports count.
    mark_pushed(cluster)
    for node in nodes:
        by_name[node.name].start_keepalived()
    top = lab_nodes[-1]
    addresses = [v.address.split("/")[0] for v in cluster.vips.all()]
    t0 = time.monotonic()
    wait_until(
        lambda: (
            all(top.holds(a) for a in addresses)
            and all(not n.holds(a) for n in lab_nodes[:-1] for a in addresses)
        ),
        timeout=30,
        interval=0.2,
        message="the starting state did not settle",
    )
    return time.monotonic() - t0


def free_vip_offsets(lab, count, exclude=()):
    """`count` host offsets of the lab's /24 that no node (.11 up) and no bridge (.1) has."""
    used = {1, *range(11, 11 + len(lab)), *exclude}
    free = [o for o in range(2, 255) if o not in used]
    if len(free) < count:
        raise ValueError(f"the lab's /24 has {len(free)} free addresses, not {count}")
    return free[:count]


def start_many(clusters, lab):
    """Clusters of a fleet in service, at once: each node's config and rules written from the
    host, every keepalived started, recorded as pushed; returns when each cluster's
    highest-priority node holds its VIPs. `clusters`: [(cluster, its lab nodes)]."""
    from clusters.render import iptables_jump_command, render_iptables

    for cluster, nodes in clusters:
        as_pushed(cluster, nodes)
        by_name = {n.name: n for n in nodes}
        for node in cluster.nodes.select_related("cluster"):
            lab_node = by_name[node.name]
            lab_node.exec("iptables-restore -w --noflush", input=render_iptables(node))
            lab_node.exec(iptables_jump_command(node))
    for _, nodes in clusters:
        for node in nodes:
            node.start_keepalived()
    wanted = [
        (nodes[-1], v.address.split("/")[0])
        for cluster, nodes in clusters
        for v in cluster.vips.all()
    ]
    wait_until(
        lambda: all(top.holds(address) for top, address in wanted),
        timeout=120,
        interval=0.5,
        message="the clusters did not elect their highest priority",
    )
