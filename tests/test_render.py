"""keepalived.conf and iptables rendering: goldens, the real keepalived and iptables, injection.

Goldens live in tests/golden/. After an intended change, regenerate them with
VIPANEL_UPDATE_GOLDEN=1 and review the diff; without it a missing golden is a failure.

The keepalived and iptables tests run the real tools in throwaway network namespaces
(tests/netns.py). They need root, like the rest of the suite, and fail rather than skip without it.
"""

import difflib
import hashlib
import io
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from clusters import constants, render
from clusters.models import Cluster, Node, VirtualIP
from tests.netns import throwaway_netns

pytestmark = pytest.mark.django_db

GOLDEN = Path(__file__).parent / "golden"
UPDATE_ENV = "VIPANEL_UPDATE_GOLDEN"


def assert_golden(name, text):
    path = GOLDEN / name
    if os.environ.get(UPDATE_ENV) == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text.encode())
        return
    assert path.is_file(), (
        f"golden file {path} is missing: run with {UPDATE_ENV}=1 to write it, then review it"
    )
    expected = path.read_bytes().decode()
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True), text.splitlines(keepends=True), name, "rendered"
        )
    )
    assert text.encode() == path.read_bytes(), f"rendering differs from {path}:\n{diff}"


# --- The clusters behind the goldens ------------------------------------------------------------
# Built through full_clean(), so every golden shows data the models accept.


def make(model, **fields):
    obj = model(**fields)
    obj.full_clean()
    obj.save()
    return obj


def multicast_basic(cluster):
    return Node.objects.get(cluster=cluster, name="web-1")


def unicast_three_nodes(cluster):
    # Addresses whose text order (.10 < .20 < .9) differs from their numeric order, created in
    # neither order: the peers must come out numerically sorted.
    c = make(
        Cluster,
        name="db-proxy.eu",
        network="198.51.100.0/24",
        virtual_router_id=52,
        unicast=True,
        preempt=False,
        auth_pass="pa:ss-8x",
        credential=cluster.credential,
    )
    make(Node, cluster=c, name="db-b", address="198.51.100.20", priority=110)
    make(Node, cluster=c, name="db-a", address="198.51.100.10", priority=130)
    make(Node, cluster=c, name="db-c", address="198.51.100.9", priority=120)
    make(VirtualIP, cluster=c, address="198.51.100.100/24")
    return c.nodes.get(name="db-b")


def preempt_delay(cluster):
    c = make(
        Cluster,
        name="lb",
        network="203.0.113.0/24",
        virtual_router_id=53,
        advert_int=2,
        preempt_delay=30,
        credential=cluster.credential,
    )
    # The node overrides the cluster's interface.
    make(Node, cluster=c, name="lb-1", address="203.0.113.11", priority=150, interface="ens3")
    make(Node, cluster=c, name="lb-2", address="203.0.113.12", priority=140)
    make(VirtualIP, cluster=c, address="203.0.113.100/24")
    make(VirtualIP, cluster=c, address="203.0.113.101/32")
    return c.nodes.get(name="lb-1")


def check_script(cluster):
    cluster.check_script = "/usr/bin/pgrep haproxy"
    cluster.check_interval, cluster.check_weight = 3, -30
    cluster.check_fall, cluster.check_rise = 3, 2
    cluster.full_clean()
    cluster.save()
    return Node.objects.get(cluster=cluster, name="web-2")


def typed_check(check_type, target):
    """A golden builder for one typed health check (issue 15): fixed command, one parameter."""

    def build(cluster):
        cluster.check_type, cluster.check_target = check_type, target
        cluster.check_interval, cluster.check_weight = 2, -30
        cluster.full_clean()
        cluster.save()
        return Node.objects.get(cluster=cluster, name="web-1")

    build.__name__ = f"typed_check_{check_type}"
    return build


def ipv6(cluster):
    c = make(
        Cluster,
        name="v6",
        network="2001:db8::/64",
        virtual_router_id=54,
        credential=cluster.credential,
    )
    make(Node, cluster=c, name="v6-1", address="2001:db8::11", priority=120)
    make(Node, cluster=c, name="v6-2", address="2001:db8::12", priority=110)
    # Created out of address order: VIPs keep the order they were added in (by id).
    make(VirtualIP, cluster=c, address="2001:db8::101/64")
    make(VirtualIP, cluster=c, address="2001:db8::100/64")
    return c.nodes.get(name="v6-1")


