"""The EC2 VPC API of the control plane against a real store: VPCs, subnets, security groups and rules, task
ENIs, tags and filters, with AWS's error codes; the default VPC; and what RunTask and the agent gateway ask
of the network (awsvpcConfiguration, security group policies)."""
from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import text

from fargo.config import Config
from fargo.control.context import ControlContext
from fargo.control.vpcs.network import AwsvpcChoice, Network, SubnetChoice
from fargo.errors import AwsError, InvalidParameterException
from fargo.protocol.messages import GroupPolicy, RulePolicy
from fargo.store import database
from fargo.store.database import Store
from tests.e2e.test_persistence import postgres_url  # noqa: F401 - the fixture: a fresh PostgreSQL database

ACCOUNT = "000000000000"
DEFAULT_VPC, DEFAULT_SG = "vpc-fargo-default", "sg-fargo-default"
DEFAULT_SUBNET_A = "subnet-fargo-default-1a"


class Ec2:
    """The Network's EC2 handlers, called as the wire layer calls them, plus a way to add task ENIs."""

    def __init__(self, store: Store, data_dir: Path) -> None:
        self.store = store
        self.changes = 0
        self.network = Network(ControlContext(Config(data_dir=data_dir), store), on_change=self._changed)
        self.network.ensure_default()
        self.handlers = self.network.handlers()
        self._tasks = 0

    def _changed(self) -> None:
        self.changes += 1

    def __call__(self, operation: str, **params: Any) -> dict:
        return asyncio.run(self.handlers[operation](params))

    def error(self, operation: str, **params: Any) -> AwsError:
        with pytest.raises(AwsError) as e:
            self(operation, **params)
        return e.value

    def vpc(self, cidr: str = "10.0.0.0/16") -> str:
        return self("CreateVpc", CidrBlock=cidr)["Vpc"]["VpcId"]

    def subnet(self, vpc_id: str, cidr: str, zone: str | None = None) -> str:
        params = {"VpcId": vpc_id, "CidrBlock": cidr, **({"AvailabilityZone": zone} if zone else {})}
        return self("CreateSubnet", **params)["Subnet"]["SubnetId"]

    def group(self, vpc_id: str, name: str = "web") -> str:
        return self("CreateSecurityGroup", GroupName=name, Description=f"{name} servers", VpcId=vpc_id)["GroupId"]

    def default_group(self, vpc_id: str) -> str:
        groups = self("DescribeSecurityGroups", Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                         {"Name": "group-name", "Values": ["default"]}])
        return groups["SecurityGroups"][0]["GroupId"]

    def eni(self, subnet_id: str, vpc_id: str, groups: list[str], agent_id: str = "embedded",
            public: bool = False, cidr: str | None = None) -> tuple[str, str, str]:
        """A task with an address and its ENI, as RunTask writes them; returns (task ARN, ENI id, IP)."""
        self._tasks += 1
        task_id = task_id_of(self._tasks)
        arn = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/default/{task_id}"
        cidr = cidr or self("DescribeSubnets", SubnetIds=[subnet_id])["Subnets"][0]["CidrBlock"]
        doc = {"taskArn": arn, "clusterArn": "c", "desiredStatus": "RUNNING", "lastStatus": "PROVISIONING",
               "createdAt": 1700000000.5}
        with self.store.task_writes() as w:
            ip = w.allocate_ip(subnet_id, cidr, arn)
            w.insert(doc, task_id, "fam", None, agent_id)
            w.insert_network_interface({
                "eni_id": "eni-" + task_id[:17], "attachment_id": f"attach-{task_id}", "task_arn": arn,
                "subnet_id": subnet_id, "vpc_id": vpc_id, "availability_zone": "us-east-1a", "ip": ip,
                "mac": "0e:00:00:00:00:01", "private_dns_name": f"ip-{ip.replace('.', '-')}.ec2.internal",
                "group_ids": groups, "assign_public_ip": public, "attach_time": 1700000000.5,
                **({"public_ip": "203.0.113.7"} if public else {})})
        return arn, "eni-" + task_id[:17], ip

    def release(self, task_arn: str) -> None:
        with self.store.task_writes() as w:
            w.release_ip(task_arn)


def task_id_of(n: int) -> str:
    """The id of the n-th task `Ec2.eni` makes (its ENI: eni- and the first 17 digits)."""
    return f"{n:017x}{'f' * 15}"


def _sqlite(path: Path) -> Store:
    store = Store(f"sqlite:///{path / 'fargo.db'}")
    store.migrate()
    return store


@pytest.fixture
def ec2(tmp_path: Path) -> Ec2:
    return Ec2(_sqlite(tmp_path), tmp_path)


def _tcp(port: int, cidr: str = "0.0.0.0/0") -> dict:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}


def _rules(ec2: Ec2, group_id: str, egress: bool) -> list[tuple]:
    rules = ec2("DescribeSecurityGroupRules", Filters=[{"Name": "group-id", "Values": [group_id]}])
    return sorted((r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("CidrIpv4") or
                   r["ReferencedGroupInfo"]["GroupId"]) for r in rules["SecurityGroupRules"] if r["IsEgress"] == egress)


# --- the default VPC ----------------------------------------------------------------------------

