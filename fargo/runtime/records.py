"""Plain results of the runtime client: images, containers, task states and task events.

These are all that code above `fargo.runtime` sees of containerd; no protobuf type leaks past the client.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

TaskStatus = Literal["unknown", "created", "running", "stopped", "paused", "pausing"]


@dataclass(frozen=True)
class Image:
    name: str  # fully qualified, e.g. docker.io/library/busybox:latest
    digest: str  # digest of the image's target (manifest or index)
    size: int  # compressed bytes: config + layers, as docker reports
    created: datetime | None
    pulled: bool = False  # from a registry (tasks resolve its tag again); False: imported from a tarball


@dataclass(frozen=True)
class ImageConfig:
    digest: str  # the image target digest this config belongs to
    entrypoint: list[str] | None
    cmd: list[str] | None
    env: list[str]
    working_dir: str
    user: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExitStatus:
    code: int  # 128+signal when killed by a signal, as containerd reports
    exited_at: datetime | None


@dataclass(frozen=True)
class TaskInfo:
    status: TaskStatus
    pid: int
    exit_status: ExitStatus | None  # set once the task has stopped


@dataclass(frozen=True)
class ContainerRecord:
    id: str
    labels: dict[str, str]
    image: str


@dataclass(frozen=True)
class TaskExited:
    container_id: str
    exit_code: int
    exited_at: datetime | None


@dataclass(frozen=True)
class TaskOomKilled:
    container_id: str


RuntimeEvent = TaskExited | TaskOomKilled


@dataclass(frozen=True)
class UserDatabase:
    """The image's /etc/passwd and /etc/group text (empty when the image has none)."""

    passwd: str
    group: str


@dataclass(frozen=True)
class TaskMetrics:
    """A task's cgroup counters (Tasks.Metrics, cgroup v1)."""

    memory_usage: int
    memory_max_usage: int
    memory_limit: int
    cpu_total_ns: int
    pids: int
    oom_kills: int
