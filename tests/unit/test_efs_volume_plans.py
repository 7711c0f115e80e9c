"""What RunTask makes of a task's EFS volumes, as pure functions: the security groups' verdict on NFS (TCP 2049)
between a task and a mount target, and each volume's plan or the stoppedReason it will end with."""
from __future__ import annotations

from typing import Any

import pytest

from fargo.control.efs.nfs_reachability import Endpoint, nfs_reachable
from fargo.control.efs.volume_plans import EfsView, TaskPlacement, plan_volumes, referenced_ids
from fargo.protocol import stop_reasons
from fargo.protocol.messages import AccessPointPlan
from fargo.store.efs_store import AccessPointRow, FileSystemRow, MountTargetRow
from fargo.store.network_store import RuleRow

TASK = Endpoint("10.0.1.10", ["sg-task"])
TARGET = Endpoint("10.0.1.20", ["sg-efs"])
ALL_OUT = ("egress", "sg-task", "-1", -1, -1, "cidr-ipv4", "0.0.0.0/0")


def rule(direction: str, group: str, protocol: str, from_port: int, to_port: int, kind: str, peer: str) -> RuleRow:
    return RuleRow(rule_id=f"sgr-{group}-{peer}-{from_port}", group_id=group, is_egress=direction == "egress",
                   protocol=protocol, from_port=from_port, to_port=to_port, peer_kind=kind, peer=peer,
                   peer_owner=None, description=None, created_at=0.0)


def reachable(*rules: tuple) -> bool:
    return nfs_reachable(TASK, TARGET, [rule(*r) for r in rules])


@pytest.mark.parametrize("ingress", [
    ("ingress", "sg-efs", "tcp", 2049, 2049, "group", "sg-task"),
    ("ingress", "sg-efs", "tcp", 2000, 3000, "cidr-ipv4", "10.0.1.0/24"),
    ("ingress", "sg-efs", "tcp", 2049, 2049, "cidr-ipv4", "10.0.1.10/32"),
    ("ingress", "sg-efs", "-1", -1, -1, "cidr-ipv4", "0.0.0.0/0"),
    ("ingress", "sg-efs", "-1", -1, -1, "group", "sg-task"),
])
def test_nfs_gets_through_when_the_task_may_send_and_the_mount_target_may_receive(ingress: tuple) -> None:
    assert reachable(ALL_OUT, ingress)


@pytest.mark.parametrize("ingress", [
    ("ingress", "sg-efs", "tcp", 22, 22, "cidr-ipv4", "0.0.0.0/0"),  # another port
    ("ingress", "sg-efs", "udp", 2049, 2049, "cidr-ipv4", "0.0.0.0/0"),  # another protocol
    ("ingress", "sg-efs", "tcp", 2049, 2049, "cidr-ipv4", "10.0.2.0/24"),  # another network
    ("ingress", "sg-efs", "tcp", 2049, 2049, "group", "sg-someone-else"),  # another group
    ("ingress", "sg-efs", "tcp", 2049, 2049, "cidr-ipv6", "::/0"),  # no IPv6 here
    ("ingress", "sg-other", "-1", -1, -1, "cidr-ipv4", "0.0.0.0/0"),  # a group the mount target is not in
    ("egress", "sg-efs", "-1", -1, -1, "cidr-ipv4", "0.0.0.0/0"),  # the mount target's egress lets nothing in
])
def test_nfs_is_blocked_without_an_ingress_rule_of_the_mount_targets_groups_for_it(ingress: tuple) -> None:
    assert not reachable(ALL_OUT, ingress)


@pytest.mark.parametrize(("egress", "through"), [
    (("egress", "sg-task", "tcp", 2049, 2049, "cidr-ipv4", "10.0.1.20/32"), True),
    (("egress", "sg-task", "tcp", 2049, 2049, "group", "sg-efs"), True),
    (("egress", "sg-task", "tcp", 443, 443, "cidr-ipv4", "0.0.0.0/0"), False),
    (("egress", "sg-task", "tcp", 2049, 2049, "cidr-ipv4", "10.9.0.0/16"), False),
    (("ingress", "sg-task", "-1", -1, -1, "cidr-ipv4", "0.0.0.0/0"), False),  # ingress of the task lets nothing out
])
def test_the_task_must_also_be_let_out_towards_the_mount_target(egress: tuple, through: bool) -> None:
    assert reachable(egress, ("ingress", "sg-efs", "tcp", 2049, 2049, "cidr-ipv4", "0.0.0.0/0")) is through


def test_a_default_group_on_both_ends_lets_nfs_through() -> None:
    both = Endpoint("10.0.1.10", ["sg-default"]), Endpoint("10.0.1.20", ["sg-default"])
    default = [rule("ingress", "sg-default", "-1", -1, -1, "group", "sg-default"),
               rule("egress", "sg-default", "-1", -1, -1, "cidr-ipv4", "0.0.0.0/0")]
    assert nfs_reachable(*both, default)


# --- volume plans ------------------------------------------------------------------------------------

