"""The JSON documents of the task metadata endpoint, v4 and v3, built from a TaskView: pure functions.

Key order follows Fargate's published v4 examples (Go marshals struct fields in order, and clients that diff
captures notice); v3 is the same document without the v4-only keys, its Networks cut to mode and addresses.
"""
from __future__ import annotations

from typing import Any

from fargo.agent.metadata.clock_drift import NOT_SYNCHRONIZED, SYNCHRONIZED, ClockDrift
from fargo.agent.metadata.task_view import ContainerView, EniView, TaskView
from fargo.agent.metadata.timestamps import rfc3339_nano, rfc3339_seconds

LAUNCH_TYPE = "FARGATE"
CONTAINER_TYPE = "NORMAL"
NETWORK_MODE = "awsvpc"
SNAPSHOTTER = "overlayfs"
# AvailabilityZone and EphemeralStorageMetrics appear from this platform version on.
_PV_WITH_ZONE = (1, 4, 0)


def container_v4(task: TaskView, container: ContainerView) -> dict[str, Any]:
    """`GET ${ECS_CONTAINER_METADATA_URI_V4}`: one container."""
    return _container(task, container, v4=True)


def container_v3(task: TaskView, container: ContainerView) -> dict[str, Any]:
    """`GET ${ECS_CONTAINER_METADATA_URI}`: one container, v3 shape."""
    return _container(task, container, v4=False)


def task_v4(task: TaskView, clock: ClockDrift | None = None) -> dict[str, Any]:
    """`GET ${ECS_CONTAINER_METADATA_URI_V4}/task`; ClockDrift only when the clock state is known."""
    return _task(task, v4=True, clock=clock, with_tags=False)


def task_with_tags_v4(task: TaskView, clock: ClockDrift | None = None) -> dict[str, Any]:
    """`GET .../taskWithTags`: the task document plus TaskTags (Fargate has no container instance tags)."""
    return _task(task, v4=True, clock=clock, with_tags=True)


def task_v3(task: TaskView) -> dict[str, Any]:
    """`GET ${ECS_CONTAINER_METADATA_URI}/task`."""
    return _task(task, v4=False, clock=None, with_tags=False)


def task_with_tags_v3(task: TaskView) -> dict[str, Any]:
    return _task(task, v4=False, clock=None, with_tags=True)


def shows_zone(platform_version: str) -> bool:
    """True from platform version 1.4.0 on ("LATEST" included)."""
    try:
        parts = tuple(int(part) for part in platform_version.split("."))
    except ValueError:
        return True
    return parts >= _PV_WITH_ZONE


def _task(task: TaskView, *, v4: bool, clock: ClockDrift | None, with_tags: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "Cluster": task.cluster_arn,
        "TaskARN": task.task_arn,
        "Family": task.family,
        "Revision": task.revision,
        "DesiredStatus": task.desired_status,
        "KnownStatus": task.known_status,
        "Limits": {"CPU": float(task.cpu_vcpu), "Memory": task.memory_mib},
    }
    _put_time(document, "PullStartedAt", task.pull_started_at)
    _put_time(document, "PullStoppedAt", task.pull_stopped_at)
    _put_time(document, "ExecutionStoppedAt", task.execution_stopped_at)
    newer_platform = shows_zone(task.platform_version)
    if newer_platform and task.availability_zone:
        document["AvailabilityZone"] = task.availability_zone
    if with_tags and task.tags:
        document["TaskTags"] = {tag["key"]: tag["value"] for tag in task.tags}
    containers = [_container(task, container, v4=v4) for container in task.containers]
    if containers:
        document["Containers"] = containers
    document["LaunchType"] = LAUNCH_TYPE
    if v4 and clock is not None:
        document["ClockDrift"] = {
            "ClockErrorBound": clock.error_bound_ms,
            "ReferenceTimestamp": rfc3339_seconds(clock.reference_time),
            "ClockSynchronizationStatus": SYNCHRONIZED if clock.synchronized else NOT_SYNCHRONIZED,
        }
    if v4 and newer_platform and task.ephemeral_storage_mib is not None:
        utilized, reserved = task.ephemeral_storage_mib
        document["EphemeralStorageMetrics"] = {"Utilized": utilized, "Reserved": reserved}
    return document


def _container(task: TaskView, container: ContainerView, *, v4: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "DockerId": container.docker_id,
        "Name": container.name,
        "DockerName": container.name,  # Fargate names no Docker container of its own
        "Image": container.image,
    }
    if container.image_id:
        document["ImageID"] = container.image_id
    document["Labels"] = _labels(task, container)
    document["DesiredStatus"] = container.desired_status
    document["KnownStatus"] = container.known_status
    if container.exit_code is not None:
        document["ExitCode"] = container.exit_code
    limits: dict[str, int] = {"CPU": container.cpu_units}
    if container.memory_mib is not None:
        limits["Memory"] = container.memory_mib
    document["Limits"] = limits
    _put_time(document, "CreatedAt", container.created_at)
    _put_time(document, "StartedAt", container.started_at)
    _put_time(document, "FinishedAt", container.finished_at)
    document["Type"] = CONTAINER_TYPE
    document["Networks"] = [_network_v4(task.eni) if v4 else _network_v3(task.eni)]
    if container.health is not None:
        document["Health"] = dict(container.health)
    document["ContainerARN"] = container.container_arn
    if container.log_options:
        document["LogOptions"] = dict(container.log_options)
    if container.log_driver:
        document["LogDriver"] = container.log_driver
    if v4:
        document["Snapshotter"] = SNAPSHOTTER
    return document


def _labels(task: TaskView, container: ContainerView) -> dict[str, str]:
    return {
        "com.amazonaws.ecs.cluster": task.cluster_arn,
        "com.amazonaws.ecs.container-name": container.name,
        "com.amazonaws.ecs.task-arn": task.task_arn,
        "com.amazonaws.ecs.task-definition-family": task.family,
        "com.amazonaws.ecs.task-definition-version": task.revision,
    }


def _network_v3(eni: EniView) -> dict[str, Any]:
    return {"NetworkMode": NETWORK_MODE, "IPv4Addresses": [eni.ip]}


def _network_v4(eni: EniView) -> dict[str, Any]:
    network = _network_v3(eni)
    network["AttachmentIndex"] = 0
    network["MACAddress"] = eni.mac
    network["IPv4SubnetCIDRBlock"] = eni.subnet_cidr
    # Go's omitempty drops empty lists and strings.
    if eni.dns_servers:
        network["DomainNameServers"] = list(eni.dns_servers)
    if eni.dns_search:
        network["DomainNameSearchList"] = list(eni.dns_search)
    if eni.private_dns_name:
        network["PrivateDNSName"] = eni.private_dns_name
    network["SubnetGatewayIpv4Address"] = eni.gateway_cidr
    return network


def _put_time(document: dict[str, Any], key: str, epoch: float | None) -> None:
    if epoch is not None:
        document[key] = rfc3339_nano(epoch)
