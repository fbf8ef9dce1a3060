"""/metrics: Prometheus text format 0.0.4, for an API token or an allowed address only."""

import re

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters import metrics
from clusters.models import ConfigPush, FailoverEvent, Node, NodeState, VipState, VirtualIP
from tests.pushed import mark_pushed
from tests.test_api_support import make_user, token_for

pytestmark = pytest.mark.django_db

URL = "/metrics"
OUTSIDE = "198.51.100.7"
VIP = "192.0.2.100/24"


@pytest.fixture(autouse=True)
def no_sweep_time():
    cache.delete(metrics.SWEEP_SECONDS_KEY)
    yield
    cache.delete(metrics.SWEEP_SECONDS_KEY)


def scrape(remote_addr="127.0.0.1", **headers):
    return Client().get(URL, REMOTE_ADDR=remote_addr, headers=headers)


SAMPLE = re.compile(
    r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{(?P<labels>(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})?'
    r" (?P<value>-?[0-9.e+-]+|NaN|[+-]Inf)"
)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse(text):
    """{(name, frozenset(labels)): value}; checks the grammar and HELP/TYPE on the way."""
    assert text.endswith("\n")
    samples, typed, seen_families = {}, {}, []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in seen_families, f"HELP twice for {name}"
            seen_families.append(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge") and name == seen_families[-1]
            typed[name] = kind
            continue
        match = SAMPLE.fullmatch(line)
        assert match, f"not a sample line: {line!r}"
        name = match["name"]
        family = seen_families[-1]
        counter_sample = typed.get(family) == "counter" and name == f"{family}_total"
        assert name == family or counter_sample, f"{name} outside its family"
        labels = frozenset(
            (k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
            for k, v in LABEL.findall(match["labels"] or "")
        )
        assert (name, labels) not in samples, f"duplicate series {line}"
        samples[(name, labels)] = float(match["value"])
    assert set(typed) == set(seen_families)
    return samples


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_it_serves_the_text_format_to_loopback(cluster):
    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    parse(response.content.decode())


def test_it_answers_401_to_other_addresses_without_a_token(cluster):
    response = scrape(OUTSIDE)
    assert response.status_code == 401
    assert "vipanel_" not in response.content.decode()


def test_x_forwarded_for_does_not_open_it(cluster):
    assert scrape(OUTSIDE, **{"X-Forwarded-For": "127.0.0.1"}).status_code == 401


def test_a_token_opens_it_from_anywhere(cluster):
    key = token_for(make_user("prometheus", "viewer"))
    assert scrape(OUTSIDE, Authorization=f"Token {key}").status_code == 200
    assert scrape(OUTSIDE, Authorization="Token wrong").status_code == 401


def test_a_token_without_a_role_is_403(cluster):
    key = token_for(make_user("nobody"))
    assert scrape(OUTSIDE, Authorization=f"Token {key}").status_code == 403


def test_the_allow_list_takes_networks_and_mapped_addresses(settings, cluster):
    settings.VIPANEL_METRICS_ALLOW = ["10.0.0.0/8", "2001:db8::/32"]
    assert scrape("10.1.2.3").status_code == 200
    assert scrape("::ffff:10.1.2.3").status_code == 200
    assert scrape("2001:db8::5").status_code == 200
    assert scrape("127.0.0.1").status_code == 401


def test_a_bad_allow_list_fails_loudly(settings, cluster):
    settings.VIPANEL_METRICS_ALLOW = ["localhost"]
    with pytest.raises(ImproperlyConfigured, match="VIPANEL_METRICS_ALLOW"):
        scrape()


def test_it_needs_no_login_and_only_answers_get(client, cluster):
    assert client.get(URL).status_code == 200  # no redirect to the login page
    assert client.post(URL).status_code == 405


def observe(cluster, holders, web1_state="MASTER"):
    now = timezone.now()
    for node in cluster.nodes.all():
        NodeState.objects.update_or_create(
            node=node,
            defaults={
                "checked_at": now,
                "reachable": True,
                "keepalived_running": True,
                "vrrp_state": web1_state if node.name == "web-1" else "BACKUP",
                "holds": [VIP] if node.name in holders else [],
                "drift": node.name == "web-2",
            },
        )
    holder = Node.objects.get(name=holders[0]) if len(holders) == 1 else None
    VipState.objects.update_or_create(
        vip=cluster.vips.get(),
        defaults={
            "holder": holder,
            "since": now,
            "checked_at": now,
            "split_brain": len(holders) > 1,
        },
    )


def test_it_shows_vip_holders_and_node_states(cluster):
    observe(cluster, ["web-1"])
    s = parse(scrape().content.decode())
    main = {"cluster": "web", "instance": "VI_web", "vip": VIP}
    assert value(s, "vipanel_vip_holder", **main, node="web-1") == 1
    assert value(s, "vipanel_vip_holder", **main, node="web-2") == 0
    assert value(s, "vipanel_vip_holders", cluster="web", instance="VI_web", vip=VIP) == 1
    assert value(s, "vipanel_vip_split_brain", cluster="web", instance="VI_web", vip=VIP) == 0
    assert value(s, "vipanel_node_reachable", cluster="web", node="web-1") == 1
    assert value(s, "vipanel_node_keepalived_up", cluster="web", node="web-2") == 1
    assert value(s, "vipanel_node_vrrp_state", cluster="web", node="web-1", state="MASTER") == 1
    assert value(s, "vipanel_node_vrrp_state", cluster="web", node="web-1", state="BACKUP") == 0
    assert value(s, "vipanel_node_vrrp_state", cluster="web", node="web-2", state="BACKUP") == 1
    assert value(s, "vipanel_node_config_drift", cluster="web", node="web-2") == 1


def test_it_shows_split_brain(cluster):
    observe(cluster, ["web-1", "web-2"])
    s = parse(scrape().content.decode())
    assert value(s, "vipanel_vip_split_brain", cluster="web", instance="VI_web", vip=VIP) == 1
    assert value(s, "vipanel_vip_holders", cluster="web", instance="VI_web", vip=VIP) == 2


def test_a_node_never_probed_is_unreachable_and_unknown(cluster):
    s = parse(scrape().content.decode())
    assert value(s, "vipanel_node_reachable", cluster="web", node="web-1") == 0
    assert value(s, "vipanel_node_vrrp_state", cluster="web", node="web-1", state="UNKNOWN") == 1
    assert (
        "vipanel_node_keepalived_up",
        frozenset({("cluster", "web"), ("node", "web-1")}),
    ) not in s


def test_it_counts_pushes_by_state_and_failovers_by_kind(cluster):
    for state in ("succeeded", "succeeded", "failed"):
        ConfigPush.objects.create(cluster=cluster, state=state)
    for kind in ("failover", "failover", "split_brain"):
        FailoverEvent.objects.create(
            cluster=cluster, vip_address=VIP, at=timezone.now(), kind=kind, detected_by="sweep"
        )
    s = parse(scrape().content.decode())
    assert value(s, "vipanel_pushes", state="succeeded") == 2
    assert value(s, "vipanel_pushes", state="failed") == 1
    assert value(s, "vipanel_pushes", state="running") == 0
    assert value(s, "vipanel_failover_events", cluster="web", kind="failover") == 2
    assert value(s, "vipanel_failover_events", cluster="web", kind="split_brain") == 1
    assert value(s, "vipanel_failover_events", cluster="web", kind="no_holder") == 0


def test_the_sweep_duration_comes_from_the_cache(cluster):
    assert "vipanel_sweep_duration_seconds" not in scrape().content.decode()
    cache.set(metrics.SWEEP_SECONDS_KEY, 1.25)
    s = parse(scrape().content.decode())
    assert value(s, "vipanel_sweep_duration_seconds") == 1.25


def test_label_values_are_escaped_and_survive_a_round_trip(cluster):
    from prometheus_client.parser import text_string_to_metric_families

    odd = 'a "b" \\ c\nd'
    cluster.name = odd
    cluster.save()
    text = scrape().content.decode()
    labels = {"cluster": odd, "instance": f"VI_{odd}", "vip": VIP}
    assert value(parse(text), "vipanel_vip_holders", **labels) == 0
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"vipanel_vip_holders", "vipanel_pushes", "vipanel_failover_events"} <= names


def test_types_are_honest_gauges_where_a_value_can_go_down(cluster):
    text = scrape().content.decode()
    assert "# TYPE vipanel_pushes gauge" in text
    assert "# TYPE vipanel_failover_events gauge" in text
    assert "vipanel_pushes_total" not in text and "vipanel_failovers_total" not in text
    assert "# TYPE vipanel_sweep_skipped_total counter" in text


def test_it_counts_the_sweep_ticks_that_skipped_a_cluster(cluster, private_redis):
    from clusters import sweep

    sweep.claim(cluster.pk)
    sweep.tick()  # the cluster is still "being probed": skipped
    s = parse(scrape().content.decode())
    assert value(s, "vipanel_sweep_skipped_total") == 1


def test_it_answers_without_the_sweep_figures_when_redis_is_down(settings, cluster):
    # Nothing listens on port 1: every Redis call fails at once, as with Redis stopped.
    dead = "redis://127.0.0.1:1/0"
    settings.REDIS_URL = dead
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": dead}
    }
    response = scrape()
    assert response.status_code == 200
    text = response.content.decode()
    s = parse(text)
    assert value(s, "vipanel_node_reachable", cluster="web", node="web-1") == 0
    assert "vipanel_sweep_duration_seconds" not in text and "vipanel_sweep_skipped" not in text


def test_a_scrape_costs_the_same_queries_however_many_nodes(cluster):
    observe(cluster, ["web-1"])
    scrape()

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert scrape().status_code == 200
        return len(captured)

    before = queries()
    now = timezone.now()
    for i in range(10):
        node = Node.objects.create(
            cluster=cluster, name=f"n{i}", address=f"192.0.2.{30 + i}", priority=50 + i
        )
        NodeState.objects.create(node=node, checked_at=now, reachable=True, holds=[VIP])
        VirtualIP.objects.create(cluster=cluster, address=f"192.0.2.{160 + i}/24")
    # 5 of clusters.metrics, 3 of the availability (alerts.metrics), whatever the counts.
    assert queries() == before == 8


def test_vip_metrics_name_their_instance(cluster):
    from clusters.models import NodePriority, VirtualIP, VrrpInstance

    b = VrrpInstance.objects.create(cluster=cluster, name="B", virtual_router_id=61)
    for node, priority in zip(cluster.nodes.order_by("name"), (110, 120), strict=True):
        NodePriority.objects.create(instance=b, node=node, priority=priority)
    VirtualIP.objects.create(cluster=cluster, instance=b, address="192.0.2.200/24")
    mark_pushed(cluster)
    s = parse(scrape().content.decode())
    assert value(s, "vipanel_vip_holders", cluster="web", instance="VI_web", vip=VIP) == 0
    assert (
        value(s, "vipanel_vip_holders", cluster="web", instance="VI_web_B", vip="192.0.2.200/24")
        == 0
    )


def test_a_change_not_pushed_is_pending_and_never_a_vip_without_holders(cluster):
    new = VirtualIP.objects.create(cluster=cluster, address="192.0.2.101/24")
    Node.objects.filter(name="web-2").update(desired_config_sha="0" * 64)
    s = parse(scrape().content.decode())
    key = dict(cluster="web", instance="VI_web")
    assert value(s, "vipanel_vip_pending_push", **key, vip=new.address) == 1
    assert value(s, "vipanel_vip_pending_push", **key, vip=VIP) == 0
    # No holder series for it: an alert on "vipanel_vip_holders == 0" stays quiet.
    assert not [
        k
        for k in s
        if k[0].startswith("vipanel_vip_")
        and ("vip", new.address) in k[1]
        and k[0] != "vipanel_vip_pending_push"
    ]
    assert value(s, "vipanel_node_pending_push", cluster="web", node="web-2") == 1
    # A node vipanel never pushed to: keepalived not running there is not "down" yet.
    NodeState.objects.create(
        node=Node.objects.get(name="web-2"),
        checked_at=timezone.now(),
        reachable=True,
        keepalived_running=False,
        vrrp_state="STOPPED",
    )
    Node.objects.filter(name="web-2").update(pushed_config_sha="")
    s = parse(scrape().content.decode())
    assert (
        "vipanel_node_keepalived_up",
        frozenset({("cluster", "web"), ("node", "web-2")}),
    ) not in s
    assert value(s, "vipanel_node_pending_push", cluster="web", node="web-1") == 0
    # Nor in the availability figures: it is counted from its first push.
    assert not [
        k for k in s if k[0] == "vipanel_vip_availability_share" and ("vip", new.address) in k[1]
    ]
