"""Fargate platform versions as data: what differs between 1.3.0 and 1.4.0.

Code asks a `PlatformVersion` record what to do; it never compares version strings.
"""
from __future__ import annotations

from dataclasses import dataclass

from fargo.errors import PlatformUnknownException


@dataclass(frozen=True)
class PlatformVersion:
    version: str
    # Fargate 1.4.0 runs containerd: runtime errors are named generically.
    runtime_timeout_error: str
    # 1.3.0: 10 GiB for the containers' writable layers (+ 4 GiB for task volumes); 1.4.0: one 20 GiB volume
    # for both (the default; ephemeralStorage asks for 21-200).
    ephemeral_storage_gib: int
    efs_volumes: bool
    task_eni_mtu: int
    resource_initialization_error: bool
    ephemeral_storage_configurable: bool
    # task cpu 8192/16384 arrived with 1.4.0.
    large_task_sizes: bool
    # Task metadata v4 (ECS_CONTAINER_METADATA_URI_V4, AvailabilityZone, network stats) arrived with 1.4.0.
    metadata_v4: bool
    # Task volumes on a volume of their own of this size (1.3.0: 4 GiB); None: they share ephemeral storage.
    task_volume_storage_gib: int | None = None
    # 1.4.0 fetches secrets and pulls images over the task ENI; 1.3.0 did both from the host.
    execution_over_task_eni: bool = True
    # The agent's hooks for a task of this version, in order (fargo.agent.hooks names them).
    task_hooks: tuple[str, ...] = ("task-eni", "task-cgroup", "ephemeral-storage", "task-files",
                                   "container-logs", "secrets", "image", "efs-volumes", "metadata-env", "task-metadata",
                                   "health-checks")


PLATFORM_1_3_0 = PlatformVersion(
    version="1.3.0",
    runtime_timeout_error="DockerTimeoutError",
    ephemeral_storage_gib=10,
    efs_volumes=False,
    task_eni_mtu=1500,
    resource_initialization_error=False,
    ephemeral_storage_configurable=False,
    large_task_sizes=False,
    metadata_v4=False,
    task_volume_storage_gib=4,
    execution_over_task_eni=False,
)

PLATFORM_1_4_0 = PlatformVersion(
    version="1.4.0",
    runtime_timeout_error="ContainerRuntimeTimeoutError",
    ephemeral_storage_gib=20,
    efs_volumes=True,
    task_eni_mtu=9001,
    resource_initialization_error=True,
    ephemeral_storage_configurable=True,
    large_task_sizes=True,
    metadata_v4=True,
)

PLATFORM_VERSIONS: dict[str, PlatformVersion] = {p.version: p for p in (PLATFORM_1_3_0, PLATFORM_1_4_0)}
DEFAULT_LATEST = "1.4.0"


def resolve_platform_version(requested: str | None, latest: str = DEFAULT_LATEST) -> PlatformVersion:
    """Turn a RunTask/CreateService `platformVersion` into its record; LATEST follows `latest`."""
    name = latest if requested in (None, "", "LATEST") else requested
    try:
        return PLATFORM_VERSIONS[name]
    except KeyError:
        raise PlatformUnknownException("The specified platform does not exist.") from None