def test_the_default_vpc_is_seeded_with_its_subnets_and_group(ec2: Ec2) -> None:
    vpcs = ec2("DescribeVpcs")["Vpcs"]
    assert [(v["VpcId"], v["CidrBlock"], v["IsDefault"]) for v in vpcs] == [(DEFAULT_VPC, "10.213.0.0/16", True)]
    subnets = ec2("DescribeSubnets")["Subnets"]
    assert {(s["SubnetId"], s["AvailabilityZone"], s["CidrBlock"], s["DefaultForAz"], s["AvailableIpAddressCount"])
            for s in subnets} == {
        ("subnet-fargo-default-1a", "us-east-1a", "10.213.0.0/20", True, 4091),
        ("subnet-fargo-default-1b", "us-east-1b", "10.213.16.0/20", True, 4091),
        ("subnet-fargo-default-1c", "us-east-1c", "10.213.32.0/20", True, 4091)}
    (group,) = ec2("DescribeSecurityGroups")["SecurityGroups"]
    assert (group["GroupId"], group["GroupName"], group["Description"]) == (DEFAULT_SG, "default",
                                                                            "default VPC security group")
    assert group["IpPermissions"] == [{"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [],
                                       "UserIdGroupPairs": [{"GroupId": DEFAULT_SG, "UserId": ACCOUNT}]}]
    assert group["IpPermissionsEgress"] == [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                                             "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]


def test_a_default_vpc_the_user_deleted_is_not_seeded_again(ec2: Ec2, tmp_path: Path) -> None:
    ec2.network.ensure_default()  # again: nothing more
    assert len(ec2("DescribeVpcs")["Vpcs"]) == 1
    for subnet in ec2("DescribeSubnets")["Subnets"]:
        ec2("DeleteSubnet", SubnetId=subnet["SubnetId"])
    ec2("DeleteVpc", VpcId=DEFAULT_VPC)
    again = Ec2(_sqlite(tmp_path), tmp_path)  # the next start
    assert again("DescribeVpcs")["Vpcs"] == [] and again("DescribeSecurityGroups")["SecurityGroups"] == []
    assert again.error("CreateSecurityGroup", GroupName="x", Description="x").code == "VPCIdNotSpecified"


def test_state_survives_a_restart(ec2: Ec2, tmp_path: Path) -> None:
    vpc = ec2.vpc()
    subnet = ec2.subnet(vpc, "10.0.1.0/24")
    group = ec2.group(vpc)
    ec2("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(443)])
    ec2("CreateTags", Resources=[vpc], Tags=[{"Key": "Name", "Value": "main"}])
    again = Ec2(_sqlite(tmp_path), tmp_path)
    assert again("DescribeVpcs", VpcIds=[vpc])["Vpcs"][0]["Tags"] == [{"Key": "Name", "Value": "main"}]
    assert again("DescribeSubnets", SubnetIds=[subnet])["Subnets"][0]["CidrBlock"] == "10.0.1.0/24"
    assert ("tcp", 443, 443, "0.0.0.0/0") in _rules(again, group, egress=False)


# --- VPCs -----------------------------------------------------------------------------------------

def test_create_vpc_clears_host_bits_and_gives_the_vpc_its_default_group(ec2: Ec2) -> None:
    out = ec2("CreateVpc", CidrBlock="100.68.0.18/18",
              TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "app"}]}])["Vpc"]
    assert (out["CidrBlock"], out["State"], out["IsDefault"], out["Tags"]) == (
        "100.68.0.0/18", "pending", False, [{"Key": "Name", "Value": "app"}])
    vpc = out["VpcId"]
    assert vpc.startswith("vpc-") and len(vpc) == 4 + 17 and int(vpc[4:], 16) >= 0
    assert ec2("DescribeVpcs", VpcIds=[vpc])["Vpcs"][0]["State"] == "available"
    group = ec2.default_group(vpc)
    assert _rules(ec2, group, egress=False) == [("-1", -1, -1, group)]
    assert _rules(ec2, group, egress=True) == [("-1", -1, -1, "0.0.0.0/0")]


@pytest.mark.parametrize(("cidr", "code"), [
    ("10.0.0.0/8", "InvalidVpc.Range"), ("10.0.0.0/29", "InvalidVpc.Range"), ("224.0.0.0/16", "InvalidVpc.Range"),
    ("10.0.0.0", "InvalidParameterValue"), ("banana", "InvalidParameterValue"), ("fd00::/48", "InvalidParameterValue"),
])
def test_vpc_blocks_must_be_ipv4_16_to_28(ec2: Ec2, cidr: str, code: str) -> None:
    e = ec2.error("CreateVpc", CidrBlock=cidr)
    assert e.code == code
    if code == "InvalidVpc.Range":
        assert e.message == f"The CIDR '{cidr}' is invalid."
    assert len(ec2("DescribeVpcs")["Vpcs"]) == 1


def test_two_vpcs_may_have_the_same_cidr(ec2: Ec2) -> None:
    assert ec2.vpc("10.0.0.0/16") != ec2.vpc("10.0.0.0/16")


def test_delete_vpc_waits_for_its_subnets_and_groups_then_takes_its_default_group(ec2: Ec2) -> None:
    vpc = ec2.vpc()
    subnet, group, default = ec2.subnet(vpc, "10.0.0.0/24"), ec2.group(vpc), ec2.default_group(vpc)
    e = ec2.error("DeleteVpc", VpcId=vpc)
    assert (e.code, e.message) == ("DependencyViolation", f"The vpc '{vpc}' has dependencies and cannot be deleted.")
    ec2("DeleteSubnet", SubnetId=subnet)
    assert ec2.error("DeleteVpc", VpcId=vpc).code == "DependencyViolation"  # the group "web" is left
    ec2("DeleteSecurityGroup", GroupId=group)
    ec2("DeleteVpc", VpcId=vpc)
    assert ec2.error("DescribeSecurityGroups", GroupIds=[default]).code == "InvalidGroup.NotFound"
    assert ec2("DescribeSecurityGroupRules", Filters=[{"Name": "group-id", "Values": [default]}]) == {
        "SecurityGroupRules": []}
    e = ec2.error("DescribeVpcs", VpcIds=[vpc])
    assert (e.code, e.message) == ("InvalidVpcID.NotFound", f"The vpc ID '{vpc}' does not exist")


# --- subnets --------------------------------------------------------------------------------------

def test_subnets_lie_inside_their_vpc_and_do_not_overlap(ec2: Ec2) -> None:
    vpc = ec2.vpc("10.0.0.0/16")
    first = ec2("CreateSubnet", VpcId=vpc, CidrBlock="10.0.1.7/24")["Subnet"]
    assert (first["CidrBlock"], first["AvailableIpAddressCount"], first["DefaultForAz"],
            first["MapPublicIpOnLaunch"]) == ("10.0.1.0/24", 251, False, False)
    e = ec2.error("CreateSubnet", VpcId=vpc, CidrBlock="10.0.1.128/25")
    assert (e.code, e.message) == ("InvalidSubnet.Conflict", "The CIDR '10.0.1.128/25' conflicts with another subnet")
    e = ec2.error("CreateSubnet", VpcId=vpc, CidrBlock="10.10.1.0/24")
    assert (e.code, e.message) == ("InvalidSubnet.Range", "The CIDR '10.10.1.0/24' is invalid.")
    assert ec2.error("CreateSubnet", VpcId=vpc, CidrBlock="10.0.2.0/29").code == "InvalidSubnet.Range"
    assert ec2.error("CreateSubnet", VpcId="vpc-0123456789abcdef0", CidrBlock="10.0.2.0/24").code == \
        "InvalidVpcID.NotFound"
    other = ec2.vpc("10.0.0.0/16")
    ec2.subnet(other, "10.0.1.0/24")  # another VPC's subnets may overlap these
    assert len(ec2("DescribeSubnets", Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]) == 1


