"""The one interface every feature around a task implements, and what a hook sees of its task and host.

    prestart(task)                 in the hook's phase (PROVISIONING or PENDING), in list order; may refuse
                                   with TaskCannotStart; runs again after an agent restart, so idempotent
    contribute(task, container, spec)  adds to each container's spec: mounts, environment, rlimits, stdio
    container_started(task, c)     a container runs (or was found running after a restart)
    container_exited(task, c)      a container is gone
    poststart(task)                the task is RUNNING
    stop(task)                     in reverse list order; idempotent, tolerates half-done or undone work,
                                   and raises when it could not undo its work (the runner retries)
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TypeVar

from fargo.agent.engine.dependencies import ContainerProgress
from fargo.platform import PlatformVersion
from fargo.protocol.container_settings import EffectiveContainerSettings
from fargo.protocol.messages import EniPlan, TaskAssignment, TaskReport
from fargo.runtime.client import Containerd
from fargo.runtime.oci_spec import BindMount, Rlimit
from fargo.runtime.records import ImageConfig

T = TypeVar("T")


async def in_thread_to_the_end(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a thread, for PENDING hooks (the runner cancels their prestart when the task is stopped):
    a cancellation waits for the thread to finish before it is raised, so that the hook's stop never runs
    beside half-made host work."""
    job = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await job
        raise


class TaskCannotStart(Exception):
    """The task stops with stopCode TaskFailedToStart; `reason` starts with the Fargate error name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HookPhase(str, Enum):
    PROVISIONING = "PROVISIONING"  # host resources: ENI, cgroup, files, volumes
    PENDING = "PENDING"  # what travels over the task ENI: images, secrets


@dataclass
class ContainerSpecContribution:
    """What hooks add to a container's runtime spec, beyond what its definition and image say."""

    environment: dict[str, str] = field(default_factory=dict)
    mounts: list[BindMount] = field(default_factory=list)
    rlimits: list[Rlimit] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    hostname: str = ""
    netns_path: str | None = None
    cgroups_path: str | None = None
    stdout_path: Path | None = None
    stderr_path: Path | None = None
    # Where the container's writable layer (overlay upper and work dirs) lives instead of containerd's
    # snapshot directory: the task's ephemeral volume, so that its size limit covers what containers write.
    writable_layer_dir: Path | None = None


@dataclass
class ContainerRun:
    """One container of a running task: its definition, its settings, and what the agent knows of it."""

    name: str
    definition: dict[str, Any]  # with RunTask's containerOverrides applied
    settings: EffectiveContainerSettings
    runtime_id: str
    last_status: str = "PENDING"
    exit_code: int | None = None
    reason: str | None = None
    health_status: str = "UNKNOWN"
    image_digest: str | None = None
    image: ImageConfig | None = None  # set in PENDING by the image hook
    rootfs_parent: str | None = None  # the image's top layer (chain id), with `image`
    # Set in PENDING by the secrets hook and kept in memory only: never in the agent's state or a report.
    secret_environment: dict[str, str] = field(default_factory=dict, repr=False)
    log_secret_options: dict[str, str] = field(default_factory=dict, repr=False)
    registry_credentials: Any = field(default=None, repr=False)  # execution.retrieval.RegistryCredentials
    progress: ContainerProgress = field(default_factory=ContainerProgress)
    created: bool = False
    pid: int = 0
    # Epoch seconds, for the task metadata endpoint (CreatedAt, StartedAt, FinishedAt).
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None


class AttachmentState:
    """The task ENI's attachment as ECS shows it (status and name/value details)."""

    def __init__(self, attachment_id: str, status: str = "PRECREATED",
                 details: list[dict[str, str]] | None = None) -> None:
        self.attachment_id, self.status = attachment_id, status
        self.details: list[dict[str, str]] = details or []


class TaskContext(Protocol):
    """What a hook sees of its task (the runner implements it)."""

    @property
    def task_id(self) -> str: ...

    @property
    def assignment(self) -> TaskAssignment: ...

    @property
    def platform(self) -> PlatformVersion: ...

    @property
    def containers(self) -> dict[str, ContainerRun]: ...

    @property
    def attachment(self) -> AttachmentState: ...

    @property
    def stop_wanted(self) -> bool:
        """Desired status is STOPPED: long work (a pull, a mount retried) gives up."""
        ...

    def set_connectivity(self, at: float) -> None: ...

    def report(self) -> TaskReport:
        """What the agent knows of the task now (the snapshot it reports)."""
        ...

    def set_pull_times(self, started: float | None, stopped: float | None) -> None: ...

    def set_health(self, container: ContainerRun, status: str) -> None:
        """A container's health changed: recorded, reported, and dependsOn HEALTHY re-evaluated."""
        ...

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` in the task's own TaskGroup: it ends, at the latest, when the task stops."""
        ...


class TaskNetworking(Protocol):
    """The VPCs on this host (fargo.agent.vpc_networks.VpcNetworks)."""

    async def attach(self, task_id: str, eni: EniPlan, mtu: int) -> None: ...

    async def detach(self, task_id: str, eni: EniPlan) -> None: ...


class TaskMetadataService(Protocol):
    """The agent's metadata server at 169.254.170.2 (fargo.agent.metadata.server.MetadataServer)."""

    credentials: Any  # fargo.agent.metadata.credentials.TaskCredentials

    def register(self, task: Any) -> None: ...  # a MetadataTask

    def unregister(self, task_id: str) -> None: ...


class HostFacilities(Protocol):
    """What hooks need of the agent's host: paths, containerd, the VPCs' routers, the metadata server."""

    runtime: Containerd
    region: str
    network_prefix: str
    networks: TaskNetworking
    metadata: TaskMetadataService
    credentials_key: bytes  # derives task credentials ids (stable across agent restarts)
    data_dir: Path
    efs_root: Path  # each EFS file system is the directory <efs_root>/<fs-id> (`fargo up --efs-root`)
    account_id: str
    edge_address: tuple[str, int]  # Fargo's edge port (its AWS APIs and registry), in the host namespace
    edge_hosts: frozenset[str]  # the `host:port` names of the edge, as image references name its registry
    insecure_registries: frozenset[str]  # registries pulled from over plain HTTP (HOST or HOST:PORT)

    def task_dir(self, task_id: str) -> Path: ...

    def log_path(self, task_id: str, container_name: str) -> Path: ...

    async def containerd_back(self) -> None: ...

    def oom_seen(self, runtime_id: str) -> bool: ...


def resumed_past_pending(task: TaskContext) -> bool:
    """The task is being picked up after an agent restart with its containers made already: PENDING's work
    (pulls, secrets) was done by the previous agent and must not be redone or fail the task now."""
    return task.report().known_status in ("ACTIVATING", "RUNNING")


class TaskHook:
    """A feature around a task. Subclasses override what they need; every method defaults to nothing."""

    name = "hook"
    phase = HookPhase.PROVISIONING

    def __init__(self, host: HostFacilities) -> None:
        self.host = host

    async def prestart(self, task: TaskContext) -> None: ...

    def contribute(self, task: TaskContext, container: ContainerRun, spec: ContainerSpecContribution) -> None: ...

    async def container_started(self, task: TaskContext, container: ContainerRun) -> None: ...

    async def container_exited(self, task: TaskContext, container: ContainerRun) -> None: ...

    async def poststart(self, task: TaskContext) -> None: ...

    async def stop(self, task: TaskContext) -> None: ...


