"""Driving Debian's Chromium with Playwright's sync API against pytest-django's live server.

Playwright's own browser download does not work here, so the browser is /usr/bin/chromium.
Every request the page makes outside the live server is refused and remembered: the panel must
work with nothing from a CDN, and the tests check the list stays empty.
"""

import ipaddress
import os
import tempfile
from pathlib import Path

import pytest
from django.utils import timezone

from clusters import roles
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
from tests.cast import make_user
from tests.pushed import mark_pushed

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a-long-test-passphrase"
# The README's screenshots are refreshed with `make screenshots` (VIPANEL_SCREENSHOTS=docs);
# an ordinary test run keeps its pictures out of the work tree.
SCREENSHOTS = (
    Path(__file__).resolve().parent.parent / "docs" / "screenshots"
    if os.environ.get("VIPANEL_SCREENSHOTS") == "docs"
    else Path(tempfile.gettempdir()) / "vipanel-screenshots"
)
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def chromium():
    # Playwright's sync API runs an event loop in this thread; Django would otherwise refuse
    # the test's own database queries as "called from an async context".
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Pages:
    """new_page(...) -> a Page in a fresh context (its own cookies) on the live server."""

    def __init__(self, browser, live_server):
        self.browser, self.base = browser, live_server.url
        self.contexts = []
        self.outside = []  # URLs a page tried to load from anywhere but the live server

    def __call__(self, viewport=LAPTOP, javascript=True, **options):
        """options: more of Playwright's context options, e.g. timezone_id="Europe/Berlin" (the
        browser's zone) or color_scheme="dark" (the system's theme)."""
        context = self.browser.new_context(
            base_url=self.base, viewport=viewport, java_script_enabled=javascript, **options
        )
        context.set_default_timeout(15_000)
        context.route("**/*", self._only_the_live_server)
        self.contexts.append(context)
        return context.new_page()

    def _only_the_live_server(self, route):
        url = route.request.url
        if url.startswith(self.base + "/") or url == self.base:
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def close(self):
        for context in self.contexts:
            context.close()


@pytest.fixture
def new_page(chromium, live_server):
    pages = Pages(chromium, live_server)
    yield pages
    pages.close()
    assert pages.outside == [], f"the page loaded from outside the panel: {pages.outside}"


@pytest.fixture
def fast_passwords(settings):
    # The live server runs in this process, so the test's settings apply to it too.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(db, fast_passwords):
    """Users who log in through the login page: name -> user (password PASSWORD)."""
    return {
        role: make_user(f"{role}-user", role, password=PASSWORD)
        for role in (roles.VIEWER, roles.OPERATOR, roles.ADMIN)
    }


def log_in(page, username, password=PASSWORD, next_path="/"):
    page.goto(next_path)
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)


def mark_page(page):
    """Leave a mark in the page's JavaScript state: still there later means no reload."""
    page.evaluate("window.__noReload = 'still here'")


def not_reloaded(page):
    return page.evaluate("window.__noReload") == "still here"


LOOKED_AT = Path(tempfile.gettempdir()) / "vipanel-screenshots"


def screenshot(page, name, full_page=True):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)


def look_at(page, name, full_page=True):
    """A picture for a person to judge, never one of the README's: always under LOOKED_AT."""
    LOOKED_AT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(LOOKED_AT / name), full_page=full_page)


def fits_the_screen(page):
    """No sideways scrolling of the page itself (tables scroll inside their own box)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


# --- Data --------------------------------------------------------------------------------


def observe(cluster, holder=None, split=False, none=False, at=None, **node_fields):
    """What a sweep would record: every node reachable and running, `holder` with the VIPs."""
    at = at or timezone.now()
    vips = list(cluster.vips.all())
    for node in cluster.nodes.all():
        holds = [v.address for v in vips] if (node == holder or split) else []
        fields = dict(
            checked_at=at,
            reachable=True,
            keepalived_running=True,
            vrrp_state="MASTER" if holds else "BACKUP",
            holds=holds,
            drift=False,
        )
        fields.update(node_fields.get(node.name, {}))
        NodeState.objects.update_or_create(node=node, defaults=fields)
    for vip in vips:
        VipState.objects.update_or_create(
            vip=vip,
            defaults=dict(
                holder=None if (split or none) else holder,
                since=at,
                checked_at=at,
                split_brain=split,
                no_holder=none,
            ),
        )


def seed_fleet(operator):
    """A few clusters in the states an operator meets, for the dashboard's picture."""
    now = timezone.now()
    made = []
    for i, (name, trouble) in enumerate(
        [("haproxy-edge", None), ("swarm-ingress", "split"), ("pg-proxy", "none")]
    ):
        cluster = Cluster.objects.create(
            name=name, network=f"10.{i}.0.0/24", virtual_router_id=10 + i
        )
        nodes = [
            Node.objects.create(
                cluster=cluster,
                name=f"{name}-{j}",
                address=f"10.{i}.0.{11 + j}",
                priority=120 - 10 * j,
            )
            for j in range(2 if i else 3)
        ]
        VirtualIP.objects.create(cluster=cluster, address=f"10.{i}.0.100/24")
        if i == 0:
            VirtualIP.objects.create(cluster=cluster, address=f"10.{i}.0.101/24")
        mark_pushed(cluster)  # running for a while: what is observed below is what was pushed
        if trouble == "split":
            observe(cluster, split=True)
        elif trouble == "none":
            observe(
                cluster,
                none=True,
                **{
                    nodes[0].name: dict(keepalived_running=False, vrrp_state="STOPPED"),
                    nodes[1].name: dict(vrrp_state="FAULT"),
                },
            )
        else:
            observe(cluster, nodes[0], **{nodes[2].name: dict(drift=True)})
            FailoverEvent.objects.create(
                cluster=cluster,
                vip_address=f"10.{i}.0.100/24",
                from_node=nodes[1].name,
                to_node=nodes[0].name,
                at=now - timezone.timedelta(minutes=42),
                detected_by="sweep",
            )
        ConfigPush.objects.create(
            cluster=cluster,
            requested_by=operator,
            state="failed" if trouble == "none" else "succeeded",
        )
        made.append(cluster)
    return made


def lab_cluster(lab, name="lab-web", vrid=78):
    """A cluster whose nodes are the lab's nodes (priorities 100, 110, 120: the last holds)."""
    credential = SSHCredential.objects.create(
        name=f"{name}-key", username="root", private_key=lab.private_key
    )
    net = ipaddress.ip_network(lab.network)
    cluster = Cluster(
        name=name,
        network=str(net),
        virtual_router_id=vrid,
        interface="eth0",
        advert_int=1,
        reload_command=lab[0].reload_command,
        credential=credential,
    )
    cluster.full_clean()
    cluster.save()
    for node, priority in zip(lab, (100, 110, 120), strict=False):
        # The key a person compared with the node's console: nothing trusts one by itself.
        n = Node(
            cluster=cluster,
            name=node.name,
            address=node.address,
            priority=priority,
            host_key_fingerprint=node.fingerprint,
        )
        n.full_clean()
        n.save()
    vip = VirtualIP(
        cluster=cluster, address=f"{net.network_address + 100}/{net.prefixlen}", label="frontend"
    )
    vip.full_clean()
    vip.save()
    return cluster