def test_a_subnet_goes_in_one_of_fargos_zones_picked_when_not_given(ec2: Ec2) -> None:
    vpc = ec2.vpc()
    e = ec2.error("CreateSubnet", VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone="us-west-2a")
    assert e.code == "InvalidParameterValue" and "us-east-1a, us-east-1b, us-east-1c" in e.message
    by_id = ec2("CreateSubnet", VpcId=vpc, CidrBlock="10.0.9.0/24", AvailabilityZoneId="use1-az3")["Subnet"]
    assert by_id["AvailabilityZone"] == "us-east-1c"
    zones = [ec2("CreateSubnet", VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["AvailabilityZone"]
             for i in range(3)]
    assert sorted(zones) == ["us-east-1a", "us-east-1a", "us-east-1b"]  # spread over the zones least used


def test_available_addresses_count_the_five_reserved_and_the_task_enis(ec2: Ec2) -> None:
    vpc = ec2.vpc()
    subnet = ec2.subnet(vpc, "10.0.0.0/28")
    assert ec2("DescribeSubnets", SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"] == 11
    arn, _, _ = ec2.eni(subnet, vpc, [ec2.default_group(vpc)])
    ec2.eni(subnet, vpc, [ec2.default_group(vpc)])
    assert ec2("DescribeSubnets", SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"] == 9
    assert ec2.network.used_ip_count(subnet) == 2
    ec2.release(arn)
    assert ec2("DescribeSubnets", SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"] == 10


def test_a_subnet_with_task_enis_cannot_be_deleted(ec2: Ec2) -> None:
    arn, _, _ = ec2.eni(DEFAULT_SUBNET_A, DEFAULT_VPC, [DEFAULT_SG])
    e = ec2.error("DeleteSubnet", SubnetId=DEFAULT_SUBNET_A)
    assert (e.code, e.message) == ("DependencyViolation",
                                   f"The subnet '{DEFAULT_SUBNET_A}' has dependencies and cannot be deleted.")
    ec2.release(arn)
    ec2("DeleteSubnet", SubnetId=DEFAULT_SUBNET_A)
    assert ec2.error("DeleteSubnet", SubnetId=DEFAULT_SUBNET_A).code == "InvalidSubnetID.NotFound"


def test_an_eni_is_refused_into_a_subnet_or_group_that_is_gone(ec2: Ec2) -> None:
    vpc = ec2.vpc()
    subnet = ec2.subnet(vpc, "10.0.0.0/24")
    ec2("DeleteSubnet", SubnetId=subnet)
    with pytest.raises(LookupError):
        ec2.eni(subnet, vpc, [ec2.default_group(vpc)], cidr="10.0.0.0/24")
    with pytest.raises(LookupError):
        ec2.eni(DEFAULT_SUBNET_A, DEFAULT_VPC, ["sg-0123456789abcdef0"])
    assert ec2.network.used_ip_count(DEFAULT_SUBNET_A) == 0 and ec2.store.used_ip_count(DEFAULT_SUBNET_A) == 0


# --- security groups ------------------------------------------------------------------------------

def test_a_new_group_has_no_ingress_and_all_egress(ec2: Ec2) -> None:
    out = ec2("CreateSecurityGroup", GroupName="web", Description="web servers", VpcId=DEFAULT_VPC,
              TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "team", "Value": "a"}]}])
    group = out["GroupId"]
    assert out["SecurityGroupArn"] == f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/{group}"
    assert out["Tags"] == [{"Key": "team", "Value": "a"}]
    shown = ec2("DescribeSecurityGroups", GroupIds=[group])["SecurityGroups"][0]
    assert shown["IpPermissions"] == [] and shown["Tags"] == [{"Key": "team", "Value": "a"}]
    assert _rules(ec2, group, egress=True) == [("-1", -1, -1, "0.0.0.0/0")]
    assert ec2("CreateSecurityGroup", GroupName="db", Description="d")["GroupId"] in {  # no VpcId: the default VPC
        g["GroupId"] for g in ec2("DescribeSecurityGroups", Filters=[
            {"Name": "vpc-id", "Values": [DEFAULT_VPC]}])["SecurityGroups"]}


def test_group_names_are_unique_per_vpc_whatever_their_case(ec2: Ec2) -> None:
    vpc = ec2.vpc()
    ec2.group(vpc, "Web")
    e = ec2.error("CreateSecurityGroup", GroupName="web", Description="again", VpcId=vpc)
    assert (e.code, e.message) == ("InvalidGroup.Duplicate", f"The security group 'web' already exists for VPC '{vpc}'")
    assert ec2.error("CreateSecurityGroup", GroupName="default", Description="d", VpcId=vpc).code == \
        "InvalidGroup.Duplicate"
    ec2.group(ec2.vpc(), "web")  # another VPC may have one


@pytest.mark.parametrize(("params", "code", "text"), [
    ({"GroupName": "sg-web", "Description": "d"}, "InvalidParameterValue",
     "Value (sg-web) for parameter GroupName is invalid. Group names may not be in the format sg-*."),
    ({"GroupName": "web", "Description": "caf\u00e9"}, "InvalidParameterValue",
     "Value (caf\u00e9) for parameter GroupDescription is invalid. Character sets beyond ASCII are not supported."),
    ({"GroupName": "w" * 256, "Description": "d"}, "InvalidParameterValue", None),
    ({"GroupName": "web"}, "MissingParameter", "The request must contain the parameter GroupDescription"),
    ({"Description": "d"}, "MissingParameter", "The request must contain the parameter GroupName"),
    ({"GroupName": "web", "Description": "d", "VpcId": "vpc-0123456789abcdef0"}, "InvalidVpcID.NotFound", None),
    ({"GroupName": "web", "Description": "d", "TagSpecifications": [{"ResourceType": "vpc", "Tags": []}]},
     "InvalidParameterValue", "'vpc' is not a valid taggable resource type for this operation."),
])
def test_bad_create_security_group_requests_are_refused(ec2: Ec2, params: dict, code: str, text: str | None) -> None:
    e = ec2.error("CreateSecurityGroup", **params)
    assert e.code == code and (text is None or e.message == text)
    assert len(ec2("DescribeSecurityGroups")["SecurityGroups"]) == 1


def test_the_default_group_cannot_be_deleted(ec2: Ec2) -> None:
    e = ec2.error("DeleteSecurityGroup", GroupId=DEFAULT_SG)
    assert (e.code, e.message) == ("CannotDelete",
                                   f'the specified group: "{DEFAULT_SG}" name: "default" cannot be deleted by a user')
    assert ec2.error("DeleteSecurityGroup", GroupName="default").code == "CannotDelete"
    assert ec2.error("DeleteSecurityGroup").code == "MissingParameter"


