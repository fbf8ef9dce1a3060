"""clusters.impact on hand-built states: where each VIP goes, when, and why (no database, no SSH).

Priorities 100/110/120 on n1/n2/n3 as in the lab; advert_int 1. The timings are the module's
rule (skew for a clean stop, master-down interval otherwise), measured on the lab.
"""

import dataclasses

import pytest

from clusters import impact
from clusters.impact import (
    Change,
    InstanceConfig,
    NodeFacts,
    Phase,
    PushNode,
    judge,
    predict_delete_cluster,
    predict_delete_instance,
    predict_delete_node,
    predict_delete_vip,
    predict_drill,
    predict_push,
    simulate,
)

VIP = "198.51.100.100"
VIP2 = "198.51.100.101"
VIP_B = "198.51.100.200"
ADDR = {"n1": "198.51.100.11", "n2": "198.51.100.12", "n3": "198.51.100.13"}


def inst(priority, vips=(VIP,), **kw):
    return InstanceConfig(
        priority=priority, vips=tuple(vips), advertised=tuple(vips[:1]), vrid=51, **kw
    )


def node(name, config, running=True, **kw):
    return NodeFacts(name=name, address=ADDR[name], config=config, running=running, **kw)


def three(prios=(100, 110, 120), instance="VI_web", **kw):
    return {
        n: node(n, {instance: inst(p, **kw)})
        for n, p in zip(("n1", "n2", "n3"), prios, strict=True)
    }


def moves(impacts, vip=VIP):
    v = next(i for i in impacts if i.vip == vip)
    return [(m.kind, m.before, m.after) for m in v.moves]


def only(impacts, vip=VIP):
    return next(i for i in impacts if i.vip == vip)


# --- The election ---------------------------------------------------------------------------


def test_the_highest_priority_wins_a_first_election():
    cfgs = {n: inst(p) for n, p in (("n1", 100), ("n2", 110), ("n3", 120))}
    assert impact.elect(cfgs, set(), ADDR) == {"n3"}


def test_a_holder_with_nopreempt_keeps_the_vip_against_a_higher_priority():
    cfgs = {"n2": inst(110, preempt=False), "n3": inst(120, preempt=False)}
    assert impact.elect(cfgs, {"n2"}, ADDR) == {"n2"}
    cfgs = {"n2": inst(110), "n3": inst(120)}
    assert impact.elect(cfgs, {"n2"}, ADDR) == {"n3"}


def test_nodes_whose_adverts_differ_both_hold_the_vip():
    cfgs = {"n1": dataclasses.replace(inst(100), advertised=(VIP2,)), "n3": inst(120)}
    assert impact.elect(cfgs, {"n3"}, ADDR) == {"n1", "n3"}


# --- Maintenance ----------------------------------------------------------------------------


def test_maintenance_of_the_holder_moves_its_vip_by_election_without_a_gap():
    nodes = three()
    holders = {VIP: ["n3"]}
    result = simulate(nodes, holders, [Phase("push", (Change("n3", {"VI_web": inst(1)}),))])
    v = only(result)
    assert (v.before, v.after) == (("n3",), ("n2",))
    [move] = v.moves
    assert move.kind == "move" and move.cause == "n3"
    # The master-down interval of n2: 3 x 1 + (256 - 110) / 256.
    assert move.within == pytest.approx(3.570, abs=0.001) and move.outage == 0
    assert move.sentence().startswith(f"n2 takes {VIP} from n3 within ~3.6 s of n3's reload")
    assert "no gap" in move.sentence()


def test_maintenance_of_the_holder_under_nopreempt_moves_nothing_and_says_so():
    nodes = {
        n: PushNode(
            name=n,
            address=ADDR[n],
            priority=p,
            live=conf(n, p, preempt=False),
            rendered=conf(n, 1 if n == "n3" else p, preempt=False),
        )
        for n, p in (("n1", 100), ("n2", 110), ("n3", 120))
    }
    result = predict_push("web", list(nodes.values()), {VIP: ["n3"]}, action="maintenance")
    assert [v.after for v in result.vips] == [("n3",)]
    assert not result.moves
    assert any("nopreempt: n3 keeps" in w for w in result.warnings)
    assert [n.what for n in result.nodes] == ["unchanged", "unchanged", "changes"]
    assert result.nodes[2].details == ["priority 120 → 1 in VI_web"]


