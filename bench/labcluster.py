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
    for node in cluster.nodes.order_by("priority"):
        lab_node = by_name[node.name]
        conf = lab_node.config_dir / "keepalived.conf"
        conf.write_text(render_keepalived(node, notify_script=notify_script))
        conf.chmod(0o640)
        lab_node.exec("iptables-restore -w --noflush", input=render_iptables(node))
        lab_node.exec(iptables_jump_command(node))
        lab_node.start_keepalived()
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
    mark_pushed(cluster)
    return time.monotonic() - t0