def ipv6_unicast(cluster):
    c = make(
        Cluster,
        name="v6u",
        network="2001:db8:1::/64",
        virtual_router_id=55,
        unicast=True,
        credential=cluster.credential,
    )
    make(Node, cluster=c, name="v6u-1", address="2001:db8:1::11", priority=120)
    make(Node, cluster=c, name="v6u-2", address="2001:db8:1::12", priority=110)
    make(VirtualIP, cluster=c, address="2001:db8:1::100/64")
    return c.nodes.get(name="v6u-1")


@dataclass(frozen=True)
class Case:
    name: str
    build: object
    interfaces: tuple = ("eth0",)
    addresses: tuple = ()
    render_kwargs: tuple = ()
    iptables: bool = True


V6_ADDRESSES = (("eth0", "2001:db8::11/64"),)
CASES = [
    Case("multicast-basic", multicast_basic),
    Case("unicast-3-nodes-auth-nopreempt", unicast_three_nodes),
    Case("preempt-delay", preempt_delay, interfaces=("eth0", "ens3"), iptables=False),
    Case("check-script-negative-weight", check_script, iptables=False),
    Case("check-process", typed_check("process", "haproxy"), iptables=False),
    Case("check-tcp", typed_check("tcp", "8404"), iptables=False),
    Case("check-http", typed_check("http", "http://127.0.0.1:8404/health"), iptables=False),
    Case("check-https-ipv6", typed_check("http", "https://[::1]:8443/-/ready"), iptables=False),
    Case("check-file", typed_check("file", "/run/haproxy.pid"), iptables=False),
    Case("ipv6", ipv6, addresses=V6_ADDRESSES),
    Case("ipv6-unicast", ipv6_unicast, addresses=(("eth0", "2001:db8:1::11/64"),)),
    # The hooks a push uses: a notify script for state reports, a lowered priority for a node
    # in maintenance.
    Case(
        "notify-maintenance",
        multicast_basic,
        render_kwargs=(("notify_script", "/usr/bin/logger -t vipanel"), ("priority_override", 1)),
        iptables=False,
    ),
]
IPTABLES_CASES = [c for c in CASES if c.iptables]


def by_name(cases):
    return pytest.mark.parametrize("case", cases, ids=[c.name for c in cases])


# --- Running the real tools ---------------------------------------------------------------------


def keepalived_test(path, interfaces=("eth0",), addresses=()):
    """Run `keepalived --config-test` on path in a namespace that has the interfaces.

    keepalived 2.2.7 exits 0 for a missing file unless --all-config is given, so the file's
    existence is asserted too. Any stderr counts as failure: a good file produces none, and
    what it does print ("WARNING", "Truncating auth_pass", "Unknown keyword", "SECURITY
    VIOLATION", "... Ignoring.") always means part of the config will not take effect.
    """
    assert Path(path).is_file(), f"{path} does not exist"
    with throwaway_netns(interfaces=interfaces, addresses=addresses) as ns:
        result = ns.run(
            ["keepalived", "--config-test", "--all-config", f"--use-file={path}"],
            private_run=True,
        )
    return result


def assert_keepalived_accepts(path, **kwargs):
    result = keepalived_test(path, **kwargs)
    assert result.returncode == 0 and not result.stderr.strip(), (
        f"keepalived -t on {path} exited {result.returncode} with stderr:\n{result.stderr}"
    )


def chain_rules(ns, tool):
    out = ns.must([tool, "-w", "-S", constants.IPTABLES_CHAIN]).stdout
    # iptables shows protocol 112 by its /etc/protocols name where it has one.
    rules = [line for line in out.splitlines() if line.startswith("-A ")]
    return [re.sub(r"-p vrrp\b", "-p 112", rule) for rule in rules]


# --- Goldens --------------------------------------------------------------------------------------


