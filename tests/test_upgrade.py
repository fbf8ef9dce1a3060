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


# --- What was pushed, for a deployment that ran the release before (issue 17) -------------------

PUSHED_BEFORE = """
INSERT INTO clusters_configpush (id, kind, state, created, started, finished, detail, log,
    cluster_id) VALUES
  (1, 'push', 'succeeded', '2026-12-01 21:00:00', '2026-12-01 21:00:01',
   '2026-12-01 21:00:30', '', '', 1),
  (2, 'push', 'failed', '2026-12-01 21:05:00', '2026-12-01 21:05:01',
   '2026-12-01 21:05:40', 'db-b: keepalived -t rejected the new config', '', 2);
INSERT INTO clusters_pushstep (node_name, position, state, detail, output, node_id, push_id)
VALUES
  ('web-1', 1, 'applied', '', '', 1, 1), ('web-2', 2, 'unchanged', '', '', 2, 1),
  ('web-3', 3, 'applied', '', '', 3, 1),
  ('db-a', 1, 'applied', '', '', 4, 2), ('db-b', 2, 'failed', '', '', 5, 2);
INSERT INTO clusters_vipstate (since, split_brain, no_holder, checked_at, holder_id, vip_id)
VALUES
  ('2026-12-01 21:01:00', 0, 0, '2026-12-01 21:01:00', 3, 1),
  ('2026-12-01 21:01:00', 0, 1, '2026-12-01 21:01:00', NULL, 4);
"""

FIRST_SWEEP = """
import hashlib, json
from pathlib import Path
from django.utils import timezone
from clusters import health, render
from clusters.history import record_status
from clusters.models import Cluster, Node, VipState, VirtualIP
from clusters.status import ClusterStatus, NodeProbe

def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()

out = {
    "adopt": {n.name: n.adopt_live_config for n in Node.objects.order_by("name")},
    "vips_pushed": {v.address: v.pushed_at is not None for v in VirtualIP.objects.all()},
    "vip_states": sorted(VipState.objects.values_list("vip__address", flat=True)),
}
# The first sweep after the upgrade: each node has the file the release pushed (in sync).
now = timezone.now()
for c in Cluster.objects.order_by("name"):
    nodes = list(c.nodes.select_related("cluster"))
    probes = [
        NodeProbe(
            name=n.name, node_id=n.pk, reachable=True, keepalived_running=True,
            vrrp_state="BACKUP", desired_sha=sha(render.node_config(n)),
            config_sha=sha(Path(RELEASE1, n.name + ".conf").read_text()),
        )
        for n in nodes
    ]
    holders = {v.address: [nodes[0].name] for v in c.vips.all()}
    record_status(c, ClusterStatus(c.name, now, probes, holders))
out["pending"] = {c.name: sorted(health.cluster_pending(c)) for c in Cluster.objects.all()}
out["problems"] = {c.name: health.cluster_problems(c, now) for c in Cluster.objects.all()}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def pushed_before(tmp_path_factory):
    import sqlite3

    tmp_path = tmp_path_factory.mktemp("upgrade-pushed")
    db_path = tmp_path / "release1.sqlite3"
    shutil.copyfile(FIXTURES / "release1.sqlite3", db_path)
    with sqlite3.connect(db_path) as db:
        db.executescript(PUSHED_BEFORE)
    run_manage(db_path, tmp_path, "migrate", "--no-input")
    script = f"RELEASE1 = {str(RELEASE1)!r}\n" + FIRST_SWEEP
    out = run_manage(db_path, tmp_path, "shell", "-c", script)
    return json.loads(out.strip().splitlines()[-1])


def test_nodes_a_push_updated_adopt_their_live_file(pushed_before):
    assert pushed_before["adopt"] == {
        "api6-1": False,  # never pushed
        "api6-2": False,
        "db-a": True,  # its step applied, although the push failed later
        "db-b": False,  # its step failed: never pushed there
        "web-1": True,
        "web-2": True,  # found identical counts: vipanel's file is there
        "web-3": True,
    }


def test_vips_count_from_the_first_successful_push_of_their_cluster(pushed_before):
    assert pushed_before["vips_pushed"] == {
        "192.0.2.100/24": True,
        "192.0.2.101/24": True,
        "192.0.2.102/32": True,
        "198.51.100.50/24": False,  # db-proxy's only push failed
        "2001:db8:1::100/64": False,  # api6 was never pushed
        "2001:db8:1::101/64": False,
    }
    # The "no holder" an older sweep recorded for a VIP never pushed is gone with it.
    assert pushed_before["vip_states"] == ["192.0.2.100/24"]


def test_after_the_first_sweep_nothing_pushed_looks_pending_or_drifted(pushed_before):
    assert pushed_before["pending"] == {
        "web": [],
        "db-proxy": ["198.51.100.50/24: pending push", "db-b: pending push"],
        "api6": sorted(
            [
                "2001:db8:1::100/64: pending push",
                "2001:db8:1::101/64: pending push",
                "api6-1: pending push",
                "api6-2: pending push",
            ]
        ),
    }
    # No drift anywhere; the failed push is what it was before the upgrade.
    assert pushed_before["problems"] == {"web": [], "db-proxy": ["last push failed"], "api6": []}
