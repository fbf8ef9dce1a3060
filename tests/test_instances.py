"""Several VRRP instances per cluster (issue 11): the rules of the model and the rendered files.

A cluster's main instance is the cluster row; VrrpInstance rows are the further ones, each with
its VRID, interface, segment, auth, preemption, VIPs, per-node priorities (NodePriority) and an
optional sync group. Goldens for active/active, dual-stack, a sync group and mixed unicast and
multicast are checked with the real keepalived and iptables-restore (tests/test_render.py's
helpers, in throwaway network namespaces).
"""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from clusters import render
from clusters.models import Cluster, Node, NodePriority, SyncGroup, VirtualIP, VrrpInstance
from tests.cast import *  # noqa: F403
from tests.netns import throwaway_netns
from tests.pushed import mark_pushed
from tests.test_render import GOLDEN, assert_golden, assert_keepalived_accepts, chain_rules, make

pytestmark = pytest.mark.django_db


def refused(obj, field):
    with pytest.raises(ValidationError) as e:
        obj.full_clean()
    assert field in e.value.message_dict, e.value.message_dict
    return e.value.message_dict[field]


def instance(cluster, name="B", vrid=61, prios=None, vips=(), **fields):
    inst = make(VrrpInstance, cluster=cluster, name=name, virtual_router_id=vrid, **fields)
    for node_name, prio in (prios or {}).items():
        make(NodePriority, instance=inst, node=cluster.nodes.get(name=node_name), priority=prio)
    for address in vips:
        make(VirtualIP, cluster=cluster, instance=inst, address=address)
    return inst


def other_cluster(credential, name="db", network="192.0.2.0/24", vrid=70):
    c = make(Cluster, name=name, network=network, virtual_router_id=vrid, credential=credential)
    return c


# --- Model rules ---------------------------------------------------------------------------------


def test_an_instance_vrid_must_differ_from_its_own_clusters_main_vrid(cluster):
    [message] = refused(
        VrrpInstance(cluster=cluster, name="B", virtual_router_id=51), "virtual_router_id"
    )
    assert "cluster 'web'" in message and "Pick another VRID" in message


def test_an_instance_vrid_clashing_with_another_clusters_instance_on_the_segment(
    cluster, credential
):
    db = other_cluster(credential, network="192.0.2.0/25")
    instance(db, name="X", vrid=80)
    [message] = refused(
        VrrpInstance(cluster=cluster, name="B", virtual_router_id=80), "virtual_router_id"
    )
    assert "instance 'X' of cluster 'db'" in message


def test_a_cluster_vrid_clashing_with_another_clusters_instance(cluster, credential):
    db = other_cluster(credential, network="10.0.0.0/24")
    instance(db, name="X", vrid=80, network="192.0.2.0/24")
    db2 = Cluster(name="db2", network="192.0.2.0/24", virtual_router_id=80, credential=credential)
    [message] = refused(db2, "virtual_router_id")
    assert "instance 'X' of cluster 'db'" in message
    # The free VRID the message offers is free of instances too.
    assert db2.free_vrid() not in (51, 80)


def test_the_same_vrid_is_fine_on_another_segment(cluster):
    inst = VrrpInstance(cluster=cluster, name="inside", virtual_router_id=51, network="10.1.0.0/24")
    inst.full_clean()


def test_a_changed_main_vrid_is_checked_against_the_clusters_own_instances(cluster):
    instance(cluster, vrid=61)
    cluster.virtual_router_id = 61
    [message] = refused(cluster, "virtual_router_id")
    assert "instance 'B' of cluster 'web'" in message


def test_instance_names_are_unique_per_cluster(cluster):
    instance(cluster, vrid=61)
    [message] = refused(VrrpInstance(cluster=cluster, name="B", virtual_router_id=62), "name")
    assert "Another instance" in message
    with pytest.raises(IntegrityError), transaction.atomic():
        VrrpInstance.objects.create(cluster=cluster, name="B", virtual_router_id=62)


