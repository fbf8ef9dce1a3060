"""The audit log page: every change, push and re-pin, filtered by cluster, secrets masked."""

import pytest
from django.urls import reverse

from clusters import audit
from clusters.models import AuditEntry, Cluster, ConfigPush
from tests.cast import *  # noqa: F403

pytestmark = pytest.mark.django_db


@pytest.fixture
def other(db):
    return Cluster.objects.create(name="db", network="198.51.100.0/24", virtual_router_id=9)


def test_it_lists_who_did_what_when_and_the_result(login, viewer, operator, cluster):
    audit.record(
        operator,
        "node.update",
        cluster.nodes.first(),
        changes={"priority": [120, 130]},
        result="saved",
    )
    page = login(viewer).get(reverse("clusters:audit")).content.decode()
    assert "otto-operator" in page and "node.update" in page and "web-1" in page
    assert "<del>120</del> → <ins>130</ins>" in page and "saved" in page


def test_it_filters_by_cluster(login, viewer, operator, cluster, other):
    audit.record(operator, "cluster.update", cluster, result="saved web")
    audit.record(operator, "cluster.update", other, result="saved db")
    page = login(viewer).get(reverse("clusters:audit"), {"cluster": other.pk}).content.decode()
    assert "saved db" in page and "saved web" not in page


def test_an_unknown_cluster_in_the_filter_is_a_clear_400(login, viewer):
    response = login(viewer).get(reverse("clusters:audit"), {"cluster": "nope"})
    assert response.status_code == 400
    assert "There is no such cluster" in response.content.decode()


def test_a_push_entry_shows_what_became_of_the_push(login, viewer, operator, cluster):
    push = ConfigPush.objects.create(cluster=cluster, state="failed")
    audit.record(
        operator,
        "push.start",
        cluster,
        changes={"push": [None, push.pk]},
        result=f"push #{push.pk} queued",
    )
    page = login(viewer).get(reverse("clusters:audit")).content.decode()
    link = f'<a href="/pushes/{push.pk}/">push #{push.pk}</a>'
    assert f'{link}: <span class="badge bad">failed' in page


def test_secrets_never_appear(login, admin, operator, cluster):
    before = audit.snapshot(cluster)
    cluster.auth_pass = "t0psecr"
    cluster.save()
    audit.record(
        operator, "cluster.update", cluster, changes=audit.diff(before, audit.snapshot(cluster))
    )
    page = login(admin).get(reverse("clusters:audit")).content.decode()
    assert "t0psecr" not in page and "(set)" in page
    assert cluster.notify_secret not in page


def test_it_pages_through_many_entries_in_a_few_queries(
    login, viewer, operator, cluster, django_assert_max_num_queries
):
    AuditEntry.objects.bulk_create(
        AuditEntry(username="otto", action="cluster.update", object_repr=f"e{i}", cluster=cluster)
        for i in range(120)
    )
    client = login(viewer)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("clusters:audit")).content.decode()
    assert "page 1 of 3" in page and "Older" in page
    page3 = client.get(reverse("clusters:audit"), {"page": 3}).content.decode()
    assert "page 3 of 3" in page3


def test_an_outsider_cannot_read_it(login, outsider):
    assert login(outsider).get(reverse("clusters:audit")).status_code == 403


def test_the_cluster_page_links_to_its_audit(login, viewer, cluster):
    page = login(viewer).get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    assert f'href="/audit/?cluster={cluster.pk}"' in page


def test_a_maintenance_entry_links_its_push(login, viewer, operator, cluster):
    push = ConfigPush.objects.create(cluster=cluster, state="succeeded")
    audit.record(
        operator,
        "maintenance on",
        cluster.nodes.first(),
        changes={"maintenance": [False, True]},
        result=f"push #{push.pk}",
    )
    page = login(viewer).get(reverse("clusters:audit")).content.decode()
    assert f'<a href="/pushes/{push.pk}/">push #{push.pk}</a>: <span class="badge good">' in page
