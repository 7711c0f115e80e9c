"""Subnets: CreateSubnet (a block inside its VPC, overlapping none of its siblings, in one of Fargo's AZs),
DeleteSubnet (refused while ENIs are in it: tasks' and EFS mount targets'), DescribeSubnets.

AvailableIpAddressCount is the block's size less EC2's 5 reserved addresses less the ENIs in it.
"""
from __future__ import annotations

import ipaddress
from collections import Counter

from fargo import clock
from fargo.control.context import ControlContext
from fargo.control.vpcs import ids
from fargo.control.vpcs import messages as msg
from fargo.control.vpcs.cidrs import network_block
from fargo.control.vpcs.filters import apply_filters
from fargo.control.vpcs.paging import page
from fargo.control.vpcs.params import id_list, optional, required
from fargo.control.vpcs.tags import tag_list, tag_map, tags_on_create, write_tags
from fargo.control.vpcs.zones import AvailabilityZones
from fargo.errors import (DependencyViolation, InvalidParameterCombination, InvalidParameterValue,
                          InvalidSubnetConflict, InvalidSubnetIDNotFound, InvalidSubnetRange, InvalidVpcIDNotFound,
                          UnsupportedOperation)
from fargo.network.ipam import usable_address_count
from fargo.store.network_store import NetworkStore, NetworkWrites, SubnetRow, TagRow

RESOURCE_TYPE = "subnet"
_IPV6_OR_IPAM = ("Ipv6CidrBlock", "Ipv4IpamPoolId", "Ipv4NetmaskLength", "Ipv6IpamPoolId", "Ipv6NetmaskLength")


def insert_subnet(w: NetworkWrites, subnet: SubnetRow) -> None:
    """A subnet of a VPC locked by the caller: inside the VPC's block, overlapping none of its siblings."""
    vpc = w.vpc(subnet.vpc_id)
    block = ipaddress.IPv4Network(subnet.cidr)
    if vpc is None:
        raise InvalidVpcIDNotFound(msg.vpc_not_found(subnet.vpc_id))
    if not block.subnet_of(ipaddress.IPv4Network(vpc.cidr)):
        raise InvalidSubnetRange(msg.cidr_invalid(subnet.cidr))
    if any(block.overlaps(ipaddress.IPv4Network(s.cidr)) for s in w.subnets(vpc_id=subnet.vpc_id)):
        raise InvalidSubnetConflict(msg.subnet_conflict(subnet.cidr))
    w.insert_subnet(subnet)


