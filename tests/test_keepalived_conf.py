"""clusters.kaconf: parsing hand-made keepalived.conf files, carrying what we do not model, and
reconciling several nodes into one proposal.

The configurations are written for these tests in the shapes issue 12 describes (the Docker
Swarm how-to, includes, health checks, unicast, several instances, sync groups, LVS, notify
scripts, '#' and '!' comments, tabs, braces on their own lines, @ conditions). Each one that
keepalived accepts is checked with the real `keepalived --config-test` in a throwaway network
namespace with its interfaces (tests/netns.py), so the test set is keepalived's syntax, not a
guess at it; where keepalived's own reading decides a question (which @ lines it keeps, where a
comment starts) a line that would be invalid if read shows what keepalived did with it.
"""

import glob as globmod
from dataclasses import dataclass
from pathlib import Path

import pytest

from clusters import render
from clusters.kaconf import (
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_INCLUDE_DEPTH,
    ParseError,
    parse_file,
    parse_string,
    render_verbatim,
)
from clusters.kaconf.reconcile import LiveState, reconcile
from tests.netns import throwaway_netns
from tests.test_render import CASES as RENDER_CASES

GOLDEN = Path(__file__).parent / "golden"


# --- Reading files from a directory, as the adopt flow will over SSH -----------------------------


def local_read(path):
    with open(path, "rb") as f:
        return f.read(MAX_FILE_BYTES + 1).decode()


def local_glob(pattern):
    return globmod.glob(pattern)


def write_tree(root, files):
    for name, text in files.items():
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(Path(root) / "keepalived.conf")


def parse_tree(tmp_path, files, **kwargs):
    return parse_file(write_tree(tmp_path, files), local_read, local_glob, **kwargs)


def run_keepalived(path, interfaces=("eth0",), addresses=(), config_id=None):
    assert Path(path).is_file()
    argv = ["keepalived", "--config-test", "--all-config", f"--use-file={path}"]
    if config_id:
        argv.append(f"--config-id={config_id}")
    with throwaway_netns(interfaces=interfaces, addresses=addresses) as ns:
        return ns.run(argv, private_run=True)


def assert_keepalived_accepts(path, **kwargs):
    result = run_keepalived(path, **kwargs)
    assert result.returncode == 0 and not result.stderr.strip(), (
        f"keepalived -t on {path} exited {result.returncode}:\n{result.stderr}"
    )


# --- The configurations ------------------------------------------------------------------------

HOWTO = """\
! Configuration File for keepalived (Docker Swarm ingress VIP)
global_defs {
    router_id {node}
}

vrrp_instance VI_1 {
    state MASTER
    interface eth1
    virtual_router_id {vrid}   # 101 for node1, 102 for node2...
    priority {priority}    # the node with the LOWER priority wins
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass changeme
    }
    virtual_ipaddress {
        192.168.50.250
    }
}
"""


def howto(node, vrid, priority):
    return (
        HOWTO.replace("{node}", node)
        .replace("{vrid}", str(vrid))
        .replace("{priority}", str(priority))
    )


STYLE_MIX = (
    "# braces on their own lines, tabs, ! comments, one-line blocks\n"
    "global_defs\n"
    "{\n"
    "\trouter_id\tlb-1\t! the host\n"
    "\tenable_script_security\n"
    "\tscript_user root\n"
    "}\n"
    "\n"
    "vrrp_script chk_haproxy\n"
    "{\n"
    '\tscript "/usr/bin/pgrep haproxy"   # quoted: one word\n'
    "\tinterval 2\n"
    "\tweight -30\n"
    "\tfall 3\n"
    "\trise 2\n"
    "}\n"
    "vrrp_instance VI_web\n"
    "{\n"
    "\tstate BACKUP\n"
    "\tinterface eth1\n"
    "\tvirtual_router_id 51\n"
    "\tpriority 150\n"
    "\tadvert_int 2\n"
    "\tauthentication { auth_type PASS\n"
    "\t\tauth_pass s3cr#t!x }  (this brace is in the comment too)\n"
    "\t}\n"
    "\tvirtual_ipaddress { 10.0.0.1/24 dev eth1 label eth1:1 scope global }\n"
    "\tvirtual_ipaddress_excluded {\n"
    "\t\t10.0.0.2/24 brd 10.0.0.255 dev eth1\n"
    "\t\t10.0.0.3/32\n"
    "\t}\n"
    "\ttrack_script { chk_haproxy }\n"
    "\ttrack_interface {\n"
    "\t\teth2 weight -10\n"
    "\t}\n"
    "\tgarp_master_delay 5\n"
    '\tnotify_master "/usr/bin/logger -t ka master"\n'
    "\tnotify_backup /usr/bin/logger\n"
    "}\n"
)

