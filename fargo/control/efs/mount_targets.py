"""Mount targets: CreateMountTarget, DescribeMountTargets, DeleteMountTarget and their security groups.

A mount target is an ENI of its subnet, as in AWS: an address of the subnet (held in the same table as task
addresses, so the two never share one), a `network_interfaces` row that EC2's DescribeNetworkInterfaces
shows and that keeps its subnet, VPC and groups from being deleted. At most one per AZ per file system,
all in one VPC. A change of mount targets changes who is a member of which group, so it bumps the store's
generation in its transaction (agents re-apply the VPC's groups on it).
"""
from __future__ import annotations

import ipaddress
from fargo import clock
from fargo.control.context import ControlContext
from fargo.control.efs import ids
from fargo.control.efs import messages as msg
from fargo.control.efs.paging import page
from fargo.control.vpcs import ids as ec2_ids
from fargo.control.vpcs.zones import AvailabilityZones
from fargo.errors import (AccessPointNotFound, AvailabilityZonesMismatch, BadRequest, FileSystemNotFound,
                          IncorrectFileSystemLifeCycleState, IncorrectMountTargetState, IpAddressInUse,
                          MountTargetConflict, MountTargetNotFound, NoFreeAddressesInSubnet,
                          SecurityGroupLimitExceeded, SecurityGroupNotFound, SubnetNotFound)
from fargo.network.ipam import mac_address, private_dns_name, usable_address_count
from fargo.store.efs_store import AVAILABLE, CREATING, EfsReads, EfsStore, EfsWrites, MountTargetRow
from fargo.store.network_store import EniRow, SubnetFullError, SubnetRow

MAX_SECURITY_GROUPS = 5
# EFS creates the ENI; its RequesterId is the value AWS documents ("EFS") [botocore CreateMountTarget doc].
EFS_REQUESTER_ID = "EFS"


def eni_description(file_system_id: str, mount_target_id: str) -> str:
    """As a real mount target's ENI describes itself (CloudTrail in the EFS user guide, terraformer exports)."""
    return f"EFS mount target for {file_system_id} ({mount_target_id})"


