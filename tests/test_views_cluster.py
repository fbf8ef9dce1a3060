"""The cluster page, creating clusters, their settings and their VIPs."""

import re
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters.models import AuditEntry, Cluster, ConfigPush, FailoverEvent, VirtualIP
from tests.cast import *  # noqa: F403
from tests.cast import (
    assert_denies,
    assert_enforces_csrf,
    assert_rejects_get,
    assert_requires_login,
)

pytestmark = pytest.mark.django_db


def cluster_data(**overrides):
    data = {
        "name": "db",
        "network": "198.51.100.0/24",
        "virtual_router_id": "52",
        "interface": "eth0",
        "advert_int": "1",
        "auth_pass": "",
        "preempt": "on",
        "preempt_delay": "0",
        "check_script": "",
        "check_interval": "2",
        "check_weight": "0",
        "check_fall": "2",
        "check_rise": "2",
        "config_path": "/etc/keepalived/keepalived.conf",
        "reload_command": "systemctl reload-or-restart keepalived",
        "credential": "",
    }
    data.update(overrides)
    return data


# Every mutating view of this group, with a body that would succeed.
MUTATING = {
    "cluster-update": (
        lambda c: reverse("clusters:cluster-update", args=[c.pk]),
        lambda c: cluster_data(name="web", network="192.0.2.0/24", virtual_router_id="51"),
    ),
    "vip-add": (
        lambda c: reverse("clusters:vip-add", args=[c.pk]),
        lambda c: {"address": "192.0.2.101/24", "label": "api"},
    ),
    "vip-delete": (
        lambda c: reverse("clusters:vip-delete", args=[c.vips.first().pk]),
        lambda c: {},
    ),
    "drill": (lambda c: reverse("clusters:drill", args=[c.pk]), lambda c: {"confirm": "web"}),
    "cluster-delete": (
        lambda c: reverse("clusters:cluster-delete", args=[c.pk]),
        lambda c: {"confirm": "web"},
    ),
}


@pytest.fixture
def drill_queued():
    """The drill's hand-off to a worker (clusters.tasks, on commit), patched: no worker here."""
    with mock.patch("clusters.tasks.drill_task.delay") as delay:
        yield delay


@pytest.fixture(params=sorted(MUTATING))
def mutating(request, cluster, drill_queued):
    url, data = MUTATING[request.param]
    return url(cluster), data(cluster)


def test_each_mutating_view_rejects_get(login, operator, mutating):
    assert_rejects_get(login, operator, mutating[0])


def test_each_mutating_view_requires_login(mutating):
    assert_requires_login(*mutating)


def test_each_mutating_view_denies_the_viewer(login, viewer, mutating):
    assert_denies(login, viewer, *mutating)


def test_each_mutating_view_enforces_csrf(login, operator, mutating):
    assert_enforces_csrf(login, operator, *mutating)