def test_a_group_in_use_by_an_eni_or_a_rule_cannot_be_deleted(ec2: Ec2) -> None:
    web, db = ec2.group(DEFAULT_VPC, "web"), ec2.group(DEFAULT_VPC, "db")
    arn, _, _ = ec2.eni(DEFAULT_SUBNET_A, DEFAULT_VPC, [web])
    e = ec2.error("DeleteSecurityGroup", GroupId=web)
    assert (e.code, e.message) == ("DependencyViolation", f"resource {web} has a dependent object")
    ec2.release(arn)
    ec2("AuthorizeSecurityGroupIngress", GroupId=db,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}])
    assert ec2.error("DeleteSecurityGroup", GroupId=web).code == "DependencyViolation"
    ec2("AuthorizeSecurityGroupIngress", GroupId=web, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": web}]}])  # its own rules do not hold it back
    ec2("RevokeSecurityGroupIngress", GroupId=db,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}])
    assert ec2("DeleteSecurityGroup", GroupId=web) == {"Return": True, "GroupId": web}
    assert ec2.error("DeleteSecurityGroup", GroupId=web).code == "InvalidGroup.NotFound"


def test_groups_by_name_are_looked_up_in_the_default_vpc_only(ec2: Ec2) -> None:
    ec2.group(DEFAULT_VPC, "web")
    vpc = ec2.vpc()
    ec2.group(vpc, "api")
    assert [g["GroupName"] for g in ec2("DescribeSecurityGroups", GroupNames=["web"])["SecurityGroups"]] == ["web"]
    e = ec2.error("DescribeSecurityGroups", GroupNames=["api"])
    assert (e.code, e.message) == ("InvalidGroup.NotFound",
                                   f"The security group 'api' does not exist in default VPC '{DEFAULT_VPC}'")


# --- rules ----------------------------------------------------------------------------------------

def test_authorize_returns_the_rules_and_normalises_protocols(ec2: Ec2) -> None:
    group = ec2.group(DEFAULT_VPC)
    out = ec2("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[
        {"IpProtocol": "6", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "203.0.113.9/24", "Description": "ssh"}]},
        {"IpProtocol": "ICMP", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "47", "FromPort": 1, "ToPort": 2, "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]}])
    assert out["Return"] is True
    got = [(r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("CidrIpv4") or r.get("CidrIpv6"), r.get("Description"))
           for r in out["SecurityGroupRules"]]
    assert got == [("tcp", 22, 22, "203.0.113.0/24", "ssh"), ("icmp", -1, -1, "10.0.0.0/8", None),
                   ("47", -1, -1, "2001:db8::/32", None)]
    assert all(r["SecurityGroupRuleId"].startswith("sgr-") and len(r["SecurityGroupRuleId"]) == 21
               for r in out["SecurityGroupRules"])
    perms = ec2("DescribeSecurityGroups", GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    assert {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.0/24",
            "Description": "ssh"}], "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []} in perms
    assert {"IpProtocol": "47", "IpRanges": [], "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}], "PrefixListIds": [],
            "UserIdGroupPairs": []} in perms


def test_a_rule_that_exists_already_refuses_the_whole_request(ec2: Ec2) -> None:
    group = ec2.group(DEFAULT_VPC)
    ec2("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(22)])
    e = ec2.error("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(80), _tcp(22)])
    assert (e.code, e.message) == ("InvalidPermission.Duplicate", 'the specified rule "peer: 0.0.0.0/0, TCP, '
                                   'from port: 22, to port: 22, ALLOW" already exists')
    e = ec2.error("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(443), _tcp(443)])
    assert (e.code, e.message) == ("InvalidParameterValue", "The same permission must not appear multiple times")
    assert _rules(ec2, group, egress=False) == [("tcp", 22, 22, "0.0.0.0/0")]
    # the description is no part of a rule's identity
    dup = dict(_tcp(22), IpRanges=[{"CidrIp": "0.0.0.0/0", "Description": "other"}])
    assert ec2.error("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[dup]).code == \
        "InvalidPermission.Duplicate"


@pytest.mark.parametrize(("permission", "code", "text"), [
    ({"IpProtocol": "tcp", "FromPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "InvalidParameterValue",
     "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange."),
    ({"IpProtocol": "icmp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "InvalidParameterValue",
     "Invalid value 'Must specify both from and to ports with ICMP.' for portRange."),
    ({"IpProtocol": "tcp", "FromPort": -1, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "InvalidPermission.Malformed", "TCP/UDP port (-1) out of range"),
    ({"IpProtocol": "udp", "FromPort": 9, "ToPort": 70000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "InvalidPermission.Malformed", "TCP/UDP port (70000) out of range"),
    ({"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "InvalidPermission.Malformed", None),
    ({"IpProtocol": "all", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "InvalidParameterValue",
     "Invalid value 'all' for IP protocol. Unknown protocol."),
    ({"IpProtocol": "256", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "InvalidParameterValue", None),
    ({"FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "InvalidParameterValue",
     "Invalid value 'null' for protocol. VPC security group rules must specify protocols explicitly."),
    ({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "10.0.0.300/8"}]},
     "InvalidParameterValue", "CIDR block 10.0.0.300/8 is malformed"),
    ({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "::/0"}]}, "InvalidParameterValue",
     "CIDR block ::/0 is malformed"),
    ({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2}, "MissingParameter", None),
    ({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]},
     "InvalidGroup.NotFound", "The security group 'sg-0123456789abcdef0' does not exist"),
    ({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "PrefixListIds": [{"PrefixListId": "pl-12345678"}]},
     "InvalidPrefixListID.NotFound", None),
    ({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "<b>"}]},
     "InvalidParameterValue", None),
])
def test_bad_permissions_are_refused_and_nothing_is_added(ec2: Ec2, permission: dict, code: str,
                                                          text: str | None) -> None:
    group = ec2.group(DEFAULT_VPC)
    e = ec2.error("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(8080), permission])
    assert e.code == code and (text is None or e.message == text), e.message
    assert _rules(ec2, group, egress=False) == []


def test_the_shorthand_form_of_the_cli_works(ec2: Ec2) -> None:
    group = ec2.group(DEFAULT_VPC)
    ec2("AuthorizeSecurityGroupIngress", GroupName="web", IpProtocol="tcp", FromPort=80, ToPort=80, CidrIp="10.0.0.0/8")
    assert _rules(ec2, group, egress=False) == [("tcp", 80, 80, "10.0.0.0/8")]
    assert ec2.error("AuthorizeSecurityGroupIngress", GroupId=group, CidrIp="10.0.0.0/8",
                     IpPermissions=[_tcp(1)]).code == "InvalidParameterCombination"
    assert ec2.error("AuthorizeSecurityGroupEgress", GroupName="web", IpPermissions=[_tcp(1)]).code == \
        "MissingParameter"


def test_a_source_group_must_be_of_the_same_vpc(ec2: Ec2) -> None:
    group = ec2.group(DEFAULT_VPC)
    elsewhere = ec2.default_group(ec2.vpc())
    e = ec2.error("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": elsewhere}]}])
    assert (e.code, e.message) == ("InvalidGroup.NotFound",
                                   f"The security group '{elsewhere}' does not exist in VPC '{DEFAULT_VPC}'")
    out = ec2("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupName": "default"}]}])
    assert out["SecurityGroupRules"][0]["ReferencedGroupInfo"] == {"GroupId": DEFAULT_SG, "UserId": ACCOUNT}


