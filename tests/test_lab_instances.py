"""Several VRRP instances per cluster against the real lab (issue 11): real sshd, keepalived and
iptables in namespaces, pushed by the rolling push.

- active/active over three nodes: each instance on its own master, and stopping keepalived on
  one node moves only that node's instance;
- a sync group of two instances on two interfaces (the lab nodes get a second interface on a
  second bridge here) moving together when one interface goes down;
- dual-stack: an IPv4 and an IPv6 instance side by side;
- a VRID clash between instances of two clusters on the lab's segment is refused.
"""

import ipaddress
import subprocess

import pytest
from django.core.exceptions import ValidationError

from clusters.models import Cluster, ConfigPush, Node, VrrpInstance
from clusters.push import run_push
from clusters.services import instances, vips
from clusters.services.pushes import start_push
from clusters.status import probe_cluster
from tests.lab import wait_until
from tests.lab.lab import LAB_RANGE, _subnet_index
from tests.lab_cluster import lab_vip, make_lab_cluster

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def push_here(cluster):
    push = start_push(None, cluster, queue=False)
    run_push(push.pk)
    push.refresh_from_db()
    assert push.state == ConfigPush.State.SUCCEEDED, (push.detail, push.log)
    return push


def holders(lab, vip, interface="eth0"):
    """Names of the lab nodes with `vip` (address/len or address) on `interface`."""
    ip = ipaddress.ip_interface(vip).ip
    found = []
    for node in lab:
        out = node.exec(f"ip -o addr show dev {interface}", check=False).stdout
        words = out.split()
        if any(
            ipaddress.ip_interface(w).ip == ip
            for i, w in enumerate(words)
            if i and words[i - 1] in ("inet", "inet6")
        ):
            found.append(node.name)
    return found


def set_priorities(cluster, by_name):
    # Through values no node has yet, so the unique constraint holds at every step.
    for name, priority in by_name.items():
        Node.objects.filter(cluster=cluster, name=name).update(priority=priority)


def test_active_active_three_nodes_each_instance_on_its_master(clean_lab):
    n1, n2, n3 = (n.name for n in clean_lab)
    cluster = make_lab_cluster(clean_lab, name="aa", vrid=81)
    set_priorities(cluster, {n1: 150, n2: 140, n3: 130})
    b = instances.create_active_active(None, cluster, {"vip": lab_vip(clean_lab, offset=101)})
    assert {p.node.name: p.priority for p in b.node_priorities.all()} == {n1: 130, n2: 150, n3: 140}
    vip_a, vip_b = lab_vip(clean_lab), lab_vip(clean_lab, offset=101)
    push_here(cluster)
    wait_until(
        lambda: holders(clean_lab, vip_a) == [n1] and holders(clean_lab, vip_b) == [n2],
        timeout=30,
        message="A on node 1 and B on node 2 after the first push",
    )
    # Each node runs one keepalived with both instances.
    for node in clean_lab:
        conf = node.exec(f"cat {cluster.config_path}").stdout
        assert "vrrp_instance VI_aa {" in conf and "vrrp_instance VI_aa_B {" in conf
    clean_lab[0].kill_keepalived()
    wait_until(
        lambda: holders(clean_lab, vip_a) == [n2],
        timeout=30,
        message="A moved to its next priority (node 2)",
    )
    assert holders(clean_lab, vip_b) == [n2]  # B never left node 2
    status = probe_cluster(cluster)
    assert status.holders == {vip_a: [n2], vip_b: [n2]}


@pytest.fixture
def second_segment(clean_lab):
    """eth1 on every lab node, on a bridge of its own: the lab's /24 moved by half the range."""
    prefix = clean_lab.prefix
    net = list(LAB_RANGE.subnets(new_prefix=24))[(_subnet_index(prefix) + 256) % 512]
    bridge = f"{prefix}-br2"

    def run(*args):
        subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)

    run("ip", "link", "add", bridge, "type", "bridge")
    hosts = []
    try:
        run("ip", "link", "set", bridge, "up")
        for node in clean_lab:
            host = f"{prefix}-s{node.index}"
            run(
                "ip",
                "link",
                "add",
                host,
                "type",
                "veth",
                "peer",
                "name",
                "eth1",
                "netns",
                node.netns,
            )
            hosts.append(host)
            run("ip", "link", "set", host, "master", bridge, "up")
            node.exec(
                f"ip addr add {net.network_address + 10 + node.index}/24 dev eth1"
                " && ip link set eth1 up"
            )
        yield net
    finally:
        for host in hosts:
            subprocess.run(["ip", "link", "del", host], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], check=False, capture_output=True)