ACTIVE_ACTIVE = """\
global_defs {
    router_id ha-1
    enable_script_security
    script_user root
}
vrrp_sync_group G_router {
    group {
        VI_out
        VI_in
    }
    notify "/usr/bin/logger -t sync"
}
vrrp_instance VI_out {
    state BACKUP
    interface eth1
    virtual_router_id 61
    priority 200
    nopreempt
    virtual_ipaddress {
        203.0.113.10/24 dev eth1
    }
    notify /usr/bin/logger
    notify_fault "/usr/bin/logger -t fault"
}
vrrp_instance VI_in {
    state BACKUP
    interface eth2
    virtual_router_id 62
    priority 100
    preempt_delay 30
    virtual_ipaddress {
        10.10.0.10/24 dev eth2
    }
}
vrrp_instance VI_v6 {
    interface eth1
    virtual_router_id 63
    priority 120
    virtual_ipaddress {
        2001:db8::10/64
    }
}
"""

UNICAST = """\
global_defs {
    router_id db-a
}
vrrp_instance VI_db {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 130
    advert_int 1
    nopreempt
    unicast_src_ip 198.51.100.10
    unicast_peer {
        198.51.100.20
        198.51.100.9
    }
    virtual_ipaddress {
        198.51.100.100/24 dev eth0
    }
}
"""

LVS = """\
global_defs {
    router_id lvs-1
    enable_script_security
    script_user root
}
vrrp_track_process track_haproxy {
    process haproxy
    weight 10
}
static_ipaddress {
    10.9.9.9/32 dev eth0 scope link
}
static_routes {
    10.8.0.0/16 via 10.9.9.1 dev eth0
}
vrrp_instance VI_lvs {
    interface eth0
    virtual_router_id 70
    priority 110
    virtual_ipaddress {
        192.0.2.80/24
    }
}
virtual_server 192.0.2.80 80 {
    delay_loop 6
    lb_algo rr   # round robin
    lb_kind NAT
    protocol TCP

    real_server 10.1.1.2 80 {
        weight 1
        TCP_CHECK { connect_timeout 3 }
    }
    ! a second one
    real_server 10.1.1.3 80
    {
        weight 2
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"""

LVS_BLOCK = LVS[LVS.index("virtual_server") : LVS.rindex("}") + 1]

CONDITIONAL = """\
global_defs {
    @node1 router_id node1
    @node2 router_id node2
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    @node1 priority 150
    @^node1 priority 100
    @node2 virtual_router_id 300
    @node1
    virtual_ipaddress {
        192.0.2.10/24
    }
}
"""


@dataclass(frozen=True)
class Accepted:
    name: str
    files: dict
    interfaces: tuple = ("eth0",)
    config_id: str | None = None


ACCEPTED = [
    Accepted("howto-node1", {"keepalived.conf": howto("node1", 101, 100)}, ("eth1",)),
    Accepted("style-mix", {"keepalived.conf": STYLE_MIX}, ("eth1", "eth2")),
    Accepted("active-active-sync", {"keepalived.conf": ACTIVE_ACTIVE}, ("eth1", "eth2")),
    Accepted("unicast", {"keepalived.conf": UNICAST}),
    Accepted("lvs", {"keepalived.conf": LVS}),
    Accepted("conditional-node1", {"keepalived.conf": CONDITIONAL}, config_id="node1"),
    Accepted("howto-node2", {"keepalived.conf": howto("node2", 102, 200)}, ("eth1",)),
    Accepted("howto-node3", {"keepalived.conf": howto("node3", 103, 150)}, ("eth1",)),
    Accepted(
        "quoted-braces-and-comments",
        {
            "keepalived.conf": "global_defs {\n    enable_script_security\n"
            "    script_user root\n}\n"
            + UNICAST.replace("nopreempt", 'notify "/usr/bin/logger {x} #1 !2"').split("\n", 3)[3]
        },
    ),
    Accepted(
        "include-globs",
        {
            "keepalived.conf": "global_defs {\n    router_id inc-1\n}\n"
            "include conf.d/*.conf   # relative to this file\n",
            "conf.d/10-scripts.conf": "global_defs {\n    enable_script_security\n"
            "    script_user root\n}\n"
            'vrrp_script chk {\n    script "/usr/bin/true"\n    interval 1\n}\n',
            "conf.d/20-vi.conf": "vrrp_instance VI_inc {\n    interface eth0\n"
            "    virtual_router_id 80\n    priority 120\n"
            "    include vips/*.inc\n    track_script {\n        chk\n    }\n}\n",
            "conf.d/vips/a.inc": "virtual_ipaddress {\n    192.0.2.90/24\n}\n",
        },
    ),
]


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.name for c in ACCEPTED])
def test_keepalived_itself_accepts_every_config_of_the_test_set(case, tmp_path):
    path = write_tree(tmp_path, case.files)
    assert_keepalived_accepts(path, interfaces=case.interfaces, config_id=case.config_id)
    # And so do we, with nothing left over as a warning.
    parsed = parse_file(path, local_read, local_glob, config_id=case.config_id)
    assert parsed.instances and not parsed.warnings


