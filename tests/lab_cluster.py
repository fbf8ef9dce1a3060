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
    for node, priority in zip(lab, PRIORITIES):
        n = Node(cluster=cluster, name=node.name, address=node.address, priority=priority)
        n.full_clean()
        n.save()
    for address in vips or [lab_vip(lab)]:
        vip = VirtualIP(cluster=cluster, address=address)
        vip.full_clean()
        vip.save()
    return cluster
