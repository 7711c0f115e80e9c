"""The task's ephemeral storage: a size-limited volume (fargo.storage.ephemeral_volume) that holds every
container's writable layer and every task volume (a volume with no configuration, or `host: {}`), shared by
the containers whose mountPoints or volumesFrom name it; thrown away when the task stops.

    prestart      the volume made and mounted (about 13 ms in a thread, beside the ENI's ~38 ms); after an
                  agent restart a mounted volume is kept with its contents
    contribute    the container's writable layer dir on the volume; its task volumes as bind mounts
    stop          the volume shut down, unmounted, unbound and deleted (raises while anything is left)

FARGO_EPHEMERAL_VOLUMES=0 (benchmarks only) leaves writable layers in containerd's snapshots, unlimited, and
task volumes as plain directories: the baseline bench/storage.py measures the volume against.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from fargo.agent.engine.mount_points import container_mount_points
from fargo.agent.hooks.base import (ContainerRun, ContainerSpecContribution, HookPhase, TaskCannotStart,
                                    TaskContext, TaskHook, in_thread_to_the_end)
from fargo.agent.task_cgroup import account_block_io_on
from fargo.protocol import stop_reasons as reasons
from fargo.runtime.errors import scrub_host_paths
from fargo.runtime.oci_spec import BindMount
from fargo.storage.ephemeral_volume import (EphemeralVolume, StorageSizes, TaskStorageLayout,
                                            remove_task_storage)
from fargo.storage.ext4_images import VolumeImages
from fargo.storage.loop_devices import LOOP_MAJOR

log = logging.getLogger(__name__)

# Volume configurations that belong to other hooks (EFS) or that Fargate refuses at registration.
_OTHER_VOLUME_KINDS = ("efsVolumeConfiguration", "dockerVolumeConfiguration",
                       "fsxWindowsFileServerVolumeConfiguration", "configuredAtLaunch")


def task_volume_names(task_definition: dict[str, Any]) -> list[str]:
    """The definition's task volumes: scratch space for its containers, on the task's ephemeral storage."""
    names = []
    for volume in task_definition.get("volumes") or []:
        if any(volume.get(kind) for kind in _OTHER_VOLUME_KINDS):
            continue
        if (volume.get("host") or {}).get("sourcePath"):
            continue  # refused on Fargate at registration ("host.sourcePath should not be set ...")
        names.append(volume["name"])
    return names


def storage_sizes(task: TaskContext) -> StorageSizes:
    """1.4.0: one volume, ephemeralStorage.sizeInGiB (the definition's or RunTask's) or 20 GiB; 1.3.0: 10 GiB
    for the writable layers and 4 GiB for the task volumes."""
    platform = task.platform
    size = task.assignment.ephemeral_storage_gib or platform.ephemeral_storage_gib
    return StorageSizes(size, platform.task_volume_storage_gib)


class EphemeralStorageHook(TaskHook):
    name = "ephemeral-storage"
    phase = HookPhase.PROVISIONING

    def __init__(self, host) -> None:  # noqa: ANN001 - a HostFacilities
        super().__init__(host)
        self.volumes_enabled = os.environ.get("FARGO_EPHEMERAL_VOLUMES", "1") != "0"
        self._images: VolumeImages | None = None

    def _volume(self, task: TaskContext) -> EphemeralVolume:
        if self._images is None:  # templates are kept in the data dir across restarts
            self._images = VolumeImages(self.host.data_dir / "storage" / "templates")
        return EphemeralVolume(self.host.task_dir(task.task_id), storage_sizes(task), self._images)

    async def prestart(self, task: TaskContext) -> None:
        names = task_volume_names(task.assignment.task_definition)
        try:
            # To the end even if cancelled (an agent shutting down): stop must never run beside half a make.
            await in_thread_to_the_end(self._provision, task, names)
        except (OSError, ValueError) as e:
            raise TaskCannotStart(self._cannot_create(task, e)) from None

    def _provision(self, task: TaskContext, names: list[str]) -> None:
        if not self.volumes_enabled:
            layout = TaskStorageLayout(self.host.task_dir(task.task_id))
            for name in names:
                layout.task_volume_dir(name).mkdir(parents=True, exist_ok=True)
            return
        started = time.perf_counter()
        for number in self._volume(task).make(names):
            # blkio v1 counts the container's writes to the loop device only once some cgroup throttles it
            account_block_io_on(task.task_id, LOOP_MAJOR, number)
        log.debug("ephemeral storage of task %s ready in %.1f ms", task.task_id,
                  (time.perf_counter() - started) * 1e3)

    @staticmethod
    def _cannot_create(task: TaskContext, error: Exception) -> str:
        # Fargate's wording for a volume it could not make is not public (CannotCreateVolumeError's examples
        # were not recovered, ecs-api.md section 6): this follows its ResourceInitializationError pattern.
        return reasons.resource_initialization(
            task.platform, f"failed to create the task's ephemeral storage: {scrub_host_paths(str(error))}")

    def contribute(self, task: TaskContext, container: ContainerRun, spec: ContainerSpecContribution) -> None:
        layout = TaskStorageLayout(self.host.task_dir(task.task_id))
        if self.volumes_enabled:
            spec.writable_layer_dir = layout.container_dir(container.runtime_id)
        names = set(task_volume_names(task.assignment.task_definition))
        definitions = [c.definition for c in task.containers.values()]
        for point in container_mount_points(container.definition, definitions):
            if point.source_volume in names:
                spec.mounts.append(BindMount(str(layout.task_volume_dir(point.source_volume)),
                                             point.container_path, readonly=point.read_only))

    async def stop(self, task: TaskContext) -> None:
        started = time.perf_counter()
        await asyncio.to_thread(remove_task_storage, self.host.task_dir(task.task_id))
        log.debug("ephemeral storage of task %s removed in %.1f ms", task.task_id,
                  (time.perf_counter() - started) * 1e3)