# --- What is read ------------------------------------------------------------------------------


def test_it_reads_the_howto_node_with_its_wrong_vrid_and_comments():
    parsed = parse_string(howto("node2", 102, 200))
    (inst,) = parsed.instances
    assert parsed.global_defs.router_id == "node2"
    assert (inst.name, inst.state, inst.interface) == ("VI_1", "MASTER", "eth1")
    assert (inst.virtual_router_id, inst.priority, inst.advert_int) == (102, 200, 1.0)
    assert (inst.authentication.auth_type, inst.authentication.auth_pass) == ("PASS", "changeme")
    assert [v.address for v in inst.virtual_ipaddress] == ["192.168.50.250"]
    assert inst.where == "keepalived.conf:6"
    assert parsed.unmodelled == [] and parsed.all_unmodelled() == []


def test_it_reads_tabs_own_line_braces_one_line_blocks_and_vip_options():
    parsed = parse_string(STYLE_MIX, "/etc/keepalived/keepalived.conf")
    g = parsed.global_defs
    assert (g.router_id, g.enable_script_security, g.script_user) == ("lb-1", True, "root")
    (script,) = parsed.scripts
    assert (script.name, script.script) == ("chk_haproxy", "/usr/bin/pgrep haproxy")
    assert (script.interval, script.weight, script.fall, script.rise) == (2, -30, 3, 2)
    (inst,) = parsed.instances
    assert (inst.virtual_router_id, inst.priority, inst.advert_int) == (51, 150, 2.0)
    # '#' and '!' end the line even inside a word: keepalived reads the password as "s3cr".
    assert inst.authentication.auth_pass == "s3cr"
    (vip,) = inst.virtual_ipaddress
    assert (vip.address, vip.dev, vip.label, vip.scope) == (
        "10.0.0.1/24",
        "eth1",
        "eth1:1",
        "global",
    )
    assert [(v.address, v.brd, v.dev) for v in inst.virtual_ipaddress_excluded] == [
        ("10.0.0.2/24", "10.0.0.255", "eth1"),
        ("10.0.0.3/32", None, None),
    ]
    assert [(t.name, t.weight) for t in inst.track_script] == [("chk_haproxy", None)]
    assert [(t.name, t.weight) for t in inst.track_interface] == [("eth2", -10)]
    assert inst.notify_master == "/usr/bin/logger -t ka master"
    assert inst.notify_backup == "/usr/bin/logger"
    (extra,) = inst.extra
    assert (extra.keyword, extra.text, extra.where) == (
        "garp_master_delay",
        "garp_master_delay 5",
        "/etc/keepalived/keepalived.conf:36",
    )
    assert extra.context == "vrrp_instance VI_web"


def test_keepalived_agrees_that_a_hash_inside_a_word_starts_a_comment(tmp_path):
    # If keepalived read "8#x" as the VRID it would refuse the file; read as 8 it accepts it.
    text = UNICAST.replace("virtual_router_id 52", "virtual_router_id 8#x")
    path = write_tree(tmp_path, {"keepalived.conf": text})
    assert_keepalived_accepts(path)
    assert parse_string(text).instances[0].virtual_router_id == 8
    # An escaped one too, in 2.2.7 (it reads its decommented copy of the file a second time):
    # "30\\#0" is VRID 30, not 300 (out of range) nor "30#0" (not a number), both refused.
    escaped = UNICAST.replace("virtual_router_id 52", "virtual_router_id 30\\#0")
    path = write_tree(tmp_path, {"keepalived.conf": escaped})
    assert_keepalived_accepts(path)
    assert parse_string(escaped).instances[0].virtual_router_id == 30
    # Inside double quotes neither is a comment.
    quoted = UNICAST.replace("nopreempt", 'notify "/usr/bin/logger -t a#b!c"')
    assert parse_string(quoted).instances[0].notify == "/usr/bin/logger -t a#b!c"


