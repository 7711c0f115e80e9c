"""A VPC filter changed in place (`filter_change`) ends up as the same table, in the real kernel, as the whole
table written afresh: ENIs attaching and leaving, groups gaining and losing members, rules changed, a public IP,
a chain emptied (needs root). Each test uses namespaces of its own; no packet is sent.
"""
from __future__ import annotations

import dataclasses
import json
import random
import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from fargo.network.netns import create_netns, remove_netns
from fargo.network.nft import release_netns, run_nft
from fargo.network.security_groups import (FilterState, LocalEni, apply_filter_state, filter_change, filter_state,
                                           whole_table)
from fargo.network.vpc_router import VpcRouter
from fargo.protocol.messages import GroupPolicy, RulePolicy, VpcPolicy

ROUTER = VpcRouter(
    vpc_id="vpc-1", cidr="10.7.0.0/16", netns_name="unused", netns_path="/unused", resolver_ip="10.7.0.2",
    uplink="fgu0123456789ab", transit_host_ip="169.254.240.1", transit_router_ip="169.254.240.2",
)
RULES = [RulePolicy("tcp", 80, 80, cidr="10.7.0.0/16"), RulePolicy("-1", cidr="0.0.0.0/0"),
         RulePolicy("udp", 53, 53, peer_group="sg-b"), RulePolicy("tcp", 5432, 5432, peer_group="sg-c"),
         RulePolicy("icmp", 8, -1, cidr="10.7.4.0/24")]


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str]]:
    """Two empty namespaces: one changed step by step, one given each whole table."""
    names = [f"sgtest-{secrets.token_hex(3)}-{n}" for n in range(2)]
    paths: list[str] = []
    try:
        for name in names:  # inside the try: a second one that fails must not leave the first behind
            made = create_netns(name)
            made.close()
            paths.append(made.path)
        yield paths[0], paths[1]
    finally:
        for name, path in zip(names, paths):
            release_netns(path)
            remove_netns(name)


def _listed(netns_path: str) -> dict[str, Any]:
    """The kernel's table, normalized: handles dropped, elements sorted, chains by name with rules in order."""
    out = subprocess.run(["nsenter", f"--net={netns_path}", "nft", "-j", "list", "table", "inet", "fargo"],
                         check=True, capture_output=True, text=True).stdout
    table: dict[str, Any] = {"chains": {}, "sets": {}, "maps": {}, "rules": {}}
    for item in json.loads(out)["nftables"]:
        kind, body = next(iter(item.items()))
        body = {k: v for k, v in body.items() if k != "handle"}
        if kind == "chain":
            table["chains"][body["name"]] = body
        elif kind in ("set", "map"):
            body["elem"] = sorted(json.dumps(e, sort_keys=True) for e in body.get("elem", []))
            table[kind + "s"][body["name"]] = body
        elif kind == "rule":
            table["rules"].setdefault(body["chain"], []).append(json.dumps(body["expr"], sort_keys=True))
    return table


def _random_state(rng: random.Random) -> FilterState:
    enis = [LocalEni(f"t{n}", f"fgv{n:04d}", f"10.7.{n // 200}.{n % 200 + 4}",
                     tuple(rng.sample(["sg-a", "sg-b", "sg-c"], rng.randint(0, 2))), rng.random() < 0.3)
            for n in rng.sample(range(40), rng.randint(0, 12))]
    groups = [GroupPolicy(g, rng.sample(RULES, rng.randint(0, 3)), rng.sample(RULES, rng.randint(0, 2)),
                          [e.ip for e in enis if g in e.group_ids] + rng.sample(["10.7.9.9", "10.7.9.10"], 1))
              for g in ("sg-a", "sg-b", "sg-c") if rng.random() < 0.85]
    return filter_state(VpcPolicy("vpc-1", "10.7.0.0/16", groups), enis, ROUTER)


def test_changes_in_place_leave_the_same_table_as_a_whole_one(namespaces: tuple[str, str]) -> None:
    changed, whole = namespaces
    rng = random.Random(20261204)
    applied = _random_state(rng)
    run_nft(whole_table(applied), changed)
    for step in range(40):
        state = _random_state(rng)
        change = filter_change(applied, state)
        assert change is not None, f"step {step}: ENI and policy churn must not need a whole table"
        run_nft(change, changed)
        run_nft(whole_table(state), whole)
        assert _listed(changed) == _listed(whole), f"step {step}:\n{change}"
        applied = state


def test_a_change_is_only_what_differs_and_nothing_when_nothing_does() -> None:
    group = GroupPolicy("sg-a", [RULES[0]], [RULES[1]], ["10.7.0.4"])
    one = [LocalEni("t0", "fgv0000", "10.7.0.4", ("sg-a",), False)]
    two = [*one, LocalEni("t1", "fgv0001", "10.7.0.5", ("sg-a",), True)]
    before = filter_state(VpcPolicy("vpc-1", "10.7.0.0/16", [group]), one, ROUTER)
    after = filter_state(VpcPolicy("vpc-1", "10.7.0.0/16", [group]), two, ROUTER)
    assert filter_change(before, before) == ""
    lines = filter_change(before, after).splitlines()  # type: ignore[union-attr]
    assert 'add element inet fargo eni_addresses { "fgv0001" . 10.7.0.5 }' in lines
    assert "add element inet fargo public_ips { 10.7.0.5 }" in lines
    assert "add chain inet fargo egress_fgv0001" in lines and "add chain inet fargo ingress_fgv0001" in lines
    assert not any("fgv0000" in line for line in lines)  # the ENI already there is not touched
    assert not any(line.startswith("delete") for line in lines)


def test_a_table_not_as_believed_gets_the_whole_table(namespaces: tuple[str, str]) -> None:
    # A change that nft refuses (here: it would delete an element the table does not hold) is replaced by the
    # whole table, so a wrong belief about the router's table can never leave it half right.
    changed, whole = namespaces
    group = GroupPolicy("sg-a", [RULES[0]], [RULES[1]], [])
    eni = LocalEni("t0", "fgv0000", "10.7.0.4", ("sg-a",), False)
    believed = filter_state(VpcPolicy("vpc-1", "10.7.0.0/16", [group]), [eni], ROUTER)
    wanted = filter_state(VpcPolicy("vpc-1", "10.7.0.0/16", [group]), [], ROUTER)
    run_nft(whole_table(wanted), changed)  # the kernel holds no ENI; we believe it holds t0
    router = dataclasses.replace(ROUTER, netns_path=changed)
    apply_filter_state(router, wanted, believed)
    run_nft(whole_table(wanted), whole)
    assert _listed(changed) == _listed(whole)
