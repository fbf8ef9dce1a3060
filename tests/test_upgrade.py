"""Upgrading a database made by the release before several VRRP instances (issue 11, item 6).

tests/fixtures/release1.sqlite3 was built by that release (tests/fixtures/make_release1.py),
with the keepalived.conf and iptables rules it rendered for every node saved beside it. Here a
copy is migrated forward by today's code, in a separate process as `manage.py migrate` would be
run on an upgrade, and then rendered again: every node's files must be byte-identical (the
first push after the upgrade then changes nothing, so no VIP moves), every cluster is a cluster
with one instance carrying all its VIPs, and the secrets still decrypt with the release's key.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
RELEASE1 = FIXTURES / "release1"

READ_BACK = """
import json
from clusters import render
from clusters.models import Cluster, Node, SSHCredential
out = {"conf": {}, "rules": {}, "instances": {}, "secrets": {}}
for node in Node.objects.select_related("cluster").order_by("name"):
    out["conf"][node.name] = render.node_config(node)
    out["rules"][node.name] = render.render_iptables(node)
for c in Cluster.objects.order_by("name"):
    out["instances"][c.name] = {
        "names": render.instance_names(c),
        "vips_outside_main": c.vips.exclude(instance=None).count(),
        "auth_pass": c.auth_pass,
    }
for cred in SSHCredential.objects.order_by("name"):
    out["secrets"][cred.name] = [cred.private_key, cred.passphrase]
print(json.dumps(out))
"""


def run_manage(db_path, tmp_path, *args):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vipanel.settings",
        "VIPANEL_SQLITE_PATH": str(db_path),
        "VIPANEL_DATA_DIR": str(tmp_path / "data"),
        "FIELD_ENCRYPTION_KEY": (RELEASE1 / "field_encryption_key").read_text().strip(),
        "VIPANEL_NOTIFY_URL": "",
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("upgrade")
    db_path = tmp_path / "release1.sqlite3"
    shutil.copyfile(FIXTURES / "release1.sqlite3", db_path)
    run_manage(db_path, tmp_path, "migrate", "--no-input")
    out = run_manage(db_path, tmp_path, "shell", "-c", READ_BACK)
    return json.loads(out.strip().splitlines()[-1])


def release1_nodes():
    return sorted(p.stem for p in RELEASE1.glob("*.conf"))


def test_the_fixture_covers_multicast_unicast_ipv6_auth_and_checks():
    confs = {name: (RELEASE1 / f"{name}.conf").read_text() for name in release1_nodes()}
    assert len(confs) == 7
    text = "".join(confs.values())
    for needle in ("unicast_peer", "auth_pass", "track_script", "preempt_delay", "2001:db8:1::"):
        assert needle in text


@pytest.mark.parametrize("node", release1_nodes())
def test_keepalived_conf_is_byte_identical_after_the_upgrade(upgraded, node):
    before = (RELEASE1 / f"{node}.conf").read_text()
    assert upgraded["conf"][node] == before


@pytest.mark.parametrize("node", release1_nodes())
def test_iptables_rules_are_byte_identical_after_the_upgrade(upgraded, node):
    before = (RELEASE1 / f"{node}.rules").read_text()
    assert upgraded["rules"][node] == before


def test_every_cluster_has_one_instance_with_all_its_vips(upgraded):
    assert upgraded["instances"] == {
        "api6": {"names": ["VI_api6"], "vips_outside_main": 0, "auth_pass": ""},
        "db-proxy": {"names": ["VI_db-proxy"], "vips_outside_main": 0, "auth_pass": "pa:ss-8x"},
        "web": {"names": ["VI_web"], "vips_outside_main": 0, "auth_pass": "s3cret"},
    }


def test_secrets_still_decrypt(upgraded):
    from tests.fixtures.make_release1 import SSH_KEY

    assert upgraded["secrets"] == {"release1-key": [SSH_KEY, "pp-r1"]}
