"""The default network as EC2 shows it, through boto3 and the AWS CLI (EC2's query protocol).

The shared Fargo may hold other tests' VPCs: these look at the default VPC only."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

IN_DEFAULT_VPC = [{"Name": "vpc-id", "Values": ["vpc-fargo-default"]}]
SUBNETS = {
    "us-east-1a": "10.213.0.0/20",
    "us-east-1b": "10.213.16.0/20",
    "us-east-1c": "10.213.32.0/20",
}


def test_describe_vpcs_returns_the_default_vpc(ec2) -> None:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert [(v["VpcId"], v["CidrBlock"], v["IsDefault"], v["State"]) for v in vpcs] == [
        ("vpc-fargo-default", "10.213.0.0/16", True, "available")]


def test_describe_subnets_returns_one_per_availability_zone(ec2) -> None:
    subnets = ec2.describe_subnets(Filters=IN_DEFAULT_VPC)["Subnets"]
    assert {s["AvailabilityZone"]: s["CidrBlock"] for s in subnets} == SUBNETS
    assert all(s["DefaultForAz"] for s in subnets)
    only_b = ec2.describe_subnets(Filters=[*IN_DEFAULT_VPC,
                                           {"Name": "availability-zone", "Values": ["us-east-1b"]}])["Subnets"]
    assert [s["CidrBlock"] for s in only_b] == ["10.213.16.0/20"]
    by_id = ec2.describe_subnets(SubnetIds=[only_b[0]["SubnetId"]])["Subnets"]
    assert [s["AvailabilityZone"] for s in by_id] == ["us-east-1b"]


def test_describe_security_groups_returns_the_default_group(ec2) -> None:
    groups = ec2.describe_security_groups(Filters=IN_DEFAULT_VPC)["SecurityGroups"]
    assert [(g["GroupId"], g["GroupName"]) for g in groups if g["GroupName"] == "default"] == [
        ("sg-fargo-default", "default")]


def test_describe_availability_zones(ec2) -> None:
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert all(z["State"] == "available" and z["RegionName"] == "us-east-1" for z in zones)


def test_unknown_ids_get_ec2_not_found_errors(ec2) -> None:
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs(VpcIds=["vpc-12345678"])
    assert e.value.response["Error"]["Code"] == "InvalidVpcID.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.describe_subnets(SubnetIds=["subnet-12345678"])
    assert e.value.response["Error"]["Code"] == "InvalidSubnetID.NotFound"


def test_aws_cli_describe_subnets(fargo) -> None:
    out = fargo.aws_json("ec2", "describe-subnets", "--filters", "Name=vpc-id,Values=vpc-fargo-default")
    assert {s["AvailabilityZone"] for s in out["Subnets"]} == set(SUBNETS)
