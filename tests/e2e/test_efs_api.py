"""The Amazon EFS API through boto3 and the AWS CLI against a real `fargo up`: file systems (directories on the
host), access points, mount targets as ENIs of the VPC, tags, paging, AWS's error codes, texts and members
on the wire, EFS in ECS task definitions, and the state across a restart."""
from __future__ import annotations

import json
import stat
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import FargoProcess
from tests.fargo_process import free_port

DEFAULT_VPC, DEFAULT_SG = "vpc-fargo-default", "sg-fargo-default"


def _error(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    return (e.value.response["Error"]["Code"], e.value.response["Error"]["Message"],
            e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _token() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


def _free_addresses(ec2, subnet_ids: list[str]) -> dict[str, int]:  # noqa: ANN001
    return {s["SubnetId"]: s["AvailableIpAddressCount"] for s in ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]}


def _wait_gone(efs, file_system_id: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            state = efs.describe_file_systems(FileSystemId=file_system_id)["FileSystems"][0]["LifeCycleState"]
        except ClientError as e:
            assert e.response["Error"]["Code"] == "FileSystemNotFound"
            return
        assert state == "deleting"
        time.sleep(0.05)
    raise AssertionError(f"{file_system_id} is still there")


@pytest.fixture
def efs(fargo: FargoProcess):  # noqa: ANN201
    return fargo.client("efs")


@pytest.fixture
def vpc(fargo: FargoProcess):  # noqa: ANN201
    """A VPC of the test's own with a subnet in each of two AZs and a group (counts untouched by other tests)."""
    ec2 = fargo.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.90.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
               for i, zone in ((1, "us-east-1a"), (2, "us-east-1b"))]
    group = ec2.create_security_group(GroupName="nfs", Description="NFS clients", VpcId=vpc_id)["GroupId"]
    default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                    {"Name": "group-name", "Values": ["default"]}])
    yield {"VpcId": vpc_id, "Subnets": subnets, "Group": group,
           "Default": default["SecurityGroups"][0]["GroupId"]}
    ec2.delete_security_group(GroupId=group)
    for subnet in subnets:
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc_id)


def test_a_file_system_from_create_to_delete(fargo: FargoProcess, efs) -> None:  # noqa: ANN001
    token = _token()
    made = efs.create_file_system(CreationToken=token, Encrypted=True, Tags=[{"Key": "Name", "Value": "web"}])
    fs = made["FileSystemId"]
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (made["LifeCycleState"], made["Name"], made["SizeInBytes"]["Value"], made["NumberOfMountTargets"]) == (
        "creating", "web", 0, 0)
    assert made["KmsKeyId"] == "arn:aws:kms:us-east-1:000000000000:alias/aws/elasticfilesystem"
    root = fargo.data_dir / "efs" / fs
    info = root.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o755)
    shown = efs.describe_file_systems(FileSystemId=made["FileSystemArn"])["FileSystems"][0]
    assert (shown["FileSystemId"], shown["LifeCycleState"], shown["SizeInBytes"]["Value"]) == (fs, "available", 6144)
    assert shown["CreationTime"].timestamp() == pytest.approx(made["CreationTime"].timestamp())

    with pytest.raises(ClientError) as e:
        efs.create_file_system(CreationToken=token)
    assert _error(e) == ("FileSystemAlreadyExists",
                         f"File system '{fs}' already exists with creation token '{token}'", 409)
    assert e.value.response["FileSystemId"] == fs
    assert [f["FileSystemId"] for f in efs.describe_file_systems(CreationToken=token)["FileSystems"]] == [fs]

    (root / "data").write_bytes(b"x" * 10000)  # as a task would write it: metered within seconds
    deadline = time.monotonic() + 20
    while efs.describe_file_systems(FileSystemId=fs)["FileSystems"][0]["SizeInBytes"]["Value"] != 6144 + 2048 + 12288:
        assert time.monotonic() < deadline, "the size never caught up with the data"
        time.sleep(0.5)

    deleted = efs.delete_file_system(FileSystemId=fs)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    _wait_gone(efs, fs)
    assert not root.exists()
    with pytest.raises(ClientError) as e:
        efs.delete_file_system(FileSystemId=fs)
    assert _error(e) == ("FileSystemNotFound", f"File system '{fs}' does not exist.", 404)


