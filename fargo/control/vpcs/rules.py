"""Security group rules as values: what a request's IpPermissions ask for (one `RuleSpec` per protocol, port
range and peer), and how EC2 shows rules (IpPermissions of DescribeSecurityGroups, SecurityGroupRules).

A rule's identity is its direction, protocol, ports and peer, never its description. Protocols are kept as
EC2 shows them: tcp, udp, icmp, icmpv6 (also when given as 6, 17, 1, 58), -1, or another number 0-255;
for -1 and those other numbers the ports are -1/-1 whatever the request said (all ports, as EC2 does).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fargo import clock
from fargo.control.vpcs import ids
from fargo.control.vpcs import messages as msg
from fargo.control.vpcs.cidrs import rule_cidr
from fargo.errors import (InvalidParameterCombination, InvalidParameterValue, InvalidPermissionMalformed,
                          InvalidPrefixListIdNotFound, MissingParameter)
from fargo.store.network_store import GroupRow, RuleRow

PEER_CIDR4 = "cidr-ipv4"
PEER_CIDR6 = "cidr-ipv6"
PEER_GROUP = "group"
PEER_PREFIX_LIST = "prefix-list"

ALL = "-1"
_NAMED = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "icmpv6",
          "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "-1": ALL}
_WITH_PORTS = ("tcp", "udp", "icmp", "icmpv6")
_DESCRIPTION_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789. _-:/()#,@[]+=&;{}!$*")

# How a request names another group of the rule's VPC: (group id or None, group name or None) -> the group.
GroupResolver = Callable[[str | None, str | None], GroupRow]


@dataclass(frozen=True)
class RuleSpec:
    is_egress: bool
    protocol: str
    from_port: int
    to_port: int
    peer_kind: str
    peer: str
    description: str | None = None

    @property
    def identity(self) -> tuple[bool, str, int, int, str, str]:
        return (self.is_egress, self.protocol, self.from_port, self.to_port, self.peer_kind, self.peer)

    def row(self, group_id: str, account_id: str, rule_id: str | None = None) -> RuleRow:
        return RuleRow(rule_id=rule_id or ids.new_id(ids.SECURITY_GROUP_RULE), group_id=group_id,
                       is_egress=self.is_egress, protocol=self.protocol, from_port=self.from_port,
                       to_port=self.to_port, peer_kind=self.peer_kind, peer=self.peer,
                       peer_owner=account_id if self.peer_kind == PEER_GROUP else None,
                       description=self.description, created_at=clock.now())


def spec_of(row: RuleRow) -> RuleSpec:
    return RuleSpec(row.is_egress, row.protocol, row.from_port, row.to_port, row.peer_kind, row.peer, row.description)


def allow_all_egress() -> RuleSpec:
    """What every new group has: everything out, to anywhere."""
    return RuleSpec(True, ALL, -1, -1, PEER_CIDR4, "0.0.0.0/0")


def allow_all_from(group_id: str) -> RuleSpec:
    """The default group's ingress rule: everything in, from the group's own members."""
    return RuleSpec(False, ALL, -1, -1, PEER_GROUP, group_id)


def duplicate_message(spec: RuleSpec) -> str:
    return msg.rule_duplicate(spec.peer, spec.protocol, spec.from_port, spec.to_port)


# --- requests -------------------------------------------------------------------------------------

def specs_from_request(p: dict, is_egress: bool, resolve_group: GroupResolver) -> list[RuleSpec]:
    """The rules an Authorize/Revoke request names, in order, from IpPermissions or the shorthand members
    (IpProtocol, FromPort, ToPort, CidrIp, SourceSecurityGroupName)."""
    shorthand = {k: p[k] for k in ("IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName")
                 if p.get(k) not in (None, "")}
    permissions = p.get("IpPermissions") or []
    if permissions and shorthand:
        raise InvalidParameterCombination(msg.PERMISSIONS_AND_SHORTHAND)
    if shorthand:
        permission: dict = {k: shorthand[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in shorthand}
        if "CidrIp" in shorthand:
            permission["IpRanges"] = [{"CidrIp": shorthand["CidrIp"]}]
        if "SourceSecurityGroupName" in shorthand:
            permission["UserIdGroupPairs"] = [{"GroupName": shorthand["SourceSecurityGroupName"]}]
        permission.setdefault("IpProtocol", ALL if "SourceSecurityGroupName" in shorthand else None)
        permissions = [permission]
    if not permissions:
        raise MissingParameter(msg.NOTHING_TO_AUTHORIZE)
    specs: list[RuleSpec] = []
    for permission in permissions:
        specs.extend(_specs_of_permission(permission, is_egress, resolve_group))
    seen: set[tuple] = set()
    for spec in specs:
        if spec.identity in seen:
            raise InvalidParameterValue(msg.SAME_PERMISSION_TWICE)
        seen.add(spec.identity)
    return specs


def _specs_of_permission(permission: dict, is_egress: bool, resolve_group: GroupResolver) -> list[RuleSpec]:
    protocol, from_port, to_port = _protocol_and_ports(permission)
    peers: list[tuple[str, str, str | None]] = []
    for item in permission.get("IpRanges") or []:
        peers.append((PEER_CIDR4, rule_cidr(str(item.get("CidrIp") or ""), 4), _description(item)))
    for item in permission.get("Ipv6Ranges") or []:
        peers.append((PEER_CIDR6, rule_cidr(str(item.get("CidrIpv6") or ""), 6), _description(item)))
    for item in permission.get("UserIdGroupPairs") or []:
        group = resolve_group(item.get("GroupId") or None, item.get("GroupName") or None)
        peers.append((PEER_GROUP, group.group_id, _description(item)))
    for item in permission.get("PrefixListIds") or []:
        # Fargo has no managed prefix lists, so no id can name one.
        raise InvalidPrefixListIdNotFound(msg.prefix_list_not_found(str(item.get("PrefixListId") or "")))
    if not peers:
        raise MissingParameter(msg.NO_RULE_SOURCE)
    return [RuleSpec(is_egress, protocol, from_port, to_port, kind, peer, description)
            for kind, peer, description in peers]


def _protocol_and_ports(permission: dict) -> tuple[str, int, int]:
    raw = permission.get("IpProtocol")
    if raw is None or str(raw).strip() == "":
        raise InvalidParameterValue(msg.PROTOCOL_REQUIRED)
    protocol = normalise_protocol(str(raw))
    from_port, to_port = permission.get("FromPort"), permission.get("ToPort")
    if protocol in ("tcp", "udp"):
        if from_port is None or to_port is None:
            raise InvalidParameterValue(msg.TCP_UDP_PORTS_REQUIRED)
        for port in (from_port, to_port):
            if not 0 <= port <= 65535:
                raise InvalidPermissionMalformed(msg.port_out_of_range(port))
        if from_port > to_port:
            raise InvalidPermissionMalformed(msg.port_range_reversed(from_port, to_port))
        return protocol, from_port, to_port
    if protocol in ("icmp", "icmpv6"):
        if from_port is None or to_port is None:
            if protocol == "icmp":
                raise InvalidParameterValue(msg.ICMP_PORTS_REQUIRED)
            return protocol, -1, -1
        if not -1 <= from_port <= 255:
            raise InvalidPermissionMalformed(msg.icmp_type_out_of_range(from_port))
        if not -1 <= to_port <= 255:
            raise InvalidPermissionMalformed(msg.icmp_code_out_of_range(to_port))
        return protocol, from_port, -1 if from_port == -1 else to_port
    return protocol, -1, -1


def normalise_protocol(raw: str) -> str:
    value = raw.strip().lower()
    if value in _NAMED:
        return _NAMED[value]
    if value.isdigit() and 0 <= int(value) <= 255:
        return str(int(value))
    raise InvalidParameterValue(msg.unknown_protocol(raw))


def _description(item: dict) -> str | None:
    text = item.get("Description")
    if text is None or text == "":
        return None
    text = str(text)
    if len(text) > 255 or not set(text) <= _DESCRIPTION_CHARS:
        raise InvalidParameterValue(msg.BAD_RULE_DESCRIPTION)
    return text


# --- how EC2 shows rules ----------------------------------------------------------------------------

def _has_ports(protocol: str) -> bool:
    return protocol in _WITH_PORTS


def ip_permissions(rules: Sequence[RuleRow], account_id: str) -> list[dict]:
    """DescribeSecurityGroups' IpPermissions(Egress): rules of one direction merged by protocol and ports."""
    merged: dict[tuple[str, int, int], dict] = {}
    for rule in rules:
        key = (rule.protocol, rule.from_port, rule.to_port)
        if key not in merged:
            permission: dict = {"IpProtocol": rule.protocol, "IpRanges": [], "Ipv6Ranges": [],
                                "PrefixListIds": [], "UserIdGroupPairs": []}
            if _has_ports(rule.protocol):
                permission["FromPort"], permission["ToPort"] = rule.from_port, rule.to_port
            merged[key] = permission
        entry: dict
        if rule.peer_kind == PEER_CIDR4:
            entry, field = {"CidrIp": rule.peer}, "IpRanges"
        elif rule.peer_kind == PEER_CIDR6:
            entry, field = {"CidrIpv6": rule.peer}, "Ipv6Ranges"
        elif rule.peer_kind == PEER_GROUP:
            entry, field = {"GroupId": rule.peer, "UserId": rule.peer_owner or account_id}, "UserIdGroupPairs"
        else:
            entry, field = {"PrefixListId": rule.peer}, "PrefixListIds"
        if rule.description:
            entry["Description"] = rule.description
        merged[key][field].append(entry)
    return list(merged.values())


