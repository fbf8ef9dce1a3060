"""Issue 15 item 9: a dead keepalived's address is a stale address, not a split brain; the
failover to the new holder is a failover; an operator removes the address (audited)."""

# ruff: noqa: F811 (pytest fixtures imported from tests.cast / tests.test_api_support)

import ipaddress

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from clusters import history, ssh
from clusters.models import AuditEntry, FailoverEvent, VipState
from clusters.services.stale import remove_stale_address
from clusters.status import ClusterStatus, NodeProbe
from tests.cast import *  # noqa: F403
from tests.lab import wait_until
from tests.lab_cluster import make_lab_cluster, place_configs

pytestmark = pytest.mark.django_db
Kind = FailoverEvent.Kind


def observe(cluster, at, running, held_by):
    """web-1/web-2 probes: `running` names where keepalived runs, `held_by` who has the VIP."""
    vip = cluster.vips.get().address
    probes = [
        NodeProbe(
            name=n.name,
            node_id=n.pk,
            reachable=True,
            keepalived_running=n.name in running,
            holds=[vip] if n.name in held_by else [],
        )
        for n in cluster.nodes.all()
    ]
    return ClusterStatus(
        cluster=cluster.name,
        checked_at=at,
        nodes=probes,
        holders={vip: [n for n in held_by if n in running]},
        stale={vip: [n for n in held_by if n not in running]}
        if set(held_by) - set(running)
        else {},
    )


def events(cluster):
    return list(
        FailoverEvent.objects.filter(cluster=cluster)
        .order_by("at", "id")
        .values_list("kind", "from_node", "to_node")
    )


def test_a_killed_holder_is_a_stale_address_and_a_failover_not_a_split_brain(cluster):
    t = timezone.now()
    history.record_status(cluster, observe(cluster, t, {"web-1", "web-2"}, ["web-1"]))
    # kill -9 of web-1's keepalived: web-2 takes over, web-1 keeps the address.
    t2 = t + timezone.timedelta(seconds=5)
    history.record_status(cluster, observe(cluster, t2, {"web-2"}, ["web-1", "web-2"]))
    assert events(cluster) == [(Kind.STALE_ADDRESS, "web-1", ""), (Kind.FAILOVER, "web-1", "web-2")]
    stale = FailoverEvent.objects.get(kind=Kind.STALE_ADDRESS)
    assert "keepalived stopped on web-1" in stale.detail and "still on eth0" in stale.detail
    assert "112" not in stale.detail
    state = VipState.objects.get()
    assert not state.split_brain and state.holder.name == "web-2" and state.stale_on == ["web-1"]
    # Seen again: no second event; gone: its end.
    history.record_status(
        cluster, observe(cluster, t2 + timezone.timedelta(seconds=5), {"web-2"}, ["web-1", "web-2"])
    )
    history.record_status(
        cluster, observe(cluster, t2 + timezone.timedelta(seconds=10), {"web-2"}, ["web-2"])
    )
    assert events(cluster)[2:] == [(Kind.STALE_ADDRESS_END, "web-1", "")]


def test_two_running_holders_are_still_a_split_brain(cluster):
    t = timezone.now()
    history.record_status(cluster, observe(cluster, t, {"web-1", "web-2"}, ["web-1"]))
    history.record_status(
        cluster,
        observe(cluster, t + timezone.timedelta(seconds=5), {"web-1", "web-2"}, ["web-1", "web-2"]),
    )
    assert events(cluster)[-1][0] == Kind.SPLIT_BRAIN


def test_the_node_problem_says_what_it_is(login, viewer, cluster):
    from clusters.models import NodeState

    node = cluster.nodes.get(name="web-1")
    NodeState.objects.create(
        node=node,
        checked_at=timezone.now(),
        reachable=True,
        keepalived_running=False,
        holds=[cluster.vips.get().address],
    )
    page = login(viewer).get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    assert "keepalived stopped on web-1, the address 192.0.2.100/24 is still on eth0" in page
    assert "split brain" not in page


class FakeConn:
    def __init__(self, exit_status):
        self.exit_status, self.commands, self.fingerprint = exit_status, [], "SHA256:" + "A" * 43

    def run(self, command, timeout=None, stdin=None):
        self.commands.append(command)
        return ssh.Result(exit_status=self.exit_status, stdout="", stderr="")

    def close(self):
        pass


