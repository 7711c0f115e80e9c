"""The EFS API of the control plane against a real SQLite store and a real directory tree: file systems,
access points, mount targets as ENIs of the VPC, tags, with AWS's error codes and texts; and the resume of
work a stop cut short."""
from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fargo.config import Config
from fargo.control.context import ControlContext
from fargo.control.efs.efs import Efs
from fargo.control.vpcs.network import Network
from fargo.errors import AwsError
from fargo.store.database import Store
from fargo.store.efs_store import DELETING, EfsStore
from tests.e2e.test_persistence import postgres_url  # noqa: F401 - the fixture: a fresh PostgreSQL database

DEFAULT_VPC, DEFAULT_SG = "vpc-fargo-default", "sg-fargo-default"
SUBNET_A, SUBNET_B = "subnet-fargo-default-1a", "subnet-fargo-default-1b"


class Fargo:
    """The EFS and EC2 handlers of one control plane, called as the wire layer calls them."""

    def __init__(self, tmp_path: Path, url: str | None = None) -> None:
        self.store = Store(url or f"sqlite:///{tmp_path / 'fargo.db'}")
        self.store.migrate()
        self.ctx = ControlContext(Config(data_dir=tmp_path, efs_root=tmp_path / "efs"), self.store)
        self.network = Network(self.ctx)
        self.network.ensure_default()
        self.changes = 0
        self.efs = Efs(self.ctx, on_change=self._changed)
        self.efs.resume()
        self._efs, self._ec2 = self.efs.handlers(), self.network.handlers()

    def _changed(self) -> None:
        self.changes += 1

    def __call__(self, operation: str, **params: Any) -> dict:
        handlers = self._efs if operation in self._efs else self._ec2
        return asyncio.run(handlers[operation](params))

    def error(self, operation: str, **params: Any) -> AwsError:
        with pytest.raises(AwsError) as e:
            self(operation, **params)
        return e.value

    def file_system(self, token: str = "t", **params: Any) -> str:
        return self("CreateFileSystem", CreationToken=token, **params)["FileSystemId"]

    def fs_dir(self, file_system_id: str) -> Path:
        return self.ctx.config.efs_data_root / file_system_id

    def wait_gone(self, file_system_id: str) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self("DescribeFileSystems", FileSystemId=file_system_id)
            except AwsError as e:
                assert e.code == "FileSystemNotFound"
                return
            time.sleep(0.02)
        raise AssertionError(f"{file_system_id} was not removed")


@pytest.fixture
def fargo(tmp_path: Path) -> Fargo:
    return Fargo(tmp_path)


def _raises_nothing(f: Fargo, operation: str, **params: Any) -> bool:
    try:
        f(operation, **params)
    except AwsError:
        return False
    return True


# --- file systems ------------------------------------------------------------------------------------

def test_a_new_file_system_is_a_root_owned_directory_and_answers_creating_then_available(fargo: Fargo) -> None:
    out = fargo("CreateFileSystem", CreationToken="tok", Tags=[{"Key": "Name", "Value": "data"}])
    fs = out["FileSystemId"]
    assert fs.startswith("fs-") and len(fs) == 20 and int(fs[3:], 16) >= 0
    assert (out["LifeCycleState"], out["Name"], out["NumberOfMountTargets"], out["SizeInBytes"]["Value"]) == (
        "creating", "data", 0, 0)
    assert out["FileSystemArn"] == f"arn:aws:elasticfilesystem:us-east-1:000000000000:file-system/{fs}"
    assert (out["PerformanceMode"], out["ThroughputMode"], out["Encrypted"]) == ("generalPurpose", "bursting", False)
    info = fargo.fs_dir(fs).stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o755)
    described = fargo("DescribeFileSystems", FileSystemId=fs)["FileSystems"][0]
    assert described["LifeCycleState"] == "available"
    assert described["SizeInBytes"]["Value"] == described["SizeInBytes"]["ValueInStandard"] == 6144
    assert isinstance(described["CreationTime"], float)