def test_describe_file_systems_pages_through_boto3s_paginator(efs) -> None:  # noqa: ANN001
    mine = [efs.create_file_system(CreationToken=_token())["FileSystemId"] for _ in range(3)]
    pages = list(efs.get_paginator("describe_file_systems").paginate(PaginationConfig={"PageSize": 1}))
    seen = [f["FileSystemId"] for p in pages for f in p["FileSystems"]]
    assert len(pages) == len(seen) >= 3 and len(set(seen)) == len(seen) and set(mine) <= set(seen)
    with pytest.raises(ClientError) as e:
        efs.describe_file_systems(Marker="not-a-marker")
    assert _error(e)[0::2] == ("BadRequest", 400)
    for fs in mine:
        efs.delete_file_system(FileSystemId=fs)


def test_access_points_of_a_file_system(efs) -> None:  # noqa: ANN001
    fs = efs.create_file_system(CreationToken=_token())["FileSystemId"]
    token = _token()
    ap = efs.create_access_point(ClientToken=token, FileSystemId=fs, Tags=[{"Key": "Name", "Value": "app"}],
                                 PosixUser={"Uid": 1000, "Gid": 1000, "SecondaryGids": [10]},
                                 RootDirectory={"Path": "/apps/one", "CreationInfo": {
                                     "OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "750"}})
    assert ap["AccessPointArn"].endswith(f":access-point/{ap['AccessPointId']}") and ap["Name"] == "app"
    with pytest.raises(ClientError) as e:
        efs.create_access_point(ClientToken=token, FileSystemId=fs)
    assert _error(e)[0::2] == ("AccessPointAlreadyExists", 409)
    assert e.value.response["AccessPointId"] == ap["AccessPointId"]
    second = efs.create_access_point(ClientToken=_token(), FileSystemId=fs)["AccessPointId"]
    first_page = efs.describe_access_points(FileSystemId=fs, MaxResults=1)
    rest = efs.describe_access_points(FileSystemId=fs, NextToken=first_page["NextToken"])
    assert [a["AccessPointId"] for a in first_page["AccessPoints"] + rest["AccessPoints"]] == [
        ap["AccessPointId"], second]
    shown = efs.describe_access_points(AccessPointId=ap["AccessPointArn"])["AccessPoints"][0]
    assert (shown["LifeCycleState"], shown["RootDirectory"]["Path"], shown["PosixUser"]["SecondaryGids"]) == (
        "available", "/apps/one", [10])
    assert efs.describe_access_points(AccessPointId=second)["AccessPoints"][0]["RootDirectory"] == {"Path": "/"}
    with pytest.raises(ClientError) as e:
        efs.create_access_point(ClientToken=_token(), FileSystemId=fs, RootDirectory={"Path": "/a/../b"})
    assert _error(e)[0::2] == ("BadRequest", 400)
    assert efs.delete_access_point(AccessPointId=second)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        efs.delete_access_point(AccessPointId=second)
    assert _error(e) == ("AccessPointNotFound", f"Access Point {second} does not exist.", 404)
    efs.delete_file_system(FileSystemId=fs)  # its last access point goes with it
    _wait_gone(efs, fs)
    with pytest.raises(ClientError) as e:
        efs.describe_access_points(AccessPointId=ap["AccessPointId"])
    assert _error(e)[0] == "AccessPointNotFound"


def test_mount_targets_are_enis_of_the_vpc(fargo: FargoProcess, efs, vpc: dict) -> None:  # noqa: ANN001
    ec2 = fargo.client("ec2")
    subnet_a, subnet_b = vpc["Subnets"]
    fs = efs.create_file_system(CreationToken=_token())["FileSystemId"]
    mt = efs.create_mount_target(FileSystemId=fs, SubnetId=subnet_a, SecurityGroups=[vpc["Group"]])
    assert (mt["LifeCycleState"], mt["VpcId"], mt["AvailabilityZoneName"], mt["IpAddress"]) == (
        "creating", vpc["VpcId"], "us-east-1a", "10.90.1.4")
    eni = ec2.describe_network_interfaces(Filters=[{"Name": "description", "Values": [f"*{mt['MountTargetId']}*"]}])
    (eni,) = eni["NetworkInterfaces"]
    assert (eni["NetworkInterfaceId"], eni["Description"]) == (
        mt["NetworkInterfaceId"], f"EFS mount target for {fs} ({mt['MountTargetId']})")
    assert (eni["RequesterManaged"], eni["Status"], eni["PrivateIpAddress"], eni["Groups"][0]["GroupId"]) == (
        True, "in-use", "10.90.1.4", vpc["Group"])
    counts = _free_addresses(ec2, vpc["Subnets"])
    assert counts == {subnet_a: 250, subnet_b: 251}

    with pytest.raises(ClientError) as e:
        efs.create_mount_target(FileSystemId=fs, SubnetId=subnet_a)
    assert _error(e) == ("MountTargetConflict", "mount target already exists in this AZ", 409)
    with pytest.raises(ClientError) as e:
        efs.create_mount_target(FileSystemId=fs, SubnetId="subnet-fargo-default-1c")
    assert _error(e)[0] == "MountTargetConflict"
    other = efs.create_file_system(CreationToken=_token())["FileSystemId"]
    with pytest.raises(ClientError) as e:
        efs.create_mount_target(FileSystemId=other, SubnetId=subnet_a, IpAddress="10.90.1.4")
    assert _error(e)[0::2] == ("IpAddressInUse", 409)
    with pytest.raises(ClientError) as e:
        efs.create_mount_target(FileSystemId=other, SubnetId="subnet-0123456789abcdef0")
    assert _error(e) == ("SubnetNotFound", "The subnet ID 'subnet-0123456789abcdef0' does not exist", 400)
    with pytest.raises(ClientError) as e:
        efs.create_mount_target(FileSystemId=other, SubnetId=subnet_a, SecurityGroups=["sg-0123456789abcdef0"])
    assert _error(e)[0::2] == ("SecurityGroupNotFound", 400)
    second = efs.create_mount_target(FileSystemId=fs, SubnetId=subnet_b, IpAddress="10.90.2.100")
    assert efs.describe_mount_target_security_groups(MountTargetId=second["MountTargetId"])["SecurityGroups"] == [
        vpc["Default"]]  # none asked: the VPC's default group
    efs.modify_mount_target_security_groups(MountTargetId=second["MountTargetId"], SecurityGroups=[vpc["Group"]])
    assert efs.describe_mount_target_security_groups(MountTargetId=second["MountTargetId"])["SecurityGroups"] == [
        vpc["Group"]]
    listed = efs.describe_mount_targets(FileSystemId=fs)["MountTargets"]
    assert [m["MountTargetId"] for m in listed] == [mt["MountTargetId"], second["MountTargetId"]]
    assert efs.describe_file_systems(FileSystemId=fs)["FileSystems"][0]["NumberOfMountTargets"] == 2

    # what the ENIs hold: the group, the subnet, the VPC, and the file system itself
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=vpc["Group"])
    assert _error(e) == ("DependencyViolation", f"resource {vpc['Group']} has a dependent object", 400)
    with pytest.raises(ClientError) as e:
        ec2.delete_subnet(SubnetId=subnet_a)
    assert _error(e) == ("DependencyViolation",
                         f"The subnet '{subnet_a}' has dependencies and cannot be deleted.", 400)
    with pytest.raises(ClientError) as e:
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert _error(e)[0] == "DependencyViolation"
    with pytest.raises(ClientError) as e:
        efs.delete_file_system(FileSystemId=fs)
    assert _error(e) == ("FileSystemInUse", f"The file system '{fs}' cannot be deleted because it has mount "
                         "targets. You must delete the mount targets, and then try again.", 409)

    for target in (mt, second):
        assert efs.delete_mount_target(MountTargetId=target["MountTargetId"])["ResponseMetadata"][
            "HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        efs.describe_mount_targets(MountTargetId=mt["MountTargetId"])
    assert _error(e)[0::2] == ("MountTargetNotFound", 404)
    counts = _free_addresses(ec2, vpc["Subnets"])
    assert counts == {subnet_a: 251, subnet_b: 251}
    with pytest.raises(ClientError) as e:
        efs.describe_mount_targets()
    assert _error(e)[0::2] == ("BadRequest", 400)
    for file_system in (fs, other):
        efs.delete_file_system(FileSystemId=file_system)


def test_tags_new_and_old_style(efs) -> None:  # noqa: ANN001
    made = efs.create_file_system(CreationToken=_token(), Tags=[{"Key": "team", "Value": "a"}])
    fs, arn = made["FileSystemId"], made["FileSystemArn"]
    efs.tag_resource(ResourceId=arn, Tags=[{"Key": "Name", "Value": "renamed"}, {"Key": "team", "Value": "b"}])
    assert efs.list_tags_for_resource(ResourceId=fs)["Tags"] == [{"Key": "team", "Value": "b"},
                                                                 {"Key": "Name", "Value": "renamed"}]
    assert efs.describe_file_systems(FileSystemId=fs)["FileSystems"][0]["Name"] == "renamed"
    efs.untag_resource(ResourceId=fs, TagKeys=["Name", "team"])
    assert efs.list_tags_for_resource(ResourceId=fs)["Tags"] == []
    efs.create_tags(FileSystemId=fs, Tags=[{"Key": "old+style", "Value": "yes"}])
    assert efs.describe_tags(FileSystemId=fs)["Tags"] == [{"Key": "old+style", "Value": "yes"}]
    efs.delete_tags(FileSystemId=fs, TagKeys=["old+style"])
    assert efs.describe_tags(FileSystemId=fs)["Tags"] == []
    ap = efs.create_access_point(ClientToken=_token(), FileSystemId=fs)["AccessPointId"]
    efs.tag_resource(ResourceId=ap, Tags=[{"Key": "k", "Value": "v"}])
    assert efs.describe_access_points(AccessPointId=ap)["AccessPoints"][0]["Tags"] == [{"Key": "k", "Value": "v"}]
    with pytest.raises(ClientError) as e:
        efs.list_tags_for_resource(ResourceId="fsap-0123456789abcdef0")
    assert _error(e)[0::2] == ("AccessPointNotFound", 404)
    efs.delete_file_system(FileSystemId=fs)


def test_malformed_requests_get_awss_bad_request_never_a_server_error(fargo: FargoProcess) -> None:
    def post(path: str, body: bytes) -> tuple[int, dict, dict]:
        request = urllib.request.Request(fargo.endpoint + path, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, dict(r.headers), json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read() or b"{}")

    for body in (b"{", b'{"CreationToken": 7}', b'{"PerformanceMode": "fast", "CreationToken": "x"}', b"[]"):
        status, headers, out = post("/2015-02-01/file-systems", body)
        assert (status, headers["x-amzn-ErrorType"], out["ErrorCode"]) == (400, "BadRequest", "BadRequest"), body
        assert out["Message"] and headers["x-amzn-RequestId"]
    status, _, out = post("/2015-02-01/access-points", b'{"ClientToken": "t"}')
    assert (status, out["Message"]) == (400, "1 validation error detected: Value null at 'FileSystemId' failed to "
                                             "satisfy constraint: Member must not be null")


def test_efs_volumes_in_task_definitions_and_on_platform_1_3_0(fargo: FargoProcess, efs) -> None:  # noqa: ANN001
    ecs = fargo.client("ecs")
    ecs.create_cluster(clusterName="efs-api")
    fs = efs.create_file_system(CreationToken=_token())["FileSystemId"]
    base = {"family": "efs-api", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256",
            "memory": "512", "containerDefinitions": [{"name": "app", "image": "fargo.local/busybox:latest"}]}
    with pytest.raises(ClientError) as e:
        ecs.register_task_definition(**base, volumes=[{"name": "v", "efsVolumeConfiguration": {
            "fileSystemId": fs, "rootDirectory": "/data", "transitEncryption": "ENABLED",
            "authorizationConfig": {"accessPointId": "fsap-0123456789abcdef0"}}}])
    assert _error(e) == ("ClientException", 'When using an EFS access point, the root directory must either be set '
                         'to "/" or be omitted.', 400)
    with pytest.raises(ClientError) as e:
        ecs.register_task_definition(**base, volumes=[{"name": "v", "efsVolumeConfiguration": {"fileSystemId": fs},
                                                       "dockerVolumeConfiguration": {"scope": "task"}}])
    assert _error(e)[:2] == ("ClientException", "When the volume parameter is specified, only one volume "
                             "configuration type should be used.")
    td = ecs.register_task_definition(**base, volumes=[{"name": "v", "efsVolumeConfiguration": {"fileSystemId": fs}}])
    assert td["taskDefinition"]["volumes"][0]["efsVolumeConfiguration"] == {"fileSystemId": fs, "rootDirectory": "/"}
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster="efs-api", taskDefinition="efs-api", launchType="FARGATE", platformVersion="1.3.0",
                     networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-fargo-default-1a"]}})
    assert _error(e) == ("PlatformTaskDefinitionIncompatibilityException",
                         "One or more of the requested capabilities are not supported.", 400)
    efs.delete_file_system(FileSystemId=fs)


def test_the_aws_cli_speaks_to_fargos_efs(fargo: FargoProcess) -> None:
    token = _token()
    made = fargo.aws_json("efs", "create-file-system", "--creation-token", token, "--tags", "Key=Name,Value=cli")
    shown = fargo.aws_json("efs", "describe-file-systems", "--file-system-id", made["FileSystemId"])
    assert [(f["FileSystemId"], f["Name"], f["CreationToken"]) for f in shown["FileSystems"]] == [
        (made["FileSystemId"], "cli", token)]
    again = fargo.aws_cli("efs", "create-file-system", "--creation-token", token, check=False)
    assert again.returncode != 0 and "FileSystemAlreadyExists" in again.stderr
    fargo.aws_cli("efs", "delete-file-system", "--file-system-id", made["FileSystemId"])


def test_file_systems_and_their_data_survive_a_restart(fresh_fargo_dir: Path) -> None:
    f = FargoProcess(fresh_fargo_dir, free_port()).start()
    try:
        efs = f.client("efs")
        fs = efs.create_file_system(CreationToken="kept", Tags=[{"Key": "Name", "Value": "kept"}])["FileSystemId"]
        (fresh_fargo_dir / "efs" / fs / "note").write_text("still here\n")
        ap = efs.create_access_point(ClientToken="kept-ap", FileSystemId=fs, PosixUser={"Uid": 1, "Gid": 2})
        mt = efs.create_mount_target(FileSystemId=fs, SubnetId="subnet-fargo-default-1b")
        gone = efs.create_file_system(CreationToken="gone")["FileSystemId"]
        efs.delete_file_system(FileSystemId=gone)
        _wait_gone(efs, gone)
    finally:
        assert f.stop() == 0, f.log_tail()
    f = FargoProcess(fresh_fargo_dir, free_port()).start()
    try:
        efs, ec2 = f.client("efs"), f.client("ec2")
        shown = efs.describe_file_systems()["FileSystems"]
        assert [(s["FileSystemId"], s["Name"], s["LifeCycleState"], s["NumberOfMountTargets"]) for s in shown] == [
            (fs, "kept", "available", 1)]
        assert (fresh_fargo_dir / "efs" / fs / "note").read_text() == "still here\n"
        assert not (fresh_fargo_dir / "efs" / gone).exists()
        assert efs.describe_access_points(FileSystemId=fs)["AccessPoints"][0]["AccessPointId"] == ap["AccessPointId"]
        (target,) = efs.describe_mount_targets(FileSystemId=fs)["MountTargets"]
        assert (target["MountTargetId"], target["IpAddress"]) == (mt["MountTargetId"], mt["IpAddress"])
        eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[mt["NetworkInterfaceId"]])["NetworkInterfaces"][0]
        assert eni["PrivateIpAddress"] == mt["IpAddress"]
        with pytest.raises(ClientError) as e:
            efs.create_file_system(CreationToken="kept")
        assert e.value.response["FileSystemId"] == fs
    finally:
        f.stop()