@pytest.fixture
def fake_node(monkeypatch):
    conns = []

    def connect(target, deadline=None):
        conns.append(FakeConn(0))
        return conns[-1]

    monkeypatch.setattr(ssh, "connect", connect)
    return conns


def test_an_operator_removes_it_and_it_is_audited(operator, cluster, fake_node):
    node, vip = cluster.nodes.get(name="web-1"), cluster.vips.get()
    outcome = remove_stale_address(operator, node, vip)
    assert outcome == "removed 192.0.2.100/24 from eth0 on web-1"
    command = fake_node[0].commands[0]
    assert "pidof keepalived" in command and "ip addr del 192.0.2.100/24 dev eth0" in command
    entry = AuditEntry.objects.get(action="vip.remove_stale")
    assert entry.username == operator.username and entry.result == outcome
    assert entry.changes == {"node": "web-1", "interface": "eth0"}


def test_a_viewer_may_not(viewer, cluster, fake_node):
    with pytest.raises(PermissionDenied):
        remove_stale_address(viewer, cluster.nodes.first(), cluster.vips.get())
    assert fake_node == []


def test_the_button_posts_to_the_service(login, operator, viewer, cluster, fake_node):
    from clusters.models import NodeState

    node, vip = cluster.nodes.get(name="web-1"), cluster.vips.get()
    NodeState.objects.create(
        node=node,
        checked_at=timezone.now(),
        reachable=True,
        keepalived_running=False,
        holds=[vip.address],
    )
    page = login(operator).get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    url = reverse("clusters:node-remove-stale", args=[node.pk, vip.pk])
    assert f'action="{url}"' in page
    assert login(viewer).post(url).status_code == 403
    response = login(operator).post(url)
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="vip.remove_stale").count() == 1


# --- In the lab: kill -9 of the holder's keepalived -------------------------------------------


@pytest.mark.lab
def test_kill_9_of_the_holder_leaves_a_stale_address_that_an_operator_removes(clean_lab, operator):
    lab = clean_lab
    cluster = place_configs(lab, make_lab_cluster(lab, name="stale", vrid=91))
    vip = cluster.vips.get()
    ip = str(ipaddress.ip_interface(vip.address).ip)
    history.sweep_cluster(cluster)
    holder = VipState.objects.get(vip=vip).holder
    old = (
        lab.node(holder.name)
        if hasattr(lab, "node")
        else next(n for n in lab if n.name == holder.name)
    )
    old.kill_keepalived(hard=True)
    try:
        wait_until(lambda: len(lab.vip_holders(ip)) == 2, timeout=30)
    except TimeoutError:
        seen = [(n.name, n.keepalived_running(), n.ipv4_addresses()) for n in lab]
        raise AssertionError(
            f"the next node did not take over beside the stale address: {seen}"
        ) from None
    history.sweep_cluster(cluster)
    kinds = [e[0] for e in events(cluster)]
    assert Kind.SPLIT_BRAIN not in kinds, events(cluster)
    assert Kind.STALE_ADDRESS in kinds and Kind.FAILOVER in kinds, events(cluster)
    failover = FailoverEvent.objects.get(cluster=cluster, kind=Kind.FAILOVER)
    assert failover.from_node == holder.name and failover.to_node != holder.name
    assert old.holds(ip)

    outcome = remove_stale_address(operator, cluster.nodes.get(pk=holder.pk), vip)
    assert outcome.startswith("removed"), outcome
    assert not old.holds(ip)
    assert [n.name for n in lab.vip_holders(ip)] == [failover.to_node]
    history.sweep_cluster(cluster)
    assert events(cluster)[-1][0] == Kind.STALE_ADDRESS_END
    assert AuditEntry.objects.filter(action="vip.remove_stale", result=outcome).exists()


@pytest.mark.lab
def test_it_refuses_while_keepalived_runs(clean_lab, operator):
    lab = clean_lab
    cluster = place_configs(lab, make_lab_cluster(lab, name="stale2", vrid=92))
    vip = cluster.vips.get()
    ip = str(ipaddress.ip_interface(vip.address).ip)
    holder = lab.vip_holders(ip)[0]
    node = cluster.nodes.get(name=holder.name)
    outcome = remove_stale_address(operator, node, vip)
    assert outcome.startswith("refused: keepalived is running"), outcome
    assert holder.holds(ip)
