"""Lists cost a fixed number of queries however long they are."""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters.models import (
    Cluster,
    ConfigPush,
    FailoverEvent,
    Node,
    NodeState,
    SSHCredential,
    VipState,
    VirtualIP,
)
from tests.conftest import make_private_key
from tests.test_api_support import operator, operator_api  # noqa: F401

pytestmark = pytest.mark.django_db


def grow(cluster, n):
    """n more of everything a list shows."""
    now = timezone.now()
    start = cluster.nodes.count()
    for i in range(start, start + n):
        node = Node.objects.create(
            cluster=cluster, name=f"n{i}", address=f"192.0.2.{20 + i}", priority=50 + i
        )
        NodeState.objects.create(node=node, checked_at=now, reachable=True, holds=[])
        vip = VirtualIP.objects.create(cluster=cluster, address=f"192.0.2.{150 + i}/24")
        VipState.objects.create(vip=vip, holder=node, since=now, checked_at=now)
        Cluster.objects.create(name=f"c{i}", network=f"10.{i}.0.0/24", virtual_router_id=1)
        SSHCredential.objects.create(name=f"k{i}", private_key=make_private_key())
        ConfigPush.objects.create(cluster=cluster, state=ConfigPush.State.SUCCEEDED)
        FailoverEvent.objects.create(
            cluster=cluster, vip_address=vip.address, at=now, detected_by="sweep"
        )


LISTS = {
    "/api/v1/clusters/": 3,
    "/api/v1/credentials/": 3,
    "/api/v1/clusters/{id}/nodes/": 4,
    "/api/v1/clusters/{id}/vips/": 4,
    "/api/v1/clusters/{id}/pushes/": 4,
    "/api/v1/clusters/{id}/failovers/": 4,
    "/api/v1/clusters/{id}/status/": 6,  # clusters.health also reads the last push
}


def count(api, url):
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("url, expected", LISTS.items())
def test_a_list_costs_the_same_queries_for_2_or_12_items(operator_api, cluster, url, expected):
    url = url.format(id=cluster.pk)
    operator_api.get(url)  # the token's last_used is written on first use only
    grow(cluster, 1)
    small = count(operator_api, url)
    grow(cluster, 10)
    assert count(operator_api, url) == small == expected


def test_the_cluster_list_query_count_is_exact(operator_api, cluster, django_assert_num_queries):
    operator_api.get("/api/v1/clusters/")
    grow(cluster, 5)
    with django_assert_num_queries(3):
        operator_api.get("/api/v1/clusters/")