def test_a_sync_group_moves_both_instances_when_one_interface_fails(clean_lab, second_segment):
    n1, n2, n3 = (n.name for n in clean_lab)
    cluster = make_lab_cluster(clean_lab, name="router", vrid=82)
    group = instances.create_sync_group(None, cluster, {"name": "pair", "includes_main": True})
    inside = instances.create_instance(
        None,
        cluster,
        {
            "name": "inside",
            "virtual_router_id": 82,
            "interface": "eth1",
            "network": str(second_segment),
            "sync_group": group,
        },
    )
    inside_vip = f"{second_segment.network_address + 1}/24"
    vips.create_vip(None, cluster, {"address": inside_vip, "instance": inside})
    outside_vip = lab_vip(clean_lab)
    push_here(cluster)
    wait_until(
        lambda: (
            holders(clean_lab, outside_vip) == [n3]
            and holders(clean_lab, inside_vip, "eth1") == [n3]
        ),
        timeout=30,
        message="both instances on node 3 (highest priority)",
    )
    assert (
        "vrrp_sync_group VG_router_pair" in clean_lab[2].exec(f"cat {cluster.config_path}").stdout
    )
    # Node 3's inside interface fails: the inside instance goes FAULT, and the sync group takes
    # the outside instance with it, though eth0 is fine.
    clean_lab[2].exec("ip link set eth1 down")
    wait_until(
        lambda: (
            holders(clean_lab, outside_vip) == [n2]
            and holders(clean_lab, inside_vip, "eth1") == [n2]
        ),
        timeout=30,
        message="both instances moved together to node 2",
    )


@pytest.fixture
def v6_cleanup(clean_lab):
    """The lab's reset knows IPv4 only: take the IPv6 chain and addresses away after the test."""
    yield
    for node in clean_lab:
        node.exec(
            "ip6tables -w -D INPUT -j VIPANEL-VRRP; ip6tables -w -F VIPANEL-VRRP; "
            "ip6tables -w -X VIPANEL-VRRP; ip -6 addr flush dev eth0 scope global; true",
            check=False,
        )


def test_dual_stack_ipv4_and_ipv6_instances(clean_lab, v6_cleanup):
    n1, n2, n3 = (n.name for n in clean_lab)
    cluster = make_lab_cluster(clean_lab, name="ds", vrid=83)
    v6 = instances.create_instance(
        None, cluster, {"name": "v6", "virtual_router_id": 83, "network": "fd00:83::/64"}
    )
    vips.create_vip(None, cluster, {"address": "fd00:83::100/64", "instance": v6})
    push_here(cluster)
    v4_vip = lab_vip(clean_lab)
    wait_until(
        lambda: (
            holders(clean_lab, v4_vip) == [n3] and holders(clean_lab, "fd00:83::100/64") == [n3]
        ),
        timeout=30,
        message="the IPv4 and the IPv6 instance on node 3",
    )
    assert probe_cluster(cluster).holders == {v4_vip: [n3], "fd00:83::100/64": [n3]}
    # Each family's chain admits its instance's adverts.
    for node in clean_lab:
        v4 = node.exec("iptables -w -S VIPANEL-VRRP").stdout
        v6 = node.exec("ip6tables -w -S VIPANEL-VRRP").stdout
        assert "-d 224.0.0.18/32 -i eth0" in v4 and "-d ff02::12/128 -i eth0" in v6
        assert "-j VIPANEL-VRRP" in node.exec("ip6tables -w -S INPUT").stdout
    clean_lab[2].kill_keepalived()
    wait_until(
        lambda: (
            holders(clean_lab, v4_vip) == [n2] and holders(clean_lab, "fd00:83::100/64") == [n2]
        ),
        timeout=30,
        message="both families moved to node 2",
    )


def test_a_dual_stack_nodes_second_chain_is_compared_saved_and_restored(clean_lab, v6_cleanup):
    """The IPv6 chain of a dual-stack node is part of the plan (a node whose chain was removed
    by hand is pushed again) and of the backup (a failed push puts it back as it was)."""
    cluster = make_lab_cluster(clean_lab, name="ds", vrid=86)
    v6 = instances.create_instance(
        None, cluster, {"name": "v6", "virtual_router_id": 86, "network": "fd00:86::/64"}
    )
    vips.create_vip(None, cluster, {"address": "fd00:86::100/64", "instance": v6})
    assert push_here(cluster).state == ConfigPush.State.SUCCEEDED
    first, second = clean_lab[0], clean_lab[1]
    second.exec("ip6tables -w -F VIPANEL-VRRP")  # emptied by hand
    again = push_here(cluster)
    states = dict(again.steps.values_list("node_name", "state"))
    assert states[second.name] == "applied" and states[first.name] == "unchanged", states
    assert "ff02::12" in second.exec("ip6tables -w -S VIPANEL-VRRP").stdout

    marker = "-A VIPANEL-VRRP -s fd00:99::1/128 -j ACCEPT"
    first.exec(f"ip6tables -w {marker.replace('-A ', '-I ', 1)}")
    before = first.exec("ip6tables -w -S VIPANEL-VRRP").stdout
    assert marker in before
    # A change every node takes, and a reload that fails on the first node of the roll.
    vips.create_vip(None, cluster, {"address": lab_vip(clean_lab, offset=186)})
    Cluster.objects.filter(pk=cluster.pk).update(reload_command="exit 3")
    failed = start_push(None, cluster, queue=False)
    run_push(failed.pk)
    failed.refresh_from_db()
    assert failed.state == ConfigPush.State.FAILED
    assert failed.steps.get(node_name=first.name).state == "failed"
    assert first.exec("ip6tables -w -S VIPANEL-VRRP").stdout == before


