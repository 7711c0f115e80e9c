"""Whether a task definition can run on Fargate, and if not, the message AWS gives first.

Used twice at registration: to refuse a definition that requires FARGATE, and to decide whether
"FARGATE" appears in `compatibilities` of one that does not. Platform-version limits are checked
at run time (`task_definition_platform`).
"""
from __future__ import annotations

import re
from typing import Any

from fargo.control.task_definitions import messages as msg
from fargo.control.task_definitions.sizes import fargate_size_exists

Json = dict[str, Any]

FARGATE_LOG_DRIVERS = frozenset(("awslogs", "splunk", "awsfirelens"))
FARGATE_MAX_TIMEOUT_SECONDS = 120
FARGATE_MIN_TIMEOUT_SECONDS = 2
FARGATE_MAX_NOFILE = 1048576
ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/")
# Fargate (PV 1.4.0) takes only namespaced sysctls: the network namespace and IPC [botocore SystemControl doc].
_NAMESPACED_SYSCTL = re.compile(
    r"^(net\..+|fs\.mqueue\..+|kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced))$"
)
# Container settings Fargate refuses when set to anything but their "off" value.
_UNSUPPORTED_CONTAINER_SETTINGS = (
    "privileged", "links", "disableNetworking", "dnsServers", "dnsSearchDomains", "extraHosts",
    "dockerSecurityOptions",
)
_UNSUPPORTED_LINUX_PARAMETERS = ("devices", "sharedMemorySize", "tmpfs", "maxSwap", "swappiness")


def _is_set(value: Any) -> bool:
    """False, empty lists and None all mean "not used" (the console sends `systemControls: []`)."""
    return value is not None and value is not False and value != [] and value != {}


def fargate_incompatibility(request: Json, task_cpu: int | None, task_memory: int | None) -> str | None:
    """The first reason `request` cannot run on Fargate, or None when it can."""
    return _task_incompatibility(request, task_cpu, task_memory) or next(
        (problem for c in request["containerDefinitions"] if (problem := _container_incompatibility(c, request))),
        None,
    )


def _task_incompatibility(request: Json, task_cpu: int | None, task_memory: int | None) -> str | None:
    if request.get("networkMode") != "awsvpc":
        return msg.FARGATE_NETWORK_MODE
    if task_cpu is None:
        return msg.FARGATE_TASK_CPU_REQUIRED
    if task_memory is None:
        return msg.FARGATE_TASK_MEMORY_REQUIRED
    if not fargate_size_exists(task_cpu, task_memory):
        return msg.FARGATE_NO_CONFIGURATION
    pid_mode = request.get("pidMode")
    if pid_mode not in (None, "task"):
        return msg.FARGATE_PID_MODE.format(mode=pid_mode)
    if request.get("ipcMode") is not None:
        return msg.FARGATE_IPC_MODE
    if _is_set(request.get("placementConstraints")):
        return msg.FARGATE_PLACEMENT_CONSTRAINTS
    if _is_set(request.get("inferenceAccelerators")):
        return msg.FARGATE_INFERENCE_ACCELERATORS
    for volume in request.get("volumes") or []:
        if (volume.get("host") or {}).get("sourcePath"):
            return msg.FARGATE_HOST_SOURCE_PATH
        if volume.get("dockerVolumeConfiguration") is not None:
            return msg.FARGATE_DOCKER_VOLUME
        if volume.get("fsxWindowsFileServerVolumeConfiguration") is not None:
            return msg.FARGATE_FSX_VOLUME
    return None


def _container_incompatibility(container: Json, request: Json) -> str | None:
    name = container["name"]
    for setting in _UNSUPPORTED_CONTAINER_SETTINGS:
        if _is_set(container.get(setting)):
            return msg.fargate_unsupported(name, setting)
    linux = container.get("linuxParameters") or {}
    for setting in _UNSUPPORTED_LINUX_PARAMETERS:
        if _is_set(linux.get(setting)):
            return msg.fargate_unsupported(name, f"linuxParameters.{setting}")
    if any(cap != "SYS_PTRACE" for cap in (linux.get("capabilities") or {}).get("add") or []):
        return msg.FARGATE_SYS_PTRACE_ONLY
    for requirement in container.get("resourceRequirements") or []:
        if requirement.get("type") in ("GPU", "InferenceAccelerator"):
            return msg.fargate_unsupported(name, f"resourceRequirements type {requirement['type']}")
    for control in container.get("systemControls") or []:
        namespace = control.get("namespace") or ""
        if not _NAMESPACED_SYSCTL.match(namespace):
            return msg.fargate_system_control(name, namespace)
    for field in ("startTimeout", "stopTimeout"):
        value = container.get(field)
        if value is not None and not FARGATE_MIN_TIMEOUT_SECONDS <= value <= FARGATE_MAX_TIMEOUT_SECONDS:
            return msg.fargate_timeout_range(name, field)
    for ulimit in container.get("ulimits") or []:
        if ulimit.get("name") == "nofile" and ulimit.get("hardLimit", 0) > FARGATE_MAX_NOFILE:
            return msg.fargate_nofile_limit(name)
    return _role_incompatibility(container, request)


def _role_incompatibility(container: Json, request: Json) -> str | None:
    """Fargate pulls private ECR images and writes awslogs with the execution role, so it must exist."""
    has_execution_role = bool(request.get("executionRoleArn"))
    log_driver = (container.get("logConfiguration") or {}).get("logDriver")
    if log_driver is not None and log_driver not in FARGATE_LOG_DRIVERS:
        return msg.fargate_log_driver(container["name"], log_driver)
    if log_driver == "awslogs" and not has_execution_role:
        return msg.FARGATE_AWSLOGS_EXECUTION_ROLE
    if ECR_IMAGE.match(container.get("image") or "") and not has_execution_role:
        return msg.FARGATE_ECR_EXECUTION_ROLE
    return None