def test_preempt_delay_needs_preempt(cluster):
    inst = VrrpInstance(
        cluster=cluster, name="B", virtual_router_id=61, preempt=False, preempt_delay=5
    )
    [message] = refused(inst, "preempt_delay")
    assert "set it to 0" in message


def test_one_address_family_per_instance_and_dual_stack_by_instances(cluster):
    [message] = refused(
        VirtualIP(
            cluster=cluster,
            instance=instance(cluster, name="x", vrid=63),
            address="2001:db8::99/64",
        ),
        "address",
    )
    assert "Set the instance's network to its IPv6 segment" in message
    v6 = instance(cluster, name="v6", vrid=62, network="2001:db8::/64", vips=["2001:db8::100/64"])
    # The main instance is IPv4: an IPv6 VIP goes to the v6 instance.
    [message] = refused(VirtualIP(cluster=cluster, address="2001:db8::101/64"), "address")
    assert "Add an instance for IPv6" in message
    [message] = refused(
        VirtualIP(cluster=cluster, instance=v6, address="192.0.2.110/24"), "address"
    )
    assert "Instance 'v6' is on the IPv6 segment" in message
    make(VirtualIP, cluster=cluster, instance=v6, address="2001:db8::101/64")


def test_a_vip_is_in_one_instance_only_and_never_a_nodes_address(cluster):
    b = instance(cluster)
    [message] = refused(VirtualIP(cluster=cluster, instance=b, address="192.0.2.100/24"), "address")
    assert "already a virtual IP" in message
    [message] = refused(VirtualIP(cluster=cluster, instance=b, address="192.0.2.11/24"), "address")
    assert "node 'web-1'" in message


def test_a_vip_cannot_name_another_clusters_instance(cluster, credential):
    db = other_cluster(credential, network="10.0.0.0/24")
    x = instance(db, name="X", vrid=80)
    [message] = refused(
        VirtualIP(cluster=cluster, instance=x, address="192.0.2.120/24"), "instance"
    )
    assert "another cluster" in message


def test_node_priorities_are_unique_within_an_instance(cluster):
    b = instance(cluster, prios={"web-1": 100})
    [message] = refused(
        NodePriority(instance=b, node=cluster.nodes.get(name="web-2"), priority=100), "priority"
    )
    assert "node 'web-1'" in message and "e.g. 99" in message
    # The main instance's priorities are another instance: mirrored is fine.
    make(NodePriority, instance=b, node=cluster.nodes.get(name="web-2"), priority=120)
    with pytest.raises(IntegrityError), transaction.atomic():
        NodePriority.objects.create(instance=b, node=cluster.nodes.get(name="web-1"), priority=90)


def test_a_priority_needs_a_node_of_the_instances_cluster(cluster, credential):
    db = other_cluster(credential, network="10.0.0.0/24")
    stranger = make(Node, cluster=db, name="db-1", address="10.0.0.11", priority=100)
    b = instance(cluster)
    [message] = refused(NodePriority(instance=b, node=stranger, priority=100), "node")
    assert "is not in cluster 'web'" in message


def test_check_weight_against_each_tracking_instances_spread(cluster):
    cluster.check_script, cluster.check_weight = "/usr/bin/pgrep haproxy", -30
    cluster.full_clean()
    cluster.save()
    b = instance(cluster, prios={"web-1": 100}, track_check=True)
    [message] = refused(
        NodePriority(instance=b, node=cluster.nodes.get(name="web-2"), priority=140), "priority"
    )
    assert "span 40" in message
    make(NodePriority, instance=b, node=cluster.nodes.get(name="web-2"), priority=120)
    cluster.check_weight = -15
    [message] = refused(cluster, "check_weight")
    assert "instance 'B'" in message
    # An instance that does not track the check may span more.
    b.track_check = False
    b.save()
    cluster.full_clean()