def test_several_instances_sync_groups_unicast_and_notify():
    parsed = parse_string(ACTIVE_ACTIVE)
    assert [i.name for i in parsed.instances] == ["VI_out", "VI_in", "VI_v6"]
    (group,) = parsed.sync_groups
    assert (group.name, group.group) == ("G_router", ["VI_out", "VI_in"])
    assert [u.keyword for u in group.extra] == ["notify"]
    out, inside, v6 = parsed.instances
    assert out.nopreempt and not inside.nopreempt and inside.preempt_delay == 30
    assert out.notify == "/usr/bin/logger" and out.notify_fault == "/usr/bin/logger -t fault"
    assert v6.state is None and v6.effective_priority == 120 and v6.effective_advert_int == 1.0
    assert v6.virtual_ipaddress[0].ip == "2001:db8::10"

    (db,) = parse_string(UNICAST).instances
    assert db.unicast_src_ip == "198.51.100.10"
    assert db.unicast_peer == ["198.51.100.20", "198.51.100.9"]


def test_includes_follow_globs_relative_to_the_including_file_with_positions(tmp_path):
    case = next(c for c in ACCEPTED if c.name == "include-globs")
    parsed = parse_tree(tmp_path, case.files)
    (inst,) = parsed.instances
    assert inst.where == f"{tmp_path}/conf.d/20-vi.conf:1"
    assert inst.virtual_ipaddress[0].where == f"{tmp_path}/conf.d/vips/a.inc:2"
    assert [t.name for t in inst.track_script] == ["chk"]
    assert parsed.scripts[0].script == "/usr/bin/true"
    # The two global_defs blocks merge, as in keepalived.
    g = parsed.global_defs
    assert (g.router_id, g.enable_script_security, g.script_user) == ("inc-1", True, "root")
    assert [Path(f.path).name for f in parsed.config.files] == [
        "keepalived.conf",
        "10-scripts.conf",
        "20-vi.conf",
        "a.inc",
    ]


def test_an_include_that_matches_nothing_is_a_warning_as_in_keepalived(tmp_path):
    files = {"keepalived.conf": UNICAST + "include /nonexistent-dir/*.conf\n"}
    parsed = parse_tree(tmp_path, files)
    assert parsed.instances and len(parsed.warnings) == 1
    assert (
        "keepalived.conf:20: include /nonexistent-dir/*.conf matches no file"
        in (parsed.warnings[0])
    )


def test_conditional_lines_are_kept_or_dropped_per_host_as_keepalived_does(tmp_path):
    path = write_tree(tmp_path, {"keepalived.conf": CONDITIONAL})
    # On node2 keepalived reads "@node2 virtual_router_id 300" and refuses the file: the line
    # is read on node2 only. On node1 it is skipped, and the file is accepted (see ACCEPTED).
    assert run_keepalived(path, config_id="node2").returncode != 0
    assert_keepalived_accepts(path, config_id="node3")

    node1 = parse_string(CONDITIONAL, config_id="node1")
    assert node1.global_defs.router_id == "node1"
    assert node1.instances[0].priority == 150 and node1.instances[0].virtual_router_id == 51
    # "@node1" with nothing after it is dropped even on node1.
    assert [s.line for s in node1.skipped] == [3, 9, 10, 11]

    node3 = parse_string(CONDITIONAL, config_id="node3")
    assert node3.global_defs.router_id is None and node3.instances[0].priority == 100
    node2 = parse_string(CONDITIONAL, config_id="node2")
    assert node2.instances[0].virtual_router_id == 300
    assert "applies to another host" in node3.report()[0]


def test_crlf_line_ends_and_a_trailing_line_without_newline():
    text = howto("n", 7, 120).replace("\n", "\r\n").rstrip("\r\n")
    (inst,) = parse_string(text).instances
    assert (inst.virtual_router_id, inst.priority) == (7, 120)


def test_braces_comment_characters_inside_quotes_are_part_of_the_word():
    case = next(c for c in ACCEPTED if c.name == "quoted-braces-and-comments")
    (inst,) = parse_string(case.files["keepalived.conf"]).instances
    assert inst.notify == "/usr/bin/logger {x} #1 !2"
    assert inst.unicast_peer == ["198.51.100.20", "198.51.100.9"]


def test_a_duplicate_instance_is_refused_like_keepalived_does(tmp_path):
    text = UNICAST + UNICAST.split("\n", 3)[3].replace(
        "virtual_router_id 52", "virtual_router_id 53"
    )
    path = write_tree(tmp_path, {"keepalived.conf": text})
    result = run_keepalived(path)
    assert result.returncode != 0 and "VI_db already defined" in result.stderr
    with pytest.raises(
        ParseError, match=r"keepalived.conf:20: vrrp_instance VI_db is defined twice"
    ):
        parse_string(text)


