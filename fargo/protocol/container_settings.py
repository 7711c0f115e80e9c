"""The settings a stored task definition means when a field is absent: what the agent should apply.

The document keeps what AWS echoes; these helpers answer "what value is in force" (stop timeout 30 s,
health check 30/5/3/0, Fargate's nofile 65535, bridge network mode, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

DEFAULT_NETWORK_MODE = "bridge"
DEFAULT_STOP_TIMEOUT_SECONDS = 30
# Fargate's nofile when the definition sets none [botocore ContainerDefinition.ulimits doc].
FARGATE_DEFAULT_NOFILE = (65535, 65535)


@dataclass(frozen=True)
class HealthCheckSettings:
    command: tuple[str, ...]
    interval: int = 30
    timeout: int = 5
    retries: int = 3
    start_period: int = 0


@dataclass(frozen=True)
class EffectiveContainerSettings:
    name: str
    image: str
    essential: bool
    cpu: int
    memory: int | None  # hard limit (MiB)
    memory_reservation: int | None  # soft limit (MiB)
    stop_timeout: int
    start_timeout: int | None  # None: wait for the dependency as long as it takes
    health_check: HealthCheckSettings | None
    depends_on: tuple[tuple[str, str], ...]  # (container name, condition)
    ulimits: dict[str, tuple[int, int]]  # name -> (soft, hard)
    environment: dict[str, str]
    init_process_enabled: bool
    readonly_root_filesystem: bool


def task_network_mode(definition: Json) -> str:
    return definition.get("networkMode") or DEFAULT_NETWORK_MODE


def effective_health_check(container: Json) -> HealthCheckSettings | None:
    health_check = container.get("healthCheck")
    if not health_check:
        return None
    return HealthCheckSettings(
        command=tuple(health_check["command"]),
        interval=health_check.get("interval", 30),
        timeout=health_check.get("timeout", 5),
        retries=health_check.get("retries", 3),
        start_period=health_check.get("startPeriod", 0),
    )


def effective_container_settings(container: Json, *, fargate: bool = True) -> EffectiveContainerSettings:
    """What one container definition asks for, defaults applied."""
    ulimits = {u["name"]: (u["softLimit"], u["hardLimit"]) for u in container.get("ulimits") or []}
    if fargate:
        ulimits.setdefault("nofile", FARGATE_DEFAULT_NOFILE)
    linux = container.get("linuxParameters") or {}
    return EffectiveContainerSettings(
        name=container["name"],
        image=container["image"],
        essential=container.get("essential", True) is not False,
        cpu=container.get("cpu") or 0,
        memory=container.get("memory"),
        memory_reservation=container.get("memoryReservation"),
        stop_timeout=container.get("stopTimeout") or DEFAULT_STOP_TIMEOUT_SECONDS,
        start_timeout=container.get("startTimeout"),
        health_check=effective_health_check(container),
        depends_on=tuple((d["containerName"], d["condition"]) for d in container.get("dependsOn") or []),
        ulimits=ulimits,
        # Later entries win, as with Docker's --env.
        environment={e["name"]: e.get("value", "") for e in container.get("environment") or [] if "name" in e},
        init_process_enabled=bool(linux.get("initProcessEnabled")),
        readonly_root_filesystem=bool(container.get("readonlyRootFilesystem")),
    )
