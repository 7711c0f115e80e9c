"""From a container definition (RunTask overrides applied), its image and what the hooks contributed, to the
runtime spec containerd runs. Only the definition's own semantics live here; features come from hooks.
"""
from __future__ import annotations

import zlib

from fargo.agent.hooks.base import ContainerSpecContribution
from fargo.protocol.container_settings import EffectiveContainerSettings
from fargo.runtime.image_users import container_user
from fargo.runtime.oci_spec import ContainerRuntimeSpec, Rlimit, container_args, container_env
from fargo.runtime.records import ImageConfig

MIB = 1024 * 1024
PIDS_PER_CONTAINER = 4096  # Fargate sets no documented pids limit; this keeps a fork bomb inside its task
MIN_CPU_SHARES = 2  # what the kernel takes for "cpu": 0


def apply_overrides(container: dict, override: dict) -> dict:
    """A container definition with RunTask's containerOverrides applied."""
    merged = dict(container)
    for key in ("command", "cpu", "memory", "memoryReservation"):
        if key in override:
            merged[key] = override[key]
    if override.get("environment"):
        merged["environment"] = list(container.get("environment") or []) + list(override["environment"])
    return merged


def runtime_id_for(task_id: str, index: int, name: str) -> str:
    """The container's runtimeId as Fargate 1.4.0 shows it (`<task id>-<10 digits>`), derived, not drawn:
    an agent that restarts before it saved its state still finds the containers it made."""
    return f"{task_id}-{1_000_000_000 + zlib.crc32(f'{index}:{name}'.encode()) % 9_000_000_000}"


def runtime_spec(container: dict, settings: EffectiveContainerSettings, image: ImageConfig,
                 contribution: ContainerSpecContribution, task_memory_mib: int,
                 pidns_path: str | None) -> ContainerRuntimeSpec:
    env = dict(settings.environment)
    env.update(contribution.environment)
    caps = ((container.get("linuxParameters") or {}).get("capabilities") or {})
    # A container with no memory of its own gets the task's: its OOM kills are then its own, and reported.
    memory = settings.memory or task_memory_mib
    return ContainerRuntimeSpec(
        args=container_args(image, container.get("entryPoint"), container.get("command")),
        env=container_env(image, env),
        cwd=container.get("workingDirectory") or image.working_dir or "/",
        user=container_user(container, image),
        hostname=contribution.hostname,
        readonly_rootfs=settings.readonly_root_filesystem,
        rlimits=[Rlimit(name, soft, hard) for name, (soft, hard) in settings.ulimits.items()] + contribution.rlimits,
        init_process=settings.init_process_enabled,
        cgroups_path=contribution.cgroups_path,
        memory_limit=memory * MIB,
        memory_reservation=settings.memory_reservation * MIB if settings.memory_reservation else None,
        cpu_shares=max(settings.cpu, MIN_CPU_SHARES),
        pids_limit=PIDS_PER_CONTAINER,
        netns_path=contribution.netns_path,
        pidns_path=pidns_path,
        mounts=list(contribution.mounts),
        cap_add=list(caps.get("add") or []),
        cap_drop=list(caps.get("drop") or []),
        sysctls={s["namespace"]: s["value"] for s in container.get("systemControls") or []
                 if s.get("namespace") and "value" in s},
    )
