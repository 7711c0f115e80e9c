"""The read side of EC2 that Fargate users touch: the default VPC, its subnets, security group and AZs.

Served as botocore's "ec2" model over EC2's query protocol.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fargo.api.aws_service import AwsService
from fargo.api.protocols.ec2_query import EC2_QUERY
from fargo.api.service_models import service_model
from fargo.config import Config
from fargo.errors import InvalidGroupNotFound, InvalidParameterValue, InvalidSubnetIDNotFound, InvalidVpcIDNotFound

Item = dict[str, Any]


class Ec2Api:
    def __init__(self, config: Config, used_ips: Callable[[str], int] = lambda subnet_id: 0) -> None:
        self.config = config
        self.net = config.network
        self.used_ips = used_ips  # how many addresses of a subnet tasks hold now

    def service(self) -> AwsService:
        return AwsService(service_model("ec2"), EC2_QUERY, {
            "DescribeVpcs": self.describe_vpcs,
            "DescribeSubnets": self.describe_subnets,
            "DescribeSecurityGroups": self.describe_security_groups,
            "DescribeAvailabilityZones": self.describe_availability_zones,
        })

    def _arn(self, kind: str, rid: str) -> str:
        return f"arn:aws:ec2:{self.config.region}:{self.config.account_id}:{kind}/{rid}"

    def _zone_id(self, zone_name: str) -> str:
        # AWS zone ids look like use1-az1: region initials, region number, az index
        parts = self.config.region.split("-")
        short = parts[0][:2] + "".join(p[0] for p in parts[1:-1]) + parts[-1]
        return f"{short}-az{ord(zone_name[-1]) - ord('a') + 1}"

    async def describe_vpcs(self, p: dict) -> dict:
        vpc = {
            "VpcId": self.net.vpc_id, "CidrBlock": self.net.cidr, "State": "available",
            "DhcpOptionsId": "dopt-fargo-default", "InstanceTenancy": "default", "IsDefault": True,
            "OwnerId": self.config.account_id,
            "CidrBlockAssociationSet": [{"AssociationId": "vpc-cidr-assoc-fargo-default", "CidrBlock": self.net.cidr,
                                         "CidrBlockState": {"State": "associated"}}],
            "Ipv6CidrBlockAssociationSet": [], "Tags": [],
        }
        wanted = p.get("VpcIds")
        for vid in wanted or []:
            if vid != vpc["VpcId"]:
                raise InvalidVpcIDNotFound(f"The vpc ID '{vid}' does not exist")
        items = _filtered([vpc], p.get("Filters"), {
            "vpc-id": "VpcId", "cidr": "CidrBlock", "cidr-block-association.cidr-block": "CidrBlock",
            "state": "State", "is-default": lambda v: "true" if v["IsDefault"] else "false",
            "owner-id": "OwnerId", "dhcp-options-id": "DhcpOptionsId"})
        return {"Vpcs": items}

    def _subnets(self) -> list[Item]:
        out = []
        for s in self.net.subnets:
            size = 2 ** (32 - int(s.cidr.split("/")[1]))
            out.append({
                "SubnetId": s.subnet_id, "VpcId": self.net.vpc_id, "CidrBlock": s.cidr, "State": "available",
                "AvailabilityZone": s.availability_zone, "AvailabilityZoneId": self._zone_id(s.availability_zone),
                "AvailableIpAddressCount": size - 5 - self.used_ips(s.subnet_id),
                "DefaultForAz": True, "MapPublicIpOnLaunch": False, "AssignIpv6AddressOnCreation": False,
                "OwnerId": self.config.account_id, "SubnetArn": self._arn("subnet", s.subnet_id),
                "Ipv6CidrBlockAssociationSet": [], "Tags": [],
            })
        return out

    async def describe_subnets(self, p: dict) -> dict:
        subnets = self._subnets()
        known = {s["SubnetId"] for s in subnets}
        for sid in p.get("SubnetIds") or []:
            if sid not in known:
                raise InvalidSubnetIDNotFound(f"The subnet ID '{sid}' does not exist")
        if p.get("SubnetIds"):
            subnets = [s for s in subnets if s["SubnetId"] in p["SubnetIds"]]
        items = _filtered(subnets, p.get("Filters"), {
            "subnet-id": "SubnetId", "vpc-id": "VpcId", "cidr-block": "CidrBlock", "cidr": "CidrBlock",
            "availability-zone": "AvailabilityZone", "availability-zone-id": "AvailabilityZoneId",
            "state": "State", "default-for-az": lambda v: "true" if v["DefaultForAz"] else "false",
            "owner-id": "OwnerId"})
        return {"Subnets": items}

    async def describe_security_groups(self, p: dict) -> dict:
        sg_id = self.net.security_group_id
        group = {
            "GroupId": sg_id, "GroupName": "default", "Description": "default VPC security group",
            "VpcId": self.net.vpc_id, "OwnerId": self.config.account_id,
            "SecurityGroupArn": self._arn("security-group", sg_id),
            "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [],
                               "UserIdGroupPairs": [{"GroupId": sg_id, "UserId": self.config.account_id}]}],
            "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
                                     "PrefixListIds": [], "UserIdGroupPairs": []}],
            "Tags": [],
        }
        for gid in p.get("GroupIds") or []:
            if gid != sg_id:
                raise InvalidGroupNotFound(f"The security group '{gid}' does not exist")
        for name in p.get("GroupNames") or []:
            if name != "default":
                raise InvalidGroupNotFound(f"The security group '{name}' does not exist in default VPC "
                                           f"'{self.net.vpc_id}'")
        items = _filtered([group], p.get("Filters"), {
            "group-id": "GroupId", "group-name": "GroupName", "vpc-id": "VpcId", "owner-id": "OwnerId",
            "description": "Description"})
        return {"SecurityGroups": items}

    async def describe_availability_zones(self, p: dict) -> dict:
        zones = [{
            "ZoneName": s.availability_zone, "ZoneId": self._zone_id(s.availability_zone), "State": "available",
            "RegionName": self.config.region, "ZoneType": "availability-zone", "GroupName": self.config.region,
            "NetworkBorderGroup": self.config.region, "OptInStatus": "opt-in-not-required", "Messages": [],
        } for s in self.net.subnets]
        if p.get("ZoneNames"):
            zones = [z for z in zones if z["ZoneName"] in p["ZoneNames"]]
        if p.get("ZoneIds"):
            zones = [z for z in zones if z["ZoneId"] in p["ZoneIds"]]
        items = _filtered(zones, p.get("Filters"), {
            "zone-name": "ZoneName", "zone-id": "ZoneId", "state": "State", "region-name": "RegionName",
            "zone-type": "ZoneType", "group-name": "GroupName"})
        return {"AvailabilityZones": items}


def _filtered(items: list[Item], filters: list[dict] | None,
              fields: dict[str, str | Callable[[Item], str]]) -> list[Item]:
    """EC2 filters: AND across filters, OR across a filter's values; unknown filter names match nothing."""
    for f in filters or []:
        name, values = f.get("Name", ""), set(f.get("Values") or [])
        getter = fields.get(name)
        if name.startswith("tag:") or name == "tag-key":
            items = []  # nothing of the default network is tagged
            continue
        if getter is None:
            raise InvalidParameterValue(f"The filter '{name}' is invalid")
        get = (lambda item, key=getter: str(item.get(key))) if isinstance(getter, str) else getter
        items = [i for i in items if get(i) in values]
    return items