# --- Carried through verbatim ------------------------------------------------------------------


def test_unmodelled_blocks_are_listed_by_file_and_line_and_kept_byte_for_byte():
    parsed = parse_string(LVS, "/etc/keepalived/keepalived.conf")
    assert [(u.keyword, u.line, u.end_line) for u in parsed.unmodelled] == [
        ("vrrp_track_process", 6, 9),
        ("static_ipaddress", 10, 12),
        ("static_routes", 13, 15),
        ("virtual_server", 24, 42),
    ]
    assert parsed.unmodelled[-1].text == LVS_BLOCK
    report = parsed.report()
    assert report[0] == (
        "/etc/keepalived/keepalived.conf:6: vrrp_track_process is kept as written "
        "(vipanel does not manage it)"
    )
    assert len(report) == 4


def test_vipanel_config_plus_the_carried_blocks_is_accepted_and_reads_back_the_same(tmp_path):
    parsed = parse_string(LVS)
    golden = (GOLDEN / "multicast-basic.keepalived.conf").read_text()
    combined = golden + "\n" + render_verbatim(parsed.unmodelled)
    path = write_tree(tmp_path, {"keepalived.conf": combined})
    assert_keepalived_accepts(path)
    again = parse_string(combined)
    assert [u.text for u in again.unmodelled] == [u.text for u in parsed.unmodelled]
    assert render_verbatim(again.unmodelled) == render_verbatim(parsed.unmodelled)
    assert LVS_BLOCK in render_verbatim(again.unmodelled)


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.name for c in ACCEPTED])
def test_every_carried_text_parses_back_to_the_same_statement(case, tmp_path):
    parsed = parse_tree(tmp_path, case.files, config_id=case.config_id)
    for item in parsed.all_unmodelled():
        again = parse_string(item.text, config_id=case.config_id)
        (node,) = again.config.nodes
        assert (node.keyword, node.text) == (item.keyword, item.text)
        assert node.end_line - node.line == item.end_line - item.line


def test_a_conditional_block_is_carried_with_its_condition(tmp_path):
    text = UNICAST + "@db-a static_routes {\n    10.8.0.0/16 dev eth0   # keep\n}\n"
    parsed = parse_string(text, config_id="db-a")
    (carried,) = parsed.unmodelled
    assert carried.text == "@db-a static_routes {\n    10.8.0.0/16 dev eth0   # keep\n}"
    path = write_tree(tmp_path, {"keepalived.conf": text})
    assert_keepalived_accepts(path, config_id="db-a")


# --- Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, where, words",
    [
        (UNICAST.rstrip().removesuffix("}"), "keepalived.conf:4", "never closed"),
        (UNICAST + "}\n", "keepalived.conf:20", "never opened"),
        (UNICAST.replace("nopreempt", 'notify "/x'), "keepalived.conf:10", "quoted string"),
        (UNICAST.replace("priority 130", "priority high"), "keepalived.conf:8", "whole number"),
        ("$PRIO=100\n" + UNICAST, "keepalived.conf:1", "parameter definitions"),
        (UNICAST + "{\n}\n", "keepalived.conf:20", "where a keyword should be"),
        (
            UNICAST.replace("198.51.100.100/24", "198.51.100.300/24"),
            "keepalived.conf:17",
            "not an IP address",
        ),
    ],
    ids=["missing-brace", "extra-brace", "quote", "number", "definition", "stray-brace", "vip"],
)
def test_syntax_errors_say_file_line_and_why(text, where, words, tmp_path):
    with pytest.raises(ParseError) as error:
        parse_string(text)
    assert str(error.value).startswith(where + ": ") and words in str(error.value)
    # keepalived refuses these too (all but the definition, which is valid keepalived that
    # vipanel does not expand).
    if words != "parameter definitions":
        path = write_tree(tmp_path, {"keepalived.conf": text})
        result = run_keepalived(path)
        assert result.returncode != 0 or result.stderr.strip(), result


def test_an_error_in_an_included_file_names_that_file(tmp_path):
    files = {
        "keepalived.conf": "include inc/*.conf\n",
        "inc/bad.conf": "vrrp_instance X {\n    priority 1\n\n",
    }
    with pytest.raises(ParseError, match=rf"^{tmp_path}/inc/bad.conf:1: the block"):
        parse_tree(tmp_path, files)