@by_name(CASES)
def test_keepalived_conf_matches_golden(case, cluster):
    node = case.build(cluster)
    text = render.render_keepalived(node, **dict(case.render_kwargs))
    assert_golden(f"{case.name}.keepalived.conf", text)


@by_name(CASES)
def test_golden_keepalived_conf_passes_keepalived_t(case):
    path = GOLDEN / f"{case.name}.keepalived.conf"
    assert path.is_file(), f"golden file {path} is missing"
    assert_keepalived_accepts(path, interfaces=case.interfaces, addresses=case.addresses)


@by_name(IPTABLES_CASES)
def test_iptables_rules_match_golden(case, cluster):
    node = case.build(cluster)
    assert_golden(f"{case.name}.iptables.rules", render.render_iptables(node))


@by_name(IPTABLES_CASES)
def test_golden_iptables_rules_apply_cleanly_and_idempotently(case, cluster):
    node = case.build(cluster)
    path = GOLDEN / f"{case.name}.iptables.rules"
    assert path.is_file(), f"golden file {path} is missing"
    rules_text = path.read_text()
    restore = render.iptables_restore_command(node).split()
    tool = restore[0].removesuffix("-restore")
    jump = render.iptables_jump_command(node)
    expected = [line for line in rules_text.splitlines() if line.startswith("-A ")]

    with throwaway_netns(interfaces=case.interfaces, addresses=case.addresses) as ns:
        # Someone else's rules, which the push must leave alone.
        ns.must([tool, "-w", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"])
        ns.must([tool, "-w", "-N", "OTHER"])
        ns.must([tool, "-w", "-A", "OTHER", "-p", "udp", "--dport", "53", "-j", "ACCEPT"])
        before = ns.must([tool, "-w", "-S"]).stdout.splitlines()

        checked = ns.run([*restore, "--test"], input=rules_text)
        assert checked.returncode == 0, checked.stderr
        for _ in range(2):
            ns.must(restore, input=rules_text)
            ns.must(["sh", "-c", jump])
        # A rule left in the chain by hand goes at the next apply: the declared chain is flushed
        # even with --noflush.
        ns.must([tool, "-w", "-A", constants.IPTABLES_CHAIN, "-i", "lo", "-j", "DROP"])
        ns.must(restore, input=rules_text)
        ns.must(["sh", "-c", jump])

        assert chain_rules(ns, tool) == expected
        after = ns.must([tool, "-w", "-S"]).stdout.splitlines()

    jump_rule = f"-A INPUT -j {constants.IPTABLES_CHAIN}"
    assert after.count(jump_rule) == 1, after
    assert next(r for r in after if r.startswith("-A INPUT")) == jump_rule, after
    for line in before:
        assert line in after, f"{line!r} was lost:\n" + "\n".join(after)


def test_a_missing_golden_fails_rather_than_skips(monkeypatch):
    monkeypatch.delenv(UPDATE_ENV, raising=False)
    with pytest.raises(AssertionError, match="is missing"):
        assert_golden("no-such-case.keepalived.conf", "x\n")
    assert not (GOLDEN / "no-such-case.keepalived.conf").exists()


# --- The checker itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, says",
    [
        (("advert_int 1", "advert_int 1\n    bogus_keyword 3"), "Unknown keyword"),
        (
            (
                "advert_int 1",
                (
                    "advert_int 1\n    authentication {\n        auth_type PASS\n"
                    "        auth_pass 123456789\n    }"
                ),
            ),
            "Truncating",
        ),
        (("interface eth0", "interface eth9"), "doesn't exist"),
    ],
    ids=["unknown-keyword", "long-auth-pass", "missing-interface"],
)
def test_the_keepalived_check_catches_bad_configs(change, says, tmp_path):
    good = (GOLDEN / "multicast-basic.keepalived.conf").read_text()
    path = tmp_path / "keepalived.conf"
    path.write_text(good.replace(*change))
    result = keepalived_test(path)
    assert result.returncode != 0 or result.stderr.strip()
    assert says in result.stderr


def test_keepalived_t_fails_on_a_missing_file_only_with_all_config(tmp_path):
    missing = tmp_path / "absent.conf"
    with throwaway_netns() as ns:
        plain = ns.run(["keepalived", "-t", "-f", str(missing)], private_run=True)
        strict = ns.run(["keepalived", "-t", "--all-config", "-f", str(missing)], private_run=True)
    # LAB.md: 2.2.7 exits 0 here, so callers must check the file and use --all-config.
    assert plain.returncode == 0 and "Config files missing" in plain.stderr
    assert strict.returncode != 0


def test_throwaway_netns_is_removed_and_isolated():
    with throwaway_netns(interfaces=("eth0", "ens3")) as ns:
        links = ns.must(["ip", "-br", "link"]).stdout
        private = ns.run(["sh", "-c", "ls -A /run"], private_run=True)
        name = ns.name
    assert re.search(r"^eth0\b", links, re.MULTILINE) and re.search(r"^ens3\b", links, re.MULTILINE)
    # A private, empty /run: nothing keepalived might write there reaches the host.
    assert private.returncode == 0 and private.stdout == "", private
    listed = subprocess.run(
        ["ip", "netns", "list"], check=False, capture_output=True, text=True
    ).stdout
    assert name not in listed


# --- Shape of the output ------------------------------------------------------------------------


def test_rendering_twice_gives_identical_bytes(cluster):
    node = Node.objects.get(cluster=cluster, name="web-1")
    assert render.render_keepalived(node) == render.render_keepalived(node)
    assert render.render_iptables(node) == render.render_iptables(node)


def test_the_header_names_cluster_node_and_the_hash_of_the_body(cluster):
    node = Node.objects.get(cluster=cluster, name="web-1")
    for text in (render.render_keepalived(node), render.render_iptables(node)):
        first, second, blank, body = text.split("\n", 3)
        digest = hashlib.sha256(body.encode()).hexdigest()[:16]
        assert first == f"# vipanel: cluster web, node web-1, sha256:{digest}"
        assert "managed by vipanel" in second.lower() and "next push" in second
        assert blank == ""
        assert text.endswith(("}\n", "COMMIT\n"))


def test_the_hash_changes_with_the_content(cluster):
    node = Node.objects.get(cluster=cluster, name="web-1")
    before = render.render_keepalived(node).splitlines()[0]
    Cluster.objects.filter(pk=cluster.pk).update(advert_int=3)
    node.refresh_from_db()
    after = render.render_keepalived(node)
    assert "advert_int 3" in after
    assert after.splitlines()[0] != before


def test_rendering_only_reads_the_database(cluster):
    node = Node.objects.select_related("cluster").get(name="web-1")
    with CaptureQueriesContext(connection) as queries:
        render.render_keepalived(node)
        render.render_iptables(node)
        render.iptables_restore_command(node)
        render.iptables_jump_command(node)
    assert queries.captured_queries
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries.captured_queries)