def test_a_group_holds_60_rules_each_way(ec2: Ec2) -> None:
    group = ec2.group(DEFAULT_VPC)
    ec2("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
         "IpRanges": [{"CidrIp": f"10.0.{i}.0/24"} for i in range(60)]}])
    e = ec2.error("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(2)])
    assert (e.code, e.message) == ("RulesPerSecurityGroupLimitExceeded",
                                   "The maximum number of rules per security group has been reached.")
    ec2("AuthorizeSecurityGroupEgress", GroupId=group, IpPermissions=[_tcp(2)])  # egress has its own 60 (1 used)
    assert len(_rules(ec2, group, egress=False)) == 60 and len(_rules(ec2, group, egress=True)) == 2


def test_revoke_by_properties_or_by_rule_id(ec2: Ec2) -> None:
    vpc = ec2.vpc()
    group = ec2.group(vpc)
    rules = ec2("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(22), _tcp(80)])
    ssh, http = (r["SecurityGroupRuleId"] for r in rules["SecurityGroupRules"])
    out = ec2("RevokeSecurityGroupIngress", GroupId=group, IpPermissions=[
        {"IpProtocol": "6", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "x"}]}])
    assert out["Return"] is True and [r["SecurityGroupRuleId"] for r in out["RevokedSecurityGroupRules"]] == [ssh]
    out = ec2("RevokeSecurityGroupIngress", GroupId=group, SecurityGroupRuleIds=[http])
    assert out["RevokedSecurityGroupRules"][0]["CidrIpv4"] == "0.0.0.0/0"
    assert _rules(ec2, group, egress=False) == []
    e = ec2.error("RevokeSecurityGroupIngress", GroupId=group, SecurityGroupRuleIds=[http])
    assert (e.code, e.message) == ("InvalidSecurityGroupRuleId.NotFound",
                                   f"The security group rule ID '{http}' does not exist")
    egress = ec2("DescribeSecurityGroupRules", Filters=[{"Name": "group-id", "Values": [group]}])
    egress_id = egress["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    assert ec2.error("RevokeSecurityGroupIngress", GroupId=group, SecurityGroupRuleIds=[egress_id]).code == \
        "InvalidSecurityGroupRuleId.NotFound"  # an egress rule is not revoked as ingress
    ec2("RevokeSecurityGroupEgress", GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [
        {"CidrIp": "0.0.0.0/0"}]}])
    assert _rules(ec2, group, egress=True) == []