FS, OTHER_FS, AP, MT = "fs-0123456789abcdef0", "fs-00000000000000000", "fsap-0123456789abcdef0", "fsmt-0a"
REGION = "us-east-1"
PLACE = TaskPlacement(vpc_id="vpc-1", availability_zone="us-east-1a", ip="10.0.1.10", security_groups=["sg-task"])
OPEN = [rule("egress", "sg-task", "-1", -1, -1, "cidr-ipv4", "0.0.0.0/0"),
        rule("ingress", "sg-efs", "tcp", 2049, 2049, "group", "sg-task")]


def _fs(file_system_id: str = FS, state: str = "available") -> FileSystemRow:
    return FileSystemRow(file_system_id, "t", state, "generalPurpose", "bursting", None, False, None, None, False, 0.0)


def _mt(zone: str = "us-east-1a", vpc: str = "vpc-1", file_system_id: str = FS) -> MountTargetRow:
    return MountTargetRow(MT, file_system_id, "subnet-1", vpc, zone, "10.0.1.20", "eni-1", "available", 0.0)


def _ap(file_system_id: str = FS) -> AccessPointRow:
    return AccessPointRow(AP, "c", file_system_id, {"Uid": 1000, "Gid": 1001, "SecondaryGids": [7]},
                          {"Path": "/apps/one", "CreationInfo": {"OwnerUid": 1, "OwnerGid": 2, "Permissions": "750"}},
                          "available", 0.0)


def view(rules: list[RuleRow] = OPEN, **kwargs: Any) -> EfsView:
    defaults: dict[str, Any] = {"file_systems": {FS: _fs()}, "access_points": {AP: _ap()},
                                "mount_targets": [_mt()], "mount_target_groups": {MT: ["sg-efs"]}}
    return EfsView(rules=rules, **(defaults | kwargs))


def definition(**efs: Any) -> dict:
    return {"volumes": [{"name": "scratch", "host": {}},
                        {"name": "shared", "efsVolumeConfiguration": {"fileSystemId": FS, **efs}}]}


def test_a_volume_gets_the_mount_target_of_the_tasks_zone() -> None:
    (plan,) = plan_volumes(definition(rootDirectory="/data"), view(), PLACE, REGION)
    assert (plan.volume_name, plan.file_system_id, plan.root_directory) == ("shared", FS, "/data")
    assert (plan.mount_target_id, plan.mount_target_ip, plan.blocked, plan.failure) == (MT, "10.0.1.20", False, None)
    assert (plan.transit_encryption, plan.iam, plan.access_point) == (False, False, None)


def test_an_access_point_volume_carries_the_access_points_user_root_and_creation_info() -> None:
    (plan,) = plan_volumes(definition(transitEncryption="ENABLED", authorizationConfig={
        "accessPointId": AP, "iam": "ENABLED"}), view(), PLACE, REGION)
    assert (plan.root_directory, plan.transit_encryption, plan.iam, plan.failure) == ("/", True, True, None)
    assert plan.access_point == AccessPointPlan(access_point_id=AP, path="/apps/one", posix_uid=1000, posix_gid=1001,
                                                secondary_gids=[7], creation_uid=1, creation_gid=2,
                                                creation_permissions="750")


@pytest.mark.parametrize("seen", [
    {"file_systems": {}},  # no such file system
    {"file_systems": {FS: _fs(state="deleting")}},
    {"mount_targets": []},
    {"mount_targets": [_mt(zone="us-east-1b")]},  # none in the task's AZ
    {"mount_targets": [_mt(vpc="vpc-2")]},  # none in the task's VPC
])
def test_a_file_system_whose_name_does_not_resolve_for_the_task_fails_as_efs_utils_does(seen: dict) -> None:
    (plan,) = plan_volumes(definition(), view(**seen), PLACE, REGION)
    assert plan.failure == stop_reasons.efs_unresolvable(FS, REGION)


@pytest.mark.parametrize("access_points", [{}, {AP: _ap(file_system_id=OTHER_FS)}])
def test_an_access_point_that_is_missing_or_another_file_systems_is_refused_by_the_server(access_points: dict) -> None:
    (plan,) = plan_volumes(definition(transitEncryption="ENABLED", authorizationConfig={"accessPointId": AP}),
                           view(access_points=access_points), PLACE, REGION)
    assert plan.failure == stop_reasons.efs_access_denied(stop_reasons.efs_mount_source(FS, REGION, "/", True))


def test_security_groups_that_stop_nfs_mark_the_volume_blocked() -> None:
    (plan,) = plan_volumes(definition(), view(rules=OPEN[:1]), PLACE, REGION)
    assert plan.blocked and plan.failure is None and plan.mount_target_id == MT


def test_a_definition_without_efs_volumes_has_no_plans_and_names_no_file_system() -> None:
    assert plan_volumes({"volumes": [{"name": "v"}]}, view(), PLACE, REGION) == []
    assert referenced_ids({"volumes": [{"name": "v", "host": {}}]}) == ([], [])
    assert referenced_ids(definition(authorizationConfig={"accessPointId": AP})) == ([FS], [AP])