def test_priority_override_replaces_the_nodes_priority(cluster):
    node = Node.objects.get(cluster=cluster, name="web-1")
    assert "    priority 120\n" in render.render_keepalived(node)
    assert "    priority 5\n" in render.render_keepalived(node, priority_override=5)
    for bad in (0, 255, "5"):
        with pytest.raises(ValueError, match="priority_override"):
            render.render_keepalived(node, priority_override=bad)


def test_notify_renders_inside_the_instance(cluster):
    node = Node.objects.get(cluster=cluster, name="web-1")
    text = render.render_keepalived(node, notify_script="/opt/vp/notify")
    instance = text[text.index("vrrp_instance VI_web {") :]
    assert '\n    notify "/opt/vp/notify"\n}\n' in instance
    assert "enable_script_security" in text
    assert "notify" not in render.render_keepalived(node)


@pytest.mark.parametrize("bad", ["notify.sh", '/x"\n}', "/x $(reboot)", "/x;reboot", "/x  y"])
def test_notify_script_is_guarded(cluster, bad):
    with pytest.raises(ValueError, match="^notify_script:"):
        render.render_keepalived(Node.objects.get(cluster=cluster, name="web-1"), notify_script=bad)


def test_script_security_only_with_a_check_script(cluster):
    node = Node.objects.get(cluster=cluster, name="web-1")
    assert "script" not in render.render_keepalived(node)
    Cluster.objects.filter(pk=cluster.pk).update(check_script="/usr/bin/pgrep haproxy")
    node = Node.objects.get(pk=node.pk)
    text = render.render_keepalived(node)
    assert "    enable_script_security\n    script_user root\n" in text
    assert "track_script {\n        vipanel_check\n    }" in text


