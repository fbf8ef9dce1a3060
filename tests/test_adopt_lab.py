"""Adopting clusters that already run keepalived, against the real lab (issue 12, item 5).

Each test writes keepalived.conf on the lab nodes by hand, the way their operators did, starts
keepalived, then adopts the cluster (scan the keys, compare them with the nodes' own, read,
save) and pushes it with the rolling push. A sampler thread reads every node's addresses
throughout the push; the test asserts that no VIP changed holder or gained a holder it did not
have (in the how-to's split brain: the node vipanel keeps holds it all along, nobody new gains
it, and it ends with one holder).
"""

import ipaddress
import threading
import time

import pytest

from clusters.convergence import settle_seconds
from clusters.models import CarriedBlock, ConfigPush, SSHCredential
from clusters.push import run_push
from clusters.services import adopt
from clusters.services.pushes import start_push
from tests.cast import make_user
from tests.lab import wait_until
from tests.lab_cluster import lab_vip

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

HOWTO = """\
! Configuration File for keepalived -- VIP for the Docker Swarm ingress
global_defs {{
    router_id {name}
}}

vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id {vrid}   # 101 for node1, 102 for node2, 103 for node3
    priority {priority}    # the node with the LOWER priority wins
    advert_int 1
    authentication {{
        auth_type PASS
        auth_pass changeme
    }}
    virtual_ipaddress {{
        {vip}
    }}
}}
"""


def bare(vip):
    return str(ipaddress.ip_interface(vip).ip)


class Sampler:
    """Reads every lab node's addresses in a loop until stopped: [(t, {vip: [holders]})]."""

    def __init__(self, lab, vips):
        self.lab, self.vips = lab, [bare(v) for v in vips]
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            held = {
                node.name: {a.split("/")[0] for a in node.ipv4_addresses()} for node in self.lab
            }
            self.samples.append(
                (
                    time.monotonic(),
                    {vip: sorted(n for n, a in held.items() if vip in a) for vip in self.vips},
                )
            )

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def holders_seen(self, vip):
        return [s[bare(vip)] for _, s in self.samples]


def start_by_hand(lab, configs, files=None, start=None):
    """Write each node's keepalived.conf (and any other files) and start keepalived (with
    `start` instead of the lab's reload command when given)."""
    for node, text in zip(lab, configs, strict=True):
        (node.config_dir / "keepalived.conf").write_text(text)
        for name, content in (files or {}).get(node.name, {}).items():
            path = node.config_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        # The how-to's firewall lines, pasted by hand.
        node.exec("iptables -I INPUT -d 224.0.0.0/8 -j ACCEPT; iptables -I INPUT -p vrrp -j ACCEPT")
    for node in lab:
        if start:
            node._start_daemon(start)
        node.start_keepalived()


def adopt_lab(lab, admin, edits=None):
    credential, _ = SSHCredential.objects.get_or_create(
        name="lab", defaults={"username": "root", "private_key": lab[0].private_key}
    )
    nodes = [{"address": n.address} for n in lab]
    offers = adopt.scan_host_keys(admin, nodes, credential)
    # The person compares each offered key with the node's own before trusting it.
    assert [o.offered for o in offers] == [n.fingerprint for n in lab]
    for item, offer in zip(nodes, offers, strict=True):
        item["host_key_fingerprint"] = offer.offered
    reading = adopt.read_cluster(admin, nodes, credential)
    assert reading.ok, (reading.errors, reading.plan and reading.plan.errors)
    edits = {"reload_command": lab[0].reload_command, **(edits or {})}
    cluster = adopt.adopt_cluster(admin, nodes, credential, reading.digest, edits)
    return cluster, reading


def push_sampled(lab, cluster, vips):
    with Sampler(lab, vips) as sampler:
        push = start_push(None, cluster, queue=False)
        run_push(push.pk)
        push.refresh_from_db()
        # Sampled for a VRRP timeout more: a node that cannot hear the holder after its reload
        # would take the VIP only when its master-down timer runs out.
        time.sleep(settle_seconds(cluster))
    assert push.state == ConfigPush.State.SUCCEEDED, (push.detail, push.log)
    assert len(sampler.samples) > 20, len(sampler.samples)
    return push, sampler


