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
    # 1.3.0: 10 GiB for image layers + 4 GiB for volumes; 1.4.0: one 20 GiB volume for both.
    ephemeral_storage_gib: int
    separate_volume_storage_gib: int | None
    efs_volumes: bool
    task_eni_mtu: int
    metadata_network_stats: bool
    metadata_availability_zone: bool
    # 1.3.0 fetched secrets and registry auth over a second, platform-owned ENI.
    secrets_over_task_eni: bool
    sys_ptrace: bool
    resource_initialization_error: bool
    ephemeral_storage_configurable: bool
    # task cpu 8192/16384 arrived with 1.4.0.
    large_task_sizes: bool


PLATFORM_1_3_0 = PlatformVersion(
    version="1.3.0",
    runtime_timeout_error="DockerTimeoutError",
    ephemeral_storage_gib=10,
    separate_volume_storage_gib=4,
    efs_volumes=False,
    task_eni_mtu=1500,
    metadata_network_stats=False,
    metadata_availability_zone=False,
    secrets_over_task_eni=False,
    sys_ptrace=False,
    resource_initialization_error=False,
    ephemeral_storage_configurable=False,
    large_task_sizes=False,
)

PLATFORM_1_4_0 = PlatformVersion(
    version="1.4.0",
    runtime_timeout_error="ContainerRuntimeTimeoutError",
    ephemeral_storage_gib=20,
    separate_volume_storage_gib=None,
    efs_volumes=True,
    task_eni_mtu=9001,
    metadata_network_stats=True,
    metadata_availability_zone=True,
    secrets_over_task_eni=True,
    sys_ptrace=True,
    resource_initialization_error=True,
    ephemeral_storage_configurable=True,
    large_task_sizes=True,
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