def test_include_loops_depth_size_and_file_count_are_refused(tmp_path):
    loop = {"keepalived.conf": "include a.conf\n", "a.conf": "include keepalived.conf\n"}
    with pytest.raises(ParseError, match=r"a.conf:1: include loop: .*keepalived.conf"):
        parse_tree(tmp_path / "loop", loop)

    deep = {"keepalived.conf": "include d1.conf\n"}
    for n in range(1, MAX_INCLUDE_DEPTH + 2):
        deep[f"d{n}.conf"] = f"include d{n + 1}.conf\n"
    with pytest.raises(ParseError, match=rf"nested more than {MAX_INCLUDE_DEPTH} deep"):
        parse_tree(tmp_path / "deep", deep)
    # Exactly the limit is fine.
    ok = {k: v for k, v in deep.items() if k != f"d{MAX_INCLUDE_DEPTH}.conf"}
    ok[f"d{MAX_INCLUDE_DEPTH}.conf"] = UNICAST
    assert parse_tree(tmp_path / "ok", ok).instances

    big = {"keepalived.conf": UNICAST + "#" * MAX_FILE_BYTES + "\n"}
    with pytest.raises(ParseError, match=r"keepalived.conf:1: the file is larger than 1024 KiB"):
        parse_tree(tmp_path / "big", big)

    many = {"keepalived.conf": "include many/*.conf\n"}
    many.update({f"many/{n:03}.conf": "! empty\n" for n in range(MAX_FILES)})
    with pytest.raises(ParseError, match=rf"more than {MAX_FILES} files"):
        parse_tree(tmp_path / "many", many)


# --- Round trip: vipanel's own configs ---------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("case", RENDER_CASES, ids=[c.name for c in RENDER_CASES])
def test_vipanel_rendered_configs_parse_back_to_the_same_values(case, cluster):
    node = case.build(cluster)
    kwargs = dict(case.render_kwargs)
    parsed = parse_string(render.render_keepalived(node, **kwargs))
    c = node.cluster
    (inst,) = parsed.instances
    assert inst.name == render.instance_name(node)
    assert parsed.global_defs.router_id == node.name
    assert inst.state == "BACKUP"
    assert inst.interface == node.effective_interface
    assert inst.virtual_router_id == c.virtual_router_id
    assert inst.priority == kwargs.get("priority_override", node.priority)
    assert inst.advert_int == c.advert_int
    assert inst.nopreempt == (not c.preempt)
    assert (inst.preempt_delay or 0) == c.preempt_delay
    vips = list(c.vips.order_by("id").values_list("address", flat=True))
    assert [v.address for v in inst.vips] == vips
    assert all(v.dev == node.effective_interface for v in inst.vips)
    if c.auth_pass:
        assert (inst.authentication.auth_type, inst.authentication.auth_pass) == (
            "PASS",
            c.auth_pass,
        )
    else:
        assert inst.authentication is None
    if c.unicast:
        others = sorted(c.nodes.exclude(pk=node.pk).values_list("address", flat=True))
        assert inst.unicast_src_ip == node.address
        assert sorted(inst.unicast_peer) == others
    else:
        assert inst.unicast_peer == []
    if render.check_command(c):
        (script,) = parsed.scripts
        assert script.script == render.check_command(c)
        assert (script.interval, script.weight, script.fall, script.rise) == (
            c.check_interval,
            c.check_weight,
            c.check_fall,
            c.check_rise,
        )
        assert [t.name for t in inst.track_script] == [script.name]
    else:
        assert parsed.scripts == [] and inst.track_script == []
    assert inst.notify == kwargs.get("notify_script")
    assert parsed.all_unmodelled() == [] and parsed.skipped == [] and parsed.warnings == []


# --- Reconcile ---------------------------------------------------------------------------------


def howto_cluster():
    return {
        "node1": parse_string(howto("node1", 101, 100)),
        "node2": parse_string(howto("node2", 102, 200)),
        "node3": parse_string(howto("node3", 103, 150)),
    }


def test_reconcile_explains_the_howto_split_brain_and_keeps_the_highest_holder():
    # Each node is master of its own VRID: all three hold the VIP.
    live = {
        n: LiveState(addresses=("192.168.50.250/32", f"10.0.0.{i}/24"))
        for i, n in enumerate(["node1", "node2", "node3"], start=1)
    }
    proposal = reconcile(howto_cluster(), live)
    (inst,) = proposal.instances
    assert inst.holders == ["node1", "node2", "node3"] and inst.keeper == "node2"
    assert inst.virtual_router_id == 102
    assert inst.priorities == {"node1": 100, "node2": 200, "node3": 150}
    assert inst.vips == ["192.168.50.250"] and inst.state == "BACKUP"
    (vrid,) = proposal.findings_for("VI_1", "virtual_router_id")
    assert vrid.values == {"node1": 101, "node2": 102, "node3": 103}
    assert vrid.proposed == 102
    assert "one virtual_router_id for the instance on every node" in vrid.reason
    assert "split brain" in vrid.reason and "node2" in vrid.reason
    (state,) = proposal.findings_for("VI_1", "state")
    assert state.values == {"node1": "MASTER", "node2": "MASTER", "node3": "MASTER"}
    assert proposal.findings_for("VI_1", "priority") == []
    assert {f.field for f in proposal.findings} == {"virtual_router_id", "state"}


