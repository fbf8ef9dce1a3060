"""Issue 15 items 1 and 2: an operator is not root on the nodes, and no file but keepalived's.

Health checks are typed choices rendered as fixed commands; a free-form command, reload_command
and config_path are an admin's (clusters/roles.py); config_path names a .conf file in an allowed
directory only; every read from a node is bounded.
"""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import http.server
import importlib
import re
import subprocess
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from clusters import preview, render, roles, ssh
from clusters.models import AuditEntry, Cluster
from tests.cast import *  # noqa: F403
from tests.test_api_support import admin_api, admin_user, operator_api  # noqa: F401
from tests.test_views_cluster import cluster_data

pytestmark = pytest.mark.django_db

REBOOT = "/bin/sh -c reboot"
CLUSTERS = "/api/v1/clusters/"

# Hostile text for every new field that reaches keepalived.conf or a shell.
HOSTILE = [
    "haproxy\nvrrp_script x {",
    "haproxy}",
    "haproxy#",
    "haproxy;reboot",
    "$(reboot)",
    "`reboot`",
    "'haproxy'",
    '"haproxy"',
    "haproxy\x00",
    "hаproxy",  # a Cyrillic 'а'
    "haproxy\u200b",
    "-fhaproxy",
    "x" * 10000,
    "",
    " haproxy",
]


def detail(cluster):
    return f"{CLUSTERS}{cluster.pk}/"


def refused(cluster, field):
    with pytest.raises(ValidationError) as e:
        cluster.full_clean()
    assert field in e.value.message_dict, e.value.message_dict
    return e.value.message_dict[field]


# --- The typed checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "check_type,target,command",
    [
        ("process", "haproxy", "/usr/bin/pgrep -x haproxy"),
        ("tcp", "8404", "/bin/bash -c exec<>/dev/tcp/127.0.0.1/8404"),
        (
            "http",
            "http://127.0.0.1:8404/health",
            "/usr/bin/curl -q -fsS -g -o /dev/null -m 3 http://127.0.0.1:8404/health",
        ),
        (
            "http",
            "https://[2001:db8::1]/",
            "/usr/bin/curl -q -fsS -g -o /dev/null -m 3 https://[2001:db8::1]/",
        ),
        ("file", "/run/haproxy.pid", "/usr/bin/test -e /run/haproxy.pid"),
    ],
)
def test_a_typed_check_renders_its_fixed_command(cluster, check_type, target, command):
    cluster.check_type, cluster.check_target = check_type, target
    cluster.full_clean()
    cluster.save()
    node = cluster.nodes.first()
    assert f'script "{command}"' in render.render_keepalived(node)


# After a fixed "http://127.0.0.1/" or "/x/" prefix a leading '-' is no option, and an empty
# suffix leaves a valid target: those two are tried on the bare types only.
HOSTILE_CASES = [
    (kind, value)
    for kind in ("process", "tcp", "http", "file")
    for value in HOSTILE
    if kind in ("process", "tcp") or value not in ("-fhaproxy", "")
]


@pytest.mark.parametrize("check_type,value", HOSTILE_CASES, ids=range(len(HOSTILE_CASES)))
def test_hostile_targets_are_refused_by_field(cluster, check_type, value):
    cluster.check_type = check_type
    cluster.check_target = value if check_type in ("process", "tcp") else "/x/" + value
    if check_type == "http":
        cluster.check_target = "http://127.0.0.1/" + value
    messages = refused(cluster, "check_target")
    assert messages and all(m.strip() for m in messages)


@pytest.mark.parametrize(
    "check_type,value",
    [
        ("tcp", "0"),
        ("tcp", "65536"),
        ("tcp", "080"),
        ("tcp", "22 23"),
        ("http", "file:///etc/shadow"),
        ("http", "http://x/?a=1"),
        ("http", "http://u@x/"),
        ("http", "http://x:0/"),
        ("http", "http://x:99999/"),
        ("http", "http://x/%0a"),
        ("http", "gopher://x/"),
        ("http", "http://-x/"),
        ("file", "relative/file"),
        ("file", "/etc/../shadow"),
        ("file", "/etc/./x"),
        ("process", "a" * 16),
        ("process", "sh -c reboot"),
    ],
)
def test_targets_outside_each_types_shape_are_refused(cluster, check_type, value):
    cluster.check_type, cluster.check_target = check_type, value
    refused(cluster, "check_target")