def test_a_creation_token_makes_one_file_system_and_names_it_when_reused(fargo: Fargo) -> None:
    fs = fargo.file_system("again")
    e = fargo.error("CreateFileSystem", CreationToken="again")
    assert (e.code, e.status, e.members) == ("FileSystemAlreadyExists", 409, {"FileSystemId": fs})
    assert e.message == f"File system '{fs}' already exists with creation token 'again'"
    assert [f["FileSystemId"] for f in fargo("DescribeFileSystems", CreationToken="again")["FileSystems"]] == [fs]
    assert fargo("DescribeFileSystems", CreationToken="nothing")["FileSystems"] == []


def test_encryption_throughput_and_one_zone_settings_are_kept_and_shown(fargo: Fargo) -> None:
    fs = fargo("CreateFileSystem", CreationToken="enc", Encrypted=True, PerformanceMode="maxIO",
               ThroughputMode="provisioned", ProvisionedThroughputInMibps=64.0, AvailabilityZoneName="us-east-1b")
    assert fs["KmsKeyId"] == "arn:aws:kms:us-east-1:000000000000:alias/aws/elasticfilesystem"
    shown = fargo("DescribeFileSystems", FileSystemId=fs["FileSystemId"])["FileSystems"][0]
    assert (shown["PerformanceMode"], shown["ThroughputMode"], shown["ProvisionedThroughputInMibps"]) == (
        "maxIO", "provisioned", 64.0)
    assert (shown["AvailabilityZoneName"], shown["AvailabilityZoneId"]) == ("us-east-1b", "use1-az2")
    key = "1234abcd-12ab-34cd-56ef-1234567890ab"
    keyed = fargo("CreateFileSystem", CreationToken="key", Encrypted=True, KmsKeyId=key)
    assert keyed["KmsKeyId"] == f"arn:aws:kms:us-east-1:000000000000:key/{key}"
    assert fargo.error("CreateFileSystem", CreationToken="x", ThroughputMode="provisioned").code == "BadRequest"
    assert fargo.error("CreateFileSystem", CreationToken="x", ProvisionedThroughputInMibps=5.0).code == "BadRequest"
    assert fargo.error("CreateFileSystem", CreationToken="x", KmsKeyId=key).code == "BadRequest"
    e = fargo.error("CreateFileSystem", CreationToken="x", AvailabilityZoneName="us-west-2a")
    assert e.code == "UnsupportedAvailabilityZone"
    one_zone = fargo("DescribeFileSystems", FileSystemId=fs["FileSystemId"])["FileSystems"][0]["FileSystemId"]
    e = fargo.error("CreateMountTarget", FileSystemId=one_zone, SubnetId=SUBNET_A)
    assert (e.code, e.status) == ("AvailabilityZonesMismatch", 400)


def test_describe_file_systems_pages_by_marker_and_refuses_what_it_cannot_read(fargo: Fargo) -> None:
    made = [fargo.file_system(f"page-{i}") for i in range(5)]
    seen, marker, pages = [], None, 0
    while True:
        params: dict = {"MaxItems": 2, **({"Marker": marker} if marker else {})}
        out = fargo("DescribeFileSystems", **params)
        assert out.get("Marker") == marker
        seen += [f["FileSystemId"] for f in out["FileSystems"]]
        pages += 1
        marker = out.get("NextMarker")
        if not marker:
            break
    assert (seen, pages) == (made, 3)
    assert fargo.error("DescribeFileSystems", Marker="garbage!").code == "BadRequest"
    assert fargo.error("DescribeFileSystems", FileSystemId=made[0], CreationToken="page-0").code == "BadRequest"
    e = fargo.error("DescribeFileSystems", FileSystemId="fs-0123456789abcdef0")
    assert (e.code, e.status, e.message) == (
        "FileSystemNotFound", 404, "File system 'fs-0123456789abcdef0' does not exist.")
    arn = f"arn:aws:elasticfilesystem:us-east-1:000000000000:file-system/{made[1]}"
    assert fargo("DescribeFileSystems", FileSystemId=arn)["FileSystems"][0]["FileSystemId"] == made[1]