def test_sync_groups_tie_instances_of_one_cluster_once_each(cluster, credential):
    group = make(SyncGroup, cluster=cluster, name="router", includes_main=True)
    b = instance(cluster, sync_group=group)
    assert group.member_count() == 2
    [message] = refused(
        SyncGroup(cluster=cluster, name="other", includes_main=True), "includes_main"
    )
    assert "already in sync group 'router'" in message
    with pytest.raises(IntegrityError), transaction.atomic():
        SyncGroup.objects.create(cluster=cluster, name="other", includes_main=True)
    db = other_cluster(credential, network="10.0.0.0/24")
    foreign = make(SyncGroup, cluster=db, name="g")
    b.sync_group = foreign
    [message] = refused(b, "sync_group")
    assert "another cluster" in message


def test_readiness_names_missing_priorities_vips_and_lonely_sync_groups(cluster):
    group = make(SyncGroup, cluster=cluster, name="solo")
    instance(cluster, prios={"web-1": 100}, sync_group=group)
    errors = cluster.readiness_errors()
    assert "web-2" in errors["instances.priorities"]
    assert "add at least one virtual IP" in errors["instances.vips"]
    assert "fewer than two" in errors["sync_groups"]


# --- Rendering: goldens checked by keepalived -t and iptables-restore --test -------------------


def active_active(cluster):
    """Two instances over the same two hosts with mirrored priorities: each host masters one."""
    instance(cluster, prios={"web-1": 110, "web-2": 120}, vips=["192.0.2.200/24"])
    return cluster


def dual_stack(cluster):
    # VRIDs count per address family: the IPv6 instance may reuse the IPv4 one's.
    instance(
        cluster,
        name="v6",
        vrid=51,
        network="2001:db8::/64",
        prios={"web-1": 120, "web-2": 110},
        vips=["2001:db8::100/64", "2001:db8::101/64"],
    )
    return cluster


def sync_group(cluster):
    """A router pair: outside (main, eth0) and inside (eth1, another segment) move together."""
    group = make(SyncGroup, cluster=cluster, name="router", includes_main=True)
    instance(
        cluster,
        name="inside",
        vrid=51,
        interface="eth1",
        network="10.1.0.0/24",
        prios={"web-1": 120, "web-2": 110},
        vips=["10.1.0.1/24"],
        sync_group=group,
    )
    return cluster


def mixed_unicast_multicast(cluster):
    """The main instance multicast, a second unicast one with auth and nopreempt."""
    instance(
        cluster,
        name="api",
        vrid=52,
        unicast=True,
        auth_pass="s3cret",
        preempt=False,
        prios={"web-1": 100, "web-2": 90},
        vips=["192.0.2.150/32"],
    )
    return cluster