def test_a_typed_check_needs_a_target_and_none_takes_one(cluster):
    cluster.check_type, cluster.check_target = "process", ""
    refused(cluster, "check_target")
    cluster.check_type, cluster.check_target = "", "haproxy"
    refused(cluster, "check_target")


def test_a_typed_check_replaces_a_command(cluster):
    Cluster.objects.filter(pk=cluster.pk).update(check_type="command", check_script="/bin/true")
    cluster.refresh_from_db()
    cluster.check_type, cluster.check_target = "process", "haproxy"
    cluster.full_clean()
    assert cluster.check_script == ""


@pytest.mark.parametrize(
    # 200: the column's length (PostgreSQL itself refuses more, SQLite would store it).
    "value",
    ["haproxy}\n}\nvrrp_script x {", "$(reboot)", "8404;reboot", "x" * 200],
)
def test_render_refuses_a_target_saved_without_validation(cluster, value):
    Cluster.objects.filter(pk=cluster.pk).update(check_type="process", check_target=value)
    cluster.refresh_from_db()
    node = cluster.nodes.first()
    with pytest.raises(ValueError, match="cluster.check_target"):
        render.render_keepalived(node)


def _run(command):
    # keepalived splits the script line on spaces and execs it without a shell; so do we.
    return subprocess.run(command.split(" "), capture_output=True, timeout=10).returncode


