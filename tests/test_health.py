"""One health rule: clusters.health (Python, per object) and clusters.querysets (SQL, for every
cluster at once) agree on every problem, on the same fixtures."""

import pytest
from django.utils import timezone

from clusters import health
from clusters.models import Cluster, Node, NodeState
from clusters.querysets import with_problems
from tests.test_views_dashboard import PROBLEMS, healthy_fleet

pytestmark = pytest.mark.django_db

NEVER_A_PROBLEM = {
    "never checked": lambda c: NodeState.objects.filter(node__cluster=c).delete(),
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