CASES = {
    "active-active": (active_active, ("eth0",)),
    "dual-stack": (dual_stack, ("eth0",)),
    "sync-group": (sync_group, ("eth0", "eth1")),
    "mixed-unicast-multicast": (mixed_unicast_multicast, ("eth0",)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("node", ["web-1", "web-2"])
def test_golden_and_keepalived_accepts_it(case, node, cluster):
    build, interfaces = CASES[case]
    build(cluster)
    text = render.render_keepalived(Node.objects.get(name=node))
    assert_golden(f"instances-{case}-{node}.keepalived.conf", text)
    assert_keepalived_accepts(
        GOLDEN / f"instances-{case}-{node}.keepalived.conf", interfaces=interfaces
    )


def test_active_active_mirrors_priorities(cluster):
    active_active(cluster)
    conf = {n: render.render_keepalived(Node.objects.get(name=n)) for n in ("web-1", "web-2")}
    assert "vrrp_instance VI_web {" in conf["web-1"] and "vrrp_instance VI_web_B {" in conf["web-1"]
    assert conf["web-1"].count("priority 120") == 1 and conf["web-1"].count("priority 110") == 1
    assert render.instance_names(cluster) == ["VI_web", "VI_web_B"]
    assert render.advertised_vips(conf["web-1"]) == ["192.0.2.100/24", "192.0.2.200/24"]


def test_maintenance_lowers_every_instance(cluster):
    active_active(cluster)
    text = render.render_keepalived(Node.objects.get(name="web-2"), priority_override=1)
    assert text.count("priority 1\n") == 2


def test_a_node_without_a_priority_in_an_instance_is_not_rendered(cluster):
    instance(cluster, prios={"web-1": 100}, vips=["192.0.2.200/24"])
    with pytest.raises(ValueError, match="web-2 has no priority in instance B"):
        render.render_keepalived(Node.objects.get(name="web-2"))


def test_a_lonely_sync_group_is_not_rendered(cluster):
    group = make(SyncGroup, cluster=cluster, name="solo")
    instance(cluster, prios={"web-1": 100, "web-2": 90}, vips=["192.0.2.200/24"], sync_group=group)
    with pytest.raises(ValueError, match="fewer than two"):
        render.render_keepalived(Node.objects.get(name="web-1"))


IPTABLES_CASES = {
    # (build, interfaces, families)
    "active-active": (active_active, ("eth0",), [4]),
    "dual-stack": (dual_stack, ("eth0",), [4, 6]),
    "sync-group": (sync_group, ("eth0", "eth1"), [4]),
    "mixed-unicast-multicast": (mixed_unicast_multicast, ("eth0",), [4]),
}


@pytest.mark.parametrize("case", list(IPTABLES_CASES))
def test_iptables_admit_every_instance_and_apply(case, cluster):
    build, interfaces, families = IPTABLES_CASES[case]
    build(cluster)
    node = Node.objects.get(name="web-1")
    assert render.firewall_families(node) == families
    with throwaway_netns(interfaces=interfaces) as ns:
        for family in families:
            rules = render.render_iptables(node, family)
            assert_golden(f"instances-{case}-v{family}.iptables.rules", rules)
            restore = render.iptables_restore_command(node, family).split()
            checked = ns.run([*restore, "--test"], input=rules)
            assert checked.returncode == 0, checked.stderr
            ns.must(restore, input=rules)
            ns.must(["sh", "-c", render.iptables_jump_command(node, family)])
            tool = restore[0].removesuffix("-restore")
            assert chain_rules(ns, tool) == render.iptables_rule_lines(rules)


# --- Services: one function per use case, role-checked and audited ------------------------------


@pytest.fixture
def three_nodes(cluster):
    make(Node, cluster=cluster, name="web-3", address="192.0.2.13", priority=100)
    return cluster


def prios(inst):
    return {p.node.name: p.priority for p in inst.node_priorities.select_related("node")}


def test_active_active_in_one_step_rotates_the_priorities(operator, three_nodes):
    from clusters.models import AuditEntry
    from clusters.services import instances

    b = instances.create_active_active(operator, three_nodes, {"vip": "192.0.2.200/24"})
    # Node 1 masters the main instance, node 2 (its first backup) the new one.
    assert prios(b) == {"web-1": 100, "web-2": 120, "web-3": 110}
    assert b.virtual_router_id != three_nodes.virtual_router_id
    assert [v.address for v in b.vips.all()] == ["192.0.2.200/24"]
    assert set(AuditEntry.objects.values_list("action", flat=True)) >= {
        "instance.create",
        "vip.create",
    }
    for node in three_nodes.nodes.all():
        render.render_keepalived(node)  # every node's file renders with both instances


def test_active_active_is_refused_to_a_viewer_and_without_a_vip(viewer, operator, cluster):
    from clusters.services import instances
    from clusters.services.errors import Forbidden

    with pytest.raises(Forbidden):
        instances.create_active_active(viewer, cluster, {"vip": "192.0.2.200/24"})
    with pytest.raises(ValidationError) as e:
        instances.create_active_active(operator, cluster, {})
    assert "vip" in e.value.message_dict
    with pytest.raises(ValidationError) as e:
        instances.create_active_active(operator, cluster, {"vip": "192.0.2.11/24"})
    assert "address" in e.value.message_dict
    assert not VrrpInstance.objects.exists()  # nothing half-made


def test_a_new_node_gets_a_priority_in_every_instance(operator, cluster):
    from clusters.services import instances, nodes

    b = instances.create_instance(operator, cluster, {"name": "B", "virtual_router_id": 61})
    assert prios(b) == {"web-1": 120, "web-2": 110}
    instances.set_priority(operator, b, cluster.nodes.get(name="web-1"), 90)
    node = nodes.create_node(
        operator, cluster, {"name": "web-3", "address": "192.0.2.13", "priority": 110 - 1}
    )
    assert prios(b)["web-3"] == 109
    node2 = nodes.create_node(
        operator, cluster, {"name": "web-4", "address": "192.0.2.14", "priority": 90 + 1}
    )
    assert prios(b)["web-4"] == 91
    assert node.pk and node2.pk


def test_sync_group_service_sets_members_once(operator, cluster):
    from clusters.services import instances

    b = instances.create_instance(operator, cluster, {"name": "B", "virtual_router_id": 61})
    c = instances.create_instance(operator, cluster, {"name": "C", "virtual_router_id": 62})
    g = instances.create_sync_group(operator, cluster, {"name": "g1"}, members=[b, c])
    assert g.member_count() == 2
    with pytest.raises(ValidationError) as e:
        instances.create_sync_group(operator, cluster, {"name": "g2"}, members=[b])
    assert "already in sync group 'g1'" in e.value.message_dict["members"][0]
    assert not SyncGroup.objects.filter(name="g2").exists()
    g = instances.update_sync_group(operator, g, {"includes_main": True}, members=[c])
    assert list(g.instances.all()) == [c] and g.member_count() == 2


def test_vrrp_instances_sum_up_each_instance(cluster):
    b = instance(
        cluster, prios={"web-1": 110, "web-2": 120}, vips=["192.0.2.200/24"], preempt=False
    )
    main, second = cluster.vrrp_instances()
    ids = {n.name: n.pk for n in cluster.nodes.all()}
    assert (main.name, main.instance, main.preempt) == ("VI_web", None, True)
    assert main.priorities == {ids["web-1"]: 120, ids["web-2"]: 110}
    assert [v.address for v in main.vips] == ["192.0.2.100/24"]
    assert (second.name, second.instance, second.preempt) == ("VI_web_B", b, False)
    assert second.priorities == {ids["web-1"]: 110, ids["web-2"]: 120}
    assert [v.address for v in second.vips] == ["192.0.2.200/24"]


# --- Push verification and order, per instance ---------------------------------------------------


def status_of(cluster, holders):
    from django.utils import timezone

    from clusters.status import ClusterStatus, NodeProbe

    probes = [
        NodeProbe(
            name=n.name,
            node_id=n.pk,
            reachable=True,
            keepalived_running=True,
            vrrp_state="BACKUP",
            holds=[v for v, h in holders.items() if n.name in h],
        )
        for n in cluster.nodes.all()
    ]
    return ClusterStatus(
        cluster=cluster.name, checked_at=timezone.now(), nodes=probes, holders=holders
    )


def test_settled_means_each_instance_on_its_own_highest_priority(cluster):
    from clusters.convergence import settle_problem

    active_active(cluster)
    good = {"192.0.2.100/24": ["web-1"], "192.0.2.200/24": ["web-2"]}
    assert settle_problem(cluster, status_of(cluster, good), final=True) is None
    # The old single-instance rule (every VIP on the highest main priority) would call the
    # active/active layout wrong, and the all-on-one layout right.
    wrong = {"192.0.2.100/24": ["web-1"], "192.0.2.200/24": ["web-1"]}
    problem = settle_problem(cluster, status_of(cluster, wrong), final=True)
    assert problem == (
        "192.0.2.200/24 (VI_web_B) is on web-1, expected on web-2 (highest priority running)"
    )
    split = {"192.0.2.100/24": ["web-1"], "192.0.2.200/24": ["web-1", "web-2"]}
    assert "(VI_web_B) is held by 2 nodes" in settle_problem(cluster, status_of(cluster, split))
    none = {"192.0.2.100/24": ["web-1"], "192.0.2.200/24": []}
    assert "(VI_web_B) is held by no node" in settle_problem(cluster, status_of(cluster, none))


def test_a_nopreempt_instance_may_stay_where_it_is(cluster):
    from clusters.convergence import settle_problem

    active_active(cluster)
    VrrpInstance.objects.update(preempt=False)
    held = {"192.0.2.100/24": ["web-1"], "192.0.2.200/24": ["web-1"]}
    assert settle_problem(cluster, status_of(cluster, held), final=True) is None


def test_the_push_puts_the_node_holding_most_last(cluster):
    from clusters.models import ConfigPush, PushStep
    from clusters.push import NodePlan, Rollout

    make(Node, cluster=cluster, name="web-3", address="192.0.2.13", priority=100)
    push = ConfigPush.objects.create(cluster=cluster)
    nodes = {n.name: n for n in cluster.nodes.all()}
    steps = [
        PushStep.objects.create(push=push, node=n, node_name=n.name, position=i)
        for i, n in enumerate(nodes.values(), start=1)
    ]
    rollout = Rollout(push)
    rollout.nodes = {n.pk: n for n in nodes.values()}
    # web-1 holds one VIP, web-2 (lower main priority) holds two, web-3 none.
    holds = {"web-1": ["a"], "web-2": ["b", "c"], "web-3": []}
    rollout.plans = {n.pk: NodePlan(n.pk, n.name, holds=holds[n.name]) for n in nodes.values()}
    ordered = [s.node_name for s in rollout.order(steps)]
    assert ordered == ["web-3", "web-1", "web-2"]


def test_a_master_report_claims_no_vip_when_the_cluster_has_several_instances(cluster):
    """An active/active node going MASTER of its own instance must not take the other's VIP:
    the report does not say which instance, so the sweep decides."""
    from django.utils import timezone

    from clusters.history import record_notify, record_status
    from clusters.models import FailoverEvent, VipState

    active_active(cluster)
    mark_pushed(cluster)
    t = timezone.now()
    layout = {"192.0.2.100/24": ["web-1"], "192.0.2.200/24": ["web-2"]}
    record_status(cluster, status_of(cluster, layout))
    VipState.objects.update(checked_at=t)
    record_notify(cluster, cluster.nodes.get(name="web-2"), "MASTER")
    holders = dict(VipState.objects.values_list("vip__address", "holder__name"))
    assert holders == {"192.0.2.100/24": "web-1", "192.0.2.200/24": "web-2"}
    assert not FailoverEvent.objects.exists()
    # Events the sweep records name the instance.
    record_status(
        cluster, status_of(cluster, {"192.0.2.100/24": ["web-2"], "192.0.2.200/24": ["web-2"]})
    )
    event = FailoverEvent.objects.get()
    assert (event.vip_address, event.instance_name, event.to_node) == (
        "192.0.2.100/24",
        "VI_web",
        "web-2",
    )
    record_status(
        cluster, status_of(cluster, {"192.0.2.100/24": ["web-2"], "192.0.2.200/24": ["web-1"]})
    )
    latest = FailoverEvent.objects.order_by("-id").first()
    assert (latest.vip_address, latest.instance_name) == ("192.0.2.200/24", "VI_web_B")


def test_moving_a_cluster_moves_its_instances_vrids_onto_the_new_segment(cluster, credential):
    instance(cluster, vrid=80)
    other_cluster(credential, network="10.0.0.0/24", vrid=80)
    cluster.network = "10.0.0.0/24"
    cluster.unicast = True  # the nodes stay outside the new segment
    [message] = refused(cluster, "network")
    assert "instance 'B' (VRID 80) would collide with cluster 'db'" in message