def test_reconcile_trusts_the_live_holder_over_priorities_and_separates_collisions():
    nodes = {
        "a": parse_string(UNICAST.replace("priority 130", "priority 100")),
        "b": parse_string(UNICAST.replace("priority 130", "priority 150")),
        "c": parse_string(UNICAST.replace("priority 130", "priority 150")),
    }
    live = {"a": LiveState(addresses=("198.51.100.100/24",)), "b": LiveState(), "c": LiveState()}
    proposal = reconcile(nodes, live)
    (inst,) = proposal.instances
    assert inst.keeper == "a" and inst.holders == ["a"]
    assert inst.priorities == {"a": 151, "b": 150, "c": 149}
    (prio,) = proposal.findings_for("VI_db", "priority")
    assert prio.values == {"a": 100, "b": 150, "c": 150}
    assert "Priority 150 is set on more than one node" in prio.reason
    assert "a holds the VIP now" in prio.reason


def test_reconcile_lists_vip_auth_and_advert_disagreements_side_by_side():
    base = STYLE_MIX
    other = (
        base.replace("advert_int 2", "advert_int 1")
        .replace("auth_pass s3cr#t!x }  (this brace is in the comment too)", "auth_pass other")
        .replace("10.0.0.3/32", "10.0.0.4/32")
    )
    nodes = {"lb-1": parse_string(base), "lb-2": parse_string(other.replace("150", "140"))}
    live = {"lb-1": LiveState(addresses=("10.0.0.1/24",)), "lb-2": LiveState()}
    proposal = reconcile(nodes, live)
    # Matched by name although the VIP sets differ.
    (inst,) = proposal.instances
    assert inst.members == {"lb-1": "VI_web", "lb-2": "VI_web"} and inst.keeper == "lb-1"
    fields = {f.field: f for f in proposal.findings}
    assert fields["advert_int"].values == {"lb-1": 2.0, "lb-2": 1.0}
    assert fields["advert_int"].proposed == 2.0
    assert fields["authentication"].values == {"lb-1": ("PASS", "***"), "lb-2": ("PASS", "***")}
    assert "s3cr" not in repr(proposal.findings)  # the secret is never shown
    assert fields["vips"].proposed == ["10.0.0.1/24", "10.0.0.2/24", "10.0.0.3/32"]


def test_reconcile_matches_active_active_instances_by_vips_across_names():
    one = parse_string(ACTIVE_ACTIVE)
    two = parse_string(
        ACTIVE_ACTIVE.replace("VI_out", "OUTSIDE")
        .replace("priority 200", "priority 90")
        .replace("priority 100", "priority 210")
    )
    live = {
        "ha-1": LiveState(addresses=("203.0.113.10/24", "2001:db8::10/64")),
        "ha-2": LiveState(addresses=("10.10.0.10/24",)),
    }
    proposal = reconcile({"ha-1": one, "ha-2": two}, live)
    by_vip = {tuple(i.vips): i for i in proposal.instances}
    out = by_vip[("203.0.113.10/24",)]
    assert out.members == {"ha-1": "VI_out", "ha-2": "OUTSIDE"} and out.keeper == "ha-1"
    assert out.priorities == {"ha-1": 200, "ha-2": 90}
    inside = by_vip[("10.10.0.10/24",)]
    assert inside.keeper == "ha-2" and inside.priorities == {"ha-1": 100, "ha-2": 210}
    assert len(proposal.findings_for(out.name, "name")) == 1


def test_reconcile_with_nobody_holding_the_vip_and_a_node_down():
    nodes = {"n1": parse_string(UNICAST), "n2": parse_string(UNICAST.replace("130", "120"))}
    live = {"n1": LiveState(running=False), "n2": LiveState()}
    proposal = reconcile(nodes, live)
    (inst,) = proposal.instances
    assert inst.holders == [] and inst.keeper == "n1"
    assert [f.field for f in proposal.findings] == ["holder", "running"]


