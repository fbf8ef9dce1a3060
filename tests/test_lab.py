"""The lab itself: isolated nodes, and real keepalived failing over between them."""

import ipaddress

import pytest

from tests.lab import wait_until

pytestmark = pytest.mark.lab


def keepalived_conf(node, priority, vip):
    return f"""\
global_defs {{
    router_id {node.name}
}}
vrrp_instance VI_LAB {{
    state BACKUP
    interface {node.interface}
    virtual_router_id 77
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {vip}
    }}
}}
"""


def test_each_node_has_its_own_host_name_address_and_processes(lab):
    for node in lab:
        assert node.exec("hostname").stdout.strip() == node.name
        assert node.ipv4_addresses() == [f"{node.address}/{lab.network.prefixlen}"]
        processes = node.exec("ps -e -o pid=,args=").stdout.splitlines()
        # PID 1 is the node's own init; besides it only its sshd and this very command.
        assert "vipanel-lab-init" in processes[0] and processes[0].split()[0] == "1"
        sshds = [p for p in processes if "sshd -f" in p]
        assert len(sshds) == 1 and f"/{node.name}/sshd_config" in sshds[0]
        assert len(processes) <= 5, processes


def test_a_file_in_etc_keepalived_stays_on_its_node(clean_lab):
    n1, n2 = clean_lab[0], clean_lab[1]
    n1.exec("echo one > /etc/keepalived/only-here")
    assert (n1.config_dir / "only-here").read_text() == "one\n"
    assert n2.exec("test -e /etc/keepalived/only-here", check=False).returncode == 1
    assert not (n2.config_dir / "only-here").exists()


def test_nodes_reach_each_other_but_have_no_default_route(lab):
    n1, n2 = lab[0], lab[1]
    assert n1.exec(f"ping -c1 -W2 {n2.address}").returncode == 0
    assert n1.exec("ping -c1 -W1 192.0.2.1", check=False).returncode != 0
    assert n1.exec("ip route show default").stdout.strip() == ""
    assert ipaddress.ip_address(n1.address) in lab.network
    assert ipaddress.ip_network(lab.network).subnet_of(ipaddress.ip_network("198.18.0.0/15"))


def test_reset_brings_a_node_back(clean_lab):
    node = clean_lab[0]
    node.exec("echo x > /etc/keepalived/keepalived.conf; ip addr add 198.18.77.250/24 dev eth0")
    node.block_vrrp()
    node.stop_sshd()
    node.reset()
    assert list(node.config_dir.iterdir()) == []
    assert node.ipv4_addresses() == [f"{node.address}/{clean_lab.network.prefixlen}"]
    assert "112" not in node.exec("iptables -S INPUT").stdout
    assert node.sshd_pid() is not None


def test_block_vrrp_inserts_a_drop_rule_first(clean_lab):
    node = clean_lab[0]
    node.exec("iptables -A INPUT -p tcp --dport 9 -j ACCEPT")
    node.block_vrrp()
    rules = node.exec("iptables -S INPUT").stdout.splitlines()
    assert rules[1] == "-A INPUT -p vrrp -j DROP"
    node.unblock_vrrp()
    assert "vrrp" not in node.exec("iptables -S INPUT").stdout


def test_keepalived_moves_the_vip_to_the_next_priority_when_the_master_dies(clean_lab):
    lab = clean_lab
    vip = f"{lab.network.network_address + 100}/{lab.network.prefixlen}"
    low, mid, high = lab[0], lab[1], lab[2]
    for node, priority in ((low, 100), (mid, 110), (high, 120)):
        (node.config_dir / "keepalived.conf").write_text(keepalived_conf(node, priority, vip))
        node.start_keepalived()  # the reload command: starts it where it is not running

    def holders():
        return [n.name for n in lab.vip_holders(vip)]

    wait_until(lambda: holders() == [high.name], timeout=30, message=f"holders {holders()}")

    high.kill_keepalived()
    wait_until(lambda: holders() == [mid.name], timeout=30, message=f"holders {holders()}")
    assert low.keepalived_running() and mid.keepalived_running()


def test_ssh_sessions_on_a_node_read_an_empty_bashrc_and_the_host_file_is_untouched(lab):
    from pathlib import Path

    from clusters import ssh

    host = Path("/root/.bashrc")
    before = host.read_bytes() if host.exists() else None
    with ssh.connect(lab[0].target()) as conn:
        result = conn.run("wc -c < /root/.bashrc 2>/dev/null || echo absent")
    assert result.stdout.strip() in ("0", "absent")
    if before is not None:
        assert result.stdout.strip() == "0"
        assert host.read_bytes() == before


def test_the_node_cap_follows_the_prefix_length():
    from tests.lab import lab as lab_module

    assert lab_module.max_nodes("vpb") == 244  # the addresses of one /24 bound it
    assert lab_module.max_nodes("abcdefghij") == 244
    with pytest.raises(lab_module.LabError, match="between 1 and 244"):
        lab_module.Lab.up(245, prefix="vpcap")
