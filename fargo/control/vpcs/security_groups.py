"""Security groups: CreateSecurityGroup, DeleteSecurityGroup, DescribeSecurityGroups, and the default group
every VPC has (`default`, all in from itself, all out) that only DeleteVpc removes.

A group is deleted only when no ENI uses it and no other group's rule references it. Every change to
groups bumps the store's generation in its transaction: agents re-apply security groups on it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from fargo import clock
from fargo.control.context import ControlContext
from fargo.control.vpcs import ids
from fargo.control.vpcs import messages as msg
from fargo.control.vpcs.filters import Field, apply_filters
from fargo.control.vpcs.paging import page
from fargo.control.vpcs.params import id_list, optional, required
from fargo.control.vpcs.rules import PEER_CIDR4, PEER_CIDR6, PEER_GROUP, PEER_PREFIX_LIST, RuleSpec, allow_all_egress
from fargo.control.vpcs.rules import allow_all_from, ip_permissions
from fargo.control.vpcs.tags import tag_list, tag_map, tags_on_create, write_tags
from fargo.errors import (CannotDelete, DependencyViolation, InvalidGroupDuplicate, InvalidGroupNotFound,
                          InvalidParameterValue, InvalidVpcIDNotFound, MissingParameter, VPCIdNotSpecified)
from fargo.store.network_store import GroupRow, NetworkReads, NetworkStore, NetworkWrites, RuleRow, VpcRow

DEFAULT_GROUP_NAME = "default"
DEFAULT_GROUP_DESCRIPTION = "default VPC security group"
RESOURCE_TYPE = "security-group"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-:/()#,@[]+=&;{}!$*")


# --- for the rest of the package ------------------------------------------------------------------

def create_group(w: NetworkWrites, row: GroupRow, specs: Sequence[RuleSpec], account_id: str) -> list[RuleRow]:
    """Insert a group with its first rules (InvalidGroup.Duplicate when the VPC has the name in any case)."""
    if not w.insert_group(row):
        raise InvalidGroupDuplicate(msg.group_duplicate(row.group_name, row.vpc_id))
    rules = [spec.row(row.group_id, account_id) for spec in specs]
    for rule in rules:
        w.insert_rule(rule)
    return rules


def create_default_group(w: NetworkWrites, vpc_id: str, group_id: str, account_id: str) -> None:
    row = GroupRow(group_id=group_id, vpc_id=vpc_id, group_name=DEFAULT_GROUP_NAME,
                   description=DEFAULT_GROUP_DESCRIPTION, is_default=True, created_at=clock.now())
    create_group(w, row, [allow_all_from(group_id), allow_all_egress()], account_id)


def default_vpc(r: NetworkReads) -> VpcRow | None:
    return next((v for v in r.vpcs() if v.is_default), None)


def find_group(r: NetworkReads, group_id: str | None, group_name: str | None) -> GroupRow:
    """A group named as EC2's calls name one: by id, or by name in the default VPC only."""
    if group_id:
        group = r.group(group_id)
        if group is None:
            raise InvalidGroupNotFound(msg.group_not_found(group_id))
        return group
    if group_name:
        vpc = default_vpc(r)
        if vpc is None:
            raise VPCIdNotSpecified(msg.NO_DEFAULT_VPC)
        group = r.group_by_name(vpc.vpc_id, group_name)
        if group is None:
            raise InvalidGroupNotFound(msg.group_not_found_in_default_vpc(group_name, vpc.vpc_id))
        return group
    raise MissingParameter(msg.MISSING_GROUP_NAME_OR_ID)


def lock_group(w: NetworkWrites, group_id: str | None, group_name: str | None) -> GroupRow:
    """The group a request names (as `find_group`), read again once its VPC is locked for this transaction."""
    group = find_group(w, group_id, group_name)
    w.vpc(group.vpc_id, lock=True)
    locked = w.group(group.group_id, lock=True)
    if locked is None:  # deleted by another replica while this one waited for the VPC
        raise InvalidGroupNotFound(msg.group_not_found(group.group_id))
    return locked


def group_arn(ctx: ControlContext, group_id: str) -> str:
    return ids.ec2_arn(ctx.config.region, ctx.config.account_id, "security-group", group_id)


def _checked_text(value: str, parameter: str) -> str:
    if len(value) > 255:
        raise InvalidParameterValue(msg.too_long(value, parameter))
    if not value.isascii():
        raise InvalidParameterValue(msg.not_ascii(value, parameter))
    if not set(value) <= _NAME_CHARS:
        raise InvalidParameterValue(msg.bad_group_characters(value, parameter))
    return value