def test_leaving_maintenance_with_a_preempt_delay_takes_the_vip_back_after_the_delay():
    nodes = three((100, 110, 1), preempt_delay=5)
    back = {"VI_web": inst(120, preempt_delay=5)}
    result = simulate(nodes, {VIP: ["n2"]}, [Phase("push", (Change("n3", back),))])
    [move] = only(result).moves
    assert (move.before, move.after) == (("n2",), ("n3",))
    assert move.within == pytest.approx(5 + 3 + 136 / 256)
    assert "preempt_delay of 5 s" in move.reason


# --- Active/active --------------------------------------------------------------------------


def test_active_active_maintenance_moves_only_what_the_node_holds():
    # VI_web: n1 120, n2 110; VI_web_B mirrored: n1 110, n2 120. Each node masters one.
    a, b = "VI_web", "VI_web_B"
    nodes = {}
    nodes["n1"] = node("n1", {a: inst(120), b: dataclasses.replace(inst(110, (VIP_B,)), vrid=52)})
    nodes["n2"] = node("n2", {a: inst(110), b: dataclasses.replace(inst(120, (VIP_B,)), vrid=52)})
    holders = {VIP: ["n1"], VIP_B: ["n2"]}
    lowered = {a: inst(1), b: dataclasses.replace(inst(1, (VIP_B,)), vrid=52)}
    result = simulate(nodes, holders, [Phase("push", (Change("n1", lowered),))])
    assert moves(result, VIP) == [("move", ("n1",), ("n2",))]
    assert moves(result, VIP_B) == []  # n2 already holds B
    assert only(result, VIP_B).after == ("n2",)


# --- Drill ----------------------------------------------------------------------------------


def test_a_drill_moves_the_vip_within_the_skew_time_and_back_after_the_restart():
    result = predict_drill("web", three(), {VIP: ["n3"]}, "VI_web")
    first, back = only(result.vips).moves
    assert (first.before, first.after, first.cause_how) == (("n3",), ("n2",), "stop")
    # A clean stop: priority-0 advert, n2 takes over after its skew time, the VIP absent as long.
    assert first.within == pytest.approx(146 / 256) and first.outage == first.within
    assert first.sentence().startswith(f"n2 takes {VIP} from n3 within ~0.6 s of keepalived")
    assert (back.before, back.after, back.cause_how) == (("n2",), ("n3",), "start")
    assert back.within == pytest.approx(3 + 136 / 256) and back.outage == 0
    assert [n.what for n in result.nodes] == ["not touched", "not touched", "stopped"]


def test_a_drill_of_one_instance_moves_the_other_instances_of_that_holder_too():
    a, b = "VI_web", "VI_web_B"
    binst = lambda p: dataclasses.replace(inst(p, (VIP_B,)), vrid=52)  # noqa: E731
    nodes = {
        "n1": node("n1", {a: inst(100), b: binst(120)}),
        "n2": node("n2", {a: inst(110), b: binst(110)}),
        "n3": node("n3", {a: inst(120), b: binst(100)}),
    }
    # n3 holds A; n1 holds B: drilling B stops keepalived on n1, which holds nothing of A.
    result = predict_drill("web", nodes, {VIP: ["n3"], VIP_B: ["n1"]}, b)
    assert moves(result.vips, VIP_B)[0] == ("move", ("n1",), ("n2",))
    assert moves(result.vips, VIP) == []
    # Drilling A on n3 stops n3's keepalived: n3 also held nothing else here; make it hold B.
    result = predict_drill("web", nodes, {VIP: ["n3"], VIP_B: ["n3"]}, a)
    assert moves(result.vips, VIP_B)[0] == ("move", ("n3",), ("n1",))
    assert any("VI_web_B move too" in note for note in result.notes)


