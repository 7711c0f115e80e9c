"""The EC2 VPC API through boto3 and the AWS CLI against a real `fargo up`: VPCs, subnets, security groups and
rules, tags and filters, AWS's error codes on the wire, paging, and the state across a restart."""
from __future__ import annotations

import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import FargoProcess
from tests.fargo_process import discard_data_dir, free_port

DEFAULT_VPC, DEFAULT_SG = "vpc-fargo-default", "sg-fargo-default"


@pytest.fixture(scope="module")
def own() -> Iterator[FargoProcess]:
    """A Fargo of this module's own: the tests here look at every VPC there is."""
    data_dir = Path(tempfile.mkdtemp(prefix="fargo-e2e-"))
    proc = FargoProcess(data_dir, free_port())
    try:
        yield proc.start()
    finally:
        proc.stop(signal.SIGKILL)
        discard_data_dir(data_dir)


@pytest.fixture
def ec2(own: FargoProcess):  # noqa: ANN201
    return own.client("ec2")


def _code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return e.value.response["Error"]["Code"]


def test_a_vpc_with_a_subnet_and_groups_from_create_to_delete(ec2) -> None:  # noqa: ANN001
    vpc = ec2.create_vpc(CidrBlock="10.50.7.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "shop"}]}])["Vpc"]
    vpc_id = vpc["VpcId"]
    assert (vpc["CidrBlock"], vpc["Tags"]) == ("10.50.0.0/16", [{"Key": "Name", "Value": "shop"}])
    ec2.get_waiter("vpc_available").wait(VpcIds=[vpc_id], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.50.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    assert (subnet["AvailableIpAddressCount"], subnet["AvailabilityZoneId"], subnet["DefaultForAz"]) == (
        251, "use1-az2", False)
    with pytest.raises(ClientError) as e:
        ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.50.1.0/25")
    assert _code(e) == "InvalidSubnet.Conflict"

    web = ec2.create_security_group(GroupName="web", Description="web servers", VpcId=vpc_id)["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="databases", VpcId=vpc_id)["GroupId"]
    with pytest.raises(ClientError) as e:
        ec2.create_security_group(GroupName="WEB", Description="again", VpcId=vpc_id)
    assert _code(e) == "InvalidGroup.Duplicate"
    rules = ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}])
    assert rules["Return"] is True
    assert rules["SecurityGroupRules"][0]["ReferencedGroupInfo"]["GroupId"] == web
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[
            {"IpProtocol": "6", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}])
    assert _code(e) == "InvalidPermission.Duplicate" and f"peer: {web}, TCP" in e.value.response["Error"]["Message"]

    shown = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    assert sorted(g["GroupName"] for g in shown) == ["db", "default", "web"]
    by_name = {g["GroupName"]: g for g in shown}
    assert by_name["db"]["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == web
    assert by_name["web"]["IpPermissions"] == []
    assert by_name["default"]["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == by_name["default"]["GroupId"]

    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=web)
    assert _code(e) == "DependencyViolation"
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=by_name["default"]["GroupId"])
    assert _code(e) == "CannotDelete"
    with pytest.raises(ClientError) as e:
        ec2.delete_vpc(VpcId=vpc_id)
    assert _code(e) == "DependencyViolation"
    revoked = ec2.revoke_security_group_ingress(GroupId=db, SecurityGroupRuleIds=[
        rules["SecurityGroupRules"][0]["SecurityGroupRuleId"]])
    assert revoked["RevokedSecurityGroupRules"][0]["ReferencedGroupId"] == web
    for group in (web, db):
        ec2.delete_security_group(GroupId=group)
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc_id)
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs(VpcIds=[vpc_id])
    assert _code(e) == "InvalidVpcID.NotFound"
    assert [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]] == [DEFAULT_VPC]


def test_bad_input_gets_ec2_errors_and_changes_nothing(ec2) -> None:  # noqa: ANN001
    for call, code in (
        (lambda: ec2.create_vpc(CidrBlock="10.0.0.0/8"), "InvalidVpc.Range"),
        (lambda: ec2.create_vpc(CidrBlock="not-a-cidr"), "InvalidParameterValue"),
        (lambda: ec2.create_subnet(VpcId=DEFAULT_VPC, CidrBlock="192.168.0.0/24"), "InvalidSubnet.Range"),
        (lambda: ec2.create_subnet(VpcId=DEFAULT_VPC, CidrBlock="10.213.200.0/24", AvailabilityZone="eu-west-1a"),
         "InvalidParameterValue"),
        (lambda: ec2.authorize_security_group_ingress(GroupId=DEFAULT_SG, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]), "InvalidParameterValue"),
        (lambda: ec2.create_security_group(GroupName="sg-x", Description="d"), "InvalidParameterValue"),
        (lambda: ec2.describe_subnets(Filters=[{"Name": "nope", "Values": ["x"]}]), "InvalidParameterValue"),
        (lambda: ec2.create_tags(Resources=["vpc-0123456789abcdef0"], Tags=[{"Key": "k", "Value": "v"}]),
         "InvalidVpcID.NotFound"),
        (lambda: ec2.describe_network_interfaces(NetworkInterfaceIds=["eni-0123456789abcdef0"]),
         "InvalidNetworkInterfaceID.NotFound"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert _code(e) == code
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        ec2.create_vpc(CidrBlock="10.9.0.0/16", DryRun=True)
    assert _code(e) == "DryRunOperation" and e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]] == [DEFAULT_VPC]
    assert len(ec2.describe_subnets()["Subnets"]) == 3 and ec2.describe_tags()["Tags"] == []