def test_a_file_system_with_mount_targets_is_in_use_and_goes_with_its_access_points_and_data(fargo: Fargo) -> None:
    fs = fargo.file_system()
    (fargo.fs_dir(fs) / "kept").write_text("x")
    mt = fargo("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A)["MountTargetId"]
    ap = fargo("CreateAccessPoint", ClientToken="ap", FileSystemId=fs)["AccessPointId"]
    e = fargo.error("DeleteFileSystem", FileSystemId=fs)
    assert (e.code, e.status) == ("FileSystemInUse", 409)
    assert e.message == (f"The file system '{fs}' cannot be deleted because it has mount targets. You must delete "
                         "the mount targets, and then try again.")
    fargo("DeleteMountTarget", MountTargetId=mt)
    assert fargo("DeleteFileSystem", FileSystemId=fs) == {}
    fargo.wait_gone(fs)
    assert not fargo.fs_dir(fs).exists()
    assert fargo.error("DescribeAccessPoints", AccessPointId=ap).code == "AccessPointNotFound"
    assert fargo.error("DeleteFileSystem", FileSystemId=fs).code == "FileSystemNotFound"


def test_a_start_finishes_removals_and_creations_a_stop_cut_short(tmp_path: Path) -> None:
    f = Fargo(tmp_path)
    doomed, half_made = f.file_system("doomed"), f.file_system("half")
    with EfsStore(f.store).writing() as w:
        w.set_file_system_state(doomed, DELETING)
        w.set_file_system_state(half_made, "creating")
    os.rmdir(f.fs_dir(half_made))
    again = Fargo(tmp_path)
    again.wait_gone(doomed)
    assert not again.fs_dir(doomed).exists() and again.fs_dir(half_made).is_dir()
    assert again("DescribeFileSystems", FileSystemId=half_made)["FileSystems"][0]["LifeCycleState"] == "available"


# --- access points -----------------------------------------------------------------------------------

def test_an_access_point_keeps_its_user_and_root_and_its_token_names_it(fargo: Fargo) -> None:
    fs = fargo.file_system()
    out = fargo("CreateAccessPoint", ClientToken="c1", FileSystemId=fs, Tags=[{"Key": "Name", "Value": "app"}],
                PosixUser={"Uid": 1000, "Gid": 1000, "SecondaryGids": [5, 6]},
                RootDirectory={"Path": "/apps/one", "CreationInfo": {"OwnerUid": 1000, "OwnerGid": 1000,
                                                                     "Permissions": "0750"}})
    ap = out["AccessPointId"]
    assert ap.startswith("fsap-") and len(ap) == 22 and out["LifeCycleState"] == "creating"
    assert out["AccessPointArn"] == f"arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/{ap}"
    shown = fargo("DescribeAccessPoints", AccessPointId=ap)["AccessPoints"][0]
    assert (shown["Name"], shown["LifeCycleState"], shown["FileSystemId"], shown["ClientToken"]) == (
        "app", "available", fs, "c1")
    assert shown["PosixUser"] == {"Uid": 1000, "Gid": 1000, "SecondaryGids": [5, 6]}
    assert shown["RootDirectory"] == {"Path": "/apps/one", "CreationInfo": {
        "OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "0750"}}
    e = fargo.error("CreateAccessPoint", ClientToken="c1", FileSystemId=fs)
    assert (e.code, e.status, e.members) == ("AccessPointAlreadyExists", 409, {"AccessPointId": ap})
    bare = fargo("CreateAccessPoint", ClientToken="c2", FileSystemId=fs)
    assert bare["RootDirectory"] == {"Path": "/"} and "PosixUser" not in {k for k, v in bare.items() if v}
    listed = fargo("DescribeAccessPoints", FileSystemId=fs)["AccessPoints"]
    assert [a["AccessPointId"] for a in listed] == [ap, bare["AccessPointId"]]
    assert fargo.error("DescribeAccessPoints", FileSystemId=fs, AccessPointId=ap).code == "BadRequest"
    assert fargo.error("DescribeAccessPoints", FileSystemId="fs-0123456789abcdef0").code == "FileSystemNotFound"
    fargo("DeleteAccessPoint", AccessPointId=ap)
    e = fargo.error("DeleteAccessPoint", AccessPointId=ap)
    assert (e.code, e.status, e.message) == ("AccessPointNotFound", 404, f"Access Point {ap} does not exist.")


@pytest.mark.parametrize("path", ["", "a", "//", "/a/", "/.hidden", "/a/.b", "/a/b/c/d/e", "/a$b", "/a;b",
                                  "/a`b", "/a\nb", "/" + "x" * 100])
def test_an_access_point_root_outside_the_pattern_is_a_bad_request(fargo: Fargo, path: str) -> None:
    fs = fargo.file_system()
    e = fargo.error("CreateAccessPoint", ClientToken="c", FileSystemId=fs, RootDirectory={"Path": path} if path
                    else {"Path": path, "CreationInfo": {"OwnerUid": 0, "OwnerGid": 0, "Permissions": "75"}})
    assert e.code == "BadRequest"


@pytest.mark.parametrize("path", ["/", "/a", "/a.b/c-d_e", "/a/b/c/d", "/" + "x" * 99])
def test_an_access_point_root_inside_the_pattern_is_taken(fargo: Fargo, path: str) -> None:
    fs = fargo.file_system()
    assert fargo("CreateAccessPoint", ClientToken="c", FileSystemId=fs,
                 RootDirectory={"Path": path})["RootDirectory"] == {"Path": path}


def test_an_access_point_needs_an_available_file_system(fargo: Fargo) -> None:
    e = fargo.error("CreateAccessPoint", ClientToken="c", FileSystemId="fs-0123456789abcdef0")
    assert e.code == "FileSystemNotFound"
    fs = fargo.file_system()
    with EfsStore(fargo.store).writing() as w:
        w.set_file_system_state(fs, DELETING)
    e = fargo.error("CreateAccessPoint", ClientToken="c", FileSystemId=fs)
    assert (e.code, e.status) == ("IncorrectFileSystemLifeCycleState", 409)
    assert fargo.error("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A).code == (
        "IncorrectFileSystemLifeCycleState")


# --- mount targets -----------------------------------------------------------------------------------

def test_a_mount_target_is_an_eni_of_its_subnet_in_ec2(fargo: Fargo) -> None:
    before = fargo("DescribeSubnets", SubnetIds=[SUBNET_A])["Subnets"][0]["AvailableIpAddressCount"]
    changes = fargo.changes
    fs = fargo.file_system()
    mt = fargo("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A)
    assert fargo.changes == changes + 1  # agents look again: the default group has a new member
    assert (mt["LifeCycleState"], mt["SubnetId"], mt["VpcId"], mt["AvailabilityZoneName"],
            mt["AvailabilityZoneId"]) == ("creating", SUBNET_A, DEFAULT_VPC, "us-east-1a", "use1-az1")
    assert mt["MountTargetId"].startswith("fsmt-") and len(mt["MountTargetId"]) == 22
    eni = fargo("DescribeNetworkInterfaces", NetworkInterfaceIds=[mt["NetworkInterfaceId"]])["NetworkInterfaces"][0]
    assert eni["Description"] == f"EFS mount target for {fs} ({mt['MountTargetId']})"
    assert (eni["RequesterManaged"], eni["RequesterId"], eni["Status"], eni["InterfaceType"]) == (
        True, "EFS", "in-use", "interface")
    assert (eni["PrivateIpAddress"], eni["SubnetId"], eni["Groups"]) == (
        mt["IpAddress"], SUBNET_A, [{"GroupId": DEFAULT_SG, "GroupName": "default"}])
    assert fargo("DescribeSubnets", SubnetIds=[SUBNET_A])["Subnets"][0]["AvailableIpAddressCount"] == before - 1
    assert fargo("DescribeMountTargets", FileSystemId=fs)["MountTargets"][0]["LifeCycleState"] == "available"
    assert fargo("DescribeFileSystems", FileSystemId=fs)["FileSystems"][0]["NumberOfMountTargets"] == 1
    fargo("DeleteMountTarget", MountTargetId=mt["MountTargetId"])
    assert fargo("DescribeSubnets", SubnetIds=[SUBNET_A])["Subnets"][0]["AvailableIpAddressCount"] == before
    assert fargo.error("DescribeNetworkInterfaces", NetworkInterfaceIds=[mt["NetworkInterfaceId"]]).code == (
        "InvalidNetworkInterfaceID.NotFound")
    e = fargo.error("DeleteMountTarget", MountTargetId=mt["MountTargetId"])
    assert (e.code, e.status) == ("MountTargetNotFound", 404)


def test_a_mount_target_holds_its_subnet_vpc_and_groups(fargo: Fargo) -> None:
    vpc = fargo("CreateVpc", CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    subnet = fargo("CreateSubnet", VpcId=vpc, CidrBlock="10.80.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    group = fargo("CreateSecurityGroup", GroupName="nfs", Description="nfs", VpcId=vpc)["GroupId"]
    fs = fargo.file_system()
    mt = fargo("CreateMountTarget", FileSystemId=fs, SubnetId=subnet["SubnetId"], SecurityGroups=[group])
    assert fargo.error("DeleteSecurityGroup", GroupId=group).message == f"resource {group} has a dependent object"
    assert fargo.error("DeleteSubnet", SubnetId=subnet["SubnetId"]).code == "DependencyViolation"
    assert fargo.error("DeleteVpc", VpcId=vpc).code == "DependencyViolation"
    fargo("DeleteMountTarget", MountTargetId=mt["MountTargetId"])
    fargo("DeleteSecurityGroup", GroupId=group)
    fargo("DeleteSubnet", SubnetId=subnet["SubnetId"])
    fargo("DeleteVpc", VpcId=vpc)


def test_mount_targets_are_one_per_zone_and_all_in_one_vpc(fargo: Fargo) -> None:
    fs = fargo.file_system()
    fargo("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A)
    e = fargo.error("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A)
    assert (e.code, e.status, e.message) == ("MountTargetConflict", 409, "mount target already exists in this AZ")
    vpc = fargo("CreateVpc", CidrBlock="10.81.0.0/16")["Vpc"]["VpcId"]
    elsewhere = fargo("CreateSubnet", VpcId=vpc, CidrBlock="10.81.2.0/24", AvailabilityZone="us-east-1c")
    e = fargo.error("CreateMountTarget", FileSystemId=fs, SubnetId=elsewhere["Subnet"]["SubnetId"])
    assert e.code == "MountTargetConflict" and "same VPC" in e.message
    assert fargo("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_B)["AvailabilityZoneName"] == "us-east-1b"


def test_a_mount_target_takes_the_address_asked_once_and_a_full_subnet_says_so(fargo: Fargo) -> None:
    vpc = fargo("CreateVpc", CidrBlock="10.82.0.0/16")["Vpc"]["VpcId"]
    small = fargo("CreateSubnet", VpcId=vpc, CidrBlock="10.82.0.0/28", AvailabilityZone="us-east-1a")["Subnet"]
    other = fargo("CreateSubnet", VpcId=vpc, CidrBlock="10.82.1.0/28", AvailabilityZone="us-east-1b")["Subnet"]
    one, two = fargo.file_system("one"), fargo.file_system("two")
    mt = fargo("CreateMountTarget", FileSystemId=one, SubnetId=small["SubnetId"], IpAddress="10.82.0.9")
    assert mt["IpAddress"] == "10.82.0.9"
    e = fargo.error("CreateMountTarget", FileSystemId=two, SubnetId=small["SubnetId"], IpAddress="10.82.0.9")
    assert (e.code, e.status) == ("IpAddressInUse", 409)
    for outside in ("10.82.0.2", "10.82.0.15", "10.82.5.5", "not-an-ip"):
        assert fargo.error("CreateMountTarget", FileSystemId=two, SubnetId=small["SubnetId"],
                           IpAddress=outside).code == "BadRequest"
    # a /28 holds 11 ENIs: fill it, then a mount target finds no address
    fillers = [fargo.file_system(f"fill-{i}") for i in range(10)]
    for fs in fillers:
        fargo("CreateMountTarget", FileSystemId=fs, SubnetId=small["SubnetId"])
    assert fargo("DescribeSubnets", SubnetIds=[small["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == 0
    e = fargo.error("CreateMountTarget", FileSystemId=two, SubnetId=small["SubnetId"])
    assert (e.code, e.status) == ("NoFreeAddressesInSubnet", 409)
    assert _raises_nothing(fargo, "CreateMountTarget", FileSystemId=two, SubnetId=other["SubnetId"])


def test_mount_target_groups_are_checked_changed_and_described(fargo: Fargo) -> None:
    fs = fargo.file_system()
    e = fargo.error("CreateMountTarget", FileSystemId=fs, SubnetId="subnet-0123456789abcdef0")
    assert (e.code, e.status, e.message) == (
        "SubnetNotFound", 400, "The subnet ID 'subnet-0123456789abcdef0' does not exist")
    e = fargo.error("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A, SecurityGroups=["sg-0123456789abcdef0"])
    assert (e.code, e.status) == ("SecurityGroupNotFound", 400)
    groups = [fargo("CreateSecurityGroup", GroupName=f"g{i}", Description="g", VpcId=DEFAULT_VPC)["GroupId"]
              for i in range(6)]
    e = fargo.error("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A, SecurityGroups=groups)
    assert (e.code, e.status) == ("SecurityGroupLimitExceeded", 400)
    other_vpc = fargo("CreateVpc", CidrBlock="10.83.0.0/16")["Vpc"]["VpcId"]
    stranger = fargo("CreateSecurityGroup", GroupName="s", Description="s", VpcId=other_vpc)["GroupId"]
    assert fargo.error("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A,
                       SecurityGroups=[stranger]).code == "BadRequest"
    mt = fargo("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A, SecurityGroups=groups[:2])["MountTargetId"]
    assert fargo("DescribeMountTargetSecurityGroups", MountTargetId=mt)["SecurityGroups"] == groups[:2]
    changes = fargo.changes
    fargo("ModifyMountTargetSecurityGroups", MountTargetId=mt, SecurityGroups=[groups[3]])
    assert fargo.changes == changes + 1
    assert fargo("DescribeMountTargetSecurityGroups", MountTargetId=mt)["SecurityGroups"] == [groups[3]]
    fargo("DeleteSecurityGroup", GroupId=groups[0])  # no longer the mount target's
    assert fargo.error("ModifyMountTargetSecurityGroups", MountTargetId=mt, SecurityGroups=groups).code == (
        "SecurityGroupLimitExceeded")
    assert fargo.error("ModifyMountTargetSecurityGroups", MountTargetId=mt, SecurityGroups=[]).code == "BadRequest"
    assert fargo.error("DescribeMountTargetSecurityGroups", MountTargetId="fsmt-0123456789abcdef0").code == (
        "MountTargetNotFound")


def test_describe_mount_targets_needs_exactly_one_of_its_keys(fargo: Fargo) -> None:
    fs = fargo.file_system()
    mt = fargo("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A)["MountTargetId"]
    ap = fargo("CreateAccessPoint", ClientToken="c", FileSystemId=fs)["AccessPointId"]
    by = [fargo("DescribeMountTargets", **{key: value})["MountTargets"][0]["MountTargetId"]
          for key, value in (("FileSystemId", fs), ("MountTargetId", mt), ("AccessPointId", ap))]
    assert by == [mt, mt, mt]
    assert fargo.error("DescribeMountTargets").code == "BadRequest"
    assert fargo.error("DescribeMountTargets", FileSystemId=fs, MountTargetId=mt).code == "BadRequest"
    assert fargo.error("DescribeMountTargets", MountTargetId="fsmt-0123456789abcdef0").code == "MountTargetNotFound"
    assert fargo.error("DescribeMountTargets", AccessPointId="fsap-0123456789abcdef0").code == "AccessPointNotFound"


# --- tags --------------------------------------------------------------------------------------------

def test_tags_of_file_systems_and_access_points_by_id_or_arn(fargo: Fargo) -> None:
    fs = fargo("CreateFileSystem", CreationToken="t", Tags=[{"Key": "a", "Value": "1"}])
    fs_id = fs["FileSystemId"]
    fargo("TagResource", ResourceId=fs["FileSystemArn"],
          Tags=[{"Key": "Name", "Value": "n"}, {"Key": "a", "Value": "2"}])
    assert fargo("ListTagsForResource", ResourceId=fs_id)["Tags"] == [{"Key": "a", "Value": "2"},
                                                                      {"Key": "Name", "Value": "n"}]
    assert fargo("DescribeFileSystems", FileSystemId=fs_id)["FileSystems"][0]["Name"] == "n"
    fargo("UntagResource", ResourceId=fs_id, TagKeys=["Name"])
    assert fargo("DescribeFileSystems", FileSystemId=fs_id)["FileSystems"][0]["Name"] is None
    ap = fargo("CreateAccessPoint", ClientToken="c", FileSystemId=fs_id)["AccessPointArn"]
    fargo("TagResource", ResourceId=ap, Tags=[{"Key": "k", "Value": "v"}])
    assert fargo("ListTagsForResource", ResourceId=ap)["Tags"] == [{"Key": "k", "Value": "v"}]
    fargo("CreateTags", FileSystemId=fs_id, Tags=[{"Key": "old", "Value": "style"}])
    assert fargo("DescribeTags", FileSystemId=fs_id)["Tags"][-1] == {"Key": "old", "Value": "style"}
    fargo("DeleteTags", FileSystemId=fs_id, TagKeys=["old", "a"])
    assert fargo("DescribeTags", FileSystemId=fs_id)["Tags"] == []
    assert fargo.error("TagResource", ResourceId=fs_id, Tags=[{"Key": "aws:x", "Value": "v"}]).code == "BadRequest"
    assert fargo.error("ListTagsForResource", ResourceId="fs-0123456789abcdef0").code == "FileSystemNotFound"
    assert fargo.error("ListTagsForResource", ResourceId="fsap-0123456789abcdef0").code == "AccessPointNotFound"


# --- PostgreSQL: several replicas on one database ---------------------------------------------------------

def test_the_efs_api_on_postgresql(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    f = Fargo(tmp_path, postgres_url)
    try:
        fs = f.file_system(Tags=[{"Key": "Name", "Value": "pg"}])
        mt = f("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A)
        f("CreateAccessPoint", ClientToken="c", FileSystemId=fs, PosixUser={"Uid": 1, "Gid": 1})
        assert f.error("DeleteSubnet", SubnetId=SUBNET_A).code == "DependencyViolation"
        assert f.error("DeleteFileSystem", FileSystemId=fs).code == "FileSystemInUse"
        f("DeleteMountTarget", MountTargetId=mt["MountTargetId"])
        f("DeleteFileSystem", FileSystemId=fs)
        f.wait_gone(fs)
    finally:
        f.efs.directories.wait(5)
        f.store.close()


def test_two_replicas_racing_for_one_token_and_one_zone_leave_one_of_each(tmp_path: Path,
                                                                        postgres_url: str) -> None:  # noqa: F811
    replicas = [Fargo(tmp_path, postgres_url), Fargo(tmp_path, postgres_url)]
    try:
        fs = replicas[0].file_system("shared")
        for operation, params in (("CreateFileSystem", {"CreationToken": "raced"}),
                                  ("CreateMountTarget", {"FileSystemId": fs, "SubnetId": SUBNET_A}),
                                  ("CreateAccessPoint", {"ClientToken": "raced", "FileSystemId": fs})):
            barrier = threading.Barrier(2)
            outcomes: list[str] = []

            def race(f: Fargo, operation: str = operation, params: dict = params) -> None:
                barrier.wait()
                try:
                    f(operation, **params)
                    outcomes.append("ok")
                except AwsError as e:
                    outcomes.append(e.code)
            threads = [threading.Thread(target=race, args=(f,)) for f in replicas]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(outcomes)[1] == "ok" and sorted(outcomes)[0] != "ok", (operation, outcomes)
        assert len(replicas[1]("DescribeMountTargets", FileSystemId=fs)["MountTargets"]) == 1
        assert len(replicas[1]("DescribeNetworkInterfaces")["NetworkInterfaces"]) == 1
    finally:
        for f in replicas:
            f.store.close()
