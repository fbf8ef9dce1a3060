"""Desired against observed on real nodes (issue 17): a change saved but not pushed is pending,
never an outage; a file edited on a node is drift, with its diff; a keepalived going down is
never shown as fine; the first push's election is no failover."""

import hashlib
import re
import time

import pytest
from django.utils import timezone

from alerts.models import Incident, VipCoverage
from clusters import health, preview
from clusters.history import sweep_cluster
from clusters.metrics import collect
from clusters.models import ConfigPush, FailoverEvent, Node, NodeState, VipState
from clusters.push import run_push
from clusters.services import pushes, vips
from clusters.status import probe_cluster
from clusters.web.dashboard import dashboard_rows
from clusters.web.presenters import DashboardNode
from tests.cast import *  # noqa: F403
from tests.lab import wait_until
from tests.lab_cluster import lab_vip, make_lab_cluster, place_configs
from tests.receiver import eager_alerts  # noqa: F401
from tests.test_alerts_lab import notify_server  # noqa: F401 (fixture)

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def push_now(cluster):
    push = pushes.queue_push(cluster, queue=False)
    run_push(push.pk)
    push.refresh_from_db()
    assert push.state == ConfigPush.State.SUCCEEDED, push.detail
    return push


def live_sha(lab_node):
    return hashlib.sha256((lab_node.config_dir / "keepalived.conf").read_bytes()).hexdigest()


def test_a_first_push_records_what_it_wrote_and_its_election_is_no_failover(
    clean_lab, notify_server
):
    cluster = make_lab_cluster(clean_lab, vips=[lab_vip(clean_lab), lab_vip(clean_lab, 101)])
    sweep_cluster(cluster)  # before anything is on the nodes
    assert health.cluster_pending(cluster) == [
        *(f"{n.name}: pending push" for n in cluster.nodes.order_by("-priority", "name")),
        *(f"{v.address}: pending push" for v in cluster.vips.order_by("id")),
    ]
    assert not VipState.objects.exists()
    push_now(cluster)  # every node at once, one election, notify reports on the way
    nodes = {n.name: n for n in Node.objects.filter(cluster=cluster)}
    for lab_node in clean_lab:
        assert nodes[lab_node.name].pushed_config_sha == live_sha(lab_node)
    assert all(v.pushed_at for v in cluster.vips.all())
    wait_until(
        lambda: (
            sweep_cluster(cluster) and VipState.objects.filter(holder__isnull=False).count() == 2
        ),
        timeout=30,
        message="the VIPs' holder was not recorded",
    )
    assert health.cluster_pending(cluster) == []
    assert health.cluster_problems(cluster, timezone.now()) == []
    # The VIPs' first holder after their first push is where they start, not a move.
    assert list(FailoverEvent.objects.values_list("kind", flat=True)) == []


def test_a_vip_added_but_not_pushed_is_pending_not_an_outage(
    clean_lab, operator, viewer, login, eager_alerts, settings
):
    settings.VIPANEL_ALERT_MIN_DURATION = 0  # any incident would open at the first sweep
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    sweep_cluster(cluster)
    new = vips.create_vip(operator, cluster, {"address": lab_vip(clean_lab, 150)})
    for _ in range(3):
        sweep_cluster(cluster)  # real probes: nobody holds the new address
    assert not FailoverEvent.objects.exists()
    assert not VipState.objects.filter(vip=new).exists()
    assert not VipCoverage.objects.filter(vip=new).exists()
    assert not Incident.objects.exists()
    assert health.cluster_problems(cluster, timezone.now()) == []
    assert f"{new.address}: pending push" in health.cluster_pending(cluster)
    # The nodes' configs would change too: each node's desired config is not the pushed one.
    assert {p.split(":")[0] for p in health.cluster_pending(cluster)} >= {n.name for n in clean_lab}
    page = login(viewer).get("/").content.decode()
    row = re.search(rf'<li class="vip-pending" data-vip="{re.escape(new.address)}">.*?</li>', page)
    assert row and ">pending push</span>" in row.group(0)
    assert "no holder" not in page and "cluster trouble" not in page
    assert f'vip="{new.address}"' in collect()  # pending, in the metrics too...
    assert not re.search(rf'vipanel_vip_holders{{[^}}]*vip="{re.escape(new.address)}"', collect())
    # Deleted before any push: nothing of it is left in the history.
    vips.delete_vip(operator, new, confirm=cluster.name)
    sweep_cluster(cluster)
    assert not FailoverEvent.objects.filter(vip_address=new.address).exists()
    assert health.cluster_pending(cluster) == []  # back to what is on the nodes


