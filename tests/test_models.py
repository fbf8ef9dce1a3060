"""The VRRP rule set on the models: each rule refused with a field-keyed error, its boundary
accepted, hostile input refused on every field that reaches keepalived.conf, iptables or a shell,
and the named database constraints holding even when clean() is bypassed."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from clusters import constants, validators
from clusters.models import Cluster, Node, SSHCredential, VirtualIP
from tests.conftest import make_private_key

pytestmark = pytest.mark.django_db

FINGERPRINT = "SHA256:" + "A" * 43


def new_cluster(**kwargs):
    """An unsaved cluster that passes every rule until kwargs change something."""
    values = {"name": "db", "network": "198.51.100.0/24", "virtual_router_id": 52}
    return Cluster(**{**values, **kwargs})


def new_node(cluster, **kwargs):
    values = {"name": "web-3", "address": "192.0.2.13", "priority": 100}
    return Node(cluster=cluster, **{**values, **kwargs})


def new_vip(cluster, **kwargs):
    return VirtualIP(cluster=cluster, **{"address": "192.0.2.101/24", **kwargs})


def new_credential(**kwargs):
    values = {"name": "deploy", "username": "deploy", "private_key": make_private_key()}
    return SSHCredential(**{**values, **kwargs})


def refused(obj, field):
    """Validate then save, as forms, admin and API do; the save must never happen.

    Returns the messages for `field`, after checking that no row was written.
    """
    model = type(obj)
    before = model.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        obj.full_clean()
        obj.save()
    assert model.objects.count() == before
    errors = excinfo.value.message_dict
    assert field in errors, errors
    return errors[field]


def accepted(obj):
    obj.full_clean()
    obj.save()
    return obj


def test_the_builders_pass_every_rule(cluster):
    accepted(new_cluster())
    accepted(new_node(cluster))
    accepted(new_vip(cluster))
    accepted(new_credential())


# --- VRID -------------------------------------------------------------------------------------


@pytest.mark.parametrize("vrid", [constants.VRID_MIN, constants.VRID_MAX])
def test_it_accepts_vrid_boundaries(db, vrid):
    assert accepted(new_cluster(virtual_router_id=vrid)).virtual_router_id == vrid


@pytest.mark.parametrize("vrid", [0, 256, -1, 10**9, -(10**9), 10**30, "abc", "1; reboot"])
def test_it_rejects_vrid_out_of_range(db, vrid):
    refused(new_cluster(virtual_router_id=vrid), "virtual_router_id")


def test_it_rejects_duplicate_vrid_on_the_same_network(cluster):
    [message] = refused(
        new_cluster(network="192.0.2.0/24", virtual_router_id=51), "virtual_router_id"
    )
    assert "cluster 'web'" in message
    assert "e.g. 1." in message


@pytest.mark.parametrize(
    "network", ["192.0.2.128/25", "192.0.0.0/16", "192.0.2.77/24", "192.0.2.0/255.255.255.0"]
)
def test_it_rejects_duplicate_vrid_on_an_overlapping_network(cluster, network):
    refused(new_cluster(network=network, virtual_router_id=51), "virtual_router_id")


@pytest.mark.parametrize("network", ["198.51.100.0/24", "192.0.3.0/24", "2001:db8::/64"])
def test_it_allows_the_same_vrid_on_another_segment(cluster, network):
    accepted(new_cluster(network=network, virtual_router_id=51))


def test_it_suggests_the_lowest_vrid_free_on_the_segment(cluster):
    Cluster.objects.create(name="a", network="192.0.2.0/25", virtual_router_id=1)
    Cluster.objects.create(name="b", network="192.0.2.128/25", virtual_router_id=2)
    Cluster.objects.create(name="elsewhere", network="198.51.100.0/24", virtual_router_id=3)
    candidate = new_cluster(network="192.0.2.0/24", virtual_router_id=51)
    assert candidate.free_vrid() == 3
    [message] = refused(candidate, "virtual_router_id")
    assert "e.g. 3." in message


def test_it_says_when_every_vrid_on_the_segment_is_taken(db):
    Cluster.objects.bulk_create(
        Cluster(name=f"c{v}", network="10.0.0.0/8", virtual_router_id=v)
        for v in range(constants.VRID_MIN, constants.VRID_MAX + 1)
    )
    candidate = new_cluster(network="10.1.0.0/16", virtual_router_id=7)
    assert candidate.free_vrid() is None
    [message] = refused(candidate, "virtual_router_id")
    assert "Every VRID is taken" in message


def test_it_lets_a_cluster_keep_its_own_vrid(cluster):
    cluster.advert_int = 2
    accepted(cluster)


def test_a_clean_keeps_vrid_errors_to_one_message(cluster):
    # The unique constraint is checked by clean(); Django must not add a generic "__all__" one.
    with pytest.raises(ValidationError) as excinfo:
        new_cluster(network="192.0.2.0/24", virtual_router_id=51).full_clean()
    assert list(excinfo.value.message_dict) == ["virtual_router_id"]
    assert len(excinfo.value.message_dict["virtual_router_id"]) == 1


# --- network ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, stored",
    [
        ("192.0.2.77/24", "192.0.2.0/24"),
        ("198.51.100.0/255.255.255.0", "198.51.100.0/24"),
        ("2001:DB8:0:0::/64", "2001:db8::/64"),
        ("2001:db8::1/64", "2001:db8::/64"),
    ],
)
def test_it_normalizes_the_network(db, given, stored):
    assert accepted(new_cluster(network=given)).network == stored


@pytest.mark.parametrize("network", ["192.0.2.0", "2001:db8::"])
def test_it_asks_for_a_prefix_length(db, network):
    [message] = refused(new_cluster(network=network), "network")
    assert "prefix length" in message


@pytest.mark.parametrize(
    "network",
    ["192.0.2.0/33", "192.0.2/24", "bad", "", "fd00::%eth0/64", "::ffff:192.0.2.0/120", "1" * 43],
)
def test_it_rejects_a_bad_network(db, network):
    refused(new_cluster(network=network), "network")


# --- priority ---------------------------------------------------------------------------------


@pytest.mark.parametrize("priority", [constants.PRIORITY_MIN, constants.PRIORITY_MAX])
def test_it_accepts_priority_boundaries(cluster, priority):
    accepted(new_node(cluster, priority=priority))


@pytest.mark.parametrize("priority", [0, 255, -1, 10**9, -(10**9), 10**30, "abc"])
def test_it_rejects_priority_out_of_range(cluster, priority):
    refused(new_node(cluster, priority=priority), "priority")


def test_it_rejects_duplicate_priority(cluster):
    with pytest.raises(ValidationError) as excinfo:
        new_node(cluster, priority=110).full_clean()
    [message] = excinfo.value.message_dict["priority"]
    assert list(excinfo.value.message_dict) == ["priority"]
    assert "node 'web-2'" in message
    # The nearest free value, below first: 109 keeps the spread as it is.
    assert "e.g. 109." in message


def test_it_lets_a_node_keep_its_own_priority(cluster):
    node = cluster.nodes.get(name="web-1")
    node.maintenance = True
    accepted(node)


def test_it_allows_the_same_priority_in_another_cluster(cluster):
    other = Cluster.objects.create(name="db", network="198.51.100.0/24", virtual_router_id=52)
    accepted(new_node(other, address="198.51.100.11", priority=110))


# --- advert_int, preempt ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [constants.ADVERT_INT_MIN, constants.ADVERT_INT_MAX])
def test_it_accepts_advert_int_boundaries(db, value):
    accepted(new_cluster(advert_int=value))


@pytest.mark.parametrize("value", [0, 256, -1, 10**9])
def test_it_rejects_advert_int_out_of_range(db, value):
    refused(new_cluster(advert_int=value), "advert_int")


def test_it_rejects_preempt_delay_without_preempt(db):
    [message] = refused(new_cluster(preempt=False, preempt_delay=30), "preempt_delay")
    assert "set it to 0 or turn preempt on" in message


@pytest.mark.parametrize(
    "preempt, delay", [(False, 0), (True, 0), (True, constants.PREEMPT_DELAY_MAX)]
)
def test_it_accepts_preempt_delay_with_preempt(db, preempt, delay):
    accepted(new_cluster(preempt=preempt, preempt_delay=delay))


@pytest.mark.parametrize("delay", [constants.PREEMPT_DELAY_MAX + 1, -1, 10**9])
def test_it_rejects_preempt_delay_out_of_range(db, delay):
    refused(new_cluster(preempt_delay=delay), "preempt_delay")


# --- auth_pass --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "a", "abcdefgh", "Ab1%*+,-", "./:=?@[]", "^_~xyz09"])
def test_it_accepts_auth_pass_of_at_most_8_printable_characters(db, value):
    cluster = accepted(new_cluster(auth_pass=value))
    cluster.refresh_from_db()
    assert cluster.auth_pass == value


def test_it_rejects_auth_pass_longer_than_8(db):
    [message] = refused(new_cluster(auth_pass="abcdefghi"), "auth_pass")
    assert "at most 8" in message


@pytest.mark.parametrize("value", ["pass wd", "pw\t", "pw!", "pw\\", "pw&", "pw|", "pw<", "pw>"])
def test_it_rejects_auth_pass_with_spaces_or_syntax(db, value):
    refused(new_cluster(auth_pass=value), "auth_pass")


# --- virtual IPs ------------------------------------------------------------------------------


def test_it_rejects_a_second_address_family_in_one_cluster(cluster):
    [message] = refused(new_vip(cluster, address="2001:db8::10/64"), "address")
    assert "IPv4" in message


def test_it_accepts_ipv6_vips_in_an_ipv6_cluster(db):
    c = Cluster.objects.create(name="v6", network="2001:db8::/64", virtual_router_id=60)
    accepted(new_vip(c, address="2001:db8::10/64"))
    accepted(new_vip(c, address="2001:db8::11/64"))


def test_it_rejects_a_vip_equal_to_a_node_address(cluster):
    [message] = refused(new_vip(cluster, address="192.0.2.11/24"), "address")
    assert "node 'web-1'" in message


def test_it_rejects_a_node_address_equal_to_a_vip(cluster):
    [message] = refused(new_node(cluster, address="192.0.2.100"), "address")
    assert "virtual IP of cluster 'web'" in message


@pytest.mark.parametrize(
    "address",
    ["192.0.2.100/24", "192.0.2.100/25", "192.0.2.100/32", "192.0.2.100/255.255.255.0"],
)
def test_it_rejects_a_vip_used_by_another_cluster(cluster, address):
    other = Cluster.objects.create(name="db", network="192.0.2.0/24", virtual_router_id=52)
    [message] = refused(new_vip(other, address=address), "address")
    assert "cluster 'web'" in message


def test_it_rejects_the_same_vip_twice_in_one_cluster(cluster):
    refused(new_vip(cluster, address="192.0.2.100/26"), "address")


def test_it_rejects_one_ipv6_vip_spelled_two_ways(db):
    c = Cluster.objects.create(name="v6", network="2001:db8::/64", virtual_router_id=60)
    accepted(new_vip(c, address="2001:db8::10/64"))
    refused(new_vip(c, address="2001:DB8:0:0::0010/64"), "address")


def test_it_refuses_leading_zeros_in_a_vip(cluster):
    # 198.51.100.010 is octal 8 to some parsers and decimal 10 to others: refused, not guessed.
    refused(new_vip(cluster, address="192.0.2.0100/24"), "address")


@pytest.mark.parametrize(
    "given, stored",
    [
        ("2001:DB8::0010/64", "2001:db8::10/64"),
        ("198.51.100.10/255.255.255.0", "198.51.100.10/24"),
    ],
)
def test_it_normalizes_a_vip(db, given, stored):
    c = Cluster.objects.create(name="n", network="2001:db8::/64", virtual_router_id=60)
    if ":" not in given:
        c = Cluster.objects.create(name="n4", network="198.51.100.0/24", virtual_router_id=61)
    vip = accepted(new_vip(c, address=given))
    vip.refresh_from_db()
    assert vip.address == stored
    assert vip.host_address == stored.split("/")[0]


def test_it_lets_a_vip_keep_its_own_address(cluster):
    vip = cluster.vips.get()
    vip.label = "renamed"
    accepted(vip)


def test_it_accepts_20_vips_and_rejects_the_21st(cluster):
    VirtualIP.objects.bulk_create(
        VirtualIP(cluster=cluster, address=f"192.0.2.{i}/24") for i in range(101, 119)
    )
    assert cluster.vips.count() == constants.VIPS_PER_CLUSTER_MAX - 1
    accepted(new_vip(cluster, address="192.0.2.150/24"))
    [message] = refused(new_vip(cluster, address="192.0.2.151/24"), "address")
    assert "at most 20" in message


@pytest.mark.parametrize(
    "address",
    [
        "192.0.2.100",  # no prefix length
        "224.0.0.18/32",  # multicast
        "127.0.0.5/8",
        "0.0.0.0/0",
        "169.254.1.1/16",
        "255.255.255.255/32",
        "192.0.2.0/24",  # network address
        "192.0.2.255/24",  # broadcast address
        "fe80::10/64",  # link-local: not reachable without a zone
        "fd00::10%eth0/64",  # zone id
        "::ffff:192.0.2.120/128",  # IPv4-mapped: write it as IPv4
        "192.0.2.120/33",
    ],
)
def test_it_rejects_a_bad_vip(cluster, address):
    refused(new_vip(cluster, address=address), "address")


@pytest.mark.parametrize("address", ["192.0.2.120/31", "192.0.2.121/32"])
def test_it_accepts_host_routes_and_point_to_point_vips(cluster, address):
    accepted(new_vip(cluster, address=address))


# --- interface names --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["eth0", "ens3.100", "br-lan_1", "a" * 15])
def test_it_accepts_linux_interface_names(cluster, name):
    accepted(new_cluster(interface=name))
    accepted(new_node(cluster, interface=name))


@pytest.mark.parametrize(
    "name",
    ["a" * 16, "eth 0", "eth/0", "eth:0", "eth'0", 'eth"0', "eth{0", "eth}0", ".", "..", "eth0\t"],
)
def test_it_rejects_invalid_interface_names(cluster, name):
    refused(new_cluster(interface=name), "interface")
    refused(new_node(cluster, interface=name), "interface")


def test_a_node_may_leave_its_interface_to_the_cluster(cluster):
    node = accepted(new_node(cluster, interface=""))
    assert node.effective_interface == "eth0"


# --- unicast ----------------------------------------------------------------------------------


def test_it_rejects_unicast_with_one_node(db):
    c = Cluster.objects.create(name="u", network="198.51.100.0/24", virtual_router_id=70)
    Node.objects.create(cluster=c, name="only", address="198.51.100.11", priority=100)
    c.unicast = True
    [message] = refused(c, "unicast")
    assert "at least two nodes" in message
    c.refresh_from_db()
    assert c.unicast is False


def test_it_accepts_unicast_with_two_nodes(cluster):
    cluster.unicast = True
    accepted(cluster)


def test_a_new_unicast_cluster_may_start_without_nodes_but_is_not_ready(db):
    c = accepted(new_cluster(unicast=True))
    assert "unicast" in c.readiness_errors()


# --- node addresses and names -----------------------------------------------------------------


def test_it_rejects_duplicate_node_address_across_clusters(cluster):
    other = Cluster.objects.create(
        name="db", network="192.0.2.0/24", virtual_router_id=52, unicast=True
    )
    [message] = refused(new_node(other, address="192.0.2.11"), "address")
    assert "Another node already has this address" in message


def test_it_stores_an_ipv4_mapped_address_as_ipv4_and_catches_the_duplicate(cluster):
    refused(new_node(cluster, address="::ffff:192.0.2.11"), "address")
    node = accepted(new_node(cluster, address="::ffff:192.0.2.13"))
    node.refresh_from_db()
    assert node.address == "192.0.2.13"


def test_it_rejects_one_ipv6_node_address_spelled_two_ways(db):
    c = Cluster.objects.create(name="v6", network="2001:db8::/64", virtual_router_id=60)
    accepted(new_node(c, name="a", address="2001:db8::11", priority=100))
    refused(new_node(c, name="b", address="2001:DB8:0:0::0011", priority=90), "address")


@pytest.mark.parametrize(
    "address",
    [
        "fe80::1%eth0",  # Django would drop the zone id silently
        "2001:db8::1%25eth0",
        " 192.0.2.13",  # Django would strip the whitespace silently
        "192.0.2.13\n",
        "192.0.2.13/24",
        "192.0.2.013",
        "224.0.0.18",
        "127.0.0.1",
        "0.0.0.0",
        "fe80::1",
        "",
        "evil;rm",
    ],
)
def test_it_rejects_a_bad_node_address(cluster, address):
    refused(new_node(cluster, address=address), "address")


def test_it_rejects_duplicate_node_name_in_a_cluster(cluster):
    [message] = refused(new_node(cluster, name="web-1"), "name")
    assert "Another node of this cluster has this name" in message


def test_it_allows_the_same_node_name_in_another_cluster(cluster):
    other = Cluster.objects.create(name="db", network="198.51.100.0/24", virtual_router_id=52)
    accepted(new_node(other, name="web-1", address="198.51.100.11"))


# --- multicast clusters keep their nodes on the segment ---------------------------------------


def test_it_rejects_a_multicast_node_outside_the_network(cluster):
    [message] = refused(new_node(cluster, address="198.51.100.13"), "address")
    assert "outside the cluster's network 192.0.2.0/24" in message


def test_it_accepts_a_unicast_node_outside_the_network(cluster):
    cluster.unicast = True
    cluster.save()
    accepted(new_node(cluster, address="198.51.100.13"))


def test_it_rejects_a_network_change_that_leaves_nodes_outside(cluster):
    cluster.network = "198.51.100.0/24"
    [message] = refused(cluster, "network")
    assert "web-1, web-2" in message
    cluster.refresh_from_db()
    assert cluster.network == "192.0.2.0/24"


def test_it_rejects_switching_to_multicast_with_nodes_outside(db):
    c = Cluster.objects.create(name="u", network="192.0.2.0/24", virtual_router_id=70, unicast=True)
    Node.objects.create(cluster=c, name="a", address="192.0.2.11", priority=100)
    Node.objects.create(cluster=c, name="b", address="198.51.100.12", priority=90)
    c.unicast = False
    [message] = refused(c, "network")
    assert "Nodes b are outside" in message


# --- check weight -----------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [10, -10, 5, -1])
def test_it_rejects_a_check_weight_that_cannot_move_the_vips(cluster, weight):
    # web-1 120, web-2 110: the weight must exceed the spread of 10 in size.
    cluster.check_script = "/usr/bin/pgrep haproxy"
    cluster.check_weight = weight
    [message] = refused(cluster, "check_weight")
    assert "span 10" in message


@pytest.mark.parametrize(
    "weight", [0, 11, -11, constants.CHECK_WEIGHT_MAX, constants.CHECK_WEIGHT_MIN]
)
def test_it_accepts_a_check_weight_above_the_spread(cluster, weight):
    cluster.check_script = "/usr/bin/pgrep haproxy"
    cluster.check_weight = weight
    accepted(cluster)


@pytest.mark.parametrize("weight", [254, -254, 10**9, -(10**9)])
def test_it_rejects_a_check_weight_out_of_range(db, weight):
    refused(new_cluster(check_weight=weight), "check_weight")


def test_it_rejects_a_node_priority_that_widens_the_spread_past_the_weight(cluster):
    Cluster.objects.filter(pk=cluster.pk).update(check_script="/usr/bin/true", check_weight=-20)
    cluster.refresh_from_db()
    [message] = refused(new_node(cluster, priority=100), "priority")
    assert "from 101 to 129" in message
    accepted(new_node(cluster, priority=101))


def test_it_checks_a_moved_priority_against_the_weight(cluster):
    cluster.check_weight = 20
    cluster.save()
    node = cluster.nodes.get(name="web-2")
    node.priority = 100
    refused(node, "priority")
    node.priority = 101
    accepted(node)


# --- SSH credential ---------------------------------------------------------------------------


def test_it_rejects_something_that_is_not_a_private_key(db):
    [message] = refused(new_credential(private_key="ssh-ed25519 AAAA... me@host"), "private_key")
    assert "BEGIN" in message


@pytest.mark.parametrize("username", ["root", "deploy", "_svc", "a" * 32, "web.ops-1"])
def test_it_accepts_linux_user_names(db, username):
    accepted(new_credential(username=username))


@pytest.mark.parametrize("username", ["Root", "1deploy", "-x", "a" * 33, ""])
def test_it_rejects_invalid_user_names(db, username):
    refused(new_credential(username=username), "username")


# --- hostile input on every field that reaches keepalived.conf, iptables or a shell -----------

# Appended to a valid value; each must be refused whatever field it lands in.
HOSTILE_SUFFIXES = {
    "trailing newline": "\n",  # '$' in a regex would match before it; '\Z' / fullmatch do not
    "new config line": "\nvrrp_script x {",
    "carriage return": "\r",
    "closing brace": "}",
    "opening brace": "{",
    "comment": "#",
    "command separator": ";id",
    "command substitution": "$(id)",
    "single quote": "'",
    "double quote": '"',
    "backtick": "`id`",
    "accented letter": "é",
    "fullwidth digit": "\uff11",
    "arabic-indic digits": "\u0661\u0662",
    "rtl override": "\u202e",
    "zero-width space": "\u200b",
    "nul": "\x00",
    "tab": "\t",
}


def _suffixed(base, suffix):
    return base + suffix


def _fingerprint(suffix):
    # Keep the length right, so only the characters are wrong.
    return "SHA256:" + "A" * (43 - len(suffix)) + suffix


# (model, field, valid value, how to make an instance, how to build a hostile value)
def _make_cluster(cluster, field, value):
    return new_cluster(**{field: value})


def _make_node(cluster, field, value):
    return new_node(cluster, **{field: value})


def _make_vip(cluster, field, value):
    return new_vip(cluster, **{field: value})


def _make_credential(cluster, field, value):
    return new_credential(**{field: value})


STRING_FIELDS = [
    ("cluster.name", _make_cluster, "name", "db"),
    ("cluster.interface", _make_cluster, "interface", "eth0"),
    ("cluster.network", _make_cluster, "network", "198.51.100.0/24"),
    ("cluster.auth_pass", _make_cluster, "auth_pass", "pw"),
    ("cluster.check_script", _make_cluster, "check_script", "/usr/bin/pgrep haproxy"),
    ("cluster.config_path", _make_cluster, "config_path", "/etc/keepalived/keepalived.conf"),
    ("node.name", _make_node, "name", "web-3"),
    ("node.address", _make_node, "address", "192.0.2.13"),
    ("node.interface", _make_node, "interface", "eth1"),
    ("node.host_key_fingerprint", _make_node, "host_key_fingerprint", FINGERPRINT),
    ("vip.address", _make_vip, "address", "192.0.2.101/24"),
    ("vip.label", _make_vip, "label", "frontend"),
    ("credential.username", _make_credential, "username", "deploy"),
]


def _hostile_cases():
    for label, make, field, base in STRING_FIELDS:
        for name, suffix in HOSTILE_SUFFIXES.items():
            value = _fingerprint(suffix) if field == "host_key_fingerprint" else base + suffix
            yield pytest.param(make, field, value, id=f"{label}-{name}")
        yield pytest.param(make, field, "x" * 10_000, id=f"{label}-10000 chars")
        yield pytest.param(make, field, "1" * 10_000, id=f"{label}-10000 digits")
        yield pytest.param(make, field, "\n" + base, id=f"{label}-leading newline")


@pytest.mark.parametrize("make, field, value", list(_hostile_cases()))
def test_it_refuses_hostile_input(cluster, make, field, value):
    refused(make(cluster, field, value), field)


@pytest.mark.parametrize(
    "label, make, field, base", STRING_FIELDS, ids=[f[0] for f in STRING_FIELDS]
)
def test_the_hostile_matrix_bases_are_valid(cluster, label, make, field, base):
    # Otherwise the matrix would prove nothing: the suffix alone must make the value bad.
    accepted(make(cluster, field, base))


@pytest.mark.parametrize("value", ["\uff45\uff54\uff48\uff10", "eth\u0660", "e\u0301th0"])
def test_it_refuses_lookalike_interface_names(cluster, value):
    refused(new_cluster(interface=value), "interface")
    refused(new_node(cluster, interface=value), "interface")


INTEGER_FIELDS = [
    (_make_cluster, "virtual_router_id"),
    (_make_cluster, "advert_int"),
    (_make_cluster, "preempt_delay"),
    (_make_cluster, "check_interval"),
    (_make_cluster, "check_weight"),
    (_make_cluster, "check_fall"),
    (_make_cluster, "check_rise"),
    (_make_node, "priority"),
    (_make_node, "ssh_port"),
]


@pytest.mark.parametrize(
    "value", [10**9, -(10**9), 10**30, -(2**63), 2**63, "12; reboot", "1e3", "0x10"]
)
@pytest.mark.parametrize("make, field", INTEGER_FIELDS, ids=[f[1] for f in INTEGER_FIELDS])
def test_it_refuses_hostile_integers_with_a_field_error(cluster, make, field, value):
    refused(make(cluster, field, value), field)


@pytest.mark.parametrize("make, field", INTEGER_FIELDS, ids=[f[1] for f in INTEGER_FIELDS])
def test_it_refuses_negative_integers(cluster, make, field):
    value = constants.CHECK_WEIGHT_MIN - 1 if field == "check_weight" else -1
    refused(make(cluster, field, value), field)


def test_unicode_digits_in_an_integer_become_a_plain_integer(cluster):
    # Python's int() reads '٢٢' as 22, as Django's model and form fields do; what is stored (and
    # rendered) is the integer 22, so nothing but ASCII digits ever reaches a config.
    node = accepted(new_node(cluster, ssh_port="\u0662\u0662"))
    node.refresh_from_db()
    assert node.ssh_port == 22


# --- reload_command: a shell command by design ------------------------------------------------


def test_reload_command_keeps_the_comment_saying_why_it_is_a_shell_command():
    import inspect

    source = inspect.getsource(validators.validate_reload_command)
    assert "shell command by design" in source


@pytest.mark.parametrize(
    "command",
    [
        "systemctl reload keepalived",
        "kill -HUP $(cat /run/keepalived.pid)",
        "systemctl reload keepalived; logger 'vipanel reloaded'",
        'sh -c "kill -HUP `cat /run/keepalived.pid`"',
        "x" * 255,
    ],
)
def test_it_accepts_an_admins_reload_command(db, command):
    assert accepted(new_cluster(reload_command=command)).reload_command == command


@pytest.mark.parametrize(
    "command",
    [
        "systemctl reload keepalived\nrm -rf /",
        "systemctl reload keepalived\n",
        "systemctl reload keepalived\r",
        "kill -HUP 1\x00",
        "kill\t-HUP 1",
        "kill -HUP 1\x1b[2J",
        "systemctl reload keepalivéd",
        "systemctl reload keepalived\u202e",
        "systemctl\u200breload keepalived",
        "systemctl reload keepalived\uff1b",
        "x" * 256,
        "x" * 10_000,
        "   ",
        "",
    ],
)
def test_it_refuses_a_reload_command_beyond_one_printable_ascii_line(db, command):
    refused(new_cluster(reload_command=command), "reload_command")


# --- regexes: ASCII digits only, no '$' before a trailing newline ------------------------------


@pytest.mark.parametrize(
    "validator, good",
    [
        (validators.name_validator, "web1"),
        (validators.username_validator, "deploy1"),
        (validators.fingerprint_validator, "SHA256:" + "1" * 43),
        (validators.validate_interface, "eth1"),
        (validators.validate_auth_pass, "pw1"),
        (validators.validate_network, "192.0.2.0/24"),
        (validators.validate_vip, "192.0.2.10/24"),
        (validators.validate_absolute_path, "/etc/keepalived1"),
        (validators.validate_check_script, "/usr/bin/check 1"),
        (validators.validate_reload_command, "kill -HUP 1"),
        (validators.validate_label, "vip 1"),
    ],
)
def test_validators_want_ascii_digits_and_no_trailing_newline(validator, good):
    validator(good)
    for bad in [good + "\n", good[:-1] + "\u0661", good[:-1] + "\uff11", good[:-1] + "\u09e7"]:
        with pytest.raises(ValidationError):
            validator(bad)


@pytest.mark.parametrize(
    "validator",
    [validators.name_validator, validators.username_validator, validators.fingerprint_validator],
)
def test_regex_validators_are_anchored_with_backslash_z(validator):
    # RegexValidator uses search(): '\A...\Z' anchors both ends, '$' would allow a final newline.
    pattern = validator.regex.pattern
    assert pattern.startswith("\\A") and pattern.endswith("\\Z")
    assert "\\d" not in pattern


# --- paths and scripts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/etc/keepalived/keepalived.conf", "/etc/keepalived/vi-1.lab_a.conf"]
)
def test_it_accepts_absolute_config_paths(db, path):
    accepted(new_cluster(config_path=path))


@pytest.mark.parametrize(
    "path",
    [
        "etc/keepalived.conf",
        "/etc/../shadow",
        "/etc/..",
        "//etc/k.conf",
        "/etc/",
        "/",
        "/etc/k conf",
        "/" + "a" * 255,
        # Only keepalived's own file (issue 15): a push writes it as root, a preview reads it.
        "/etc/kad/k.conf",
        "/a",
        "/etc/shadow",
        "/root/.ssh/authorized_keys",
        "/dev/zero",
        "/etc/keepalived/../shadow",
        "/etc/keepalived/./keepalived.conf",
        "/etc/keepalived/sub/keepalived.conf",
        "/etc/keepalived/.hidden.conf",
        "/etc/keepalived/keepalived.conf.dpkg-old",
        "/etc/keepalived/keepalived.conf/",
        "/etc/keepalived/.conf",
        "/etc/keepalived/-x.conf",
        "/etc/keepalived/keepalived.conf\n",
        "/etc/keepalived/k\x00.conf",
        "/etc/keepalived/k\u2024conf",
        "/etc/keepalived/kеepalived.conf",  # a Cyrillic 'е'
        "/etc/keepalived-evil/k.conf",
        "/etc/keepalived/" + "a" * 10000 + ".conf",
    ],
)
def test_it_refuses_relative_traversing_or_odd_config_paths(db, path):
    refused(new_cluster(config_path=path), "config_path")


@pytest.mark.parametrize(
    "script", ["/usr/bin/pgrep haproxy", "/usr/local/bin/check --port=8404 -t 2", "/bin/true"]
)
def test_it_accepts_a_check_script_with_plain_arguments(db, script):
    accepted(new_cluster(check_script=script))


@pytest.mark.parametrize(
    "script",
    [
        "pgrep haproxy",
        "/usr/bin/pgrep  haproxy",
        "/usr/bin/pgrep haproxy ",
        "/bin/sh -c 'x'",
        "/bin/a|b",
        "/bin/a & b",
        "/" + "a" * 255,
    ],
)
def test_it_refuses_a_check_script_with_shell_syntax(db, script):
    refused(new_cluster(check_script=script), "check_script")


# --- database constraints ---------------------------------------------------------------------

NAMED_CONSTRAINTS = {
    "clusters_cluster": [
        "clusters_cluster_unique_vrid_per_network",
        "clusters_cluster_vrid_range",
        "clusters_cluster_advert_int_range",
        "clusters_cluster_preempt_delay_needs_preempt",
    ],
    "clusters_node": [
        "clusters_node_unique_name_per_cluster",
        "clusters_node_unique_priority_per_cluster",
        "clusters_node_unique_address",
        "clusters_node_priority_range",
        "clusters_node_ssh_port_range",
    ],
    "clusters_virtualip": ["clusters_virtualip_unique_host_address"],
}


@pytest.mark.parametrize("table", NAMED_CONSTRAINTS)
def test_the_named_constraints_exist_in_the_database(db, table):
    with connection.cursor() as cursor:
        names = set(connection.introspection.get_constraints(cursor, table))
    assert set(NAMED_CONSTRAINTS[table]) <= names


def _integrity_error(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_the_database_refuses_duplicate_priority_without_clean(cluster):
    _integrity_error(
        lambda: Node.objects.create(
            cluster=cluster, name="web-3", address="192.0.2.13", priority=110
        )
    )
    assert cluster.nodes.count() == 2


def test_the_database_refuses_duplicate_node_name_without_clean(cluster):
    _integrity_error(
        lambda: Node.objects.create(cluster=cluster, name="web-1", address="192.0.2.13", priority=1)
    )


def test_the_database_refuses_duplicate_node_address_without_clean(cluster):
    other = Cluster.objects.create(name="db", network="192.0.2.0/24", virtual_router_id=52)
    _integrity_error(
        lambda: Node.objects.create(cluster=other, name="x", address="192.0.2.11", priority=1)
    )


@pytest.mark.parametrize("priority", [0, 255])
def test_the_database_refuses_priority_out_of_range_without_clean(cluster, priority):
    _integrity_error(
        lambda: Node.objects.create(
            cluster=cluster, name="x", address="192.0.2.13", priority=priority
        )
    )


@pytest.mark.parametrize("port", [0, 65536])
def test_the_database_refuses_ssh_port_out_of_range_without_clean(cluster, port):
    _integrity_error(
        lambda: Node.objects.create(
            cluster=cluster, name="x", address="192.0.2.13", priority=1, ssh_port=port
        )
    )


def test_the_database_refuses_duplicate_vrid_per_network_without_clean(cluster):
    _integrity_error(
        lambda: Cluster.objects.create(name="db", network="192.0.2.0/24", virtual_router_id=51)
    )


@pytest.mark.parametrize(
    "field, value",
    [("virtual_router_id", 0), ("virtual_router_id", 256), ("advert_int", 0), ("advert_int", 256)],
)
def test_the_database_refuses_ranges_without_clean(db, field, value):
    _integrity_error(
        lambda: Cluster.objects.create(
            **{"name": "x", "network": "198.51.100.0/24", "virtual_router_id": 9, field: value}
        )
    )


def test_the_database_refuses_preempt_delay_without_preempt(db):
    _integrity_error(
        lambda: Cluster.objects.create(
            name="x", network="198.51.100.0/24", virtual_router_id=9, preempt=False, preempt_delay=5
        )
    )


@pytest.mark.parametrize(
    "address", ["192.0.2.100/24", "192.0.2.100/25", "192.0.2.100/255.255.255.128"]
)
def test_the_database_refuses_one_vip_in_two_clusters_without_clean(cluster, address):
    other = Cluster.objects.create(name="db", network="198.51.100.0/24", virtual_router_id=52)
    _integrity_error(lambda: VirtualIP.objects.create(cluster=other, address=address))


def test_bulk_created_vips_get_their_host_address(cluster):
    [vip] = VirtualIP.objects.bulk_create([VirtualIP(cluster=cluster, address="192.0.2.150/24")])
    assert VirtualIP.objects.get(pk=vip.pk).host_address == "192.0.2.150"


@pytest.mark.parametrize("name", ["ops\x00", "ops\nkey", "ops\tkey"])
def test_it_refuses_control_characters_in_a_credential_name(db, name):
    # Only people read it, so any one-line text will do; a NUL would be a DataError on PostgreSQL.
    refused(new_credential(name=name), "name")


def test_it_accepts_any_one_line_credential_name(db):
    accepted(new_credential(name="Ops key (2026) – rotated"))