def test_the_howto_cluster_in_split_brain_is_adopted_and_the_push_ends_it(clean_lab):
    lab = clean_lab
    vip = lab_vip(lab)
    n1, n2, n3 = (n.name for n in lab)
    start_by_hand(
        lab,
        [
            HOWTO.format(name=node.name, vrid=vrid, priority=priority, vip=bare(vip))
            for node, vrid, priority in zip(lab, (101, 102, 103), (100, 200, 150), strict=True)
        ],
    )
    # Different VRIDs: nobody hears anybody, every node holds the VIP.
    wait_until(
        lambda: [n.name for n in lab.vip_holders(bare(vip))] == [n1, n2, n3],
        timeout=20,
        message="the how-to's nodes did not all take the VIP",
    )
    admin = make_user("ada", "admin")
    cluster, reading = adopt_lab(lab, admin)
    plan = reading.plan
    assert adopt.split_brain(plan) == [("VI_1", [n.address for n in lab], lab[1].address)]
    finding = next(f for f in plan.findings if f.field == "virtual_router_id")
    assert finding.proposed == 102 and "split brain" in finding.reason
    assert cluster.virtual_router_id == 102
    assert dict(cluster.nodes.values_list("name", "priority")) == {n1: 100, n2: 200, n3: 150}
    assert list(cluster.vips.values_list("address", flat=True)) == [f"{bare(vip)}/32"]

    push, sampler = push_sampled(lab, cluster, [vip])
    seen = sampler.holders_seen(vip)
    # n2, the keeper, holds the VIP throughout; nobody outside the split gains it; one at the end.
    assert all(n2 in holders for holders in seen), seen
    assert all(set(holders) <= {n1, n2, n3} for holders in seen)
    assert seen[-1] == [n2]
    assert "split brain before the push" in push.log
    for node in lab:
        conf = node.exec(f"cat {cluster.config_path}").stdout
        assert "virtual_router_id 102" in conf and "state BACKUP" in conf


def assert_no_vip_moved(sampler, before):
    """Every sample: each VIP on exactly the node that held it before the push."""
    for vip, holder in before.items():
        seen = sampler.holders_seen(vip)
        moved = [holders for holders in seen if holders != [holder]]
        assert not moved, (vip, holder, moved[:5])


def holders_now(lab, vips):
    return {vip: [n.name for n in lab.vip_holders(bare(vip))] for vip in vips}


ACTIVE_ACTIVE = """\
global_defs {{
    router_id {name}
}}
vrrp_sync_group G_router {{
    group {{
        VI_out
        VI_in
    }}
}}
vrrp_instance VI_out {{
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority {out}
    advert_int 1
    virtual_ipaddress {{
        {vip_out} dev eth0
        {vip_out2}
    }}
}}
vrrp_instance VI_in {{
    state BACKUP
    interface eth0
    virtual_router_id 62
    priority {out}
    virtual_ipaddress {{
        {vip_in}
    }}
}}
vrrp_instance VI_web {{
    state BACKUP
    interface eth0
    virtual_router_id 63
    priority {web}
    virtual_ipaddress {{ {vip_web} }}
    garp_master_delay 2
}}
"""


def test_an_active_active_pair_with_a_sync_group_is_taken_over_without_moving_a_vip(clean_lab):
    lab = clean_lab
    pair = [lab[0], lab[1]]
    vips = {
        k: lab_vip(lab, offset=o)
        for k, o in (("out", 110), ("out2", 111), ("in", 112), ("web", 113))
    }
    configs = [
        ACTIVE_ACTIVE.format(
            name=node.name, out=out, web=web, **{f"vip_{k}": v for k, v in vips.items()}
        )
        for node, out, web in zip(pair, (150, 100), (100, 150), strict=True)
    ]
    start_by_hand(pair, configs)
    n1, n2 = pair[0].name, pair[1].name
    before = {vips["out"]: n1, vips["out2"]: n1, vips["in"]: n1, vips["web"]: n2}
    wait_until(
        lambda: holders_now(lab, before) == {v: [h] for v, h in before.items()},
        timeout=20,
        message="the pair did not elect: out/in on node 1, web on node 2",
    )
    admin = make_user("ada", "admin")
    cluster, reading = adopt_lab(pair, admin)
    assert not adopt.split_brain(reading.plan)
    # Two addresses in VI_out's adverts: both stay advertised (a node whose list differs
    # ignores the holder's adverts and takes the VIPs).
    assert list(cluster.vips.filter(instance=None).values_list("address", "advertised")) == [
        (vips["out"], False),
        (vips["out2"], True),
    ]
    assert sorted(cluster.instances.values_list("name", "virtual_router_id")) == [
        ("in", 62),
        ("web", 63),
    ]
    group = cluster.sync_groups.get()
    assert group.includes_main and list(group.instances.values_list("name", flat=True)) == ["in"]
    garp = CarriedBlock.objects.get(keyword="garp_master_delay", node__name=n1)
    line = configs[0][: configs[0].index("garp_master_delay")].count("\n") + 1
    assert garp.instance.name == "web" and garp.source.endswith(f"keepalived.conf:{line}")

    push, sampler = push_sampled(pair, cluster, list(before))
    assert_no_vip_moved(sampler, before)
    conf = pair[0].exec(f"cat {cluster.config_path}").stdout
    assert "vrrp_sync_group VG_" in conf and "garp_master_delay 2" in conf