class SecurityGroups:
    def __init__(self, ctx: ControlContext, store: NetworkStore) -> None:
        self.ctx = ctx
        self.store = store

    def handlers(self) -> dict:
        return {"CreateSecurityGroup": self.create_security_group,
                "DeleteSecurityGroup": self.delete_security_group,
                "DescribeSecurityGroups": self.describe_security_groups}

    # --- API -----------------------------------------------------------------------------------

    def create_security_group(self, p: dict) -> dict:
        name = _checked_text(required(p, "GroupName"), "GroupName")
        if name.lower().startswith("sg-"):
            raise InvalidParameterValue(msg.group_name_sg_prefix(name))
        description = _checked_text(required(p, "Description", "GroupDescription"), "GroupDescription")
        tags = tags_on_create(p, RESOURCE_TYPE)
        account = self.ctx.config.account_id
        group_id = ids.new_id(ids.SECURITY_GROUP)
        with self.store.writing(changes_groups=True) as w:
            vpc_id = optional(p, "VpcId")
            if vpc_id is None:
                found = default_vpc(w)
                if found is None:
                    raise VPCIdNotSpecified(msg.NO_DEFAULT_VPC)
                vpc_id = found.vpc_id
            if w.vpc(vpc_id, lock=True) is None:
                raise InvalidVpcIDNotFound(msg.vpc_not_found(vpc_id))
            row = GroupRow(group_id=group_id, vpc_id=vpc_id, group_name=name, description=description,
                           is_default=False, created_at=clock.now())
            create_group(w, row, [allow_all_egress()], account)
            write_tags(w, group_id, RESOURCE_TYPE, tags)
        out: dict = {"GroupId": group_id, "SecurityGroupArn": group_arn(self.ctx, group_id)}
        if tags:
            out["Tags"] = [{"Key": k, "Value": v} for k, v in tags]
        return out

    def delete_security_group(self, p: dict) -> dict:
        with self.store.writing(changes_groups=True) as w:
            group = lock_group(w, optional(p, "GroupId"), optional(p, "GroupName"))
            if group.is_default:
                raise CannotDelete(msg.default_group_cannot_be_deleted(group.group_id))
            in_use = any(group.group_id in eni.group_ids for eni in w.enis(vpc_ids=[group.vpc_id]))
            referenced = any(rule.group_id != group.group_id
                             for rule in w.rules_referencing(group.group_id, PEER_GROUP))
            if in_use or referenced:
                raise DependencyViolation(msg.group_has_dependent_object(group.group_id))
            rule_ids = w.delete_group(group.group_id)
            w.delete_all_tags([group.group_id, *rule_ids])
        return {"Return": True, "GroupId": group.group_id}

    def describe_security_groups(self, p: dict) -> dict:
        wanted_ids, wanted_names = id_list(p, "GroupIds"), id_list(p, "GroupNames")
        with self.store.reading() as r:
            groups = r.groups()
            if wanted_ids or wanted_names:
                chosen = {find_group(r, group_id, None).group_id for group_id in wanted_ids or []}
                chosen |= {find_group(r, None, name).group_id for name in wanted_names or []}
                groups = [g for g in groups if g.group_id in chosen]
            ids_of = [g.group_id for g in groups]
            rules = r.rules(group_ids=ids_of)
            tags = r.tags_by_resource(ids_of)
        names = {g.group_id: g.group_name for g in groups}
        by_group: dict[str, list[RuleRow]] = {}
        for rule in rules:
            by_group.setdefault(rule.group_id, []).append(rule)

        def rules_of(g: GroupRow, egress: bool) -> list[RuleRow]:
            return [x for x in by_group.get(g.group_id, []) if x.is_egress == egress]

        fields: dict[str, Field] = {"group-id": lambda g: g.group_id, "group-name": lambda g: g.group_name,
                  "vpc-id": lambda g: g.vpc_id, "description": lambda g: g.description,
                  "owner-id": lambda g: self.ctx.config.account_id}
        for prefix, egress in (("ip-permission.", False), ("egress.ip-permission.", True)):
            fields.update(_permission_fields(prefix, egress, rules_of, names))
        groups = apply_filters(groups, p.get("Filters"), fields, tags_of=lambda g: tag_map(tags.get(g.group_id)))
        chunk, token = page(groups, p, "GroupIds")
        account = self.ctx.config.account_id
        out: dict = {"SecurityGroups": [self._render(g, rules_of(g, False), rules_of(g, True), tags.get(g.group_id),
                                                     account) for g in chunk]}
        if token:
            out["NextToken"] = token
        return out

    def _render(self, g: GroupRow, ingress: list[RuleRow], egress: list[RuleRow], tags: list | None,
                account: str) -> dict:
        out = {"GroupId": g.group_id, "GroupName": g.group_name, "Description": g.description,
               "VpcId": g.vpc_id, "OwnerId": account, "SecurityGroupArn": group_arn(self.ctx, g.group_id),
               "IpPermissions": ip_permissions(ingress, account),
               "IpPermissionsEgress": ip_permissions(egress, account)}
        if tags:
            out["Tags"] = tag_list(tags)
        return out


def _permission_fields(prefix: str, egress: bool, rules_of: Callable[[GroupRow, bool], list[RuleRow]],
                       names: dict[str, str]) -> dict[str, Field]:
    """The ip-permission.* (or egress.ip-permission.*) filters of DescribeSecurityGroups."""
    def peers(kind: str) -> Field:
        return lambda g: [x.peer for x in rules_of(g, egress) if x.peer_kind == kind]
    return {
        prefix + "cidr": peers(PEER_CIDR4), prefix + "ipv6-cidr": peers(PEER_CIDR6),
        prefix + "group-id": peers(PEER_GROUP), prefix + "prefix-list-id": peers(PEER_PREFIX_LIST),
        prefix + "group-name": lambda g: [names.get(x.peer) for x in rules_of(g, egress) if x.peer_kind == PEER_GROUP],
        prefix + "user-id": lambda g: [x.peer_owner for x in rules_of(g, egress) if x.peer_kind == PEER_GROUP],
        prefix + "protocol": lambda g: [x.protocol for x in rules_of(g, egress)],
        prefix + "from-port": lambda g: [x.from_port for x in rules_of(g, egress)],
        prefix + "to-port": lambda g: [x.to_port for x in rules_of(g, egress)],
    }
