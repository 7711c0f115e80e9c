"""What the metadata endpoint knows of a task at one moment: a plain snapshot the task's runner builds on
demand, so the server never reaches into the engine's live state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ContainerView:
    name: str
    docker_id: str  # the runtime id, as DescribeTasks shows it in runtimeId
    image: str
    image_id: str | None  # the digest that was run (sha256:...), once known
    container_arn: str
    desired_status: str  # RUNNING or STOPPED
    known_status: str  # PENDING, RUNNING or STOPPED (as ECS reports containers)
    exit_code: int | None
    cpu_units: int  # the container's cpu (0 when the definition has none)
    memory_mib: int | None  # the container's hard limit, else None
    created_at: float | None  # epoch seconds
    started_at: float | None
    finished_at: float | None
    log_driver: str | None
    log_options: dict[str, str] = field(default_factory=dict)
    health: dict[str, Any] | None = None  # {"status", "statusSince", "exitCode", "output"}, when it has a health check


@dataclass(frozen=True)
class EniView:
    ip: str
    mac: str
    subnet_cidr: str
    gateway_cidr: str  # e.g. "10.0.1.1/24", as SubnetGatewayIpv4Address shows it
    private_dns_name: str
    dns_servers: list[str]
    dns_search: list[str]


@dataclass(frozen=True)
class TaskView:
    task_arn: str
    cluster_arn: str
    family: str
    revision: str
    desired_status: str
    known_status: str
    cpu_vcpu: float
    memory_mib: int
    availability_zone: str
    platform_version: str  # "1.3.0" or "1.4.0": what the platform shows (AvailabilityZone, v4-only keys)
    eni: EniView
    containers: list[ContainerView]
    pull_started_at: float | None = None
    pull_stopped_at: float | None = None
    execution_stopped_at: float | None = None
    ephemeral_storage_mib: tuple[int, int] | None = None  # (utilized, reserved), 1.4.0 only
    tags: list[dict[str, str]] = field(default_factory=list)  # ECS tags {"key", "value"}