def test_a_post_with_the_csrf_token_goes_through(login, operator, cluster):
    client = login(operator, enforce_csrf_checks=True)
    client.get(reverse("clusters:cluster", args=[cluster.pk]))  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        reverse("clusters:vip-add", args=[cluster.pk]),
        {"address": "192.0.2.101/24", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert cluster.vips.filter(address="192.0.2.101/24").exists()


# --- The cluster page ---------------------------------------------------------------------


def test_the_page_shows_nodes_vips_and_settings(login, viewer, cluster):
    response = login(viewer).get(reverse("clusters:cluster", args=[cluster.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "web-1" in page and "192.0.2.11" in page and "192.0.2.100/24" in page
    assert "VRID 51" in page


def test_the_page_shows_the_clusters_incidents_and_availability(
    login, viewer, cluster, django_assert_max_num_queries
):
    from django.utils import timezone

    from alerts.models import Incident

    now = timezone.now()
    Incident.objects.create(
        kind="split_brain",
        cluster=cluster,
        key="vip:1",
        subject="x",
        title="Split brain of 192.0.2.100/24",
        started=now,
        last_seen=now,
        opened=now,
    )
    client = login(viewer)
    # 11 queries before these sections; they add 5 for one VIP: the incidents (1), the VIPs
    # (1) and per VIP its coverage and its failover events (3); the VRRP instances' section 5.
    with django_assert_max_num_queries(21):
        page = client.get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    incidents = page.split('id="incidents"')[1].split("</section>")[0]
    assert "Split brain of 192.0.2.100/24" in incidents
    table = page.split('id="availability"')[1].split("</section>")[0]
    assert "192.0.2.100/24" in table and "24h" in table and "30d" in table


def test_a_viewer_sees_no_buttons_that_change_things(login, viewer, cluster):
    page = login(viewer).get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    assert 'method="post"' not in page.split("<main>")[1]
    assert "Add node" not in page and ">Push</button>" not in page


def test_an_operator_sees_add_forms_and_push_buttons(login, operator, cluster):
    page = login(operator).get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    assert "Add node" in page and "Add VIP" in page
    # Push and the drill ask first: their buttons open what they will do (…).
    assert ">Preview and push…</button>" in page and ">Failover drill…</button>" in page


def test_an_outsider_cannot_read_it(login, outsider, cluster):
    assert login(outsider).get(reverse("clusters:cluster", args=[cluster.pk])).status_code == 403


def test_it_answers_404_for_a_missing_cluster(login, viewer):
    assert login(viewer).get(reverse("clusters:cluster", args=[999])).status_code == 404


def test_the_status_part_refreshes_itself(login, viewer, cluster):
    client = login(viewer)
    page = client.get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    status_url = reverse("clusters:cluster-status", args=[cluster.pk])
    assert f'hx-get="{status_url}" hx-trigger="every 5s, cluster-changed from:body"' in page
    fragment = client.get(status_url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "web-1" in fragment
    # Without JavaScript the same URL is a page of its own.
    assert "<html" in client.get(status_url).content.decode()


def test_every_form_field_has_a_label(login, admin, cluster):
    client = login(admin)
    for url in (
        reverse("clusters:cluster", args=[cluster.pk]),
        reverse("clusters:cluster-new"),
        reverse("clusters:cluster-edit", args=[cluster.pk]),
        reverse("clusters:node-edit", args=[cluster.nodes.first().pk]),
        reverse("clusters:history", args=[cluster.pk]),
        reverse("clusters:audit"),
        reverse("clusters:credential-new"),
        reverse("clusters:credential-edit", args=[cluster.credential_id]),
        reverse("clusters:users"),
        reverse("clusters:user-new"),
    ):
        page = client.get(url).content.decode()
        ids = re.findall(
            r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', page
        )
        assert ids, url
        for field_id in ids:
            assert f'for="{field_id}"' in page, (url, field_id)
        # No input without an id (and so without a label), hidden ones aside.
        fields = re.findall(r"<(?:input|select|textarea)\b[^>]*>", page)
        for tag in fields:
            assert 'type="hidden"' in tag or " id=" in tag, (url, tag)
        # Buttons say what they do.
        for text in re.findall(r"<button[^>]*>(.*?)</button>", page, re.S):
            assert text.strip(), url


# --- Its settings (creating one: tests/test_views_cluster_setup.py) -----------------------


def test_only_an_admin_may_set_the_reload_command(login, operator, admin, cluster):
    url = reverse("clusters:cluster-update", args=[cluster.pk])
    data = cluster_data(
        name="web", network="192.0.2.0/24", virtual_router_id="51", reload_command="rm -rf /tmp/x"
    )
    login(operator).post(url, data)
    cluster.refresh_from_db()
    assert cluster.reload_command == "systemctl reload-or-restart keepalived"
    data["reload_command"] = "service keepalived reload"
    login(admin).post(url, data)
    cluster.refresh_from_db()
    assert cluster.reload_command == "service keepalived reload"


def test_the_operator_sees_the_reload_command_but_cannot_edit_it(login, operator, cluster):
    page = login(operator).get(reverse("clusters:cluster-edit", args=[cluster.pk])).content.decode()
    tag = re.search(r'<input[^>]*name="reload_command"[^>]*>', page).group(0)
    assert "disabled" in tag
    assert "Only an admin may set reload_command" in page


def test_settings_changes_are_audited_with_the_secret_masked(login, operator, cluster):
    data = cluster_data(
        name="web",
        network="192.0.2.0/24",
        virtual_router_id="51",
        auth_pass="s3cret",
        advert_int="2",
    )
    response = login(operator).post(reverse("clusters:cluster-update", args=[cluster.pk]), data)
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="cluster.update")
    assert entry.changes["advert_int"] == [1, 2]
    assert entry.changes["auth_pass"] == [None, "(set)"]  # it had none
    assert "s3cret" not in str(entry.changes)
    page = login(operator).get(reverse("clusters:audit")).content.decode()
    assert "s3cret" not in page


def test_the_settings_form_never_shows_the_auth_pass(login, operator, cluster):
    cluster.auth_pass = "s3cret"
    cluster.save()
    page = login(operator).get(reverse("clusters:cluster-edit", args=[cluster.pk])).content.decode()
    assert "s3cret" not in page


def test_bad_settings_show_the_error_and_change_nothing(login, operator, cluster):
    data = cluster_data(name="web", network="192.0.2.0/24", virtual_router_id="300")
    response = login(operator).post(reverse("clusters:cluster-update", args=[cluster.pk]), data)
    assert response.status_code == 422
    assert "less than or equal to 255" in response.content.decode()
    cluster.refresh_from_db()
    assert cluster.virtual_router_id == 51
    assert not AuditEntry.objects.exists()


# --- VIPs ---------------------------------------------------------------------------------


def test_an_operator_adds_a_vip_in_place(login, operator, cluster):
    response = login(operator).post(
        reverse("clusters:vip-add", args=[cluster.pk]),
        {"address": "192.0.2.101/24", "label": "api"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith("<section") and 'id="vips"' in body
    assert "192.0.2.101/24" in body and "192.0.2.100/24" in body
    entry = AuditEntry.objects.get(action="vip.create")
    assert entry.changes["address"] == [None, "192.0.2.101/24"]


def test_a_vip_outside_the_network_is_added_with_a_warning(login, operator, cluster):
    url = reverse("clusters:vip-add", args=[cluster.pk])
    response = login(operator).post(url, {"address": "203.0.113.7/24"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert VirtualIP.objects.filter(address="203.0.113.7/24").exists()
    assert re.search(
        r'<p class="message warning" role="status">VIP 203.0.113.7/24 is outside the network '
        r"192.0.2.0/24 its VRRP instance runs on\.",
        body,
    )
    # Inside the network: no warning. Without JavaScript: a message after the redirect.
    body = login(operator).post(url, {"address": "192.0.2.102/24"}, HTTP_HX_REQUEST="true")
    assert "message warning" not in body.content.decode()
    client = login(operator)
    response = client.post(url, {"address": "203.0.113.8/24"})
    said = [(m.level_tag, str(m)) for m in client.get(response["Location"]).context["messages"]]
    assert said[1][0] == "warning" and "203.0.113.8/24 is outside" in said[1][1]


def test_it_rejects_a_vip_that_is_a_nodes_address_in_place(login, operator, cluster):
    response = login(operator).post(
        reverse("clusters:vip-add", args=[cluster.pk]),
        {"address": "192.0.2.11/24"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert "is the address of node &#x27;web-1&#x27;" in response.content.decode()
    assert cluster.vips.count() == 1


def test_without_javascript_adding_a_vip_redirects_back(login, operator, cluster):
    response = login(operator).post(
        reverse("clusters:vip-add", args=[cluster.pk]), {"address": "192.0.2.101/24"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("clusters:cluster", args=[cluster.pk]) + "#vips"


def test_an_operator_deletes_a_vip(login, operator, cluster):
    vip = cluster.vips.get()
    response = login(operator).post(
        reverse("clusters:vip-delete", args=[vip.pk]), {"confirm": "web"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert not VirtualIP.objects.filter(pk=vip.pk).exists()
    assert "No VIPs yet." in response.content.decode()
    entry = AuditEntry.objects.get(action="vip.delete")
    assert entry.changes["address"] == ["192.0.2.100/24", None]


# --- Failover drill -----------------------------------------------------------------------


def test_the_drill_starts_in_a_worker(
    login, operator, cluster, drill_queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(operator).post(
            reverse("clusters:drill", args=[cluster.pk]), {"confirm": "web"}
        )
    assert response.status_code == 302
    # The drill is a record (kind "drill", queued) handed to the worker by its id; its page
    # follows it (the record's state, detail and log, with its prediction).
    record = ConfigPush.objects.get(cluster=cluster, kind=ConfigPush.Kind.DRILL)
    assert response["Location"] == reverse("clusters:push", args=[record.pk])
    assert (record.state, record.requested_by) == (ConfigPush.State.QUEUED, operator)
    drill_queued.assert_called_once_with(record.pk)
    assert AuditEntry.objects.get().action == "drill started"


def test_the_drill_is_refused_while_a_push_runs(login, operator, cluster, drill_queued):
    ConfigPush.objects.create(cluster=cluster, state="running")
    response = login(operator).post(
        reverse("clusters:drill", args=[cluster.pk]), {"confirm": "web"}
    )
    body = response.content.decode()
    assert response.status_code == 409
    assert "The drill did not start" in body and "A push of this cluster is active" in body
    drill_queued.assert_not_called()
    assert AuditEntry.objects.get().result.startswith("refused:")


def test_every_post_only_url_is_in_a_guard_table(login, admin):
    """A new mutating view cannot slip in without the four guard tests."""
    from clusters.urls import urlpatterns
    from tests import (
        test_views_adopt,
        test_views_cluster_setup,
        test_views_credentials,
        test_views_instances,
        test_views_node_page,
        test_views_nodes,
        test_views_preferences,
        test_views_push,
        test_views_users,
    )

    guarded = set(MUTATING)
    for module in (
        test_views_nodes,
        test_views_push,
        test_views_credentials,
        test_views_users,
        test_views_instances,
        test_views_preferences,  # a user's own: no role to deny, so GET, login and CSRF only
        test_views_cluster_setup,
        test_views_node_page,
        test_views_adopt,
    ):
        guarded |= set(module.MUTATING)
    client = login(admin)
    post_only = set()
    for pattern in urlpatterns:
        if pattern.name == "notify":
            continue  # keepalived's reports: signed, not a session's form (tests/test_notify.py)
        args = [1] * len(pattern.pattern.converters)
        if client.get(reverse(f"clusters:{pattern.name}", args=args)).status_code == 405:
            post_only.add(pattern.name)
    assert post_only == guarded


def test_a_drill_event_says_drill_once(login, viewer, cluster):
    """Issue 17's "(drill) (drill)": the event's kind and its source were both printed."""
    FailoverEvent.objects.create(
        cluster=cluster,
        vip_address="192.0.2.100/24",
        from_node="web-1",
        to_node="web-2",
        at=timezone.now(),
        kind=FailoverEvent.Kind.DRILL,
        detected_by=FailoverEvent.DetectedBy.DRILL,
        detail="Passed. The VIPs moved to web-2 in 0.6s.",
    )
    page = login(viewer).get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    line = re.search(r'<li class="event-drill">.*?</li>', page, re.S).group(0)
    assert line.count("drill") == 2  # the class, and "(drill)" once
    assert "web-1 → web-2 (drill)" in line and "muted" not in line


# --- One poll for every part that shows state; pending and drift where they are shown --------


def probed(node, **fields):
    """A NodeState as a sweep records it: reachable, keepalived running, then `fields`."""
    from clusters.models import NodeState

    defaults = dict(checked_at=timezone.now(), reachable=True, keepalived_running=True)
    return NodeState.objects.create(node=node, **{**defaults, **fields})


def live_fragment(client, cluster):
    url = reverse("clusters:cluster-status", args=[cluster.pk])
    return client.get(url, HTTP_HX_REQUEST="true").content.decode()


def test_one_poll_refreshes_every_part_that_shows_state(login, viewer, cluster):
    client = login(viewer)
    page = client.get(reverse("clusters:cluster", args=[cluster.pk])).content.decode()
    FailoverEvent.objects.create(
        cluster=cluster,
        vip_address="192.0.2.100/24",
        from_node="web-1",
        to_node="web-2",
        at=timezone.now(),
        detected_by="sweep",
    )
    fragment = live_fragment(client, cluster)
    assert "<html" not in fragment
    # Each part the page shows of state comes back, marked to replace its twin by id.
    for part in ("push-state", "recent-pushes", "incidents", "failovers", "availability"):
        assert f'id="{part}" hx-swap-oob="true"' in fragment, part
        assert f'id="{part}"' in page, part
    assert '<template><tbody id="nodes-body" hx-swap-oob="true">' in fragment
    assert 'id="instance-main-holder" hx-swap-oob="true"' in fragment
    failovers = fragment.split('id="failovers"')[1].split("</section>")[0]
    assert "web-1 → web-2" in failovers


def test_a_fix_clears_not_ready_to_push_at_the_next_refresh(login, operator, cluster):
    cluster.vips.all().delete()
    client = login(operator)
    assert "Not ready to push yet" in live_fragment(client, cluster)
    response = client.post(
        reverse("clusters:vip-add", args=[cluster.pk]),
        {"address": "192.0.2.101/24"},
        HTTP_HX_REQUEST="true",
    )
    # The page is told at once, so its live parts refresh without waiting for the next tick.
    assert response["HX-Trigger"] == "cluster-changed"
    assert "Not ready to push yet" not in live_fragment(client, cluster)


def test_a_refused_change_does_not_refresh_the_page(login, operator, cluster):
    response = login(operator).post(
        reverse("clusters:vip-add", args=[cluster.pk]),
        {"address": "192.0.2.11/24"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422 and "HX-Trigger" not in response


def test_a_vip_not_pushed_is_pending_with_the_diff_one_click_away(login, operator, cluster):
    VirtualIP.objects.create(cluster=cluster, address="192.0.2.101/24")
    fragment = live_fragment(login(operator), cluster)
    row = re.search(r'<tr class="vip-pending" data-vip="192.0.2.101/24">.*?</tr>', fragment, re.S)
    assert row and ">pending push</span>" in row.group(0) and "no holder" not in fragment
    preview = reverse("clusters:push-preview", args=[cluster.pk])
    assert f'hx-post="{preview}"' in row.group(0) and "Show the diff" in row.group(0)
    summary = fragment.split('id="pending-summary"')[1].split("</div>")[0]
    assert "Saved in vipanel, not pushed yet: VIP 192.0.2.101/24" in summary
    availability = fragment.split('id="availability"')[1].split("</section>")[0]
    assert "counted from its first push" in availability


def test_a_node_with_a_change_not_pushed_says_pending_not_drift(login, viewer, cluster):
    from clusters.models import Node

    web2 = cluster.nodes.get(name="web-2")
    Node.objects.filter(pk=web2.pk).update(desired_config_sha="0" * 64)
    probed(web2, vrrp_state="BACKUP", drift=False)
    fragment = live_fragment(login(viewer), cluster)
    cells = re.search(r'<tr data-node="web-2">.*?</tr>', fragment, re.S).group(0)
    assert ">pending push</span>" in cells and "drift" not in cells
    # A viewer may not preview: no button.
    assert "Show the diff" not in cells


def test_a_drifted_node_links_to_its_diff_with_the_definition(login, operator, viewer, cluster):
    web1 = cluster.nodes.get(name="web-1")
    edited = web1.pushed_config.replace("priority 120", "priority 7")
    probed(web1, vrrp_state="MASTER", drift=True, drift_config=edited, drift_config_sha="f" * 64)
    drift_url = reverse("clusters:node-drift", args=[web1.pk])
    cells = re.search(
        r'<tr data-node="web-1">.*?</tr>', live_fragment(login(operator), cluster), re.S
    ).group(0)
    assert 'class="badge bad"' in cells and f'href="{drift_url}"' in cells
    assert "is not what vipanel last pushed there: it was edited on the node" in cells
    page = login(operator).get(drift_url).content.decode()
    assert "-    priority 120" in page and "+    priority 7" in page
    # The file was edited by hand and may hold anything: an operator's, like the preview.
    assert login(viewer).get(drift_url).status_code == 403
    assert login(operator).post(drift_url).status_code == 405


def test_the_poll_costs_the_same_for_2_or_6_nodes(login, viewer, cluster):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clusters.models import Node
    from tests.pushed import mark_pushed

    client = login(viewer)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            live_fragment(client, cluster)
        return len(ctx.captured_queries)

    two = queries()
    for i in range(4):
        node = Node.objects.create(
            cluster=cluster, name=f"web-{3 + i}", address=f"192.0.2.{13 + i}", priority=100 - i
        )
        probed(node, vrrp_state="BACKUP", drift=False)
    mark_pushed(cluster)
    assert queries() == two <= 20