class Subnets:
    def __init__(self, ctx: ControlContext, store: NetworkStore, zones: AvailabilityZones) -> None:
        self.ctx = ctx
        self.store = store
        self.zones = zones

    def handlers(self) -> dict:
        return {"CreateSubnet": self.create_subnet, "DeleteSubnet": self.delete_subnet,
                "DescribeSubnets": self.describe_subnets}

    def create_subnet(self, p: dict) -> dict:
        vpc_id = required(p, "VpcId")
        if any(p.get(k) not in (None, "") for k in _IPV6_OR_IPAM) or p.get("Ipv6Native"):
            raise UnsupportedOperation(msg.IPV4_ONLY)
        if optional(p, "OutpostArn"):
            raise UnsupportedOperation(msg.OUTPOSTS_UNSUPPORTED)
        zone = self._zone(optional(p, "AvailabilityZone"), optional(p, "AvailabilityZoneId"))
        given = required(p, "CidrBlock")
        cidr = str(network_block(given, InvalidSubnetRange))
        tags = tags_on_create(p, RESOURCE_TYPE)
        with self.store.writing() as w:
            if w.vpc(vpc_id, lock=True) is None:
                raise InvalidVpcIDNotFound(msg.vpc_not_found(vpc_id))
            if zone is None:  # EC2 picks one: here the AZ of the VPC with the fewest subnets
                used = Counter(s.availability_zone for s in w.subnets(vpc_id=vpc_id))
                zone = min(self.zones.names, key=lambda name: (used[name], name))
            subnet = SubnetRow(subnet_id=ids.new_id(ids.SUBNET), vpc_id=vpc_id, cidr=cidr, availability_zone=zone,
                               default_for_az=False, created_at=clock.now())
            insert_subnet(w, subnet)
            write_tags(w, subnet.subnet_id, RESOURCE_TYPE, tags)
        shown = [TagRow(subnet.subnet_id, RESOURCE_TYPE, k, v) for k, v in tags]
        return {"Subnet": self._render(subnet, 0, shown)}

    def delete_subnet(self, p: dict) -> dict:
        subnet_id = required(p, "SubnetId")
        with self.store.writing() as w:
            subnet = w.subnet(subnet_id)
            if subnet is None:
                raise InvalidSubnetIDNotFound(msg.subnet_not_found(subnet_id))
            w.vpc(subnet.vpc_id, lock=True)
            # The row lock waits for a RunTask that holds it (for share) while it adds an ENI here.
            if w.subnet(subnet_id, lock=True) is None:
                raise InvalidSubnetIDNotFound(msg.subnet_not_found(subnet_id))
            if w.enis(subnet_id=subnet_id):
                raise DependencyViolation(msg.subnet_has_dependencies(subnet_id))
            w.delete_all_tags([subnet_id])
            w.delete_subnet(subnet_id)
        return {}

    def describe_subnets(self, p: dict) -> dict:
        wanted = id_list(p, "SubnetIds")
        with self.store.reading() as r:
            subnets = r.subnets(wanted)
            used = r.eni_counts([s.subnet_id for s in subnets])
            tags = r.tags_by_resource([s.subnet_id for s in subnets])
        if wanted:
            found = {s.subnet_id for s in subnets}
            missing = [subnet_id for subnet_id in wanted if subnet_id not in found]
            if missing:
                raise InvalidSubnetIDNotFound(msg.subnet_not_found(missing[0]))
        account = self.ctx.config.account_id

        def available(s: SubnetRow) -> int:
            return usable_address_count(s.cidr) - used.get(s.subnet_id, 0)
        subnets = apply_filters(subnets, p.get("Filters"), {
            "vpc-id": lambda s: s.vpc_id, "subnet-id": lambda s: s.subnet_id,
            "availability-zone": lambda s: s.availability_zone, "availabilityZone": lambda s: s.availability_zone,
            "availability-zone-id": lambda s: self.zones.zone_id(s.availability_zone),
            "availabilityZoneId": lambda s: self.zones.zone_id(s.availability_zone),
            "cidr-block": lambda s: s.cidr, "cidr": lambda s: s.cidr, "cidrBlock": lambda s: s.cidr,
            "default-for-az": lambda s: s.default_for_az, "defaultForAz": lambda s: s.default_for_az,
            "map-public-ip-on-launch": lambda s: False, "state": lambda s: "available",
            "owner-id": lambda s: account, "subnet-arn": lambda s: self._arn(s.subnet_id),
            "available-ip-address-count": available, "ipv6-native": lambda s: False,
        }, tags_of=lambda s: tag_map(tags.get(s.subnet_id)))
        chunk, token = page(subnets, p, "SubnetIds")
        out: dict = {"Subnets": [self._render(s, used.get(s.subnet_id, 0), tags.get(s.subnet_id)) for s in chunk]}
        if token:
            out["NextToken"] = token
        return out

    # --- helpers -------------------------------------------------------------------------------

    def _zone(self, name: str | None, zone_id: str | None) -> str | None:
        if name and zone_id:
            raise InvalidParameterCombination(msg.ZONE_AND_ZONE_ID)
        if name is not None and name not in self.zones.names:
            raise InvalidParameterValue(msg.bad_availability_zone(name, self.zones.names))
        if zone_id is not None:
            name = self.zones.name_of_id(zone_id)
            if name is None:
                raise InvalidParameterValue(msg.bad_availability_zone_id(
                    zone_id, [self.zones.zone_id(n) for n in self.zones.names]))
        return name

    def _arn(self, subnet_id: str) -> str:
        return ids.ec2_arn(self.ctx.config.region, self.ctx.config.account_id, "subnet", subnet_id)

    def _render(self, s: SubnetRow, used: int, tags: list[TagRow] | None) -> dict:
        out = {"SubnetId": s.subnet_id, "SubnetArn": self._arn(s.subnet_id), "VpcId": s.vpc_id, "CidrBlock": s.cidr,
               "State": "available", "AvailabilityZone": s.availability_zone,
               "AvailabilityZoneId": self.zones.zone_id(s.availability_zone),
               "AvailableIpAddressCount": usable_address_count(s.cidr) - used, "DefaultForAz": s.default_for_az,
               "MapPublicIpOnLaunch": False, "AssignIpv6AddressOnCreation": False, "EnableDns64": False,
               "Ipv6Native": False, "OwnerId": self.ctx.config.account_id, "Ipv6CidrBlockAssociationSet": [],
               "PrivateDnsNameOptionsOnLaunch": {"HostnameType": "ip-name", "EnableResourceNameDnsARecord": False,
                                                 "EnableResourceNameDnsAAAARecord": False}}
        if tags:
            out["Tags"] = tag_list(tags)
        return out