def test_reconcile_proposes_the_keepers_checks_and_preemption():
    one = parse_string(STYLE_MIX)
    two = parse_string(
        STYLE_MIX.replace("priority 150", "priority 140")
        .replace('"/usr/bin/pgrep haproxy"', '"/usr/bin/pgrep nginx"')
        .replace("\tstate BACKUP\n", "\tstate BACKUP\n\tnopreempt\n")
    )
    live = {"lb-1": LiveState(), "lb-2": LiveState(addresses=("10.0.0.3",))}
    proposal = reconcile({"lb-1": one, "lb-2": two}, live)
    (inst,) = proposal.instances
    assert inst.keeper == "lb-2" and inst.priorities == {"lb-1": 150, "lb-2": 151}
    assert inst.nopreempt is True
    assert [(s.name, s.script) for s in inst.track_scripts] == [
        ("chk_haproxy", "/usr/bin/pgrep nginx")
    ]
    (checks,) = proposal.findings_for("VI_web", "track_script")
    assert checks.values["lb-1"] == [("chk_haproxy", "/usr/bin/pgrep haproxy")]
    (preempt,) = proposal.findings_for("VI_web", "preempt")
    assert preempt.values == {"lb-1": "preempt", "lb-2": "nopreempt"}
    assert proposal.findings_for("VI_web", "state") == []


def test_unreadable_files_and_long_lines_are_errors_with_the_including_line(tmp_path):
    files = {"keepalived.conf": "! top\ninclude secret.conf\n", "secret.conf": UNICAST}
    path = write_tree(tmp_path, files)

    def read(p):
        if p.endswith("secret.conf"):
            raise PermissionError(13, "Permission denied")
        return local_read(p)

    with pytest.raises(ParseError, match=r"keepalived.conf:2: cannot read .*secret.conf: Perm"):
        parse_file(path, read, local_glob)
    with pytest.raises(ParseError, match=r"^keepalived.conf:2: cannot list"):
        parse_string(files["keepalived.conf"])

    long_line = UNICAST.replace("nopreempt", "nopreempt " + "#" * 1100)
    with pytest.raises(ParseError, match=r"keepalived.conf:10: the line is longer than 1023"):
        parse_string(long_line)


@pytest.mark.parametrize(
    "configured, holder, expected",
    [
        ({"a": 1, "b": 1, "c": 1}, "a", {"a": 3, "b": 2, "c": 1}),
        ({"a": 100, "b": 255, "c": 50}, "a", {"a": 254, "b": 253, "c": 50}),
        ({"a": 255, "b": 200, "c": 200}, "a", {"a": 255, "b": 200, "c": 199}),
        ({"a": 120, "b": 110}, "b", {"a": 120, "b": 121}),
    ],
)
def test_proposed_priorities_are_distinct_keep_the_order_and_the_holder_on_top(
    configured, holder, expected
):
    nodes = {
        n: parse_string(UNICAST.replace("priority 130", f"priority {p}"))
        for n, p in configured.items()
    }
    live = {n: LiveState(addresses=("198.51.100.100",) if n == holder else ()) for n in nodes}
    (inst,) = reconcile(nodes, live).instances
    assert inst.priorities == expected
    assert len(set(inst.priorities.values())) == len(nodes)


def test_two_holders_with_one_vrid_is_reported_as_split_brain_with_the_keeper():
    nodes = {"a": parse_string(UNICAST), "b": parse_string(UNICAST.replace("130", "140"))}
    live = {n: LiveState(addresses=("198.51.100.100/24",)) for n in nodes}
    proposal = reconcile(nodes, live)
    (holder,) = proposal.findings_for("VI_db", "holder")
    assert holder.proposed == "b" and "protocol 112" in holder.reason
    assert proposal.instances[0].priorities == {"a": 130, "b": 140}


def test_a_long_placeholder_password_is_cut_to_what_keepalived_uses(tmp_path):
    text = howto("node1", 101, 100).replace("auth_pass changeme", "auth_pass yourpassword")
    path = write_tree(tmp_path, {"keepalived.conf": text})
    result = run_keepalived(path, interfaces=("eth1",))
    assert result.returncode != 0 and "Truncating auth_pass" in result.stderr
    nodes = {"node1": parse_string(text), "node2": parse_string(text.replace("100", "90"))}
    proposal = reconcile(nodes, {"node1": LiveState(addresses=("192.168.50.250",))})
    (inst,) = proposal.instances
    assert inst.auth_pass == "yourpass"
    (finding,) = proposal.findings_for("VI_1", "auth_pass")
    assert "only the first 8" in finding.reason and "yourpass" not in repr(finding)