def test_firewall_commands_follow_the_vip_family(cluster):
    v4 = Node.objects.get(cluster=cluster, name="web-1")
    v6 = ipv6(cluster)
    assert render.iptables_restore_command(v4) == "iptables-restore -w --noflush"
    assert render.iptables_restore_command(v6) == "ip6tables-restore -w --noflush"
    assert render.iptables_jump_command(v4) == (
        "iptables -w -C INPUT -j VIPANEL-VRRP 2>/dev/null || iptables -w -I INPUT 1 -j VIPANEL-VRRP"
    )
    assert render.iptables_jump_command(v6).startswith("ip6tables -w -C INPUT ")
    assert "ff02::12/128" in render.render_iptables(v6)


def test_ipv6_with_auth_pass_is_refused(cluster):
    # keepalived ignores authentication under VRRPv3 (with a warning); the model allows it.
    node = ipv6(cluster)
    Cluster.objects.filter(pk=node.cluster_id).update(auth_pass="secret")
    node = Node.objects.get(pk=node.pk)
    with pytest.raises(ValueError, match="^cluster.auth_pass:"):
        render.render_keepalived(node)


def test_unicast_addresses_of_another_family_than_the_vips_are_refused(cluster):
    Cluster.objects.filter(pk=cluster.pk).update(unicast=True)
    VirtualIP.objects.filter(cluster=cluster).update(address="2001:db8::100/64")
    with pytest.raises(ValueError, match="^node.address:"):
        render.render_keepalived(Node.objects.get(cluster=cluster, name="web-1"))


def test_a_cluster_without_vips_is_refused(cluster):
    cluster.vips.all().delete()
    with pytest.raises(ValueError, match="^vips:"):
        render.render_keepalived(Node.objects.get(cluster=cluster, name="web-1"))


# --- Injection: values that bypassed validation never reach a config ----------------------------

HOSTILE = ["\n}\nvrrp_instance evil {", " #", "#x", '"', "$(reboot)", "é", "!", "{", "}", "\tx"]


def _set_cluster(field):
    def apply(cluster, value):
        Cluster.objects.filter(pk=cluster.pk).update(**{field: value})

    return apply


def _set_node(field, name="web-1"):
    def apply(cluster, value):
        Node.objects.filter(cluster=cluster, name=name).update(**{field: value})

    return apply


def _set_vip(cluster, value):
    VirtualIP.objects.filter(cluster=cluster).update(address=value)


INJECTABLE = [
    # (field named in the error, model field for max_length, a valid start, how to store it)
    ("cluster.name", Cluster, "name", "web", _set_cluster("name")),
    ("cluster.interface", Cluster, "interface", "eth0", _set_cluster("interface")),
    ("node.name", Node, "name", "web-1", _set_node("name")),
    ("node.interface", Node, "interface", "eth0", _set_node("interface")),
    ("cluster.auth_pass", Cluster, "auth_pass", "pw", _set_cluster("auth_pass")),
    ("cluster.check_script", Cluster, "check_script", "/bin/true", _set_cluster("check_script")),
    ("vip.address", VirtualIP, "address", "192.0.2.100/24", _set_vip),
    ("node.address", Node, "address", "192.0.2.11", _set_node("address")),
    # In a unicast cluster the other node's address is written as a peer.
    ("node.address", Node, "address", "192.0.2.12", _set_node("address", name="web-2")),
]