def test_a_file_edited_on_a_node_is_drift_with_its_diff(clean_lab, operator, login):
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    sweep_cluster(cluster)
    assert not NodeState.objects.filter(drift=True).exists()
    edited_node = clean_lab[0]
    path = edited_node.config_dir / "keepalived.conf"
    path.write_text(path.read_text().replace("advert_int 1", "advert_int 2"))
    sweep_cluster(cluster)
    node = Node.objects.get(cluster=cluster, name=edited_node.name)
    state = NodeState.objects.get(node=node)
    assert state.drift is True and state.drift_config_sha == live_sha(edited_node)
    assert NodeState.objects.filter(drift=True).count() == 1
    assert health.cluster_pending(cluster) == []  # nothing saved in vipanel is unpushed
    assert f"{node.name}: config drift" in health.cluster_problems(cluster, state.checked_at)
    diff = preview.drift_of(node, state).diff
    assert "-    advert_int 1" in diff and "+    advert_int 2" in diff
    page = login(operator).get(f"/nodes/{node.pk}/drift/").content.decode()
    assert "+    advert_int 2" in page and "edited on the node" in page
    # A second sweep reads nothing more: the kept copy is already this file's.
    sweep_cluster(cluster)
    assert NodeState.objects.get(node=node).drift_config == state.drift_config
    push_now(cluster)  # puts vipanel's file back
    sweep_cluster(cluster)
    state.refresh_from_db()
    assert (state.drift, state.drift_config) == (False, "")


def test_a_keepalived_going_down_is_never_shown_as_fine(clean_lab, notify_server):
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    push_now(cluster)  # the notify script: state file and STOP reports
    sweep_cluster(cluster)
    dying = clean_lab[2]
    node = Node.objects.get(cluster=cluster, name=dying.name)
    # keepalived takes a moment to exit after SIGTERM, while pidof still finds it: probe it
    # all the way down, straight after the signal.
    dying.exec("pkill -TERM -x keepalived", check=False)
    probes, stopping_seen = [], False
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        probe = next(p for p in probe_cluster(cluster).nodes if p.name == dying.name)
        probes.append((probe.keepalived_running, probe.vrrp_state))
        running = dying.keepalived_running()
        stopping_seen |= running and probe.keepalived_running is False
        if not running:
            break
    print(f"probes while keepalived went down: {probes}")
    # Once a probe has said it is down, none says otherwise; and while it was still exiting
    # (pidof finds it), the probe already said so: it had reported STOP.
    first_down = next(i for i, p in enumerate(probes) if p == (False, "STOPPED"))
    assert all(p == (False, "STOPPED") for p in probes[first_down:]), probes
    assert stopping_seen, f"no probe caught keepalived stopping: {probes}"

    def shown():
        """What the dashboard shows of the node now."""
        [row] = dashboard_rows(
            [
                {
                    "pk": cluster.pk,
                    "name": cluster.name,
                    "network": "",
                    "virtual_router_id": 0,
                    "trouble": True,
                    "pending": False,
                }
            ],
            timezone.now(),
        )
        return next(n for n in row.nodes if n.name == dying.name)

    # The STOP report, then sweeps: from the first word of it, never "ok".
    wait_until(
        lambda: NodeState.objects.get(node=node).keepalived_running is False,
        timeout=15,
        message="neither the STOP report nor a sweep said keepalived is down",
    )
    for _ in range(4):
        badges = [text for _, text, _ in shown().badges]
        assert "ok" not in badges and "keepalived stopped" in badges, badges
        sweep_cluster(cluster)
    assert isinstance(shown(), DashboardNode)
