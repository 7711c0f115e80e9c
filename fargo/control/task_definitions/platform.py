"""Run-time check: can this Fargate platform version run this (registered) task definition?

RunTask and CreateService call it after resolving `platformVersion`; AWS answers a mismatch with
PlatformTaskDefinitionIncompatibilityException (text seen for EFS on 1.3.0, ansible/ansible#70625).
Adding SYS_PTRACE is no such feature: AWS enabled it on every Fargate platform version along with 1.4.0.
"""
from __future__ import annotations

from typing import Any

from fargo.errors import PlatformTaskDefinitionIncompatibilityException
from fargo.control.task_definitions.sizes import LARGE_TASK_CPUS, parse_task_cpu
from fargo.platform import PlatformVersion

Json = dict[str, Any]

CAPABILITIES_NOT_SUPPORTED = "One or more of the requested capabilities are not supported."


def _needs_platform_1_4(definition: Json) -> bool:
    """Features that arrived with 1.4.0 but have no flag of their own in PlatformVersion yet."""
    if definition.get("pidMode") == "task":
        return True
    return any(c.get("systemControls") for c in definition["containerDefinitions"])


def check_platform_supports(definition: Json, platform: PlatformVersion, *, cpu: str | int | None = None) -> None:
    """Raise when `platform` lacks something `definition` uses; `cpu` is a RunTask override, if any."""
    task_cpu_text = cpu if cpu is not None else definition.get("cpu")
    task_cpu = parse_task_cpu(task_cpu_text) if task_cpu_text is not None else None
    problems = (
        not platform.efs_volumes
        and any(v.get("efsVolumeConfiguration") for v in definition.get("volumes") or []),
        not platform.ephemeral_storage_configurable and definition.get("ephemeralStorage") is not None,
        not platform.large_task_sizes and task_cpu in LARGE_TASK_CPUS,
        # pidMode task and systemControls came with 1.4.0, as did EFS: ride on that flag.
        not platform.efs_volumes and _needs_platform_1_4(definition),
    )
    if any(problems):
        raise PlatformTaskDefinitionIncompatibilityException(CAPABILITIES_NOT_SUPPORTED)