def test_revoking_a_missing_rule_fails_outside_the_default_vpc_and_is_reported_in_it(ec2: Ec2) -> None:
    group = ec2.group(ec2.vpc())
    ec2("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(22)])
    e = ec2.error("RevokeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(22), _tcp(23)])
    assert (e.code, e.message) == ("InvalidPermission.NotFound",
                                   "The specified rule does not exist in this security group")
    assert _rules(ec2, group, egress=False) == [("tcp", 22, 22, "0.0.0.0/0")]  # nothing revoked
    in_default = ec2.group(DEFAULT_VPC)
    ec2("AuthorizeSecurityGroupIngress", GroupId=in_default, IpPermissions=[_tcp(22)])
    out = ec2("RevokeSecurityGroupIngress", GroupId=in_default, IpPermissions=[_tcp(22), _tcp(23)])
    assert len(out["RevokedSecurityGroupRules"]) == 1
    assert out["UnknownIpPermissions"] == [{"IpProtocol": "tcp", "FromPort": 23, "ToPort": 23, "IpRanges": [
        {"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]


# --- ENIs -----------------------------------------------------------------------------------------

def test_task_enis_are_described_as_fargate_shows_them(ec2: Ec2) -> None:
    web = ec2.group(DEFAULT_VPC)
    _, eni_id, ip = ec2.eni(DEFAULT_SUBNET_A, DEFAULT_VPC, [DEFAULT_SG, web], public=True)
    (eni,) = ec2("DescribeNetworkInterfaces")["NetworkInterfaces"]
    task_id = task_id_of(1)
    assert eni["NetworkInterfaceId"] == eni_id
    assert eni["Description"] == f"arn:aws:ecs:us-east-1:{ACCOUNT}:attachment/attach-{task_id}"
    assert (eni["InterfaceType"], eni["RequesterManaged"], eni["Status"], eni["SubnetId"], eni["VpcId"],
            eni["AvailabilityZone"], eni["PrivateIpAddress"], eni["MacAddress"]) == (
        "interface", True, "in-use", DEFAULT_SUBNET_A, DEFAULT_VPC, "us-east-1a", ip, "0e:00:00:00:00:01")
    assert eni["Groups"] == [{"GroupId": DEFAULT_SG, "GroupName": "default"}, {"GroupId": web, "GroupName": "web"}]
    assert eni["PrivateDnsName"] == "ip-10-213-0-4.ec2.internal" and ip == "10.213.0.4"
    assert eni["PrivateIpAddresses"][0]["Primary"] is True
    attachment = eni["Attachment"]
    assert attachment["AttachmentId"].startswith("eni-attach-") and attachment["DeviceIndex"] == 1
    assert (attachment["Status"], attachment["AttachTime"], "InstanceId" in attachment) == (
        "attached", "2023-11-14T22:13:20.500Z", False)
    assert eni["Association"] == {"IpOwnerId": "amazon", "PublicIp": "203.0.113.7",
                                  "PublicDnsName": "ec2-203-0-113-7.compute-1.amazonaws.com"}
    private = ec2.eni(DEFAULT_SUBNET_A, DEFAULT_VPC, [DEFAULT_SG])[1]
    assert "Association" not in ec2("DescribeNetworkInterfaces", NetworkInterfaceIds=[private])["NetworkInterfaces"][0]


def test_eni_filters_find_a_task_by_its_attachment_address_or_group(ec2: Ec2) -> None:
    web = ec2.group(DEFAULT_VPC)
    _, first, ip = ec2.eni(DEFAULT_SUBNET_A, DEFAULT_VPC, [web])
    _, second, _ = ec2.eni(DEFAULT_SUBNET_A, DEFAULT_VPC, [DEFAULT_SG])

    def found(*filters: tuple[str, list[str]]) -> list[str]:
        out = ec2("DescribeNetworkInterfaces", Filters=[{"Name": n, "Values": v} for n, v in filters])
        return [n["NetworkInterfaceId"] for n in out["NetworkInterfaces"]]
    assert found(("description", [f"*:attachment/attach-{task_id_of(1)}"])) == [first]
    assert found(("addresses.private-ip-address", [ip])) == [first]
    assert found(("group-id", [web, "sg-nope"])) == [first]
    assert found(("group-name", ["def*"])) == [second]
    assert found(("requester-managed", ["true"]), ("subnet-id", [DEFAULT_SUBNET_A])) == [first, second]
    assert found(("status", ["available"])) == []
    e = ec2.error("DescribeNetworkInterfaces", NetworkInterfaceIds=["eni-0123456789abcdef0"])
    assert (e.code, e.message) == ("InvalidNetworkInterfaceID.NotFound",
                                   "The networkInterface ID 'eni-0123456789abcdef0' does not exist")


# --- filters, tags, pages ---------------------------------------------------------------------------

def test_filter_values_or_filters_and_wildcards_match(ec2: Ec2) -> None:
    vpc = ec2.vpc()
    a = ec2.subnet(vpc, "10.0.1.0/24", "us-east-1a")
    b = ec2.subnet(vpc, "10.0.2.0/24", "us-east-1b")
    ec2("CreateTags", Resources=[a], Tags=[{"Key": "tier", "Value": "public-a"}])
    ec2("CreateTags", Resources=[b], Tags=[{"Key": "tier", "Value": "private"}])

    def found(*filters: tuple[str, list[str]]) -> set[str]:
        return {s["SubnetId"] for s in ec2("DescribeSubnets", Filters=[{"Name": n, "Values": v}
                                                                       for n, v in filters])["Subnets"]}
    assert found(("vpc-id", [vpc]), ("availability-zone", ["us-east-1a", "us-east-1b"])) == {a, b}
    assert found(("vpc-id", [vpc]), ("availability-zone", ["us-east-1?"]), ("cidr-block", ["10.0.2.*"])) == {b}
    assert found(("tag:tier", ["public*"])) == {a}
    assert found(("tag-key", ["tier"])) == {a, b}
    assert found(("tag:tier", ["\\*"])) == set()
    assert found(("default-for-az", ["true"]), ("availabilityZone", ["us-east-1a"])) == {DEFAULT_SUBNET_A}
    e = ec2.error("DescribeSubnets", Filters=[{"Name": "colour", "Values": ["red"]}])
    assert (e.code, e.message) == ("InvalidParameterValue", "The filter 'colour' is invalid")
    assert ec2.error("DescribeSubnets", Filters=[{"Name": "vpc-id", "Values": ["x" * 256]}]).code == \
        "FilterLimitExceeded"


def test_security_group_filters_look_into_rules(ec2: Ec2) -> None:
    web, db = ec2.group(DEFAULT_VPC, "web"), ec2.group(DEFAULT_VPC, "db")
    ec2("AuthorizeSecurityGroupIngress", GroupId=web, IpPermissions=[_tcp(443)])
    ec2("AuthorizeSecurityGroupIngress", GroupId=db, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}])

    def names(*filters: tuple[str, list[str]]) -> list[str]:
        return sorted(g["GroupName"] for g in ec2("DescribeSecurityGroups", Filters=[
            {"Name": n, "Values": v} for n, v in filters])["SecurityGroups"])
    assert names(("ip-permission.from-port", ["443"])) == ["web"]
    assert names(("ip-permission.group-name", ["web"])) == ["db"]
    assert names(("egress.ip-permission.cidr", ["0.0.0.0/0"]), ("description", ["* servers"])) == ["db", "web"]
    assert names(("group-name", ["WEB"])) == []  # values match case-sensitively


def test_tags_are_created_described_and_deleted(ec2: Ec2) -> None:
    vpc = ec2.vpc()
    ec2("CreateTags", Resources=[vpc, DEFAULT_SG], Tags=[{"Key": "env", "Value": "dev"}, {"Key": "Name", "Value": "a"}])
    ec2("CreateTags", Resources=[vpc], Tags=[{"Key": "env", "Value": "prod"}])  # overwrites
    tags = ec2("DescribeTags", Filters=[{"Name": "resource-id", "Values": [vpc]}])["Tags"]
    assert tags == [{"ResourceId": vpc, "ResourceType": "vpc", "Key": "env", "Value": "prod"},
                    {"ResourceId": vpc, "ResourceType": "vpc", "Key": "Name", "Value": "a"}]
    assert {t["ResourceId"] for t in ec2("DescribeTags", Filters=[
        {"Name": "resource-type", "Values": ["security-group"]}])["Tags"]} == {DEFAULT_SG}
    ec2("DeleteTags", Resources=[vpc], Tags=[{"Key": "env", "Value": "dev"}])  # value differs: kept
    ec2("DeleteTags", Resources=[vpc], Tags=[{"Key": "Name"}])
    left = ec2("DescribeTags", Filters=[{"Name": "resource-id", "Values": [vpc]}])["Tags"]
    assert [t["Key"] for t in left] == ["env"]
    ec2("DeleteTags", Resources=[DEFAULT_SG])
    assert ec2("DescribeTags", Filters=[{"Name": "resource-id", "Values": [DEFAULT_SG]}])["Tags"] == []


def test_bad_tags_and_unknown_resources_are_refused_and_nothing_is_written(ec2: Ec2) -> None:
    e = ec2.error("CreateTags", Resources=[DEFAULT_VPC], Tags=[{"Key": "aws:owner", "Value": "me"}])
    assert (e.code, e.message) == ("InvalidParameterValue", "Value ( aws:owner ) for parameter key is invalid. "
                                   "Tag keys starting with 'aws:' are reserved for internal use")
    e = ec2.error("CreateTags", Resources=[DEFAULT_VPC, "subnet-0123456789abcdef0"], Tags=[{"Key": "k", "Value": "v"}])
    assert (e.code, e.message) == ("InvalidSubnetID.NotFound",
                                   "The subnet ID 'subnet-0123456789abcdef0' does not exist")
    e = ec2.error("CreateTags", Resources=["i-0123456789abcdef0"], Tags=[{"Key": "k", "Value": "v"}])
    assert (e.code, e.message) == ("InvalidID", "The ID 'i-0123456789abcdef0' is not valid")
    assert ec2("DescribeTags") == {"Tags": []}
    ec2("CreateTags", Resources=[DEFAULT_VPC], Tags=[{"Key": f"k{i}", "Value": ""} for i in range(50)])
    assert ec2.error("CreateTags", Resources=[DEFAULT_VPC], Tags=[{"Key": "one-more"}]).code == "TagLimitExceeded"
    ec2("CreateTags", Resources=[DEFAULT_VPC], Tags=[{"Key": "k0", "Value": "again"}])  # an overwrite is fine


def test_describe_calls_page_with_max_results_and_next_token(ec2: Ec2) -> None:
    for i in range(6):
        ec2.vpc(f"10.{i}.0.0/16")
    first = ec2("DescribeVpcs", MaxResults=5)
    assert len(first["Vpcs"]) == 5 and first["NextToken"]
    rest = ec2("DescribeVpcs", MaxResults=5, NextToken=first["NextToken"])
    assert len(rest["Vpcs"]) == 2 and "NextToken" not in rest
    assert {v["VpcId"] for v in first["Vpcs"] + rest["Vpcs"]} == {v["VpcId"] for v in ec2("DescribeVpcs")["Vpcs"]}
    assert ec2.error("DescribeVpcs", MaxResults=4).code == "InvalidParameterValue"
    assert ec2.error("DescribeVpcs", MaxResults=5, NextToken="garbage").code == "InvalidParameterValue"
    assert ec2.error("DescribeVpcs", MaxResults=5, VpcIds=[DEFAULT_VPC]).code == "InvalidParameterCombination"


def test_dry_run_changes_nothing(ec2: Ec2) -> None:
    e = ec2.error("CreateVpc", CidrBlock="10.0.0.0/16", DryRun=True)
    assert (e.code, e.status, e.message) == ("DryRunOperation", 412,
                                             "Request would have succeeded, but DryRun flag is set.")
    assert len(ec2("DescribeVpcs")["Vpcs"]) == 1


@pytest.mark.parametrize(("operation", "params"), [
    ("DeleteVpc", {}), ("CreateVpc", {}), ("CreateSubnet", {"VpcId": DEFAULT_VPC}), ("CreateSubnet", {}),
    ("DeleteSubnet", {}), ("CreateTags", {"Resources": [DEFAULT_VPC]}), ("CreateTags", {"Tags": [{"Key": "k"}]}),
    ("DeleteTags", {}), ("AuthorizeSecurityGroupIngress", {"GroupId": DEFAULT_SG}),
    ("AuthorizeSecurityGroupEgress", {}), ("RevokeSecurityGroupEgress", {"IpPermissions": [{"IpProtocol": "-1"}]}),
])
def test_missing_required_members_are_refused(ec2: Ec2, operation: str, params: dict) -> None:
    assert ec2.error(operation, **params).code == "MissingParameter"


def test_availability_zones_are_fargos(ec2: Ec2) -> None:
    zones = ec2("DescribeAvailabilityZones")["AvailabilityZones"]
    assert [(z["ZoneName"], z["ZoneId"]) for z in zones] == [("us-east-1a", "use1-az1"), ("us-east-1b", "use1-az2"),
                                                             ("us-east-1c", "use1-az3")]
    assert [z["ZoneName"] for z in ec2("DescribeAvailabilityZones", Filters=[
        {"Name": "zone-id", "Values": ["use1-az2"]}])["AvailabilityZones"]] == ["us-east-1b"]


# --- what RunTask and the agent gateway ask ------------------------------------------------------

def test_awsvpc_configuration_resolves_to_one_vpc_its_subnets_and_groups(ec2: Ec2) -> None:
    choice = ec2.network.resolve_awsvpc({"subnets": ["subnet-fargo-default-1b", DEFAULT_SUBNET_A]})
    assert choice == AwsvpcChoice(
        vpc_id=DEFAULT_VPC, vpc_cidr="10.213.0.0/16",
        subnets=[SubnetChoice("subnet-fargo-default-1b", "10.213.16.0/20", "us-east-1b"),
                 SubnetChoice(DEFAULT_SUBNET_A, "10.213.0.0/20", "us-east-1a")],
        security_groups=[DEFAULT_SG], assign_public_ip=False)
    web = ec2.group(DEFAULT_VPC)
    choice = ec2.network.resolve_awsvpc({"subnets": [DEFAULT_SUBNET_A], "securityGroups": [web],
                                         "assignPublicIp": "ENABLED"})
    assert (choice.security_groups, choice.assign_public_ip) == ([web], True)


def test_bad_awsvpc_configurations_get_ecs_errors(ec2: Ec2) -> None:
    vpc = ec2.vpc()
    other_subnet, other_group = ec2.subnet(vpc, "10.0.0.0/24"), ec2.default_group(vpc)

    def refused(awsvpc: dict | None) -> str:
        with pytest.raises(InvalidParameterException) as e:
            ec2.network.resolve_awsvpc(awsvpc)
        return e.value.message
    assert refused(None) == "Network Configuration must be provided when networkMode 'awsvpc' is specified."
    assert refused({"subnets": []}) == "subnets can not be empty."
    assert refused({"subnets": [f"subnet-{i}" for i in range(17)]}) == "subnets can have at most 16 items."
    assert refused({"subnets": [DEFAULT_SUBNET_A, "subnet-x", "subnet-y"]}) == (
        "Error retrieving subnet information for [subnet-x, subnet-y]: The subnet ID 'subnet-x' does not exist "
        "(ErrorCode: InvalidSubnetID.NotFound)")
    assert refused({"subnets": [DEFAULT_SUBNET_A, other_subnet]}) == "Subnets must all be in the same VPC."
    assert refused({"subnets": [DEFAULT_SUBNET_A], "securityGroups": [f"sg-{i}" for i in range(6)]}) == \
        "securityGroups can have at most 5 items."
    assert refused({"subnets": [DEFAULT_SUBNET_A], "securityGroups": ["sg-x"]}) == (
        "Error retrieving security group information for [sg-x]: The security group 'sg-x' does not exist "
        "(ErrorCode: InvalidGroup.NotFound)")
    assert refused({"subnets": [DEFAULT_SUBNET_A], "securityGroups": [other_group]}) == (
        f"Security group {other_group} and subnet {DEFAULT_SUBNET_A} belong to different networks.")


def test_vpc_policies_carry_every_group_with_its_rules_and_members(ec2: Ec2) -> None:
    vpc = ec2.vpc()
    subnet = ec2.subnet(vpc, "10.0.0.0/24")
    default, web = ec2.default_group(vpc), ec2.group(vpc)
    ec2("AuthorizeSecurityGroupIngress", GroupId=web, IpPermissions=[
        _tcp(80, "10.1.0.0/16"), {"IpProtocol": "17", "FromPort": 53, "ToPort": 53, "UserIdGroupPairs": [
            {"GroupId": default}]}, {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    ec2.eni(subnet, vpc, [web, default], agent_id="agent-1")
    ec2.eni(subnet, vpc, [default], agent_id="agent-2")
    (policy,) = ec2.network.vpc_policies([vpc, "vpc-gone"])
    assert (policy.vpc_id, policy.cidr) == (vpc, "10.0.0.0/16")
    groups = {g.group_id: g for g in policy.groups}
    assert groups[default] == GroupPolicy(
        group_id=default, ingress=[RulePolicy("-1", -1, -1, peer_group=default)],
        egress=[RulePolicy("-1", -1, -1, cidr="0.0.0.0/0")], member_ips=["10.0.0.4", "10.0.0.5"])
    assert groups[web].ingress == [RulePolicy("tcp", 80, 80, cidr="10.1.0.0/16"),
                                   RulePolicy("udp", 53, 53, peer_group=default)]  # the IPv6 rule is left out
    assert groups[web].member_ips == ["10.0.0.4"]
    assert ec2.network.vpc_ids_of_agent("agent-1") == [vpc] and ec2.network.vpc_ids_of_agent("nobody") == []


def test_every_group_change_bumps_the_generation_and_rings(ec2: Ec2) -> None:
    before, rung = ec2.store.generation(), ec2.changes
    vpc = ec2.vpc()
    group = ec2.group(vpc)
    ec2("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(22)])
    ec2("RevokeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(22)])
    ec2("DeleteSecurityGroup", GroupId=group)
    ec2("DeleteVpc", VpcId=vpc)
    assert ec2.store.generation() == before + 6 and ec2.changes == rung + 6
    ec2.error("AuthorizeSecurityGroupIngress", GroupId=DEFAULT_SG, IpPermissions=[{"IpProtocol": "nope"}])
    ec2("CreateTags", Resources=[DEFAULT_SG], Tags=[{"Key": "k", "Value": "v"}])
    assert ec2.store.generation() == before + 6 and ec2.changes == rung + 6  # failures and tags: no change


# --- the store ------------------------------------------------------------------------------------

def test_migration_0003_gives_tasks_that_hold_an_address_their_eni(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fargo.db'}")
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(database.__file__).parent / "migrations"))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    task_id = "0123456789abcdef0123456789abcdef"
    arn = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/default/{task_id}"
    doc = {"taskArn": arn, "createdAt": 1700000000.0, "_fargo": {
        "subnetId": DEFAULT_SUBNET_A, "ip": "10.213.0.9", "mac": "0e:00:00:00:00:09", "attachmentId": "att-1",
        "availabilityZone": "us-east-1a", "privateDnsName": "ip-10-213-0-9.ec2.internal",
        "securityGroups": [DEFAULT_SG], "assignPublicIp": False}}
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO tasks (arn, task_id, cluster_arn, family, desired_status, last_status, "
                          "created_at, doc, generation, report_seq) VALUES (:arn, :id, 'c', 'f', 'RUNNING', "
                          "'RUNNING', 1.0, :doc, 1, 0)"), {"arn": arn, "id": task_id, "doc": json.dumps(doc)})
        conn.execute(text("INSERT INTO ip_allocations (subnet_id, ip, task_arn) VALUES (:s, '10.213.0.9', :arn)"),
                     {"s": DEFAULT_SUBNET_A, "arn": arn})
    store.migrate()
    ec2 = Ec2(store, tmp_path)
    (eni,) = ec2("DescribeNetworkInterfaces")["NetworkInterfaces"]
    assert (eni["NetworkInterfaceId"], eni["PrivateIpAddress"], eni["VpcId"], eni["Groups"][0]["GroupId"]) == (
        "eni-0123456789abcdef0", "10.213.0.9", DEFAULT_VPC, DEFAULT_SG)
    assert ec2.error("DeleteSubnet", SubnetId=DEFAULT_SUBNET_A).code == "DependencyViolation"


def test_the_network_api_on_postgresql(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    store = Store(postgres_url)
    store.migrate()
    ec2 = Ec2(store, tmp_path)
    try:
        Network(ec2.network.ctx).ensure_default()  # a second replica starting: no second default VPC
        vpc = ec2.vpc()
        subnet = ec2.subnet(vpc, "10.0.0.0/24")
        group = ec2.group(vpc)
        ec2("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(22)])
        assert ec2.error("AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[_tcp(22)]).code == \
            "InvalidPermission.Duplicate"
        arn, _, _ = ec2.eni(subnet, vpc, [group])
        assert ec2.error("DeleteSecurityGroup", GroupId=group).code == "DependencyViolation"
        assert ec2.error("DeleteSubnet", SubnetId=subnet).code == "DependencyViolation"
        assert ec2.network.vpc_policies([vpc])[0].groups[1].member_ips == ["10.0.0.4"]
        ec2.release(arn)
        ec2("DeleteSecurityGroup", GroupId=group)
        ec2("DeleteSubnet", SubnetId=subnet)
        ec2("DeleteVpc", VpcId=vpc)
        assert [v["VpcId"] for v in ec2("DescribeVpcs")["Vpcs"]] == [DEFAULT_VPC]
    finally:
        store.close()


def test_two_replicas_racing_for_overlapping_subnets_and_one_rule_leave_one_of_each(
        tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    stores = [Store(postgres_url), Store(postgres_url)]
    stores[0].migrate()
    replicas = [Ec2(store, tmp_path) for store in stores]
    try:
        vpc = replicas[0].vpc()
        group = replicas[0].group(vpc)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def race(ec2: Ec2, operation: str, params: dict) -> None:
            barrier.wait()
            try:
                ec2(operation, **params)
                outcomes.append("ok")
            except AwsError as e:
                outcomes.append(e.code)
        for operation, params in (("CreateSubnet", {"VpcId": vpc, "CidrBlock": "10.0.0.0/24"}),
                                  ("AuthorizeSecurityGroupIngress", {"GroupId": group, "IpPermissions": [_tcp(22)]})):
            outcomes.clear()
            threads = [threading.Thread(target=race, args=(ec2, operation, params)) for ec2 in replicas]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(outcomes) in (["InvalidSubnet.Conflict", "ok"], ["InvalidPermission.Duplicate", "ok"])
        assert len(replicas[1]("DescribeSubnets", Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]) == 1
        assert _rules(replicas[1], group, egress=False) == [("tcp", 22, 22, "0.0.0.0/0")]
    finally:
        for store in stores:
            store.close()
