"""A vipanel Cluster whose nodes are the lab's nodes, for tests that push and probe for real."""

import ipaddress

from clusters.models import Cluster, Node, SSHCredential, VirtualIP

# Priorities of lab nodes 1, 2, 3: the last node is the one that should hold the VIPs.
PRIORITIES = (100, 110, 120)


def lab_vip(lab, offset=100):
    """An address of the lab's segment that no node owns, with its prefix length."""
    net = lab.network
    return f"{net.network_address + offset}/{net.prefixlen}"


def make_lab_cluster(lab, name="lab", vrid=77, vips=None, **fields):
    credential, _ = SSHCredential.objects.get_or_create(
        name="lab", defaults={"username": "root", "private_key": lab.private_key}
    )
    cluster = Cluster(
        name=name,
        network=str(ipaddress.ip_network(lab.network)),
        virtual_router_id=vrid,
        interface="eth0",
        advert_int=1,
        reload_command=lab[0].reload_command,
        credential=credential,
        **fields,
    )
    cluster.full_clean()
    cluster.save()
    for node, priority in zip(lab, PRIORITIES, strict=False):  # a lab may have more nodes
        # Trusted up front, as a person would after comparing: nothing pins a key by itself.
        n = Node(
            cluster=cluster,
            name=node.name,
            address=node.address,
            priority=priority,
            host_key_fingerprint=node.fingerprint,
        )
        n.full_clean()
        n.save()
    for address in vips or [lab_vip(lab)]:
        vip = VirtualIP(cluster=cluster, address=address)
        vip.full_clean()
        vip.save()
    return cluster


def place_configs(lab, cluster):
    """Put each node's rendered config and rules in place and start keepalived on all at once.

    The state a first push leaves (in the database too: tests.pushed), reached in one VRRP
    election instead of one per node: for tests about what comes after a push, not about the
    first push itself.
    """
    from clusters.render import (
        iptables_jump_command,
        iptables_restore_command,
        render_iptables,
        render_keepalived,
    )
    from tests.lab import wait_until
    from tests.pushed import mark_pushed

    nodes = {n.name: n for n in cluster.nodes.select_related("cluster")}
    placed = {}
    for lab_node in lab:
        node = nodes[lab_node.name]
        node.host_key_fingerprint = lab_node.fingerprint
        node.save(update_fields=["host_key_fingerprint"])
        placed[node.name] = render_keepalived(node)
        (lab_node.config_dir / "keepalived.conf").write_text(placed[node.name])
        lab_node.exec(iptables_restore_command(node), input=render_iptables(node))
        lab_node.exec(iptables_jump_command(node))
    for lab_node in lab:
        lab_node.start_keepalived()
    holder = max(nodes.values(), key=lambda n: n.priority).name
    vip = str(ipaddress.ip_interface(cluster.vips.order_by("id").first().address).ip)
    wait_until(
        lambda: [n.name for n in lab.vip_holders(vip)] == [holder],
        timeout=30,
        message="the placed configs did not elect the highest priority",
    )
    # Recorded as a push records it: these files are what vipanel put there, every VIP is live.
    return mark_pushed(cluster, configs=placed)
