"""VPCs: CreateVpc (with its default security group), DeleteVpc, DescribeVpcs.

A VPC is deleted only when it has no subnets and no groups but its default one, which goes with it.
Two VPCs may have the same CIDR, as in EC2.
"""
from __future__ import annotations

from fargo import clock
from fargo.control.context import ControlContext
from fargo.control.vpcs import ids
from fargo.control.vpcs import messages as msg
from fargo.control.vpcs.cidrs import network_block
from fargo.control.vpcs.filters import apply_filters
from fargo.control.vpcs.paging import page
from fargo.control.vpcs.params import id_list, optional, required
from fargo.control.vpcs.security_groups import create_default_group
from fargo.control.vpcs.tags import tag_list, tag_map, tags_on_create, write_tags
from fargo.errors import (DependencyViolation, InvalidParameterValue, InvalidVpcIDNotFound, InvalidVpcRange,
                          UnsupportedOperation)
from fargo.store.network_store import NetworkStore, NetworkWrites, TagRow, VpcRow

RESOURCE_TYPE = "vpc"
# Every VPC of a region uses the region's default DHCP options set.
DHCP_OPTIONS_ID = "dopt-fargo-default"
_TENANCIES = ("default", "dedicated")
_IPV6_OR_IPAM = ("Ipv6Pool", "Ipv6CidrBlock", "Ipv4IpamPoolId", "Ipv4NetmaskLength", "Ipv6IpamPoolId",
                 "Ipv6NetmaskLength", "Ipv6CidrBlockNetworkBorderGroup")


def insert_vpc(w: NetworkWrites, vpc: VpcRow, default_group_id: str, account_id: str) -> None:
    """A VPC and its default group, in the caller's transaction (one that `changes_groups`)."""
    w.insert_vpc(vpc)
    create_default_group(w, vpc.vpc_id, default_group_id, account_id)


class Vpcs:
    def __init__(self, ctx: ControlContext, store: NetworkStore) -> None:
        self.ctx = ctx
        self.store = store

    def handlers(self) -> dict:
        return {"CreateVpc": self.create_vpc, "DeleteVpc": self.delete_vpc, "DescribeVpcs": self.describe_vpcs}

    def create_vpc(self, p: dict) -> dict:
        if any(p.get(k) not in (None, "") for k in _IPV6_OR_IPAM) or p.get("AmazonProvidedIpv6CidrBlock"):
            raise UnsupportedOperation(msg.IPV4_ONLY)
        cidr = str(network_block(required(p, "CidrBlock"), InvalidVpcRange))
        tenancy = optional(p, "InstanceTenancy") or "default"
        if tenancy not in _TENANCIES:
            raise InvalidParameterValue(msg.bad_tenancy(tenancy))
        tags = tags_on_create(p, RESOURCE_TYPE)
        vpc = VpcRow(vpc_id=ids.new_id(ids.VPC), cidr=cidr, is_default=False, instance_tenancy=tenancy,
                     created_at=clock.now())
        with self.store.writing(changes_groups=True) as w:
            insert_vpc(w, vpc, ids.new_id(ids.SECURITY_GROUP), self.ctx.config.account_id)
            write_tags(w, vpc.vpc_id, RESOURCE_TYPE, tags)
        shown = [TagRow(vpc.vpc_id, RESOURCE_TYPE, k, v) for k, v in tags]
        return {"Vpc": dict(self._render(vpc, shown), State="pending")}  # EC2 answers pending, then available

    def delete_vpc(self, p: dict) -> dict:
        vpc_id = required(p, "VpcId")
        with self.store.writing(changes_groups=True) as w:
            if w.vpc(vpc_id, lock=True) is None:
                raise InvalidVpcIDNotFound(msg.vpc_not_found(vpc_id))
            groups = w.groups(vpc_id=vpc_id)
            if w.subnets(vpc_id=vpc_id) or w.enis(vpc_ids=[vpc_id]) or any(not g.is_default for g in groups):
                raise DependencyViolation(msg.vpc_has_dependencies(vpc_id))
            doomed = [vpc_id]
            for group in groups:
                doomed += [group.group_id, *w.delete_group(group.group_id)]
            w.delete_all_tags(doomed)
            w.delete_vpc(vpc_id)
        return {}

    def describe_vpcs(self, p: dict) -> dict:
        wanted = id_list(p, "VpcIds")
        with self.store.reading() as r:
            vpcs = r.vpcs(wanted)
            tags = r.tags_by_resource([v.vpc_id for v in vpcs])
        if wanted:
            found = {v.vpc_id for v in vpcs}
            missing = [vpc_id for vpc_id in wanted if vpc_id not in found]
            if missing:
                raise InvalidVpcIDNotFound(msg.vpc_not_found(missing[0]))
        vpcs = apply_filters(vpcs, p.get("Filters"), {
            "vpc-id": lambda v: v.vpc_id, "cidr": lambda v: v.cidr, "cidr-block-association.cidr-block":
            lambda v: v.cidr, "cidr-block-association.association-id": lambda v: _association_id(v.vpc_id),
            "cidr-block-association.state": lambda v: "associated", "dhcp-options-id": lambda v: DHCP_OPTIONS_ID,
            "is-default": lambda v: v.is_default, "isDefault": lambda v: v.is_default, "state": lambda v: "available",
            "owner-id": lambda v: self.ctx.config.account_id, "instance-tenancy": lambda v: v.instance_tenancy,
        }, tags_of=lambda v: tag_map(tags.get(v.vpc_id)))
        chunk, token = page(vpcs, p, "VpcIds")
        out: dict = {"Vpcs": [self._render(v, tags.get(v.vpc_id)) for v in chunk]}
        if token:
            out["NextToken"] = token
        return out

    def _render(self, v: VpcRow, tags: list[TagRow] | None) -> dict:
        out = {"VpcId": v.vpc_id, "CidrBlock": v.cidr, "State": "available", "DhcpOptionsId": DHCP_OPTIONS_ID,
               "InstanceTenancy": v.instance_tenancy, "IsDefault": v.is_default, "OwnerId": self.ctx.config.account_id,
               "CidrBlockAssociationSet": [{"AssociationId": _association_id(v.vpc_id), "CidrBlock": v.cidr,
                                            "CidrBlockState": {"State": "associated"}}],
               "Ipv6CidrBlockAssociationSet": []}
        if tags:
            out["Tags"] = tag_list(tags)
        return out


def _association_id(vpc_id: str) -> str:
    return ids.derived_id("vpc-cidr-assoc", vpc_id)
