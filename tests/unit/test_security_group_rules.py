"""The security group filter as text: what `render_vpc_filter` writes for a VPC's policy and its local ENIs,
and the host's uplink table (pure: nothing is applied here; tests/integration/test_security_groups.py does).
"""
from __future__ import annotations

import re

import pytest

from fargo.network.host_nat import render_host_table
from fargo.network.security_groups import LocalEni, render_vpc_filter
from fargo.network.vpc_router import VpcRouter
from fargo.protocol.messages import GroupPolicy, RulePolicy, VpcPolicy

ROUTER = VpcRouter(
    vpc_id="vpc-1", cidr="10.7.0.0/16", netns_name="fgr-vpc-1", netns_path="/run/netns/fgr-vpc-1",
    resolver_ip="10.7.0.2", uplink="fgu0123456789ab", transit_host_ip="169.254.240.1",
    transit_router_ip="169.254.240.2",
)
WEB = LocalEni("task-web", "fgvweb", "10.7.0.5", ("sg-web",), False)
APP = LocalEni("task-app", "fgvapp", "10.7.16.5", ("sg-app", "sg-extra"), True)


def policy(*groups: GroupPolicy) -> VpcPolicy:
    return VpcPolicy("vpc-1", "10.7.0.0/16", list(groups))


def chain(script: str, name: str) -> list[str]:
    """The rule lines of one chain (its hook line included)."""
    match = re.search(rf"\n\tchain {name} {{\n(.*?)\t}}\n", script, re.S)
    assert match, f"no chain {name}"
    return [line.strip() for line in match.group(1).splitlines()]


def set_elements(script: str, name: str) -> list[str]:
    match = re.search(rf"\n\t(?:set|map) {name} {{\n(.*?)\t}}\n", script, re.S)
    assert match, f"no set {name}"
    elements = re.search(r"elements = \{ (.*) \}", match.group(1))
    return elements.group(1).split(", ") if elements else []


def test_the_script_makes_the_table_if_missing_then_replaces_it_whole() -> None:
    script = render_vpc_filter(policy(), [], ROUTER)
    assert script.startswith("table inet fargo {\n}\ndelete table inet fargo\ntable inet fargo {\n")
    assert script.count("delete table") == 1 and script.endswith("}\n")


def test_replies_pass_first_and_new_traffic_is_dropped_unless_an_eni_chain_accepts_it() -> None:
    script = render_vpc_filter(policy(), [WEB], ROUTER)
    egress, ingress = chain(script, "sg_egress"), chain(script, "sg_ingress")
    assert egress[0] == "type filter hook forward priority 0; policy drop;"
    assert ingress[0] == "type filter hook forward priority 10; policy drop;"
    assert egress[1] == ingress[1] == "ct state established,related accept"
    assert egress[-1] == "iifname vmap @egress_of" and ingress[-1] == "oifname vmap @ingress_of"
    assert set_elements(script, "egress_of") == ['"fgvweb" : jump egress_fgvweb']
    assert set_elements(script, "ingress_of") == ['"fgvweb" : jump ingress_fgvweb']


def test_an_eni_without_rules_gets_empty_chains_so_nothing_new_passes() -> None:
    script = render_vpc_filter(policy(GroupPolicy("sg-web")), [WEB], ROUTER)
    assert chain(script, "egress_fgvweb") == [] and chain(script, "ingress_fgvweb") == []


def test_a_group_the_policy_does_not_carry_allows_nothing() -> None:
    script = render_vpc_filter(policy(), [WEB], ROUTER)
    assert chain(script, "egress_fgvweb") == [] and chain(script, "ingress_fgvweb") == []


def test_an_eni_gets_the_union_of_its_groups_rules_without_repeats() -> None:
    same = RulePolicy("tcp", 443, 443, cidr="0.0.0.0/0")
    groups = (
        GroupPolicy("sg-app", ingress=[RulePolicy("tcp", 8080, 8080, cidr="10.7.0.0/20")], egress=[same]),
        GroupPolicy("sg-extra", ingress=[RulePolicy("udp", 53, 53, cidr="10.0.0.0/8")],
                    egress=[same, RulePolicy("udp", 123, 123, cidr="192.0.2.0/24")]),
    )
    script = render_vpc_filter(policy(*groups), [APP], ROUTER)
    assert chain(script, "ingress_fgvapp") == ["ip saddr 10.7.0.0/20 tcp dport 8080 accept",
                                               "ip saddr 10.0.0.0/8 udp dport 53 accept"]
    assert chain(script, "egress_fgvapp") == ["meta nfproto ipv4 tcp dport 443 accept",
                                              "ip daddr 192.0.2.0/24 udp dport 123 accept"]


