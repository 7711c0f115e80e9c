"""Does NFS (TCP 2049) get from a task to a mount target through the security groups of both ends?

Security groups are stateful: the connection needs an egress rule of one of the task's groups that lets TCP
2049 out to the mount target, and an ingress rule of one of the mount target's groups that lets it in from
the task. A rule's peer is a CIDR holding the other end's address, or a group the other end is a member of;
protocol -1 lets everything through. Pure: the caller hands over the rules of both ends' groups.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from fargo.control.vpcs.rules import ALL, PEER_CIDR4, PEER_GROUP
from fargo.store.network_store import RuleRow

NFS_PORT = 2049
_TCP = ("tcp", "6")


@dataclass(frozen=True)
class Endpoint:
    """One end of the connection: its private address and the groups of its ENI."""

    ip: str
    groups: Sequence[str]


def nfs_reachable(task: Endpoint, mount_target: Endpoint, rules: Sequence[RuleRow]) -> bool:
    leaves = any(r.is_egress and r.group_id in task.groups and _admits(r, mount_target) for r in rules)
    enters = any(not r.is_egress and r.group_id in mount_target.groups and _admits(r, task) for r in rules)
    return leaves and enters


def _admits(rule: RuleRow, peer: Endpoint) -> bool:
    """The rule lets TCP 2049 through to or from `peer`."""
    return _carries_nfs(rule) and _names(rule, peer)


def _carries_nfs(rule: RuleRow) -> bool:
    if rule.protocol == ALL:
        return True
    if rule.protocol not in _TCP:
        return False
    return (rule.from_port, rule.to_port) == (-1, -1) or rule.from_port <= NFS_PORT <= rule.to_port


def _names(rule: RuleRow, peer: Endpoint) -> bool:
    if rule.peer_kind == PEER_CIDR4:
        return ipaddress.IPv4Address(peer.ip) in ipaddress.IPv4Network(rule.peer, strict=False)
    if rule.peer_kind == PEER_GROUP:
        return rule.peer in peer.groups
    return False  # IPv6 ranges and prefix lists never hold a mount target's or task's IPv4 address
