"""What the host enforces of a VPC's security groups: `VpcPolicy` (fargo.protocol.messages) for each VPC an
agent has task ENIs in, built from the store whole each time.

Every group of the VPC is there with its rules and the private IPs of the ENIs that are its members. Rules
of IPv6 CIDRs are left out: task ENIs have IPv4 addresses only, so no packet can match them.
"""
from __future__ import annotations

import socket
from collections.abc import Iterable

from fargo.control.vpcs.rules import ALL, PEER_CIDR4, PEER_GROUP
from fargo.protocol.messages import GroupPolicy, RulePolicy, VpcPolicy
from fargo.store.network_store import NetworkStore, RuleRow

# The names RulePolicy knows; icmpv6 goes as its protocol number.
_AS_POLICY = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "58", ALL: ALL}


def vpc_policies(store: NetworkStore, vpc_ids: Iterable[str]) -> list[VpcPolicy]:
    """The policies of the VPCs asked that exist, in the order asked."""
    wanted = list(dict.fromkeys(vpc_ids))
    if not wanted:
        return []
    with store.reading() as r:
        vpcs = {v.vpc_id: v for v in r.vpcs(wanted)}
        groups = [g for vpc_id in wanted if vpc_id in vpcs for g in r.groups(vpc_id=vpc_id)]
        rules = r.rules(group_ids=[g.group_id for g in groups])
        enis = r.eni_members(list(vpcs))
    members: dict[str, list[str]] = {}
    for ip, group_ids in enis:
        for group_id in group_ids:
            members.setdefault(group_id, []).append(ip)
    by_group: dict[str, list[RuleRow]] = {}
    for rule in rules:
        by_group.setdefault(rule.group_id, []).append(rule)
    out = []
    for vpc_id in wanted:
        if vpc_id not in vpcs:
            continue
        policies = []
        for g in (g for g in groups if g.vpc_id == vpc_id):
            ingress: list[RulePolicy] = []
            egress: list[RulePolicy] = []
            for x in by_group.get(g.group_id, []):
                enforced = _rule(x)
                if enforced is not None:
                    (egress if x.is_egress else ingress).append(enforced)
            ips = sorted(set(members.get(g.group_id, [])), key=socket.inet_aton)  # numeric order, as IPv4Address
            policies.append(GroupPolicy(group_id=g.group_id, ingress=ingress, egress=egress, member_ips=ips))
        out.append(VpcPolicy(vpc_id=vpc_id, cidr=vpcs[vpc_id].cidr, groups=policies))
    return out


def _rule(x: RuleRow) -> RulePolicy | None:
    protocol = _AS_POLICY.get(x.protocol, x.protocol)
    if x.peer_kind == PEER_CIDR4:
        return RulePolicy(protocol=protocol, from_port=x.from_port, to_port=x.to_port, cidr=x.peer)
    if x.peer_kind == PEER_GROUP:
        return RulePolicy(protocol=protocol, from_port=x.from_port, to_port=x.to_port, peer_group=x.peer)
    return None