def test_a_source_group_is_a_named_set_of_its_member_ips() -> None:
    web = GroupPolicy("sg-web", ingress=[RulePolicy("tcp", 80, 80, peer_group="sg-app")],
                      member_ips=["10.7.0.5"])
    app = GroupPolicy("sg-app", egress=[RulePolicy("tcp", 80, 80, peer_group="sg-web")],
                      member_ips=["10.7.16.5", "10.7.32.9", "10.7.16.5"])
    script = render_vpc_filter(policy(web, app), [WEB, APP], ROUTER)
    assert chain(script, "ingress_fgvweb") == ["ip saddr @members_sg_app tcp dport 80 accept"]
    assert chain(script, "egress_fgvapp") == ["ip daddr @members_sg_web tcp dport 80 accept"]
    assert set_elements(script, "members_sg_app") == ["10.7.16.5", "10.7.32.9"]  # members elsewhere count too
    assert set_elements(script, "members_sg_web") == ["10.7.0.5"]


def test_a_peer_group_missing_from_the_policy_is_an_empty_set() -> None:
    web = GroupPolicy("sg-web", ingress=[RulePolicy("-1", peer_group="sg-gone")])
    script = render_vpc_filter(policy(web), [WEB], ROUTER)
    assert set_elements(script, "members_sg_gone") == []
    assert chain(script, "ingress_fgvweb") == ["ip saddr @members_sg_gone accept"]