def test_filters_tags_and_paging_over_the_wire(ec2) -> None:  # noqa: ANN001
    groups = [ec2.create_security_group(GroupName=f"page-{i}", Description="paged", VpcId=DEFAULT_VPC)["GroupId"]
              for i in range(7)]
    try:
        ec2.create_tags(Resources=groups[:2], Tags=[{"Key": "tier", "Value": "front"}])
        tagged = ec2.describe_security_groups(Filters=[{"Name": "tag:tier", "Values": ["fr*"]}])["SecurityGroups"]
        assert sorted(g["GroupId"] for g in tagged) == sorted(groups[:2])
        assert all(g["Tags"] == [{"Key": "tier", "Value": "front"}] for g in tagged)
        pages = ec2.get_paginator("describe_security_groups").paginate(
            Filters=[{"Name": "description", "Values": ["paged"]}], PaginationConfig={"PageSize": 5})
        seen = [g["GroupId"] for page in pages for g in page["SecurityGroups"]]
        assert sorted(seen) == sorted(groups)
        tags = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["security-group"]}])["Tags"]
        assert {(t["ResourceId"], t["Key"], t["Value"]) for t in tags} == {(g, "tier", "front") for g in groups[:2]}
        ec2.delete_tags(Resources=groups[:2])
        assert ec2.describe_tags()["Tags"] == []
        assert ec2.describe_network_interfaces()["NetworkInterfaces"] == []
        zones = ec2.describe_availability_zones()["AvailabilityZones"]
        assert [z["ZoneName"] for z in zones] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    finally:
        for group in groups:
            ec2.delete_security_group(GroupId=group)


def test_the_aws_cli_speaks_the_vpc_api(own: FargoProcess) -> None:
    vpc_id = own.aws_json("ec2", "create-vpc", "--cidr-block", "10.60.0.0/16")["Vpc"]["VpcId"]
    subnet = own.aws_json("ec2", "create-subnet", "--vpc-id", vpc_id, "--cidr-block", "10.60.3.0/24",
                          "--tag-specifications", "ResourceType=subnet,Tags=[{Key=Name,Value=app}]")["Subnet"]
    assert subnet["Tags"] == [{"Key": "Name", "Value": "app"}]
    group = own.aws_json("ec2", "create-security-group", "--group-name", "ssh", "--description", "ssh in",
                         "--vpc-id", vpc_id)["GroupId"]
    out = own.aws_json("ec2", "authorize-security-group-ingress", "--group-id", group, "--protocol", "tcp",
                       "--port", "22", "--cidr", "203.0.113.0/24")
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"], r["CidrIpv4"]) for r in out["SecurityGroupRules"]] == [
        ("tcp", 22, 22, "203.0.113.0/24")]
    rules = own.aws_json("ec2", "describe-security-group-rules", "--filters", f"Name=group-id,Values={group}")
    assert sorted(r["IsEgress"] for r in rules["SecurityGroupRules"]) == [False, True]
    found = own.aws_json("ec2", "describe-subnets", "--filters", "Name=tag:Name,Values=app",
                         f"Name=vpc-id,Values={vpc_id}")["Subnets"]
    assert [s["SubnetId"] for s in found] == [subnet["SubnetId"]]
    failed = own.aws_cli("ec2", "delete-vpc", "--vpc-id", vpc_id, check=False)
    assert failed.returncode != 0 and "DependencyViolation" in failed.stderr
    own.aws_cli("ec2", "revoke-security-group-ingress", "--group-id", group, "--protocol", "tcp", "--port", "22",
                "--cidr", "203.0.113.0/24")
    own.aws_cli("ec2", "delete-security-group", "--group-id", group)
    own.aws_cli("ec2", "delete-subnet", "--subnet-id", subnet["SubnetId"])
    own.aws_cli("ec2", "delete-vpc", "--vpc-id", vpc_id)
    missing = own.aws_cli("ec2", "describe-vpcs", "--vpc-ids", vpc_id, check=False)
    assert missing.returncode != 0 and "InvalidVpcID.NotFound" in missing.stderr


def test_vpcs_groups_and_rules_survive_a_restart_and_a_deleted_default_vpc_stays_deleted(
        fresh_fargo_dir: Path) -> None:
    f = FargoProcess(fresh_fargo_dir, free_port()).start()
    try:
        ec2 = f.client("ec2")
        vpc_id = ec2.create_vpc(CidrBlock="10.70.0.0/16")["Vpc"]["VpcId"]
        group = ec2.create_security_group(GroupName="kept", Description="kept", VpcId=vpc_id)["GroupId"]
        ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[
            {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.2/32"}]}])
        for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [DEFAULT_VPC]}])["Subnets"]:
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        ec2.delete_vpc(VpcId=DEFAULT_VPC)
    finally:
        assert f.stop() == 0, f.log_tail()
    f = FargoProcess(fresh_fargo_dir, free_port()).start()
    try:
        ec2 = f.client("ec2")
        assert [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]] == [vpc_id]
        (kept,) = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
        assert {(p["IpProtocol"], p.get("FromPort")) for p in kept["IpPermissionsEgress"]} == {("-1", None),
                                                                                                ("udp", 53)}
    finally:
        f.stop()