class MountTargets:
    def __init__(self, ctx: ControlContext, store: EfsStore, zones: AvailabilityZones) -> None:
        self.ctx = ctx
        self.store = store
        self.zones = zones

    def handlers(self) -> dict:
        return {"CreateMountTarget": self.create_mount_target, "DescribeMountTargets": self.describe_mount_targets,
                "DeleteMountTarget": self.delete_mount_target,
                "DescribeMountTargetSecurityGroups": self.describe_mount_target_security_groups,
                "ModifyMountTargetSecurityGroups": self.modify_mount_target_security_groups}

    # --- API -----------------------------------------------------------------------------------

    def create_mount_target(self, p: dict) -> dict:
        file_system_id = ids.resource_id(p["FileSystemId"])
        subnet_id = str(p["SubnetId"])
        if p.get("IpAddressType") not in (None, "IPV4_ONLY") or p.get("Ipv6Address"):
            raise BadRequest(msg.IPV4_ONLY)
        wanted_groups = list(dict.fromkeys(str(g) for g in p.get("SecurityGroups") or []))
        if len(wanted_groups) > MAX_SECURITY_GROUPS:
            raise SecurityGroupLimitExceeded(msg.security_group_limit(MAX_SECURITY_GROUPS))
        mount_target_id = ids.new_id(ids.MOUNT_TARGET)
        with self.store.writing(changes_groups=True) as w:
            fs = w.file_system(file_system_id, lock=True)  # orders this against DeleteFileSystem and its twin
            if fs is None:
                raise FileSystemNotFound(msg.file_system_not_found(file_system_id))
            if fs.life_cycle_state != AVAILABLE:
                raise IncorrectFileSystemLifeCycleState(
                    msg.file_system_not_available(file_system_id, fs.life_cycle_state))
            subnet = self._locked_subnet(w, subnet_id)
            if fs.availability_zone and fs.availability_zone != subnet.availability_zone:
                raise AvailabilityZonesMismatch(msg.availability_zones_mismatch(fs.availability_zone))
            siblings = w.mount_targets([file_system_id])
            if any(m.vpc_id != subnet.vpc_id for m in siblings):
                raise MountTargetConflict(msg.MOUNT_TARGET_OTHER_VPC)
            if any(m.availability_zone == subnet.availability_zone for m in siblings):
                raise MountTargetConflict(msg.MOUNT_TARGET_IN_ZONE)
            groups = self._groups(w, wanted_groups, subnet)
            ip = self._address(w, subnet, p.get("IpAddress"), mount_target_id)
            row = MountTargetRow(mount_target_id=mount_target_id, file_system_id=file_system_id,
                                 subnet_id=subnet_id, vpc_id=subnet.vpc_id,
                                 availability_zone=subnet.availability_zone, ip=ip,
                                 eni_id=ec2_ids.new_id(ec2_ids.NETWORK_INTERFACE), life_cycle_state=AVAILABLE,
                                 created_at=clock.now())
            if not w.insert_mount_target(row):  # another replica made one in this AZ in the meantime
                raise MountTargetConflict(msg.MOUNT_TARGET_IN_ZONE)
            w.network.insert_eni(self._eni(row, groups))
        return self._render(row, state=CREATING)  # as AWS answers; it is usable at once

    def describe_mount_targets(self, p: dict) -> dict:
        fs_ref, mt_id, ap_ref = p.get("FileSystemId"), p.get("MountTargetId"), p.get("AccessPointId")
        if sum(1 for x in (fs_ref, mt_id, ap_ref) if x) != 1:
            raise BadRequest(msg.DESCRIBE_MOUNT_TARGETS_NEEDS_ONE)
        with self.store.reading() as r:
            if mt_id:
                found = r.mount_targets(mount_target_ids=[mt_id])
                if not found:
                    raise MountTargetNotFound(msg.mount_target_not_found(mt_id))
            else:
                found = r.mount_targets([self._file_system_of(r, fs_ref, ap_ref)])
        # "MaxItems ... is automatically set to 10, and other values are ignored" [botocore docs]: pages of 100
        chunk, next_marker = page(found, p.get("Marker"))
        out: dict = {"MountTargets": [self._render(m) for m in chunk]}
        if p.get("Marker"):
            out["Marker"] = p["Marker"]
        if next_marker:
            out["NextMarker"] = next_marker
        return out

    def delete_mount_target(self, p: dict) -> dict:
        mount_target_id = str(p["MountTargetId"])
        with self.store.writing(changes_groups=True) as w:
            found = w.mount_target(mount_target_id)
            if found is None:
                raise MountTargetNotFound(msg.mount_target_not_found(mount_target_id))
            w.file_system(found.file_system_id, lock=True)
            w.network.vpc(found.vpc_id, lock=True)
            if w.mount_target(mount_target_id, lock=True) is None:  # another replica deleted it meanwhile
                raise MountTargetNotFound(msg.mount_target_not_found(mount_target_id))
            w.network.release_address(mount_target_id)
            w.delete_mount_target(mount_target_id)
        return {}

    def describe_mount_target_security_groups(self, p: dict) -> dict:
        mount_target_id = str(p["MountTargetId"])
        with self.store.reading() as r:
            found = r.mount_target(mount_target_id)
            if found is None:
                raise MountTargetNotFound(msg.mount_target_not_found(mount_target_id))
            if found.life_cycle_state != AVAILABLE:
                raise IncorrectMountTargetState(msg.mount_target_not_available(mount_target_id,
                                                                               found.life_cycle_state))
            enis = r.network.enis(eni_ids=[found.eni_id])
        return {"SecurityGroups": list(enis[0].group_ids) if enis else []}

    def modify_mount_target_security_groups(self, p: dict) -> dict:
        mount_target_id = str(p["MountTargetId"])
        wanted = list(dict.fromkeys(str(g) for g in p.get("SecurityGroups") or []))
        if not wanted:
            raise BadRequest(msg.SECURITY_GROUPS_REQUIRED)
        if len(wanted) > MAX_SECURITY_GROUPS:
            raise SecurityGroupLimitExceeded(msg.security_group_limit(MAX_SECURITY_GROUPS))
        with self.store.writing(changes_groups=True) as w:
            found = w.mount_target(mount_target_id)
            if found is None:
                raise MountTargetNotFound(msg.mount_target_not_found(mount_target_id))
            if found.life_cycle_state != AVAILABLE:
                raise IncorrectMountTargetState(msg.mount_target_not_available(mount_target_id,
                                                                               found.life_cycle_state))
            subnet = self._locked_subnet(w, found.subnet_id)
            w.network.set_eni_groups(found.eni_id, self._groups(w, wanted, subnet))
        return {}

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _locked_subnet(w: EfsWrites, subnet_id: str) -> SubnetRow:
        """The subnet, read again once its VPC is locked (the lock every change inside a VPC takes)."""
        subnet = w.network.subnet(subnet_id)
        if subnet is None:
            raise SubnetNotFound(msg.subnet_not_found(subnet_id))
        w.network.vpc(subnet.vpc_id, lock=True)
        locked = w.network.subnet(subnet_id, lock=True)
        if locked is None:
            raise SubnetNotFound(msg.subnet_not_found(subnet_id))
        return locked

    @staticmethod
    def _groups(w: EfsWrites, wanted: list[str], subnet: SubnetRow) -> list[str]:
        """The groups asked for, all of the subnet's VPC, locked; none asked: the VPC's default group."""
        if not wanted:
            return [g.group_id for g in w.network.groups(vpc_id=subnet.vpc_id, lock=True) if g.is_default]
        found = {g.group_id: g for g in w.network.groups(wanted, lock=True)}
        for group_id in wanted:
            group = found.get(group_id)
            if group is None:
                raise SecurityGroupNotFound(msg.security_group_not_found(group_id))
            if group.vpc_id != subnet.vpc_id:
                raise BadRequest(msg.security_group_in_other_vpc(group_id, subnet.subnet_id))
        return wanted

    @staticmethod
    def _address(w: EfsWrites, subnet: SubnetRow, wanted: str | None, holder: str) -> str:
        if wanted is None:
            try:
                return w.network.allocate_address(subnet, holder)
            except SubnetFullError:
                raise NoFreeAddressesInSubnet(msg.no_free_addresses(subnet.subnet_id)) from None
        if not _usable(wanted, subnet.cidr):
            raise BadRequest(msg.ip_address_not_in_subnet(wanted, subnet.subnet_id))
        if not w.network.claim_address(subnet.subnet_id, wanted, holder):
            raise IpAddressInUse(msg.ip_address_in_use(wanted, subnet.subnet_id))
        return wanted

    def _eni(self, m: MountTargetRow, groups: list[str]) -> EniRow:
        return EniRow(eni_id=m.eni_id, attachment_id=m.mount_target_id, task_arn=m.mount_target_id,
                      subnet_id=m.subnet_id, vpc_id=m.vpc_id, availability_zone=m.availability_zone, ip=m.ip,
                      mac=mac_address(m.mount_target_id),
                      private_dns_name=private_dns_name(m.ip, self.ctx.config.region),
                      group_ids=groups, assign_public_ip=False, attach_time=m.created_at,
                      description=eni_description(m.file_system_id, m.mount_target_id),
                      requester_id=EFS_REQUESTER_ID)

    @staticmethod
    def _file_system_of(r: EfsReads, fs_ref: str | None, ap_ref: str | None) -> str:
        if ap_ref:
            access_point_id = ids.resource_id(ap_ref)
            ap = r.access_point(access_point_id)
            if ap is None:
                raise AccessPointNotFound(msg.access_point_not_found(access_point_id))
            return ap.file_system_id
        file_system_id = ids.resource_id(str(fs_ref))
        if r.file_system(file_system_id) is None:
            raise FileSystemNotFound(msg.file_system_not_found(file_system_id))
        return file_system_id

    def _render(self, m: MountTargetRow, state: str | None = None) -> dict:
        return {"OwnerId": self.ctx.config.account_id, "MountTargetId": m.mount_target_id,
                "FileSystemId": m.file_system_id, "SubnetId": m.subnet_id,
                "LifeCycleState": state or m.life_cycle_state, "IpAddress": m.ip, "NetworkInterfaceId": m.eni_id,
                "AvailabilityZoneId": self.zones.zone_id(m.availability_zone),
                "AvailabilityZoneName": m.availability_zone, "VpcId": m.vpc_id}


def _usable(ip: str, cidr: str) -> bool:
    """Inside the subnet and none of the 5 addresses AWS keeps (the first four and the last)."""
    try:
        address = ipaddress.IPv4Address(ip)
    except ValueError:
        return False
    network = ipaddress.IPv4Network(cidr)
    first = int(network.network_address) + 4
    return address in network and first <= int(address) < first + usable_address_count(cidr)