@pytest.mark.parametrize(("rule", "match"), [
    (RulePolicy("tcp", 22, 22, cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 tcp dport 22 accept"),
    (RulePolicy("tcp", 1000, 2000, cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 tcp dport 1000-2000 accept"),
    (RulePolicy("tcp", -1, -1, cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 meta l4proto tcp accept"),
    (RulePolicy("tcp", 0, 65535, cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 meta l4proto tcp accept"),
    (RulePolicy("6", 443, 443, cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 tcp dport 443 accept"),
    (RulePolicy("UDP", 53, 53, cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 udp dport 53 accept"),
    (RulePolicy("17", -1, -1, cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 meta l4proto udp accept"),
    (RulePolicy("icmp", -1, -1, cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 meta l4proto icmp accept"),
    (RulePolicy("icmp", 8, -1, cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 icmp type 8 accept"),
    (RulePolicy("1", 3, 4, cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 icmp type 3 icmp code 4 accept"),
    (RulePolicy("-1", cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 accept"),
    (RulePolicy("47", cidr="10.0.0.0/8"), "ip saddr 10.0.0.0/8 meta l4proto 47 accept"),
    (RulePolicy("icmpv6", -1, -1, cidr="::/0"), "meta nfproto ipv6 meta l4proto 58 accept"),
    (RulePolicy("-1", cidr="0.0.0.0/0"), "meta nfproto ipv4 accept"),
    (RulePolicy("tcp", 80, 80, cidr="2001:db8::/32"), "ip6 saddr 2001:db8::/32 tcp dport 80 accept"),
    (RulePolicy("-1", cidr="10.7.0.5/32"), "ip saddr 10.7.0.5/32 accept"),
])
def test_each_protocol_and_port_form_is_written_as_aws_means_it(rule: RulePolicy, match: str) -> None:
    script = render_vpc_filter(policy(GroupPolicy("sg-web", ingress=[rule])), [WEB], ROUTER)
    assert chain(script, "ingress_fgvweb") == [match]


def test_egress_rules_match_the_destination_and_ingress_rules_the_source() -> None:
    rule = RulePolicy("tcp", 80, 80, cidr="10.9.0.0/16")
    script = render_vpc_filter(policy(GroupPolicy("sg-web", ingress=[rule], egress=[rule])), [WEB], ROUTER)
    assert chain(script, "ingress_fgvweb") == ["ip saddr 10.9.0.0/16 tcp dport 80 accept"]
    assert chain(script, "egress_fgvweb") == ["ip daddr 10.9.0.0/16 tcp dport 80 accept"]


def test_only_enis_with_a_public_ip_may_leave_by_the_uplink_and_never_to_link_local_addresses() -> None:
    script = render_vpc_filter(policy(), [WEB, APP], ROUTER)
    assert set_elements(script, "public_ips") == ["10.7.16.5"]
    ingress = chain(script, "sg_ingress")
    assert 'oifname "uplink" ip saddr @public_ips accept' in ingress
    assert ingress.index('oifname "uplink" ip daddr 169.254.0.0/16 drop') < ingress.index(
        'oifname "uplink" ip saddr @public_ips accept')
    assert chain(script, "nat_out") == ["type nat hook postrouting priority 100; policy accept;",
                                        'oifname "uplink" masquerade']


def test_a_known_port_may_only_send_from_its_own_address() -> None:
    script = render_vpc_filter(policy(), [WEB, APP], ROUTER)
    assert set_elements(script, "eni_addresses") == ['"fgvapp" . 10.7.16.5', '"fgvweb" . 10.7.0.5']
    assert "iifname . ip saddr != @eni_addresses drop" in chain(script, "sg_egress")
    assert "iifname . ip saddr != @eni_addresses drop" in chain(script, "router_input")


def test_tasks_reach_only_the_resolver_the_metadata_endpoint_and_the_vpc_endpoint_on_the_router() -> None:
    script = render_vpc_filter(policy(), [WEB], ROUTER)
    assert chain(script, "router_input") == [
        "type filter hook input priority 0; policy drop;",
        'iifname "lo" accept',
        "ct state established,related accept",
        "iifname . ip saddr != @eni_addresses drop",
        "ip daddr 10.7.0.2 udp dport 53 accept",
        "ip daddr 10.7.0.2 tcp dport 53 accept",
        "ip daddr 169.254.170.2 tcp dport 80 accept",
        "ip daddr 10.7.0.3 tcp dport 80 accept",
    ]


def test_the_same_input_in_another_order_gives_the_same_script() -> None:
    web = GroupPolicy("sg-web", ingress=[RulePolicy("tcp", 80, 80, peer_group="sg-app")], member_ips=["10.7.0.5"])
    app = GroupPolicy("sg-app", member_ips=["10.7.16.5", "10.7.0.9"])
    assert render_vpc_filter(policy(web, app), [WEB, APP], ROUTER) == render_vpc_filter(
        policy(app, web), [APP, WEB], ROUTER)


@pytest.mark.parametrize("bad", [
    LocalEni("t", 'fgv"; flush ruleset', "10.7.0.5", (), False),
    LocalEni("t", "fgvweb", "10.7.0.5; drop", (), False),
    LocalEni("t", "fgvweb", "10.7.0.5", ("sg-1 }",), False),
])
def test_names_and_addresses_nft_must_not_see_are_refused(bad: LocalEni) -> None:
    with pytest.raises(ValueError):
        render_vpc_filter(policy(), [bad], ROUTER)


@pytest.mark.parametrize("rule", [
    RulePolicy("tcp", 80, 79, cidr="10.0.0.0/8"),
    RulePolicy("tcp", 80, 70000, cidr="10.0.0.0/8"),
    RulePolicy("icmp", 300, -1, cidr="10.0.0.0/8"),
    RulePolicy("gre", cidr="10.0.0.0/8"),
    RulePolicy("999", cidr="10.0.0.0/8"),
    RulePolicy("tcp", 80, 80, cidr="10.0.0.0/8; accept"),
    RulePolicy("tcp", 80, 80),
    RulePolicy("tcp", 80, 80, cidr="10.0.0.0/8", peer_group="sg-x"),
    RulePolicy("tcp", 80, 80, peer_group="sg_x"),
])
def test_malformed_rules_are_refused(rule: RulePolicy) -> None:
    with pytest.raises(ValueError):
        render_vpc_filter(policy(GroupPolicy("sg-web", ingress=[rule])), [WEB], ROUTER)


def test_two_enis_on_one_port_are_refused() -> None:
    with pytest.raises(ValueError, match="one router port"):
        render_vpc_filter(policy(), [WEB, LocalEni("other", "fgvweb", "10.7.0.6", (), False)], ROUTER)


def test_the_host_table_masquerades_the_transit_range_and_lets_nothing_new_in_by_an_uplink() -> None:
    script = render_host_table("fg", ["fgu2", "fgu1"])
    assert script.startswith("table ip fargo_fg {\n}\ndelete table ip fargo_fg\ntable ip fargo_fg {\n")
    assert set_elements(script, "uplinks") == ['"fgu1"', '"fgu2"']
    assert chain(script, "uplink_nat")[-1] == "ip saddr 169.254.240.0/20 oifname != @uplinks masquerade"
    assert chain(script, "uplink_forward")[-2:] == ["oifname @uplinks ct state established,related accept",
                                                   "oifname @uplinks drop"]
    assert chain(script, "uplink_input")[-1] == "iifname @uplinks drop"


def test_without_uplinks_the_host_table_is_removed() -> None:
    assert render_host_table("fg", []) == "table ip fargo_fg {\n}\ndelete table ip fargo_fg\n"
