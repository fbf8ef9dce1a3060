"""Desired against pushed against observed (issue 17): what vipanel would push, what it last
pushed, what the nodes have. A change saved but not pushed is "pending push" and nothing else;
"drift" is only a file edited on a node; a VIP counts from its first push."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Incident, VipCoverage
from clusters import health, preview, render
from clusters.history import record_notify, record_status
from clusters.models import (
    ConfigPush,
    FailoverEvent,
    Node,
    NodeState,
    PushStep,
    VipState,
    VirtualIP,
)
from clusters.push import Rollout
from clusters.services import maintenance, vips
from clusters.status import ClusterStatus, NodeProbe, parse_probe
from tests.cast import *  # noqa: F403

pytestmark = pytest.mark.django_db

OLD, NEW = "192.0.2.100/24", "192.0.2.101/24"


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def status(cluster, at, holders, **probe_fields):
    """A sweep's ClusterStatus: `holders` {vip: [node names]}; every node reachable and running
    unless `probe_fields` ({node name: {field: value}}) says otherwise."""
    nodes = []
    for n in cluster.nodes.all():
        fields = dict(
            name=n.name,
            node_id=n.pk,
            reachable=True,
            keepalived_running=True,
            vrrp_state="BACKUP",
            holds=[vip for vip, names in holders.items() if n.name in names],
            desired_sha=n.desired_config_sha,  # as rendered by the probe: unchanged
        )
        fields.update(probe_fields.get(n.name, {}))
        nodes.append(NodeProbe(**fields))
    return ClusterStatus(cluster=cluster.name, checked_at=at, nodes=nodes, holders=holders)


def events(cluster):
    return list(FailoverEvent.objects.filter(cluster=cluster).values_list("vip_address", "kind"))


# --- A VIP never pushed is configuration only --------------------------------------------------


def test_a_vip_never_pushed_gets_no_state_and_no_event(cluster):
    VirtualIP.objects.create(cluster=cluster, address=NEW)
    t = timezone.now()
    for i in range(3):
        record_status(cluster, status(cluster, t + timedelta(seconds=5 * i), {OLD: ["web-1"]}))
    assert events(cluster) == []
    assert list(VipState.objects.values_list("vip__address", flat=True)) == [OLD]
    assert health.cluster_problems(cluster, t + timedelta(seconds=10)) == []
    assert health.cluster_pending(cluster, t) == [f"{NEW}: pending push"]


def test_its_first_holder_after_its_first_push_is_no_failover(cluster):
    new = VirtualIP.objects.create(cluster=cluster, address=NEW)
    t = timezone.now()
    # Held already while the push that carries it rolls through: not looked at yet.
    record_status(cluster, status(cluster, t, {OLD: ["web-1"], NEW: ["web-2"]}))
    VirtualIP.objects.filter(pk=new.pk).update(pushed_at=t + timedelta(seconds=1))
    record_status(
        cluster, status(cluster, t + timedelta(seconds=5), {OLD: ["web-1"], NEW: ["web-1"]})
    )
    assert events(cluster) == []
    assert VipState.objects.get(vip=new).holder.name == "web-1"
    record_status(
        cluster, status(cluster, t + timedelta(seconds=10), {OLD: ["web-1"], NEW: ["web-2"]})
    )
    assert events(cluster) == [(NEW, "failover")]


def test_a_vip_added_and_deleted_before_a_push_leaves_nothing(
    cluster, operator, settings, django_capture_on_commit_callbacks
):
    settings.VIPANEL_ALERT_MIN_DURATION = 0  # an incident would open at once
    t = timezone.now()
    # The alerts' evaluation of each sweep runs on commit: here, as it would.
    with django_capture_on_commit_callbacks(execute=True):
        new = vips.create_vip(operator, cluster, {"address": NEW})
    with django_capture_on_commit_callbacks(execute=True):
        record_status(cluster, status(cluster, t, {OLD: ["web-1"], NEW: []}))
    with django_capture_on_commit_callbacks(execute=True):
        record_notify(
            cluster, cluster.nodes.get(name="web-2"), "MASTER", at=t + timedelta(seconds=2)
        )
    with django_capture_on_commit_callbacks(execute=True):
        record_status(cluster, status(cluster, t + timedelta(seconds=5), {OLD: ["web-2"], NEW: []}))
    assert not VipCoverage.objects.filter(vip=new).exists()
    assert not Incident.objects.filter(vip=new).exists()
    vips.delete_vip(operator, new, confirm=cluster.name)
    assert not FailoverEvent.objects.filter(vip_address=NEW).exists()
    assert events(cluster) == [(OLD, "failover")]


def test_a_master_report_leaves_a_vip_never_pushed_alone(cluster):
    new = VirtualIP.objects.create(cluster=cluster, address=NEW)
    record_notify(cluster, cluster.nodes.get(name="web-2"), "MASTER")
    assert not VipState.objects.filter(vip=new).exists()


def test_a_new_address_is_a_vip_not_pushed_yet(cluster, operator):
    vip = cluster.vips.get()
    record_status(cluster, status(cluster, timezone.now(), {OLD: ["web-1"]}))
    vips.update_vip(operator, vip, {"address": NEW})
    vip.refresh_from_db()
    assert vip.pushed_at is None and not VipState.objects.exists()
    # A label is no change on the nodes.
    vips.update_vip(operator, vip, {"label": "api"})
    assert VirtualIP.objects.get(pk=vip.pk).pushed_at is None
    record_status(cluster, status(cluster, timezone.now(), {NEW: []}))
    assert events(cluster) == []


# --- Desired: kept current by every change -----------------------------------------------------


def test_a_saved_change_makes_the_nodes_pending_once_it_commits(
    cluster, operator, django_capture_on_commit_callbacks
):
    assert health.cluster_pending(cluster) == []
    with django_capture_on_commit_callbacks(execute=True):
        vips.create_vip(operator, cluster, {"address": NEW})
    assert health.cluster_pending(cluster) == [
        "web-1: pending push",
        "web-2: pending push",
        f"{NEW}: pending push",
    ]
    for node in cluster.nodes.select_related("cluster"):
        assert node.desired_config_sha == sha(render.node_config(node))


def test_going_into_maintenance_is_a_change_to_push_too(
    cluster, operator, django_capture_on_commit_callbacks
):
    web2 = cluster.nodes.get(name="web-2")
    with django_capture_on_commit_callbacks(execute=True):
        maintenance.set_maintenance(operator, web2, True, queue=False, confirm=cluster.name)
    web2.refresh_from_db()
    assert web2.desired_config_sha == sha(render.node_config(web2))
    assert health.node_pending(web2) and not health.node_pending(cluster.nodes.get(name="web-1"))


def test_a_sweep_stores_what_vipanel_would_push_now(cluster):
    record_status(
        cluster,
        status(cluster, timezone.now(), {OLD: ["web-1"]}, **{"web-2": {"desired_sha": "9" * 64}}),
    )
    assert Node.objects.get(name="web-2").desired_config_sha == "9" * 64
    assert health.cluster_pending(cluster) == ["web-2: pending push"]


# --- Pushed: recorded by each step that wrote the config or found it identical --------------


def rollout_of(cluster, kind=ConfigPush.Kind.PUSH):
    push = ConfigPush.objects.create(cluster=cluster, kind=kind, state=ConfigPush.State.RUNNING)
    steps = [
        PushStep.objects.create(push=push, node=n, node_name=n.name, position=i)
        for i, n in enumerate(cluster.nodes.order_by("name"), start=1)
    ]
    rollout = Rollout(push)
    rollout.vip_ids = list(cluster.vips.values_list("pk", flat=True))
    return rollout, steps


@pytest.mark.parametrize("state", [PushStep.State.APPLIED, PushStep.State.UNCHANGED])
def test_a_step_that_put_the_config_in_place_records_it(cluster, state):
    rollout, (step, _) = rollout_of(cluster)
    rollout.finish_step(step, state, "done", config=b"vrrp_instance X {}\n")
    node = Node.objects.get(pk=step.node_id)
    assert node.pushed_config_sha == sha("vrrp_instance X {}\n")
    assert node.pushed_config == "vrrp_instance X {}\n" and node.pushed_at == step.finished
    # Encrypted at rest: it holds auth_pass.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pushed_config FROM clusters_node WHERE id = %s", [node.pk])
        assert "vrrp_instance" not in cursor.fetchone()[0]


@pytest.mark.parametrize("state", [PushStep.State.FAILED, PushStep.State.SKIPPED])
def test_a_failed_restored_or_skipped_step_keeps_what_was_pushed_before(cluster, state):
    before = Node.objects.get(name="web-1").pushed_config_sha
    rollout, (step, _) = rollout_of(cluster)
    rollout.finish_step(step, state, "no", config=b"new\n")
    assert Node.objects.get(pk=step.node_id).pushed_config_sha == before


def test_a_push_that_succeeded_makes_the_vips_it_carried_pushed(cluster):
    carried = VirtualIP.objects.create(cluster=cluster, address=NEW)
    rollout, _ = rollout_of(cluster)
    rollout.vip_ids.append(carried.pk)
    later = VirtualIP.objects.create(cluster=cluster, address="192.0.2.102/24")
    rollout.succeed()
    assert VirtualIP.objects.get(pk=carried.pk).pushed_at is not None
    assert VirtualIP.objects.get(pk=later.pk).pushed_at is None  # added during the push


# --- Drift: a file edited on the node, kept for its diff ---------------------------------------


def test_an_upgraded_node_adopts_its_live_file_at_its_next_probe(cluster):
    web1, web2 = cluster.nodes.order_by("name")
    wanted = {n.name: sha(render.node_config(n)) for n in (web1, web2)}
    Node.objects.update(pushed_config_sha="", pushed_config="", adopt_live_config=True)
    assert health.cluster_pending(cluster) == []  # not before its next probe either
    probes = {
        "web-1": {"config_sha": wanted["web-1"], "desired_sha": wanted["web-1"]},
        "web-2": {"config_sha": "e" * 64, "desired_sha": wanted["web-2"]},
    }
    record_status(cluster, status(cluster, timezone.now(), {OLD: ["web-1"]}, **probes))
    web1, web2 = cluster.nodes.order_by("name")
    assert (web1.pushed_config_sha, web1.adopt_live_config) == (wanted["web-1"], False)
    assert web1.pushed_config == render.node_config(web1)
    assert (web2.pushed_config_sha, web2.pushed_config) == ("e" * 64, "")
    assert list(NodeState.objects.order_by("node__name").values_list("drift", flat=True)) == [
        False,
        False,
    ]
    # The file on web-2 is not what vipanel renders: a push would change it, and that is all.
    assert health.cluster_pending(cluster) == ["web-2: pending push"]
    assert health.cluster_problems(cluster, timezone.now()) == []


def test_the_sweep_keeps_an_edited_file_for_its_diff_and_drops_it_once_fixed(cluster):
    web1 = cluster.nodes.get(name="web-1")
    pushed = web1.pushed_config
    edited = pushed.replace("priority 120", "priority 200")
    assert edited != pushed
    probe = {"config_sha": sha(edited), "drift": True, "live_config": edited}
    record_status(cluster, status(cluster, timezone.now(), {OLD: ["web-1"]}, **{"web-1": probe}))
    state = NodeState.objects.get(node=web1)
    assert state.drift and state.drift_config == edited
    drift = preview.drift_of(web1, state)
    assert drift.against == "pushed"
    assert "-    priority 120\n" in drift.diff and "+    priority 200\n" in drift.diff
    assert health.cluster_problems(cluster, timezone.now()) == ["web-1: config drift"]
    assert health.cluster_pending(cluster) == []  # nothing saved in vipanel is unpushed
    record_status(
        cluster,
        status(cluster, timezone.now(), {OLD: ["web-1"]}, **{"web-1": {"drift": False}}),
    )
    state.refresh_from_db()
    assert (state.drift, state.drift_config, preview.drift_of(web1, state)) == (False, "", None)


def test_a_drift_diff_masks_the_auth_pass(cluster):
    cluster.auth_pass = "s3cr3t"
    cluster.save()
    web1 = Node.objects.get(name="web-1")
    pushed = render.node_config(web1)
    assert "s3cr3t" in pushed
    Node.objects.filter(pk=web1.pk).update(pushed_config=pushed, pushed_config_sha=sha(pushed))
    edited = pushed + "# edited by hand\n"
    NodeState.objects.create(
        node=web1,
        checked_at=timezone.now(),
        reachable=True,
        drift=True,
        drift_config=edited,
        drift_config_sha=sha(edited),
    )
    web1.refresh_from_db()
    diff = preview.drift_of(web1, web1.state).diff
    assert "+# edited by hand" in diff and "s3cr3t" not in diff


# --- keepalived stopping is keepalived down --------------------------------------------------


PROBE = "running={running}\nstate={state}\n{since}config=ab  -\naddresses:\n"


@pytest.mark.parametrize(
    "running, state, since_start, verdict",
    [
        (1, "MASTER", True, True),
        (1, "STOP", True, False),  # STOP written since it started: it is going down
        (1, "STOP", False, True),  # a STOP from before this keepalived started: stale
        (0, "MASTER", True, False),
    ],
)
def test_a_keepalived_that_reported_stop_is_not_running(running, state, since_start, verdict):
    since = "state_since_start=1\n" if since_start else ""
    parsed = parse_probe(PROBE.format(running=running, state=state, since=since))
    assert parsed[0] is verdict


def test_a_stop_report_is_not_undone_by_an_older_probe(cluster):
    t = timezone.now()
    web1 = cluster.nodes.get(name="web-1")
    record_status(
        cluster, status(cluster, t, {OLD: ["web-1"]}, **{"web-1": {"vrrp_state": "MASTER"}})
    )
    record_notify(cluster, web1, "STOP", at=t + timedelta(seconds=2))
    state = NodeState.objects.get(node=web1)
    assert (state.keepalived_running, state.vrrp_state) == (False, "STOPPED")
    # A probe that started before the report, while keepalived was still up.
    record_status(
        cluster,
        status(
            cluster,
            t + timedelta(seconds=1),
            {OLD: ["web-1"]},
            **{"web-1": {"vrrp_state": "MASTER"}},
        ),
    )
    state.refresh_from_db()
    assert (state.keepalived_running, state.vrrp_state) == (False, "STOPPED")
    assert "web-1: keepalived stopped" in health.cluster_problems(cluster, t + timedelta(seconds=1))
    # The next probe (after the report) judges again: keepalived was started again.
    record_status(cluster, status(cluster, t + timedelta(seconds=6), {OLD: ["web-1"]}))
    state.refresh_from_db()
    assert (state.keepalived_running, state.vrrp_state) == (True, "BACKUP")


def test_a_drift_whose_file_was_not_read_yet_says_so(login, operator, cluster):
    web1 = cluster.nodes.get(name="web-1")
    NodeState.objects.create(node=web1, checked_at=timezone.now(), reachable=True, drift=True)
    page = login(operator).get(f"/nodes/{web1.pk}/drift/").content.decode()
    assert "found the file edited but kept no copy of it yet" in page


def test_a_config_removed_on_the_node_is_drift_with_everything_removed(cluster):
    web1 = cluster.nodes.get(name="web-1")
    probe = {"config_sha": "", "drift": True, "live_config": ""}
    record_status(cluster, status(cluster, timezone.now(), {OLD: ["web-1"]}, **{"web-1": probe}))
    state = NodeState.objects.get(node=web1)
    assert state.drift_config_sha == "-"  # kept: the next sweeps read nothing more
    diff = preview.drift_of(web1, state).diff
    assert diff.count("\n-") >= 10 and "\n+" not in diff.replace("\n+++", "")


def test_the_sweep_reads_the_stored_desired_config_and_the_refresh_renders_it_again(
    cluster, monkeypatch, settings
):
    """Rendering every node for every sweep was most of a sweep's CPU: the probe takes the
    stored hash, and beat's periodic refresh (clusters.desired.refresh_all) renders again what
    an upgrade's templates or a changed setting would change."""
    from clusters import desired, tasks
    from clusters import status as status_module

    stale = "7" * 64  # as if the templates had changed since it was stored
    cluster.nodes.update(desired_config_sha=stale)
    rendered = []
    monkeypatch.setattr(
        status_module, "expected_config_sha", lambda node: rendered.append(node.name) or "x"
    )
    monkeypatch.setattr(
        status_module, "_probe_one", lambda *a, **k: ({"reachable": False}, None, None)
    )
    probed = status_module.probe_cluster(cluster)
    assert rendered == [] and {p.desired_sha for p in probed.nodes} == {stale}
    monkeypatch.undo()
    entry = settings.CELERY_BEAT_SCHEDULE["desired"]
    assert entry["task"] == "clusters.tasks.refresh_desired_task"
    assert entry["schedule"] == settings.VIPANEL_DESIRED_REFRESH
    tasks.refresh_desired_task.apply()
    for node in cluster.nodes.select_related("cluster"):
        assert node.desired_config_sha == sha(render.node_config(node))
    assert desired.refresh_all() == 0  # nothing moved since