def test_the_fixed_commands_pass_and_fail_as_they_should(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        templates = render.CHECK_TEMPLATES
        assert _run(templates["tcp"].format(port)) == 0
        assert _run(templates["http"].format(f"http://127.0.0.1:{port}/")) == 0
        assert _run(templates["http"].format(f"http://127.0.0.1:{port}/no-such-page")) != 0
    finally:
        server.shutdown()
        server.server_close()
    assert _run(templates["tcp"].format(port)) != 0
    assert _run(templates["http"].format(f"http://127.0.0.1:{port}/")) != 0
    process = subprocess.Popen(["sleep", "30"])
    try:
        assert _run(templates["process"].format("sleep")) == 0
    finally:
        process.kill()
        process.wait()
    assert _run(templates["process"].format("no-such-proc")) != 0
    (tmp_path / "flag").write_text("")
    assert _run(templates["file"].format(tmp_path / "flag")) == 0
    assert _run(templates["file"].format(tmp_path / "none")) != 0


# --- Who may set what -------------------------------------------------------------------------


def test_the_role_rule_lists_the_admin_only_fields(operator, admin, cluster):
    data = {
        "check_script": REBOOT,
        "config_path": "/etc/keepalived/x.conf",
        "reload_command": "reboot",
        "advert_int": 2,
    }
    assert set(roles.admin_only_violations(operator, cluster, data)) == {
        "check_script",
        "config_path",
        "reload_command",
    }
    assert roles.admin_only_violations(admin, cluster, data) == {}
    # Unchanged values (a GET echoed back) and clearing the command are anyone's.
    same = {
        "config_path": cluster.config_path,
        "reload_command": cluster.reload_command,
        "check_script": "",
    }
    assert roles.admin_only_violations(operator, cluster, same) == {}
    assert "check_type" in roles.admin_only_violations(operator, cluster, {"check_type": "command"})
    with pytest.raises(ValidationError) as e:
        roles.check_admin_only(operator, cluster, data)
    assert "check_script" in e.value.message_dict


@pytest.mark.parametrize(
    "url, elsewhere",
    [
        ("http://127.0.0.1:8404/health", False),
        ("http://127.0.0.2/", False),
        ("https://localhost/ready", False),
        ("http://[::1]:8080/", False),
        ("http://192.0.2.9/x", True),  # another host of the nodes' network
        ("http://169.254.169.254/latest/meta-data/", True),  # a cloud's metadata service
        ("https://intranet.example/", True),
        ("http://[2001:db8::9]/", True),
    ],
)
def test_a_url_check_of_another_host_is_an_admins(operator, admin, cluster, url, elsewhere):
    """Every node fetches the URL as root every few seconds: on the node itself it checks the
    node's service; elsewhere it reaches whatever the nodes' network reaches."""
    data = {"check_type": "http", "check_target": url}
    refused = roles.admin_only_violations(operator, cluster, data)
    assert ("check_target" in refused) is elsewhere, refused
    assert roles.admin_only_violations(admin, cluster, data) == {}
    if elsewhere:
        assert "127.0.0.1" in refused["check_target"]
        # Set by an admin, it stays when an operator saves the cluster with it unchanged.
        cluster.check_type, cluster.check_target = "http", url
        assert roles.admin_only_violations(operator, cluster, data) == {}


def test_an_operator_cannot_set_a_command_check_through_the_form(login, operator, admin, cluster):
    url = reverse("clusters:cluster-update", args=[cluster.pk])
    data = cluster_data(
        name="web",
        network="192.0.2.0/24",
        virtual_router_id="51",
        check_type="command",
        check_script=REBOOT,
    )
    login(operator).post(url, data)
    cluster.refresh_from_db()
    assert cluster.check_script == "" and cluster.check_type == ""
    page = login(operator).get(reverse("clusters:cluster-edit", args=[cluster.pk])).content
    page = page.decode()
    assert "disabled" in re.search(r'<input[^>]*name="check_script"[^>]*>', page).group(0)
    assert 'value="command"' not in page
    # An admin may; it is audited like any setting.
    data["check_script"] = "/usr/local/bin/check-haproxy"
    login(admin).post(url, data)
    cluster.refresh_from_db()
    assert (cluster.check_type, cluster.check_script) == ("command", "/usr/local/bin/check-haproxy")
    entry = AuditEntry.objects.filter(action="cluster.update").latest("id")
    assert entry.changes["check_script"] == ["", "/usr/local/bin/check-haproxy"]


def test_an_operator_picks_a_typed_check_through_the_form(login, operator, cluster):
    url = reverse("clusters:cluster-update", args=[cluster.pk])
    data = cluster_data(
        name="web",
        network="192.0.2.0/24",
        virtual_router_id="51",
        check_type="process",
        check_target="haproxy",
    )
    login(operator).post(url, data)
    cluster.refresh_from_db()
    assert (cluster.check_type, cluster.check_target) == ("process", "haproxy")


def test_an_operator_cannot_change_config_path_through_the_form(login, operator, cluster):
    url = reverse("clusters:cluster-update", args=[cluster.pk])
    data = cluster_data(
        name="web",
        network="192.0.2.0/24",
        virtual_router_id="51",
        config_path="/etc/keepalived/other.conf",
    )
    login(operator).post(url, data)
    cluster.refresh_from_db()
    assert cluster.config_path == "/etc/keepalived/keepalived.conf"


@pytest.mark.parametrize(
    "body",
    [
        {"check_script": REBOOT},
        {"check_type": "command", "check_script": REBOOT},
        {"check_script": "/usr/bin/curl -fsSo /etc/cron.d/x http://192.0.2.9/x"},
        {"config_path": "/etc/keepalived/other.conf"},
        {"reload_command": "reboot"},
        {"check_type": "http", "check_target": "http://169.254.169.254/latest/meta-data/"},
    ],
)
def test_an_operator_cannot_set_admin_fields_through_the_api(operator_api, cluster, body):
    response = operator_api.patch(detail(cluster), body)
    assert response.status_code == 403, response.content
    cluster.refresh_from_db()
    assert cluster.check_script == "" and cluster.reload_command != "reboot"
    assert cluster.config_path == "/etc/keepalived/keepalived.conf"


def test_an_operator_cannot_create_a_cluster_with_a_command_check(operator_api):
    body = {
        "name": "db",
        "network": "198.51.100.0/24",
        "virtual_router_id": 52,
        "check_script": REBOOT,
    }
    assert operator_api.post(CLUSTERS, body).status_code == 403
    assert not Cluster.objects.filter(name="db").exists()


def test_an_admin_sets_a_command_through_the_api(admin_api, cluster):
    response = admin_api.patch(detail(cluster), {"check_script": "/usr/local/bin/check"})
    assert response.status_code == 200, response.content
    assert response.json()["check_type"] == "command"


@pytest.mark.parametrize(
    "path", ["/etc/shadow", "/root/.ssh/authorized_keys", "/dev/zero", "/etc/keepalived/../x.conf"]
)
def test_even_an_admin_cannot_name_another_file(admin_api, cluster, path):
    response = admin_api.patch(detail(cluster), {"config_path": path})
    assert response.status_code == 400
    assert "config_path" in response.json()


def test_the_allowed_directories_come_from_settings(settings, cluster):
    settings.VIPANEL_CONFIG_DIRS = ["/etc/keepalived", "/opt/ka/etc"]
    cluster.config_path = "/opt/ka/etc/keepalived.conf"
    cluster.full_clean()
    cluster.config_path = "/opt/ka/keepalived.conf"
    assert "/opt/ka/etc/" in refused(cluster, "config_path")[0]


# --- Reads are bounded, and only ever of keepalived's file --------------------------------------


def test_preview_never_reads_a_path_saved_without_validation(cluster, monkeypatch):
    Cluster.objects.filter(pk=cluster.pk).update(config_path="/etc/shadow")
    cluster.refresh_from_db()
    monkeypatch.setattr(ssh, "connect", lambda target: pytest.fail("connected"))
    previews = preview.preview_cluster(cluster).nodes
    assert previews and all(p.changed is None for p in previews)
    assert all("config_path" in p.error for p in previews)


@pytest.mark.lab
def test_reading_dev_zero_stops_at_the_limit(lab):
    node = lab[0]
    started = time.monotonic()
    with ssh.connect(node.target()) as conn:
        with pytest.raises(ssh.SSHError) as e:
            conn.get("/dev/zero")
        assert e.value.permanent and "larger than" in e.value.message
        conn.put("/tmp/vp-small.conf", b"x" * ssh.READ_LIMIT)
        assert conn.get("/tmp/vp-small.conf") == b"x" * ssh.READ_LIMIT
        conn.put("/tmp/vp-big.conf", b"x" * (ssh.READ_LIMIT + 1))
        with pytest.raises(ssh.SSHError):
            conn.get("/tmp/vp-big.conf")
    assert time.monotonic() - started < 30


# --- The data migration ------------------------------------------------------------------------


def test_the_migration_marks_commands_and_repairs_paths(cluster, credential):
    from django.apps import apps

    migration = importlib.import_module("clusters.migrations.0005_sec_typed_checks_config_path")
    other = Cluster.objects.create(name="db", network="198.51.100.0/24", virtual_router_id=52)
    Cluster.objects.filter(pk=cluster.pk).update(
        check_script="/usr/bin/pgrep haproxy", check_type="", config_path="/etc/shadow"
    )
    migration.mark_commands_and_repair_paths(apps, None)
    cluster.refresh_from_db()
    assert cluster.check_type == "command" and cluster.check_script == "/usr/bin/pgrep haproxy"
    assert cluster.config_path == "/etc/keepalived/keepalived.conf"
    entry = AuditEntry.objects.get(cluster=cluster)
    assert entry.changes["config_path"] == ["/etc/shadow", "/etc/keepalived/keepalived.conf"]
    assert not AuditEntry.objects.filter(cluster=other).exists()


# --- In the lab: keepalived runs the typed checks it was given -------------------------------


@pytest.mark.lab
@pytest.mark.parametrize(
    "check_type,target",
    [("tcp", "18080"), ("http", "http://127.0.0.1:18080/"), ("process", "python3")],
)
def test_keepalived_runs_a_typed_check_and_fails_over_when_it_fails(clean_lab, check_type, target):
    """A listener on every node; the check passes, the highest priority holds the VIP. Stop
    the listener on that node: keepalived's check fails (weight 0: FAULT) and the VIP moves."""
    from tests.lab import wait_until
    from tests.lab_cluster import make_lab_cluster, place_configs

    lab = clean_lab
    listener = "python3 -m http.server 18080 --bind 127.0.0.1"
    for node in lab:
        node._start_daemon(f"setsid {listener} >/dev/null 2>&1 < /dev/null &")
        wait_until(
            lambda n=node: (
                n.exec("/bin/bash -c 'exec<>/dev/tcp/127.0.0.1/18080'", check=False).returncode == 0
            ),
            message=f"{node.name}: the listener did not start",
        )
    cluster = make_lab_cluster(
        lab,
        name=f"chk-{check_type}",
        vrid=94,
        check_type=check_type,
        check_target=target,
        check_interval=1,
        check_fall=1,
        check_rise=1,
        check_weight=0,
    )
    place_configs(lab, cluster)
    ip = cluster.vips.get().address.split("/")[0]
    high = max(lab, key=lambda n: cluster.nodes.get(name=n.name).priority)
    assert [n.name for n in lab.vip_holders(ip)] == [high.name]
    high.exec("pkill -f 'http.server 18080'", check=False)
    wait_until(
        lambda: (
            high.name not in [n.name for n in lab.vip_holders(ip)] and len(lab.vip_holders(ip)) == 1
        ),
        timeout=20,
        message=f"the failing {check_type} check did not move the VIP",
    )
