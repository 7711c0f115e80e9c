"""Security group rules: AuthorizeSecurityGroupIngress/Egress, RevokeSecurityGroupIngress/Egress and
DescribeSecurityGroupRules.

A request's rules are all applied or none: a duplicate, a missing rule (outside the default VPC) or the
quota of 60 rules per direction refuses the whole request. Peers are CIDRs or groups of the same VPC.
"""
from __future__ import annotations

from fargo.control.context import ControlContext
from fargo.control.vpcs import messages as msg
from fargo.control.vpcs.filters import apply_filters
from fargo.control.vpcs.paging import page
from fargo.control.vpcs.params import id_list, optional, required
from fargo.control.vpcs.rules import (GroupResolver, duplicate_message, permission_of, revoked_item, rule_item,
                                      spec_of, specs_from_request)
from fargo.control.vpcs.security_groups import lock_group
from fargo.control.vpcs.tags import tag_list, tag_map, tags_on_create, write_tags
from fargo.errors import (InvalidGroupNotFound, InvalidParameterCombination, InvalidPermissionDuplicate,
                          InvalidPermissionNotFound, InvalidSecurityGroupRuleIdNotFound,
                          MissingParameter, RulesPerSecurityGroupLimitExceeded)
from fargo.store.network_store import GroupRow, NetworkReads, NetworkStore, NetworkWrites

RULES_PER_DIRECTION = 60
RESOURCE_TYPE = "security-group-rule"


class SecurityGroupRules:
    def __init__(self, ctx: ControlContext, store: NetworkStore) -> None:
        self.ctx = ctx
        self.store = store

    def handlers(self) -> dict:
        return {"AuthorizeSecurityGroupIngress": lambda p: self.authorize(p, is_egress=False),
                "AuthorizeSecurityGroupEgress": lambda p: self.authorize(p, is_egress=True),
                "RevokeSecurityGroupIngress": lambda p: self.revoke(p, is_egress=False),
                "RevokeSecurityGroupEgress": lambda p: self.revoke(p, is_egress=True),
                "DescribeSecurityGroupRules": self.describe_security_group_rules}

    # --- API -----------------------------------------------------------------------------------

    def authorize(self, p: dict, is_egress: bool) -> dict:
        tags = tags_on_create(p, RESOURCE_TYPE)
        account, region = self.ctx.config.account_id, self.ctx.config.region
        with self.store.writing(changes_groups=True) as w:
            group = self._locked_group(w, p, is_egress)
            specs = specs_from_request(p, is_egress, _resolver(w, group))
            if w.rule_count(group.group_id, is_egress) + len(specs) > RULES_PER_DIRECTION:
                raise RulesPerSecurityGroupLimitExceeded(msg.RULE_LIMIT)
            rows = [spec.row(group.group_id, account) for spec in specs]
            for spec, row in zip(specs, rows):
                if not w.insert_rule(row):
                    raise InvalidPermissionDuplicate(duplicate_message(spec))
                write_tags(w, row.rule_id, RESOURCE_TYPE, tags)
        shown = [{"Key": k, "Value": v} for k, v in tags]
        return {"Return": True, "SecurityGroupRules": [rule_item(row, account, region, shown) for row in rows]}

    def revoke(self, p: dict, is_egress: bool) -> dict:
        account = self.ctx.config.account_id
        rule_ids = id_list(p, "SecurityGroupRuleIds")
        with self.store.writing(changes_groups=True) as w:
            group = self._locked_group(w, p, is_egress)
            existing = [x for x in w.rules(group_ids=[group.group_id]) if x.is_egress == is_egress]
            unknown: list[dict] = []
            if rule_ids:
                if p.get("IpPermissions") or any(p.get(k) not in (None, "") for k in (
                        "IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName")):
                    raise InvalidParameterCombination(msg.RULE_IDS_AND_PERMISSIONS)
                by_id = {x.rule_id: x for x in existing}
                missing = [rule_id for rule_id in rule_ids if rule_id not in by_id]
                if missing:
                    raise InvalidSecurityGroupRuleIdNotFound(msg.rule_not_found(missing[0]))
                doomed = [by_id[rule_id] for rule_id in rule_ids]
            else:
                by_identity = {spec_of(x).identity: x for x in existing}
                doomed = []
                for spec in specs_from_request(p, is_egress, _resolver(w, group)):
                    found = by_identity.get(spec.identity)
                    if found is not None:
                        doomed.append(found)
                    else:
                        unknown.append(permission_of(spec, account))
                vpc = w.vpc(group.vpc_id)
                # EC2 refuses unknown rules outside the default VPC; in it, it lists them and goes on.
                if unknown and not (vpc is not None and vpc.is_default):
                    raise InvalidPermissionNotFound(msg.RULE_NOT_FOUND)
            if doomed:
                w.delete_rules([x.rule_id for x in doomed])
                w.delete_all_tags([x.rule_id for x in doomed])
        out: dict = {"Return": True, "RevokedSecurityGroupRules": [revoked_item(x) for x in doomed]}
        if unknown:
            out["UnknownIpPermissions"] = unknown
        return out

    def describe_security_group_rules(self, p: dict) -> dict:
        wanted = id_list(p, "SecurityGroupRuleIds")
        with self.store.reading() as r:
            rules = r.rules(rule_ids=wanted)
            tags = r.tags_by_resource([x.rule_id for x in rules])
        if wanted:
            found = {x.rule_id for x in rules}
            missing = [rule_id for rule_id in wanted if rule_id not in found]
            if missing:
                raise InvalidSecurityGroupRuleIdNotFound(msg.rule_not_found(missing[0]))
        rules = apply_filters(rules, p.get("Filters"), {
            "group-id": lambda x: x.group_id, "security-group-rule-id": lambda x: x.rule_id,
        }, tags_of=lambda x: tag_map(tags.get(x.rule_id)))
        chunk, token = page(rules, p, "SecurityGroupRuleIds")
        account, region = self.ctx.config.account_id, self.ctx.config.region
        out: dict = {"SecurityGroupRules": [rule_item(x, account, region, tag_list(tags.get(x.rule_id)))
                                            for x in chunk]}
        if token:
            out["NextToken"] = token
        return out

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _locked_group(w: NetworkWrites, p: dict, is_egress: bool) -> GroupRow:
        """The request's group, with its VPC locked; egress calls name groups by id only."""
        if is_egress:
            return lock_group(w, required(p, "GroupId"), None)
        return lock_group(w, optional(p, "GroupId"), optional(p, "GroupName"))


def _resolver(r: NetworkReads, group: GroupRow) -> GroupResolver:
    """Peers are groups of the rule's own VPC (Fargo has no VPC peering), named by id or by name."""
    def resolve(group_id: str | None, group_name: str | None) -> GroupRow:
        if group_id:
            peer = r.group(group_id)
            if peer is None:
                raise InvalidGroupNotFound(msg.group_not_found(group_id))
            if peer.vpc_id != group.vpc_id:
                raise InvalidGroupNotFound(msg.group_not_found_in_vpc(group_id, group.vpc_id))
            return peer
        if group_name:
            peer = r.group_by_name(group.vpc_id, group_name)
            if peer is None:
                raise InvalidGroupNotFound(msg.group_not_found_in_vpc(group_name, group.vpc_id))
            return peer
        raise MissingParameter(msg.MISSING_GROUP_NAME_OR_ID)
    return resolve
