"""The task's EFS volumes. A file system is the directory `<efs_root>/<fs-id>`; each volume is a bind mount
of its root directory (or its access point's) under `task_dir/efs/`, from where containers bind it.

    prestart    volume by volume, as Fargate's supervisor mounts them: the control plane's `failure` stops the
                task; `blocked` (security groups stop NFS) waits out efs-utils' attempts, then stops it; the
                directory is opened without following anything a task planted (an access point's root made
                with CreationInfo); one mount per caller identity when the access point has a PosixUser
    contribute  each container's EFS mount points (its own and volumesFrom's), read-only as they say
    stop        every mount under task_dir/efs unmounted and its directory removed; never a recursive delete

Identity: with a PosixUser, an idmapped mount per distinct container uid/gid maps that uid/gid to the
PosixUser's (fargo.storage.idmap: other uids of the container get EOVERFLOW on create, secondary gids are
not applied). Without one the mount is a plain bind: EFS trusts the client's ids.
Prestart runs again after an agent restart: a mount already in place is reused.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from fargo.agent import host_scan
from fargo.agent.engine.mount_points import MountPoint, container_mount_points
from fargo.agent.hooks.base import (ContainerRun, ContainerSpecContribution, HookPhase, HostFacilities,
                                    TaskCannotStart, TaskContext, TaskHook, in_thread_to_the_end)
from fargo.protocol import stop_reasons as reasons
from fargo.protocol.messages import AccessPointPlan, EfsVolumePlan
from fargo.runtime.errors import UnknownUser
from fargo.runtime.image_users import container_user, needs_user_database, resolve_user
from fargo.runtime.oci_spec import BindMount
from fargo.storage.idmap import IdMapping, IdmapUnsupported, UserNamespaces, bind_directory
from fargo.storage.safe_paths import (DirectoryCreation, NoSuchDirectory, open_directory_beneath,
                                      open_file_system)

log = logging.getLogger(__name__)

# efs-utils gives each of its 3 mount attempts 15 s; tests shorten it (read once, when the agent starts).
ATTEMPT_SECONDS_VARIABLE = "FARGO_EFS_MOUNT_ATTEMPT_SECONDS"
DEFAULT_ATTEMPT_SECONDS = 15.0
# The runner cancels a waiting prestart on stop; polling also ends the wait when the hook is driven alone.
_STOP_POLL_SECONDS = 0.1
_PLAIN_VOLUME_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")


def attempt_seconds_from(text: str | None) -> float:
    if not text:
        return DEFAULT_ATTEMPT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        log.warning("%s=%r is not a positive number of seconds; using %g", ATTEMPT_SECONDS_VARIABLE, text,
                    DEFAULT_ATTEMPT_SECONDS)
        return DEFAULT_ATTEMPT_SECONDS
    return seconds


@dataclass(frozen=True)
class _VolumeMount:
    """One mount of a volume under task_dir/efs: where, and as whom (None: a plain bind)."""

    target: Path
    mapping: IdMapping | None


class EfsVolumesHook(TaskHook):
    name = "efs-volumes"
    phase = HookPhase.PENDING  # after "image": a container's user may come from its image

    def __init__(self, host: HostFacilities) -> None:
        super().__init__(host)
        self.attempt_seconds = attempt_seconds_from(os.environ.get(ATTEMPT_SECONDS_VARIABLE))
        self._user_namespaces = UserNamespaces()
        self._binds: dict[str, dict[str, list[BindMount]]] = {}  # task id -> container name -> binds

    # --- prestart -----------------------------------------------------------------------------------

    async def prestart(self, task: TaskContext) -> None:
        plans = task.assignment.efs_volumes
        if not plans:
            return
        efs_dir = self._efs_dir(task.task_id)
        uses = _volume_uses(task, {p.volume_name for p in plans})
        callers: dict[str, tuple[int, int] | None] = {}
        binds: dict[str, list[BindMount]] = {}
        for plan in plans:
            if plan.failure:
                raise TaskCannotStart(plan.failure)
            if plan.blocked:
                await self._wait_out_mount_attempts(task)
                if task.stop_wanted:
                    return
                raise TaskCannotStart(reasons.efs_mount_timed_out(self.attempt_seconds))
            mounts = await self._volume_mounts(plan, uses.get(plan.volume_name, []), efs_dir, callers, binds)
            await in_thread_to_the_end(self._mount_volume, plan, efs_dir, mounts)
            if task.stop_wanted:
                return
        self._binds[task.task_id] = binds

    async def _volume_mounts(self, plan: EfsVolumePlan, uses: list[tuple[ContainerRun, MountPoint]], efs_dir: Path,
                             callers: dict[str, tuple[int, int] | None],
                             binds: dict[str, list[BindMount]]) -> list[_VolumeMount]:
        """The mounts of one volume (one, or one per caller identity with a PosixUser), and each using
        container's binds of them added to `binds`."""
        posix_user = plan.access_point if plan.access_point and plan.access_point.posix_uid is not None else None
        mounts: dict[Path, _VolumeMount] = {}
        for container, point in uses:
            mapping = None
            if posix_user is not None:
                if container.name not in callers:
                    callers[container.name] = await self._caller_ids(container)
                caller = callers[container.name]
                if caller is None:
                    continue  # an unknown user name: the runner refuses the container, with its own reason
                mapping = _posix_user_mapping(caller, posix_user)
            mount = _VolumeMount(efs_dir / _mount_name(plan.volume_name, mapping), mapping)
            mounts[mount.target] = mount
            binds.setdefault(container.name, []).append(
                BindMount(str(mount.target), point.container_path, point.read_only))
        return list(mounts.values())

    async def _wait_out_mount_attempts(self, task: TaskContext) -> None:
        """What efs-utils does when NFS packets are dropped: every attempt times out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + reasons.EFS_MOUNT_ATTEMPTS * self.attempt_seconds
        while not task.stop_wanted:
            left = deadline - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, _STOP_POLL_SECONDS))

    async def _caller_ids(self, container: ContainerRun) -> tuple[int, int] | None:
        """The uid and gid the container's process runs with, found as the runner finds them: its `user`,
        else its image's, else 0; the image's passwd and group only for a user given by name."""
        user = container_user(container.definition, container.image)
        by_name = needs_user_database(user)
        users = await self.host.runtime.image_users(container.definition["image"]) if by_name else None
        try:
            resolved = resolve_user(user, users)
        except UnknownUser:
            return None
        return resolved.uid, resolved.gid

    def _mount_volume(self, plan: EfsVolumePlan, efs_dir: Path, mounts: list[_VolumeMount]) -> None:
        """(In a thread.) Open the volume's directory, making an access point's root when it may, and mount
        it at each target not mounted yet. A volume no container uses is still opened, as Fargate mounts it."""
        started = time.perf_counter()
        in_place = set(host_scan.mounts_under(efs_dir)) if efs_dir.is_dir() else set()
        missing = [m for m in mounts if m.target not in in_place]
        if mounts and not missing:
            return  # made before an agent restart: reused as it is
        source = _mount_source(plan, self.host.region)
        dir_fd = self._open_volume_directory(plan, source)
        try:
            for mount in missing:
                self._mount(dir_fd, mount)
        except IdmapUnsupported as e:
            log.error("EFS volume %s of %s: %s (access points with a PosixUser need an --efs-root on a file "
                      "system that allows idmapped mounts)", plan.volume_name, plan.file_system_id, e)
            raise TaskCannotStart(reasons.efs_access_denied(source)) from None
        finally:
            os.close(dir_fd)
        log.debug("EFS volume %s (%s): %d mount(s) in %.2f ms", plan.volume_name, plan.file_system_id,
                  len(missing), (time.perf_counter() - started) * 1000)

    def _open_volume_directory(self, plan: EfsVolumePlan, source: str) -> int:
        """An fd of the volume's directory, or the task stops as efs-utils would report the failed mount."""
        try:
            fs_fd = open_file_system(self.host.efs_root, plan.file_system_id)
        except NoSuchDirectory:
            # deleted, or a shared --efs-root that is not mounted on this host: as if its name did not resolve
            raise TaskCannotStart(reasons.efs_unresolvable(plan.file_system_id, self.host.region)) from None
        except PermissionError:  # a shared --efs-root that refuses this host's root
            raise TaskCannotStart(reasons.efs_access_denied(source)) from None
        try:
            return open_directory_beneath(fs_fd, _directory_in_file_system(plan), _creation(plan.access_point))
        except NoSuchDirectory:
            raise TaskCannotStart(reasons.efs_no_such_directory(source)) from None
        except PermissionError:
            raise TaskCannotStart(reasons.efs_access_denied(source)) from None
        finally:
            os.close(fs_fd)

    def _mount(self, dir_fd: int, mount: _VolumeMount) -> None:
        mount.target.mkdir(parents=True, exist_ok=True)
        if mount.mapping is None:
            bind_directory(dir_fd, mount.target)
            return
        with self._user_namespaces.borrowed(mount.mapping) as userns_fd:
            bind_directory(dir_fd, mount.target, userns_fd)

    # --- containers ---------------------------------------------------------------------------------

    def contribute(self, task: TaskContext, container: ContainerRun, spec: ContainerSpecContribution) -> None:
        spec.mounts.extend(self._binds.get(task.task_id, {}).get(container.name, []))

    # --- stop ---------------------------------------------------------------------------------------

    async def stop(self, task: TaskContext) -> None:
        self._binds.pop(task.task_id, None)
        await asyncio.to_thread(_unmount_volumes, self._efs_dir(task.task_id))

    def _efs_dir(self, task_id: str) -> Path:
        # The real path, as mountinfo names mount points: a mount made before a restart is recognised.
        return Path(os.path.realpath(self.host.task_dir(task_id))) / "efs"


