"""A task's efsVolumeConfiguration volumes as the agent mounts them (`EfsVolumePlan`), decided at RunTask
from what the store holds then (`EfsView`). Pure: the reads are `task_volumes.read_efs_view`'s.

What the control plane already knows cannot work ends as the volume's `failure`, the stoppedReason the
agent stops the task with (as Fargate's supervisor would fail): no such file system, or no mount target of it
in the task's VPC and AZ - the name does not resolve; an access point that does not exist or is another
file system's - the server refuses the mount. Security groups that stop NFS mark it `blocked` (it times out).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fargo.control.efs import ids
from fargo.control.efs.nfs_reachability import Endpoint, nfs_reachable
from fargo.protocol import stop_reasons
from fargo.protocol.messages import AccessPointPlan, EfsVolumePlan
from fargo.store.efs_store import AVAILABLE, AccessPointRow, FileSystemRow, MountTargetRow
from fargo.store.network_store import RuleRow


@dataclass(frozen=True)
class EfsView:
    """What RunTask read of EFS for one task definition's volumes, and the rules that decide NFS's way."""

    file_systems: Mapping[str, FileSystemRow] = field(default_factory=dict)
    access_points: Mapping[str, AccessPointRow] = field(default_factory=dict)
    mount_targets: Sequence[MountTargetRow] = ()
    mount_target_groups: Mapping[str, Sequence[str]] = field(default_factory=dict)  # by mount target id
    rules: Sequence[RuleRow] = ()


@dataclass(frozen=True)
class TaskPlacement:
    """Where the task's ENI is: its VPC, AZ, address and groups."""

    vpc_id: str
    availability_zone: str
    ip: str
    security_groups: Sequence[str]


def efs_volumes(definition: Mapping[str, Any]) -> list[tuple[str, dict]]:
    """(volume name, efsVolumeConfiguration) of the definition's EFS volumes, in order."""
    return [(v["name"], v["efsVolumeConfiguration"]) for v in definition.get("volumes") or []
            if v.get("efsVolumeConfiguration")]


def referenced_ids(definition: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The file system and access point ids the definition's EFS volumes name."""
    volumes = efs_volumes(definition)
    file_systems = [ids.resource_id(c["fileSystemId"]) for _, c in volumes]
    access_points = [ids.resource_id(ap) for _, c in volumes
                     if (ap := (c.get("authorizationConfig") or {}).get("accessPointId"))]
    return list(dict.fromkeys(file_systems)), list(dict.fromkeys(access_points))


def plan_volumes(definition: Mapping[str, Any], view: EfsView, task: TaskPlacement,
                 region: str) -> list[EfsVolumePlan]:
    return [plan_volume(name, config, view, task, region) for name, config in efs_volumes(definition)]


def plan_volume(name: str, config: Mapping[str, Any], view: EfsView, task: TaskPlacement,
                region: str) -> EfsVolumePlan:
    file_system_id = ids.resource_id(config["fileSystemId"])
    authorization = config.get("authorizationConfig") or {}
    access_point_id = authorization.get("accessPointId")
    tls = config.get("transitEncryption") == "ENABLED"
    plan = EfsVolumePlan(volume_name=name, file_system_id=file_system_id,
                         root_directory=config.get("rootDirectory") or "/", transit_encryption=tls,
                         iam=authorization.get("iam") == "ENABLED")
    fs = view.file_systems.get(file_system_id)
    target = next((m for m in view.mount_targets
                   if m.file_system_id == file_system_id and m.vpc_id == task.vpc_id
                   and m.availability_zone == task.availability_zone and m.life_cycle_state == AVAILABLE), None)
    if fs is None or fs.life_cycle_state != AVAILABLE or target is None:
        return replace(plan, failure=stop_reasons.efs_unresolvable(file_system_id, region))
    access_point = None
    if access_point_id:
        found = view.access_points.get(ids.resource_id(access_point_id))
        if found is None or found.file_system_id != file_system_id:
            source = stop_reasons.efs_mount_source(file_system_id, region, "/", tls)
            return replace(plan, mount_target_id=target.mount_target_id, mount_target_ip=target.ip,
                         failure=stop_reasons.efs_access_denied(source))
        access_point = _access_point_plan(found)
    groups = view.mount_target_groups.get(target.mount_target_id, ())
    reachable = nfs_reachable(Endpoint(task.ip, task.security_groups), Endpoint(target.ip, groups), view.rules)
    return replace(plan, root_directory="/" if access_point else plan.root_directory, access_point=access_point,
                 mount_target_id=target.mount_target_id, mount_target_ip=target.ip, blocked=not reachable)


def _access_point_plan(a: AccessPointRow) -> AccessPointPlan:
    posix = a.posix_user or {}
    creation = a.root_directory.get("CreationInfo") or {}
    return AccessPointPlan(
        access_point_id=a.access_point_id, path=a.root_directory.get("Path") or "/",
        posix_uid=posix.get("Uid"), posix_gid=posix.get("Gid"), secondary_gids=list(posix.get("SecondaryGids") or []),
        creation_uid=creation.get("OwnerUid"), creation_gid=creation.get("OwnerGid"),
        creation_permissions=creation.get("Permissions"))
