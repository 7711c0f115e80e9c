"""From a task's container definition (with RunTask overrides) to the runtime spec containerd runs."""
from __future__ import annotations

from dataclasses import dataclass

from fargo.agent.task_cgroup import container_cgroup_path
from fargo.protocol.container_settings import EffectiveContainerSettings
from fargo.runtime.oci_spec import BindMount, ContainerRuntimeSpec, Rlimit, container_args, container_env
from fargo.runtime.records import ImageConfig

MIB = 1024 * 1024
PIDS_PER_CONTAINER = 4096  # Fargate sets no documented pids limit; this keeps a fork bomb inside its task
MIN_CPU_SHARES = 2  # what the kernel takes for "cpu": 0


@dataclass(frozen=True)
class TaskFacts:
    task_id: str
    task_arn: str
    region: str
    task_memory_mib: int
    hostname: str
    netns_path: str
    hosts_file: str
    metadata_uri: str


def apply_overrides(container: dict, override: dict) -> dict:
    """A container definition with RunTask's containerOverrides applied."""
    merged = dict(container)
    for key in ("command", "cpu", "memory", "memoryReservation"):
        if key in override:
            merged[key] = override[key]
    if override.get("environment"):
        merged["environment"] = list(container.get("environment") or []) + list(override["environment"])
    return merged


def runtime_spec(container: dict, settings: EffectiveContainerSettings, image: ImageConfig, task: TaskFacts,
                 runtime_id: str, pidns_path: str | None) -> ContainerRuntimeSpec:
    env = dict(settings.environment)
    env.update({
        "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
        "AWS_REGION": task.region,
        "AWS_DEFAULT_REGION": task.region,
        "ECS_CONTAINER_METADATA_URI": f"{task.metadata_uri}/v3/{runtime_id}",
        "ECS_CONTAINER_METADATA_URI_V4": f"{task.metadata_uri}/v4/{runtime_id}",
        "ECS_AGENT_URI": f"{task.metadata_uri}/api/{runtime_id}",
    })
    caps = ((container.get("linuxParameters") or {}).get("capabilities") or {})
    # A container with no memory of its own gets the task's: its OOM kills are then its own, and reported.
    memory = settings.memory or task.task_memory_mib
    return ContainerRuntimeSpec(
        args=container_args(image, container.get("entryPoint"), container.get("command")),
        env=container_env(image, env),
        cwd=container.get("workingDirectory") or image.working_dir or "/",
        user=container.get("user") or image.user or "",
        hostname=task.hostname,
        readonly_rootfs=settings.readonly_root_filesystem,
        rlimits=[Rlimit(name, soft, hard) for name, (soft, hard) in settings.ulimits.items()],
        init_process=settings.init_process_enabled,
        cgroups_path=container_cgroup_path(task.task_id, runtime_id),
        memory_limit=memory * MIB,
        memory_reservation=settings.memory_reservation * MIB if settings.memory_reservation else None,
        cpu_shares=max(settings.cpu, MIN_CPU_SHARES),
        pids_limit=PIDS_PER_CONTAINER,
        netns_path=task.netns_path,
        pidns_path=pidns_path,
        mounts=[BindMount(task.hosts_file, "/etc/hosts", readonly=False)],
        cap_add=list(caps.get("add") or []),
        cap_drop=list(caps.get("drop") or []),
        sysctls={s["namespace"]: s["value"] for s in container.get("systemControls") or []
                 if s.get("namespace") and "value" in s},
    )