def _volume_uses(task: TaskContext, volumes: set[str]) -> dict[str, list[tuple[ContainerRun, MountPoint]]]:
    """Which containers mount each EFS volume, and where."""
    definitions = [c.definition for c in task.containers.values()]
    uses: dict[str, list[tuple[ContainerRun, MountPoint]]] = {}
    for container in task.containers.values():
        for point in container_mount_points(container.definition, definitions):
            if point.source_volume in volumes:
                uses.setdefault(point.source_volume, []).append((container, point))
    return uses


def _posix_user_mapping(caller: tuple[int, int], access_point: AccessPointPlan) -> IdMapping:
    uid, gid = caller
    assert access_point.posix_uid is not None
    # PosixUser's Gid is required by the EFS API; without it the caller keeps its gid.
    disk_gid = access_point.posix_gid if access_point.posix_gid is not None else gid
    return IdMapping(caller_uid=uid, caller_gid=gid, disk_uid=access_point.posix_uid, disk_gid=disk_gid)


def _mount_name(volume_name: str, mapping: IdMapping | None) -> str:
    """`<volume>` or `<volume>.<uid>.<gid>`. ECS allows letters, digits, '_' and '-' in volume names; any
    other name (nothing stops one at registration here) becomes a digest, so it never climbs out of efs/."""
    name = volume_name if _PLAIN_VOLUME_NAME.fullmatch(volume_name) else \
        "volume-" + hashlib.sha256(volume_name.encode()).hexdigest()[:16]
    if mapping is None:
        return name
    return f"{name}.{mapping.caller_uid}.{mapping.caller_gid}"