def test_a_drill_with_no_single_holder_says_it_would_find_nothing():
    result = predict_drill("web", three(), {VIP: []}, "VI_web")
    assert not result.moves and "No single node holds" in result.warnings[0]


# --- Deletions -----------------------------------------------------------------------------


def test_deleting_the_holder_node_moves_nothing_until_its_keepalived_is_stopped():
    result = predict_delete_node("web", three(), {VIP: ["n3"]}, "n3")
    [move] = only(result.vips).moves
    assert move.phase == 1 and move.cause_how == "stop"  # the second phase: the stop
    assert (move.before, move.after) == (("n3",), ("n2",))
    assert result.nodes[0].what == "deleted"
    assert any("n3 holds" in w and "keeps it" in w for w in result.warnings)
    # Multicast: the next push changes no other node's file.
    assert [n.what for n in result.nodes[1:]] == ["unchanged", "unchanged"]


def test_deleting_a_unicast_backup_node_splits_the_brain_at_the_next_push():
    peers = {n: tuple(sorted(a for m, a in ADDR.items() if m != n)) for n in ADDR}
    nodes = {
        n: node(n, {"VI_web": inst(p, peers=peers[n])})
        for n, p in (("n1", 100), ("n2", 110), ("n3", 120))
    }
    result = predict_delete_node("web", nodes, {VIP: ["n3"]}, "n1")
    # The others stop sending their adverts to n1, which still runs: it takes the VIP too.
    kinds = [m.kind for m in only(result.vips).moves]
    assert kinds[0] == "split" and "n1" in only(result.vips).moves[0].after
    assert {n.node: n.what for n in result.nodes} == {
        "n1": "deleted",
        "n2": "changes",
        "n3": "changes",
    }


def test_deleting_the_advertised_vip_names_the_one_that_takes_its_place():
    nodes = three(vips=(VIP, VIP2))
    result = predict_delete_vip("web", nodes, {VIP: ["n3"], VIP2: ["n3"]}, VIP + "/24")
    assert moves(result.vips, VIP) == [("down", ("n3",), ())]
    down = only(result.vips, VIP).moves[0]
    assert down.sentence() == f"{VIP} leaves n3 when n3 is reloaded (removed from its config)."
    assert any(f"the next one, {VIP2}, takes its place" in n for n in result.notes)
    # The adverts change with it: n1, pushed first, ignores n3's old adverts and holds the VIP
    # too (what the lab showed, 3.6 s after its reload); n2, pushed next, outranks n1 among the
    # new files; once n3 has the new file too, the brain is one again.
    assert moves(result.vips, VIP2) == [
        ("split", ("n3",), ("n1", "n3")),
        ("split", ("n1", "n3"), ("n2", "n3")),
        ("merge", ("n2", "n3"), ("n3",)),
    ]
    assert result.when == "at the next push"


def test_deleting_an_instance_takes_its_vips_down_when_the_holder_is_pushed():
    a, b = "VI_web", "VI_web_B"
    binst = lambda p: dataclasses.replace(inst(p, (VIP_B,)), vrid=52)  # noqa: E731
    nodes = {
        "n1": node("n1", {a: inst(100), b: binst(120)}),
        "n3": node("n3", {a: inst(120), b: binst(100)}),
    }
    result = predict_delete_instance("web", nodes, {VIP: ["n3"], VIP_B: ["n1"]}, b)
    # n1 (holding one VIP, lower priority) is pushed first: the instance leaves it and n3,
    # which still has it, takes its VIP over until n3 is pushed too.
    assert moves(result.vips, VIP_B) == [("move", ("n1",), ("n3",)), ("down", ("n3",), ())]
    assert only(result.vips, VIP_B).moves[1].reason == "its instance is removed"
    assert moves(result.vips, VIP) == []


def test_deleting_a_cluster_touches_no_node_and_leaves_every_vip_where_it_is():
    result = predict_delete_cluster("web", three(), {VIP: ["n3"]})
    assert not result.moves and only(result.vips).after == ("n3",)
    assert {n.what for n in result.nodes} == {"not touched"}