INCLUDE_MAIN = """\
global_defs {{
    router_id {name}
    enable_script_security
    script_user root
}}
include conf.d/*.conf    # one file per service
"""

INCLUDE_SERVICE = """\
vrrp_script chk_ka {{
    script "pidof sshd"
    interval 1
    weight 60
}}
vrrp_instance VI_inc
{{
	interface eth0
	virtual_router_id 80
	priority {priority}
	virtual_ipaddress {{
		{vip}/24
	}}
	track_script {{
		chk_ka
	}}
	notify_master "/usr/bin/logger -t vipanel-lab master"
}}
"""


def test_a_node_with_an_include_keeps_its_check_and_notify_line(clean_lab):
    lab = clean_lab
    pair = [lab[0], lab[1]]
    vip = lab_vip(lab, offset=120)
    start_by_hand(
        pair,
        [INCLUDE_MAIN.format(name=n.name) for n in pair],
        files={
            n.name: {"conf.d/10-vip.conf": INCLUDE_SERVICE.format(priority=p, vip=bare(vip))}
            for n, p in zip(pair, (110, 130), strict=True)
        },
    )
    before = {f"{bare(vip)}/24": pair[1].name}
    wait_until(lambda: holders_now(lab, before) == {v: [h] for v, h in before.items()}, timeout=20)
    # An operator may adopt it: the check is a typed one (process running).
    operator = make_user("otto", "operator")
    admin = make_user("ada", "admin")
    cluster, reading = adopt_lab(pair, admin)
    assert (cluster.check_type, cluster.check_target, cluster.check_weight) == (
        "process",
        "sshd",
        60,
    )
    notify = CarriedBlock.objects.filter(keyword="notify_master")
    assert notify.count() == 2
    line = INCLUDE_SERVICE[: INCLUDE_SERVICE.index("notify_master")].count("\n") + 1
    assert {b.source for b in notify} == {f"/etc/keepalived/conf.d/10-vip.conf:{line}"}
    push, sampler = push_sampled(pair, cluster, list(before))
    assert_no_vip_moved(sampler, before)
    conf = pair[1].exec(f"cat {cluster.config_path}").stdout
    assert '\tnotify_master "/usr/bin/logger -t vipanel-lab master"' not in conf
    assert '    notify_master "/usr/bin/logger -t vipanel-lab master"' in conf
    assert "/usr/bin/pgrep -x sshd" in conf
    assert operator  # used by the refusal tests of tests/test_adopt.py


LVS = """\
global_defs {{
    router_id {name}
    vrrp_garp_master_delay 1
}}
vrrp_instance VI_lvs {{
    interface eth0
    virtual_router_id 90
    priority {priority}
    virtual_ipaddress {{
        {vip}/24
    }}
}}
virtual_server {vip} 80 {{
    delay_loop 6
    lb_algo rr   # round robin
    lb_kind NAT
    protocol TCP
    ! the web backends
    real_server {backend} 80
    {{
        weight 1
        TCP_CHECK {{ connect_timeout 3 }}
    }}
}}
"""
# This kernel has no IPVS, so keepalived's LVS checker would stop keepalived at start: these
# nodes run its VRRP part only (keepalived -t still reads the whole file, LVS block included).
VRRP_ONLY = 'kill -HUP "$(cat /run/keepalived.pid 2>/dev/null)" 2>/dev/null || keepalived --vrrp'


def test_a_node_with_an_lvs_block_gets_it_back_unchanged(clean_lab):
    lab = clean_lab
    pair = [lab[0], lab[1]]
    vip = lab_vip(lab, offset=130)
    configs = [
        LVS.format(name=n.name, priority=p, vip=bare(vip), backend=bare(lab_vip(lab, offset=140)))
        for n, p in zip(pair, (120, 100), strict=True)
    ]
    start_by_hand(pair, configs, start=VRRP_ONLY)
    before = {f"{bare(vip)}/24": pair[0].name}
    wait_until(lambda: holders_now(lab, before) == {v: [h] for v, h in before.items()}, timeout=20)
    cluster, reading = adopt_lab(pair, make_user("ada", "admin"), {"reload_command": VRRP_ONLY})
    kinds = sorted(
        CarriedBlock.objects.filter(node__name=pair[0].name).values_list("keyword", "context")
    )
    assert kinds == [("virtual_server", "top"), ("vrrp_garp_master_delay", "global_defs")]
    push, sampler = push_sampled(pair, cluster, list(before))
    assert_no_vip_moved(sampler, before)
    block = configs[0][configs[0].index("virtual_server") : configs[0].rindex("}") + 1]
    assert block in pair[0].exec(f"cat {cluster.config_path}").stdout