def _directory_in_file_system(plan: EfsVolumePlan) -> str:
    # An access point re-roots the mount at its path (rootDirectory is then "/" or omitted).
    return plan.access_point.path if plan.access_point is not None else plan.root_directory


def _creation(access_point: AccessPointPlan | None) -> DirectoryCreation | None:
    """An access point's CreationInfo: its root is made at the first mount; without it the mount fails."""
    ap = access_point
    if ap is None or ap.creation_uid is None or ap.creation_gid is None or ap.creation_permissions is None:
        return None
    return DirectoryCreation.from_creation_info(ap.creation_uid, ap.creation_gid, ap.creation_permissions)


def _mount_source(plan: EfsVolumePlan, region: str) -> str:
    """What mount.nfs4 would name: the access point's mount is of `/` through the local TLS tunnel."""
    path = "/" if plan.access_point is not None else plan.root_directory
    return reasons.efs_mount_source(plan.file_system_id, region, path, tls=plan.transit_encryption)


def _unmount_volumes(efs_dir: Path) -> None:
    """Unmount everything under `efs_dir` (lazily detached only if still busy), then remove the empty mount
    point directories. Only rmdir: a mount that stayed makes it fail instead of deleting file system data."""
    if not efs_dir.is_dir():
        return  # no volume, or never got this far
    host_scan.unmount_all(host_scan.mounts_under(efs_dir))
    for entry in os.scandir(efs_dir):
        os.rmdir(entry.path)
    os.rmdir(efs_dir)