# --- A push ---------------------------------------------------------------------------------


def conf(name, priority, vips=(VIP + "/24",), preempt=True, instance="VI_web"):
    anchor, *others = vips
    lines = [
        f"vrrp_instance {instance} {{",
        "    state BACKUP",
        "    interface eth0",
        "    virtual_router_id 51",
        f"    priority {priority}",
        "    advert_int 1",
        *([] if preempt else ["    nopreempt"]),
        "    virtual_ipaddress {",
        f"        {anchor} dev eth0",
        "    }",
    ]
    if others:
        lines += ["    virtual_ipaddress_excluded {"]
        lines += [f"        {v} dev eth0" for v in others] + ["    }"]
    return "\n".join([f"global_defs {{\n    router_id {name}\n}}", *lines, "}"]) + "\n"


def push_nodes(live, rendered, **kw):
    return [
        PushNode(
            name=n, address=ADDR[n], priority=p, live=live(n, p), rendered=rendered(n, p), **kw
        )
        for n, p in (("n1", 100), ("n2", 110), ("n3", 120))
    ]


def test_a_change_of_the_advertised_vip_predicts_a_split_brain_until_the_holder_is_pushed():
    vips = (VIP + "/24", VIP2 + "/24")
    nodes = push_nodes(lambda n, p: conf(n, p, vips), lambda n, p: conf(n, p, vips[::-1]))
    result = predict_push("web", nodes, {VIP: ["n3"], VIP2: ["n3"]})
    kinds = [m.kind for m in only(result.vips).moves]
    # n1 and n2 are pushed first: each ignores n3's adverts and takes the VIPs too; once n3
    # has the new file the brain is one again, n3 keeping them.
    assert kinds == ["split", "split", "merge"]
    assert only(result.vips).after == ("n3",)
    assert any("adverts of VI_web change" in n for n in result.notes)
    assert [n.what for n in result.nodes] == ["changes"] * 3


def test_adding_a_vip_brings_it_up_on_the_holder_when_the_holder_is_pushed():
    nodes = push_nodes(
        lambda n, p: conf(n, p), lambda n, p: conf(n, p, (VIP + "/24", VIP2 + "/24"))
    )
    result = predict_push("web", nodes, {VIP: ["n3"]})
    [up] = only(result.vips, VIP2).moves
    assert (up.kind, up.after, up.cause) == ("up", ("n3",), "n3")
    assert up.reason == "added to its config"
    assert up.sentence() == f"n3 takes {VIP2} when n3 is reloaded (added to its config)."
    assert not only(result.vips, VIP).moves
    assert f"VIP {VIP2} added to VI_web" in result.nodes[0].details


def test_a_first_push_installs_every_node_and_one_election_follows():
    nodes = push_nodes(lambda n, p: None, lambda n, p: conf(n, p), running=False)
    result = predict_push("web", nodes, {})
    [up] = only(result.vips).moves
    assert (up.kind, up.after, up.cause_how) == ("up", ("n3",), "install")
    assert "of the first start" in up.sentence()
    assert any("installs every node at once" in n for n in result.notes)


def test_a_push_orders_nodes_as_the_rollout_does_holder_last():
    # Both n2 and n3 rise; the holder n3 is pushed last, so n2 holds the VIP for a while.
    nodes = push_nodes(
        lambda n, p: conf(n, p),
        lambda n, p: conf(n, {"n1": 100, "n2": 125, "n3": 130}[n]),
    )
    result = predict_push("web", nodes, {VIP: ["n3"]})
    assert moves(result.vips) == [
        ("move", ("n3",), ("n2",)),
        ("move", ("n2",), ("n3",)),
    ]


def test_an_unreadable_node_is_named_and_left_out_of_the_elections():
    nodes = push_nodes(lambda n, p: conf(n, p), lambda n, p: conf(n, p))
    nodes[0] = dataclasses.replace(nodes[0], readable=False, live=None, error="timed out")
    result = predict_push("web", nodes, {VIP: ["n3"]})
    assert result.nodes[0].what == "not read"
    assert result.nodes[0].details == ["its live file could not be read"]
    assert any("n1 cannot be read" in w for w in result.warnings)


