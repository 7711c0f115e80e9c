"""DescribeNetworkInterfaces: the requester-managed ENIs, task ENIs as Fargate's look in EC2 and EFS mount
targets' as EFS's do.

The rows are written by RunTask (with the task's address) and CreateMountTarget, and go when the address is
released; here they are only read. A task ENI's Description is its ECS attachment's ARN (which is how users
find a task's ENI); other ENIs carry their own Description and requester.
"""
from __future__ import annotations

from datetime import datetime, timezone

from fargo.control.context import ControlContext
from fargo.control.vpcs import ids
from fargo.control.vpcs import messages as msg
from fargo.control.vpcs.filters import apply_filters
from fargo.control.vpcs.paging import page
from fargo.control.vpcs.params import id_list
from fargo.control.vpcs.tags import tag_list, tag_map
from fargo.control.vpcs.zones import AvailabilityZones
from fargo.errors import InvalidNetworkInterfaceIDNotFound
from fargo.store.network_store import EniRow, NetworkStore, TagRow

# The AWS-owned accounts a real Fargate task ENI names as its requester and as the instance owner.
FARGATE_REQUESTER_ID = "578734482556"
FARGATE_INSTANCE_OWNER_ID = "501673713797"


def public_dns_name(ip: str, region: str) -> str:
    host = "ec2-" + ip.replace(".", "-")
    return f"{host}.compute-1.amazonaws.com" if region == "us-east-1" else f"{host}.{region}.compute.amazonaws.com"


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class NetworkInterfaces:
    def __init__(self, ctx: ControlContext, store: NetworkStore, zones: AvailabilityZones) -> None:
        self.ctx = ctx
        self.store = store
        self.zones = zones

    def handlers(self) -> dict:
        return {"DescribeNetworkInterfaces": self.describe_network_interfaces}

    def describe_network_interfaces(self, p: dict) -> dict:
        wanted = id_list(p, "NetworkInterfaceIds")
        with self.store.reading() as r:
            enis = r.enis(eni_ids=wanted)
            names = {g.group_id: g.group_name for g in r.groups(sorted({x for e in enis for x in e.group_ids}))}
            tags = r.tags_by_resource([e.eni_id for e in enis])
        if wanted:
            found = {e.eni_id for e in enis}
            missing = [eni_id for eni_id in wanted if eni_id not in found]
            if missing:
                raise InvalidNetworkInterfaceIDNotFound(msg.network_interface_not_found(missing[0]))
        shown = [self._render(e, names, tags.get(e.eni_id)) for e in enis]
        shown = apply_filters(shown, p.get("Filters"), _FIELDS,
                              tags_of=lambda n: tag_map(tags.get(n["NetworkInterfaceId"])))
        chunk, token = page(shown, p, "NetworkInterfaceIds")
        out: dict = {"NetworkInterfaces": chunk}
        if token:
            out["NextToken"] = token
        return out

    def _render(self, e: EniRow, group_names: dict[str, str], tags: list[TagRow] | None) -> dict:
        cfg = self.ctx.config
        groups = [{"GroupId": g, **({"GroupName": group_names[g]} if g in group_names else {})} for g in e.group_ids]
        address: dict = {"Primary": True, "PrivateIpAddress": e.ip, "PrivateDnsName": e.private_dns_name}
        requester = e.requester_id or FARGATE_REQUESTER_ID
        out: dict = {
            "NetworkInterfaceId": e.eni_id,
            "Description": e.description or ids.ecs_attachment_arn(cfg.region, cfg.account_id, e.attachment_id),
            "InterfaceType": "interface", "RequesterManaged": True, "RequesterId": requester,
            "OwnerId": cfg.account_id, "Status": "in-use", "SourceDestCheck": True,
            "Attachment": {"AttachmentId": ids.derived_id("eni-attach", e.eni_id), "DeviceIndex": 1,
                           "NetworkCardIndex": 0,
                           "InstanceOwnerId": requester if e.requester_id else FARGATE_INSTANCE_OWNER_ID,
                           "Status": "attached", "DeleteOnTermination": False, "AttachTime": _iso(e.attach_time)},
            "Groups": groups, "SubnetId": e.subnet_id, "VpcId": e.vpc_id, "AvailabilityZone": e.availability_zone,
            "AvailabilityZoneId": self.zones.zone_id(e.availability_zone) if e.availability_zone else None,
            "MacAddress": e.mac, "PrivateIpAddress": e.ip, "PrivateDnsName": e.private_dns_name,
            "PrivateIpAddresses": [address], "Ipv6Addresses": [], "TagSet": tag_list(tags),
        }
        if e.assign_public_ip:
            association: dict = {"IpOwnerId": "amazon"}
            if e.public_ip:
                association.update(PublicIp=e.public_ip, PublicDnsName=public_dns_name(e.public_ip, cfg.region))
            out["Association"] = association
            address["Association"] = association
        return out


def _association(n: dict, key: str) -> str | None:
    return (n.get("Association") or {}).get(key)


# Filters work on the rendered shape: each names a field of it (the list in shared reference A1.5).
_FIELDS = {
    "network-interface-id": lambda n: n["NetworkInterfaceId"], "description": lambda n: n["Description"],
    "subnet-id": lambda n: n["SubnetId"], "vpc-id": lambda n: n["VpcId"],
    "group-id": lambda n: [g["GroupId"] for g in n["Groups"]],
    "group-name": lambda n: [g.get("GroupName") for g in n["Groups"]],
    "availability-zone": lambda n: n["AvailabilityZone"],
    "private-ip-address": lambda n: n["PrivateIpAddress"],
    "addresses.private-ip-address": lambda n: [a["PrivateIpAddress"] for a in n["PrivateIpAddresses"]],
    "addresses.primary": lambda n: [a["Primary"] for a in n["PrivateIpAddresses"]],
    "private-dns-name": lambda n: n["PrivateDnsName"], "mac-address": lambda n: n["MacAddress"],
    "status": lambda n: n["Status"], "interface-type": lambda n: n["InterfaceType"],
    "requester-id": lambda n: n["RequesterId"], "requester-managed": lambda n: n["RequesterManaged"],
    "owner-id": lambda n: n["OwnerId"], "source-dest-check": lambda n: n["SourceDestCheck"],
    "attachment.attachment-id": lambda n: n["Attachment"]["AttachmentId"],
    "attachment.instance-id": lambda n: None,
    "attachment.instance-owner-id": lambda n: n["Attachment"]["InstanceOwnerId"],
    "attachment.device-index": lambda n: n["Attachment"]["DeviceIndex"],
    "attachment.status": lambda n: n["Attachment"]["Status"],
    "attachment.attach-time": lambda n: n["Attachment"]["AttachTime"],
    "attachment.delete-on-termination": lambda n: n["Attachment"]["DeleteOnTermination"],
    "association.public-ip": lambda n: _association(n, "PublicIp"),
    "association.public-dns-name": lambda n: _association(n, "PublicDnsName"),
    "association.ip-owner-id": lambda n: _association(n, "IpOwnerId"),
}