@pytest.mark.parametrize(
    "field, model, attr, start, store", INJECTABLE, ids=[f"{i[0]}-{i[3]}" for i in INJECTABLE]
)
@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
def test_a_hostile_value_saved_without_validation_is_refused(
    cluster, field, model, attr, start, store, hostile
):
    Cluster.objects.filter(pk=cluster.pk).update(unicast=True)
    node_pk = Node.objects.get(cluster=cluster, name="web-1").pk
    value = start + hostile
    max_length = model._meta.get_field(attr).max_length
    if max_length:
        value = value[:max_length]  # PostgreSQL enforces lengths even on update()
    try:
        with transaction.atomic():
            store(cluster, value)
    except (DatabaseError, ValueError):
        # On PostgreSQL the address is an inet column: psycopg's adapter (or the server)
        # refuses a non-address before it is stored, so there is nothing to render.
        assert field == "node.address" and connection.vendor == "postgresql"
        return
    node = Node.objects.get(pk=node_pk)
    for render_it in (render.render_keepalived, render.render_iptables):
        with pytest.raises(ValueError, match=f"^{re.escape(field)}:") as caught:
            render_it(node)
        assert "evil" not in str(caught.value) and "reboot" not in str(caught.value)


@pytest.mark.parametrize(
    "field, store, value",
    [
        # ipaddress keeps an IPv6 zone id in str(), whatever characters it holds.
        ("vip.address", _set_vip, "2001:db8::100%eth0/64"),
        ("node.address", _set_node("address", name="web-2"), "2001:db8::12%eth0"),
        # '+' is iptables' interface wildcard: "-i e+" would match every e* interface.
        ("cluster.interface", _set_cluster("interface"), "e+"),
        ("cluster.auth_pass", _set_cluster("auth_pass"), "pw;reboot"),
    ],
    ids=["vip-zone-id", "node-zone-id", "interface-wildcard", "auth-pass-shell"],
)
def test_values_outside_a_fields_own_alphabet_are_refused(cluster, field, store, value):
    Cluster.objects.filter(pk=cluster.pk).update(unicast=True)
    try:
        with transaction.atomic():
            store(cluster, value)
    except (DatabaseError, ValueError):
        assert field == "node.address" and connection.vendor == "postgresql"
        return
    with pytest.raises(ValueError, match=f"^{re.escape(field)}:"):
        render.render_keepalived(Node.objects.get(cluster=cluster, name="web-1"))


def test_instance_name_is_what_keepalived_reports(cluster):
    node = Node.objects.get(cluster=cluster, name="web-1")
    assert render.instance_name(node) == "VI_web"
    assert "vrrp_instance VI_web {" in render.render_keepalived(node)


# --- render_config ------------------------------------------------------------------------------


def run_render_config(*args):
    out = io.StringIO()
    call_command("render_config", *args, stdout=out)
    return out.getvalue()


def test_render_config_prints_the_rendered_bytes(cluster):
    node = Node.objects.get(cluster=cluster, name="web-2")
    assert run_render_config("web", "web-2") == render.render_keepalived(node)
    assert run_render_config("web", "web-2", "--iptables") == render.render_iptables(node)


def test_render_config_names_the_clusters_for_an_unknown_cluster(cluster):
    with pytest.raises(CommandError, match=r"No cluster named 'nope'\. Clusters: web\."):
        run_render_config("nope", "web-1")


def test_render_config_names_the_nodes_for_an_unknown_node(cluster):
    with pytest.raises(CommandError, match=r"no node named 'web-9'\. Nodes: web-1, web-2\."):
        run_render_config("web", "web-9")


def test_render_config_refuses_a_cluster_that_is_not_ready(cluster):
    cluster.vips.all().delete()
    with pytest.raises(CommandError) as caught:
        run_render_config("web", "web-1")
    assert "vips: Add at least one virtual IP." in str(caught.value)


def test_render_config_reports_a_value_that_bypassed_validation(cluster):
    Node.objects.filter(name="web-1").update(interface="eth0\n}")
    with pytest.raises(CommandError, match="^node.interface:"):
        run_render_config("web", "web-1")


@pytest.mark.django_db
def test_node_config_is_what_a_push_sends(cluster, settings):
    """One rule for push, drift and preview: notify line when reports are on, lowest priority
    in maintenance."""
    from clusters.render import node_config, render_keepalived

    node = cluster.nodes.get(name="web-1")
    assert node_config(node) == render_keepalived(node)
    settings.VIPANEL_NOTIFY_URL = "http://192.0.2.1:8000"
    assert 'notify "/etc/keepalived/vipanel-notify.sh"' in node_config(node)
    node.maintenance = True
    assert "priority 1\n" in node_config(node)
    assert "priority 120\n" in render_keepalived(node)