def permission_of(spec: RuleSpec, account_id: str) -> dict:
    """One rule as an IpPermission (RevokeSecurityGroup*'s UnknownIpPermissions)."""
    row = spec.row("", account_id, rule_id="")
    return ip_permissions([row], account_id)[0]


def rule_item(rule: RuleRow, account_id: str, region: str, tags: list[dict]) -> dict:
    """A SecurityGroupRule: Authorize's answer and DescribeSecurityGroupRules' items."""
    item: dict = {"SecurityGroupRuleId": rule.rule_id, "GroupId": rule.group_id, "GroupOwnerId": account_id,
                  "IsEgress": rule.is_egress, "IpProtocol": rule.protocol, "FromPort": rule.from_port,
                  "ToPort": rule.to_port, "Tags": tags,
                  "SecurityGroupRuleArn": ids.ec2_arn(region, account_id, "security-group-rule", rule.rule_id)}
    item.update(_peer_fields(rule, account_id))
    if rule.description:
        item["Description"] = rule.description
    return item


def revoked_item(rule: RuleRow) -> dict:
    item: dict = {"SecurityGroupRuleId": rule.rule_id, "GroupId": rule.group_id, "IsEgress": rule.is_egress,
                  "IpProtocol": rule.protocol, "FromPort": rule.from_port, "ToPort": rule.to_port}
    if rule.peer_kind == PEER_GROUP:
        item["ReferencedGroupId"] = rule.peer
    else:
        item.update(_peer_fields(rule, ""))
    if rule.description:
        item["Description"] = rule.description
    return item


def _peer_fields(rule: RuleRow, account_id: str) -> dict:
    if rule.peer_kind == PEER_CIDR4:
        return {"CidrIpv4": rule.peer}
    if rule.peer_kind == PEER_CIDR6:
        return {"CidrIpv6": rule.peer}
    if rule.peer_kind == PEER_GROUP:
        return {"ReferencedGroupInfo": {"GroupId": rule.peer, "UserId": rule.peer_owner or account_id}}
    return {"PrefixListId": rule.peer}