# --- Skipping an unreachable node -----------------------------------------------------------


def test_skipping_is_refused_when_the_push_changes_the_adverts():
    vips = (VIP + "/24", VIP2 + "/24")
    nodes = push_nodes(lambda n, p: conf(n, p, vips), lambda n, p: conf(n, p, vips[::-1]))
    nodes[2] = dataclasses.replace(nodes[2], readable=False, rendered=None, left="skipped")
    assert "Skipping n3 is refused" in impact.skip_problem(nodes)
    assert "split brain" in impact.skip_problem(nodes)


def test_skipping_is_allowed_when_the_adverts_stay_the_same():
    nodes = push_nodes(lambda n, p: conf(n, p), lambda n, p: conf(n, p + 1))
    nodes[2] = dataclasses.replace(nodes[2], readable=False, rendered=None, left="skipped")
    assert impact.skip_problem(nodes) == ""


def test_a_skipped_holder_is_assumed_to_keep_its_vip():
    nodes = push_nodes(lambda n, p: conf(n, p), lambda n, p: conf(n, p + 1))
    nodes[2] = dataclasses.replace(
        nodes[2], readable=False, live=None, rendered=None, left="skipped", assumed=conf("n3", 120)
    )
    result = predict_push("web", nodes, {VIP: ["n3"]})
    assert only(result.vips).after == ("n3",) and not result.moves
    assert result.nodes[2].what == "skipped"


# --- Verdict --------------------------------------------------------------------------------


def recorded(result):
    return result.as_dict()


def test_the_verdict_holds_when_the_events_are_the_predicted_moves():
    result = simulate(three(), {VIP: ["n3"]}, [Phase("p", (Change("n3", {"VI_web": inst(1)}),))])
    prediction = impact.Impact("maintenance", "web", vips=result).as_dict()
    event = {"id": 7, "kind": "failover", "vip": VIP + "/24", "from_node": "n3", "to_node": "n2"}
    verdict = judge(prediction, {VIP + "/24": ["n2"]}, [event])
    assert verdict.status == "held" and verdict.expected == {7}


def test_the_verdict_fails_on_an_unforeseen_move_or_a_different_end():
    result = simulate(three(), {VIP: ["n3"]}, [Phase("p", (Change("n1", {"VI_web": inst(101)}),))])
    prediction = impact.Impact("push", "web", vips=result).as_dict()
    assert prediction["vips"][0]["moves"] == []
    event = {"id": 9, "kind": "failover", "vip": VIP, "from_node": "n3", "to_node": "n1"}
    verdict = judge(prediction, {VIP: ["n1"]}, [event])
    assert verdict.status == "not held" and verdict.unexpected == {9}
    assert any("expected on n3, found on n1" in r for r in verdict.reasons)
    assert any("Not foreseen: failover" in r for r in verdict.reasons)


def test_a_split_brain_is_foreseen_only_when_the_prediction_says_so():
    split = {"id": 1, "kind": "split_brain", "vip": VIP, "from_node": "n3", "to_node": "n1, n3"}
    calm = impact.Impact("push", "web", vips=simulate(three(), {VIP: ["n3"]}, [])).as_dict()
    assert judge(calm, {VIP: ["n3"]}, [split]).status == "not held"


def test_a_failed_push_or_one_without_a_prediction_is_not_judged():
    prediction = impact.Impact("push", "web", vips=simulate(three(), {VIP: ["n3"]}, [])).as_dict()
    assert judge(prediction, {}, [], succeeded=False).status == "not judged"
    assert judge({}, {}, []).status == "not judged"
    assert judge(prediction, {}, [], finished=False).status == "pending"


def test_the_prediction_is_json_with_sentences():
    result = predict_drill("web", three(), {VIP: ["n3"]}, "VI_web").as_dict()
    import json

    assert json.loads(json.dumps(result)) == result
    assert result["moves"][0].startswith(f"n2 takes {VIP} from n3 within ~0.6 s")
    assert "Measured on the lab" in result["timing"]