def test_a_vrid_clash_between_instances_of_two_clusters_on_the_segment_is_refused(clean_lab):
    first = make_lab_cluster(clean_lab, name="one", vrid=84)
    instances.create_instance(None, first, {"name": "api", "virtual_router_id": 90})
    # A second cluster on the same segment (the lab's nodes belong to the first).
    other = Cluster(
        name="two",
        network=str(clean_lab.network),
        virtual_router_id=85,
        credential=first.credential,
    )
    other.full_clean()
    other.save()
    with pytest.raises(ValidationError) as e:
        instances.create_instance(None, other, {"name": "web", "virtual_router_id": 90})
    message = e.value.message_dict["virtual_router_id"][0]
    assert "instance 'api' of cluster 'one'" in message and "collide" in message
    assert not VrrpInstance.objects.filter(cluster=other).exists()
    # Another VRID on the same segment is fine.
    instances.create_instance(None, other, {"name": "web", "virtual_router_id": 91})


def active_active_three(lab, name, vrid):
    """Node 1 masters A (main), node 2 masters B; B's next priority is node 3."""
    n1, n2, n3 = (n.name for n in lab)
    cluster = make_lab_cluster(lab, name=name, vrid=vrid)
    set_priorities(cluster, {n1: 150, n2: 140, n3: 130})
    b = instances.create_active_active(None, cluster, {"vip": lab_vip(lab, offset=101)})
    push_here(cluster)
    vip_a, vip_b = lab_vip(lab), lab_vip(lab, offset=101)
    wait_until(
        lambda: holders(lab, vip_a) == [n1] and holders(lab, vip_b) == [n2],
        timeout=30,
        message="A on node 1 and B on node 2",
    )
    return cluster, b, vip_a, vip_b


def test_maintenance_moves_every_instance_off_the_node(clean_lab):
    from clusters.services.maintenance import set_maintenance

    n1, n2, n3 = (n.name for n in clean_lab)
    cluster, b, vip_a, vip_b = active_active_three(clean_lab, "mt", 86)
    # Node 2 masters B and backs up A first: in maintenance it leaves both elections.
    push = set_maintenance(None, cluster.nodes.get(name=n2), True)
    run_push(push.pk)
    push.refresh_from_db()
    assert push.state == ConfigPush.State.SUCCEEDED, (push.detail, push.log)
    assert holders(clean_lab, vip_b) == [n3] and holders(clean_lab, vip_a) == [n1]
    conf = clean_lab[1].exec(f"cat {cluster.config_path}").stdout
    assert conf.count("priority 1\n") == 2  # both instances lowered
    clean_lab[0].kill_keepalived()
    wait_until(
        lambda: holders(clean_lab, vip_a) == [n3],
        timeout=30,
        message="A skips the node in maintenance",
    )


def test_removing_an_instance_leaves_no_node_in_fault(clean_lab, settings):
    """keepalived 2.2.7 calls notify with FAULT for an instance a reload removed. The script
    the push deployed with the new file knows the cluster's instances and ignores it, so no
    node's recorded state says FAULT afterwards."""
    from clusters.constants import NOTIFY_STATE_FILE

    # Reports go nowhere (nothing listens on the discard port): the state file is what counts.
    settings.VIPANEL_NOTIFY_URL = f"http://{clean_lab.bridge_address}:9"
    n1, n2, n3 = (n.name for n in clean_lab)
    cluster, b, vip_a, vip_b = active_active_three(clean_lab, "rm", 88)
    instances.delete_instance(None, b)
    push_here(cluster)
    wait_until(lambda: holders(clean_lab, vip_b) == [], timeout=30, message="B's VIP went")
    states = {n.name: n.exec(f"cat {NOTIFY_STATE_FILE}").stdout.strip() for n in clean_lab}
    assert "FAULT" not in states.values(), states
    assert states[n1] == "MASTER" and holders(clean_lab, vip_a) == [n1]


def test_a_drill_targets_one_instance(clean_lab):
    from clusters.drill import run_drill

    n1, n2, n3 = (n.name for n in clean_lab)
    cluster, b, vip_a, vip_b = active_active_three(clean_lab, "dr", 87)
    event = run_drill(cluster, None, instance=b)
    assert event.detail.startswith("Passed."), event.detail
    assert (event.from_node, event.to_node, event.instance_name) == (n2, n3, "VI_dr_B")
    assert event.vip_address == vip_b
    # keepalived is back on node 2, which takes B back (preempt); A never moved.
    wait_until(lambda: holders(clean_lab, vip_b) == [n2], timeout=30, message="B back on node 2")
    assert holders(clean_lab, vip_a) == [n1]
