"""One health rule: clusters.health (Python, per object) and clusters.querysets (SQL, for every
cluster at once) agree on every problem, on the same fixtures."""

import pytest
from django.utils import timezone

from clusters import health
from clusters.models import Cluster, Node, NodeState
from clusters.querysets import with_problems
from tests.test_views_dashboard import PENDING, PROBLEMS, healthy_fleet

pytestmark = pytest.mark.django_db


def _new_node_not_set_up(c):
    """A node added in vipanel and never pushed: no keepalived there yet, as expected."""
    Node.objects.filter(cluster=c).update(pushed_config_sha="")
    NodeState.objects.filter(node__cluster=c).update(keepalived_running=False, vrrp_state="STOPPED")


NEVER_A_PROBLEM = {
    "never checked": lambda c: NodeState.objects.filter(node__cluster=c).delete(),
    "keepalived not running where vipanel never pushed": _new_node_not_set_up,
    "maintenance": lambda c: Node.objects.filter(cluster=c).update(maintenance=True),
    "no key pinned, none offered": lambda c: Node.objects.filter(cluster=c).update(
        host_key_fingerprint=""
    ),
}
NOT_TRUSTED = {
    "host key not trusted yet": lambda c: Node.objects.filter(cluster=c).update(
        host_key_fingerprint="", offered_host_key_fingerprint="SHA256:" + "C" * 43
    ),
}


def both_rules():
    now = timezone.now()
    sql = dict(with_problems(Cluster.objects.all(), now).values_list("name", "trouble"))
    python = {c.name: health.cluster_problems(c, now) for c in Cluster.objects.all()}
    return sql, python


@pytest.mark.parametrize("problem", {**PROBLEMS, **NOT_TRUSTED, **NEVER_A_PROBLEM})
def test_the_annotation_agrees_with_the_rule(problem):
    clusters = healthy_fleet(2)
    {**PROBLEMS, **NOT_TRUSTED, **NEVER_A_PROBLEM}[problem](clusters[-1])
    sql, python = both_rules()
    assert sql == {name: bool(found) for name, found in python.items()}, python
    assert sql["c0"] is False
    assert sql["c1"] is (problem not in NEVER_A_PROBLEM)


def test_an_untrusted_key_is_named_with_its_fingerprint():
    clusters = healthy_fleet(1)
    NOT_TRUSTED["host key not trusted yet"](clusters[0])
    problems = health.cluster_problems(clusters[0], timezone.now())
    assert any(p.endswith("host key not trusted yet: SHA256:" + "C" * 43) for p in problems)


def test_node_problems_in_words():
    class State:
        reachable, keepalived_running, vrrp_state, drift, host_key_problem = (
            True,
            False,
            "FAULT",
            True,
            False,
        )

    assert health.node_problems(None) == [health.NOT_CHECKED]
    assert health.node_problems(State()) == ["keepalived stopped", "FAULT", "config drift"]
    assert health.host_key_problem("", "SHA256:x", None) == "host key not trusted yet: SHA256:x"
    assert health.host_key_problem("SHA256:a", "SHA256:x", None) == health.HOST_KEY_CHANGED
    assert health.host_key_problem("SHA256:a", "", State()) == ""


def test_cluster_health_names_each_nodes_and_vips_state():
    clusters = healthy_fleet(1)
    PROBLEMS["split brain"](clusters[0])
    PROBLEMS["config drift"](clusters[0])
    found = health.cluster_health(clusters[0])
    assert [h.problems for h in found.nodes] == [["config drift"]] * 3
    assert {(h.status, tuple(h.problems)) for h in found.vips} == {("split", ("split brain",))}
    assert found.last_push_state == "succeeded" and not found.stale


# --- Pending push (issue 17): never a problem, and the same answer in SQL and Python ----------

NOT_PENDING = {
    # An upgraded node vipanel had pushed before it kept a record: its live file is adopted at
    # its next probe, and it is not "pending" meanwhile.
    "adopting after an upgrade": lambda c: Node.objects.filter(cluster=c).update(
        pushed_config_sha="", desired_config_sha="", adopt_live_config=True
    ),
}


def both_pending():
    now = timezone.now()
    rows = with_problems(Cluster.objects.all(), now).values_list("name", "trouble", "pending")
    sql = {name: (trouble, pending) for name, trouble, pending in rows}
    python = {
        c.name: (bool(health.cluster_problems(c, now)), bool(health.cluster_pending(c, now)))
        for c in Cluster.objects.all()
    }
    return sql, python


@pytest.mark.parametrize("change", {**PENDING, **NOT_PENDING})
def test_the_annotation_agrees_on_what_is_pending(change):
    clusters = healthy_fleet(2)
    {**PENDING, **NOT_PENDING}[change](clusters[-1])
    sql, python = both_pending()
    assert sql == python
    assert sql["c0"] == (False, False)
    assert sql["c1"] == (False, change in PENDING)


def test_pending_is_named_and_never_a_problem():
    clusters = healthy_fleet(1)
    PENDING["a VIP never pushed, with an older release's no-holder state"](clusters[0])
    PENDING["a node's change not pushed"](clusters[0])
    found = health.cluster_health(clusters[0])
    assert found.problems == []
    first = clusters[0].nodes.order_by("name").first().name
    assert found.pending == [
        f"{first}: pending push",
        "10.0.0.100/24: pending push",
        "10.0.0.101/24: pending push",
    ]
    assert {(h.status, h.text, h.state) for h in found.vips} == {("pending", "pending push", None)}


def test_keepalived_stopping_is_keepalived_stopped():
    class Stopping:
        reachable, keepalived_running, vrrp_state, drift, host_key_problem = (
            True,
            True,  # the last probe's, older than keepalived's own STOP
            "STOPPED",
            False,
            False,
        )

    assert health.node_problems(Stopping()) == [health.KEEPALIVED_STOPPED]


@pytest.mark.parametrize(
    "live, pushed, desired, drift",
    [
        ("a", "a", "a", False),  # as pushed
        ("a", "a", "b", False),  # as pushed, a change pending: not drift
        ("b", "a", "b", False),  # a push is writing the new file right now
        ("c", "a", "b", True),  # neither: edited on the node
        ("", "a", "a", True),  # the file was removed on the node
        ("c", "a", None, True),  # the cluster cannot be rendered now: still edited
        ("a", "", "a", None),  # never pushed there: nothing to compare with
        (None, "a", "a", None),  # not read (unreachable)
    ],
)
def test_drift_is_only_a_file_edited_on_the_node(live, pushed, desired, drift):
    assert health.config_drift(live, pushed, desired) is drift
