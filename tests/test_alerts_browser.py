"""Alert channels and an incident in Chromium: an admin adds a channel, sends a test and sees
it arrive at a real receiver; a viewer reads an incident with its messages. Saves
alerts-channels.png, alerts-channel-form.png and alerts-incident.png (docs/screenshots/ under
`make screenshots`)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Channel, Delivery, EventKind, Incident
from clusters.models import Cluster, Node, VirtualIP
from tests.browser import (
    chromium,  # noqa: F401 (fixture)
    fast_passwords,  # noqa: F401 (fixture)
    log_in,
    new_page,  # noqa: F401 (fixture)
    people,  # noqa: F401 (fixture)
    screenshot,
)
from tests.receiver import eager_alerts, receiver  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def expect_text(locator, pattern, timeout=15_000):
    from playwright.sync_api import expect

    expect(locator).to_contain_text(pattern, timeout=timeout)


@pytest.fixture
def edge(db):
    cluster = Cluster.objects.create(
        name="haproxy-edge", network="10.0.0.0/24", virtual_router_id=10
    )
    Node.objects.create(cluster=cluster, name="edge-1", address="10.0.0.11", priority=120)
    Node.objects.create(cluster=cluster, name="edge-2", address="10.0.0.12", priority=110)
    VirtualIP.objects.create(cluster=cluster, address="10.0.0.100/24")
    return cluster


def test_an_admin_adds_a_channel_and_sends_a_test(new_page, people, edge, receiver, eager_alerts):
    Channel.objects.create(
        name="ops-slack",
        url="slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
        masked_url="slack://T...2/A...D/T...Q/",
        kinds=["split_brain", "no_holder"],
    )
    page = new_page()
    log_in(page, "admin-user", next_path="/alerts/channels/new/")
    page.get_by_label("Name").fill("pager")
    page.get_by_label("Apprise URL").fill("nosuch://x")
    page.get_by_role("button", name="Save channel").click()
    expect_text(page.locator(".has-error"), "Apprise cannot use this URL")
    page.get_by_label("Apprise URL").fill(receiver.url("p4ger-token"))
    page.get_by_label("Drill result").uncheck()
    page.get_by_role("button", name="Save channel").click()
    expect_text(page.locator("table"), "pager")
    assert "p4ger-token" not in page.content()
    screenshot(page, "alerts-channels.png")
    page.get_by_role("link", name="Edit pager").click()
    page.get_by_role("button", name="Send a test message").click()
    expect_text(page.locator("table").first, "sent")
    assert receiver.titles() == ["vipanel test message"]
    screenshot(page, "alerts-channel-form.png")


def test_a_viewer_reads_an_incident_with_its_messages(new_page, people, edge):
    now = timezone.now()
    incident = Incident.objects.create(
        kind=EventKind.SPLIT_BRAIN,
        cluster=edge,
        key="vip:1",
        subject="10.0.0.100/24",
        title="Split brain: several nodes hold 10.0.0.100/24",
        detail="Check that VRRP (IP protocol 112) passes between the nodes.",
        state=Incident.State.RESOLVED,
        started=now - timedelta(minutes=7),
        opened=now - timedelta(minutes=7, seconds=-5),
        last_seen=now,
        resolved=now,
    )
    Delivery.objects.create(
        incident=incident,
        channel_name="pager",
        purpose="opened",
        state="sent",
        attempts=1,
        finished=incident.opened,
    )
    Delivery.objects.create(
        incident=incident,
        channel_name="ops-slack",
        purpose="opened",
        state="failed",
        attempts=6,
        error="attempt 6: Failed to send Slack notification: Service Unavailable, error=503.",
        finished=now,
    )
    Delivery.objects.create(
        incident=incident,
        channel_name="pager",
        purpose="resolved",
        state="sent",
        attempts=1,
        finished=now,
    )
    # As the worker would have left them: queued when the incident opened or resolved.
    incident.deliveries.filter(purpose="opened").update(created=incident.opened)
    incident.deliveries.filter(purpose="resolved").update(created=now)
    page = new_page()
    log_in(page, "viewer-user", next_path="/alerts/")
    page.get_by_role("link", name=incident.title).click()
    expect_text(page.locator("h1"), f"Incident #{incident.pk}")
    expect_text(page.locator("table").last, "error=503")
    screenshot(page, "alerts-incident.png")
