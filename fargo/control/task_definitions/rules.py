"""RegisterTaskDefinition rules that hold for every launch type.

Each check raises `ClientException` with the text from `task_definition_messages`; the Fargate-only
rules live in `task_definition_fargate`.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from fargo.errors import ClientException
from fargo.control.task_definitions import messages as msg
from fargo.control.task_definitions.references import is_valid_family

Json = dict[str, Any]

CONTAINER_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,255}")
LINUX_CAPABILITIES = frozenset(
    """ALL AUDIT_CONTROL AUDIT_WRITE BLOCK_SUSPEND CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID IPC_LOCK
    IPC_OWNER KILL LEASE LINUX_IMMUTABLE MAC_ADMIN MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE NET_BROADCAST
    NET_RAW SETFCAP SETGID SETPCAP SETUID SYS_ADMIN SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE SYS_PACCT SYS_PTRACE
    SYS_RAWIO SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG SYSLOG WAKE_ALARM""".split()
)
# (low, high) per health check field [botocore HealthCheck doc].
HEALTH_CHECK_RANGES: dict[str, tuple[int, int]] = {
    "interval": (5, 300),
    "timeout": (2, 60),
    "retries": (1, 10),
    "startPeriod": (0, 300),
}
MIN_CONTAINER_MEMORY_MIB = 6  # Docker 20.10 reserves 6 MiB per container.
EPHEMERAL_STORAGE_GIB = (21, 200)
# Conditions that wait for the dependency to exit: an essential dependency would stop the task instead.
EXIT_CONDITIONS = frozenset(("COMPLETE", "SUCCESS"))


def _fail(message: str) -> None:
    raise ClientException(message)


def is_essential(container: Json) -> bool:
    return container.get("essential", True) is not False


def check_family(family: str) -> None:
    if not is_valid_family(family):
        _fail(msg.INVALID_FAMILY.format(family=family))


def check_container_names(containers: list[Json]) -> None:
    if not containers:
        _fail(msg.NO_CONTAINERS)
    for container in containers:
        name = container.get("name")
        if not name:
            _fail(msg.CONTAINER_NAME_MISSING)
        if CONTAINER_NAME_PATTERN.fullmatch(name) is None:
            _fail(msg.invalid_container_name(name))
        if not container.get("image"):
            _fail(msg.CONTAINER_IMAGE_MISSING)
    for name, count in Counter(c["name"] for c in containers).items():
        if count > 1:
            _fail(msg.duplicate_container_name(name))
    if not any(is_essential(c) for c in containers):
        _fail(msg.NO_ESSENTIAL_CONTAINER)


def check_ephemeral_storage(ephemeral_storage: Json | None) -> None:
    if ephemeral_storage is None:
        return
    low, high = EPHEMERAL_STORAGE_GIB
    if not low <= ephemeral_storage.get("sizeInGiB", 0) <= high:
        _fail(msg.EPHEMERAL_STORAGE_RANGE)


# The members of a Volume that each configure one type of volume [botocore ECS Volume shape].
VOLUME_CONFIGURATION_TYPES = ("host", "dockerVolumeConfiguration", "efsVolumeConfiguration",
                              "fsxWindowsFileServerVolumeConfiguration")
EFS_SWITCHES = ("ENABLED", "DISABLED")
PORT_RANGE = (1, 65535)


def check_volume_types(volumes: list[Json]) -> None:
    """One configuration type per volume; checked before Fargate's rules (AWS answers it on Fargate too)."""
    for volume in volumes:
        # an empty `host` ({}) is how tools write "no host path": it configures nothing
        if sum(1 for key in VOLUME_CONFIGURATION_TYPES if volume.get(key) not in (None, {})) > 1:
            _fail(msg.ONE_VOLUME_CONFIGURATION_TYPE)


def check_volumes(volumes: list[Json]) -> None:
    for volume in volumes:
        if not volume.get("name"):
            _fail(msg.volume_name_missing())
    for name, count in Counter(v["name"] for v in volumes).items():
        if count > 1:
            _fail(msg.duplicate_volume(name))
    check_volume_types(volumes)
    for volume in volumes:
        efs = volume.get("efsVolumeConfiguration")
        if efs is not None:
            _check_efs(volume["name"], efs)


def _check_efs(volume: str, efs: Json) -> None:
    if not efs.get("fileSystemId"):
        _fail(msg.efs_file_system_id_missing(volume))
    authorization = efs.get("authorizationConfig") or {}
    switches = (("transitEncryption", efs.get("transitEncryption")), ("iam", authorization.get("iam")))
    for field, value in switches:
        if value is not None and value not in EFS_SWITCHES:
            _fail(msg.efs_invalid_value(volume, field, value, " or ".join(EFS_SWITCHES)))
    port = efs.get("transitEncryptionPort")
    low, high = PORT_RANGE
    if port is not None and not low <= port <= high:
        _fail(msg.efs_invalid_value(volume, "transitEncryptionPort", port, f"a port from {low} to {high}"))
    access_point = authorization.get("accessPointId")
    if access_point and efs.get("rootDirectory") not in (None, "", "/"):
        _fail(msg.EFS_ROOT_DIRECTORY_WITH_ACCESS_POINT)
    if (access_point or authorization.get("iam") == "ENABLED") and efs.get("transitEncryption") != "ENABLED":
        _fail(msg.efs_transit_encryption_required(volume))


def check_container(container: Json, *, network_mode: str, task_memory: int | None, volume_names: set[str],
                    container_names: set[str], has_execution_role: bool = False) -> None:
    """Everything about one container that does not depend on the launch type."""
    name = container["name"]
    # The agent fetches secrets and registry credentials with the execution role, so it must be given.
    log_secrets = (container.get("logConfiguration") or {}).get("secretOptions")
    if (container.get("secrets") or log_secrets) and not has_execution_role:
        _fail(msg.SECRETS_NEED_EXECUTION_ROLE)
    if container.get("repositoryCredentials") and not has_execution_role:
        _fail(msg.REPOSITORY_CREDENTIALS_NEED_EXECUTION_ROLE)
    _check_container_memory(container, task_memory)
    if container.get("cpu", 0) < 0:
        _fail(msg.container_cpu_negative(name))
    _check_port_mappings(name, container.get("portMappings") or [], network_mode)
    if network_mode == "awsvpc" and container.get("hostname"):
        _fail(msg.hostname_with_awsvpc(name))
    capabilities = (container.get("linuxParameters") or {}).get("capabilities") or {}
    for capability in [*(capabilities.get("add") or []), *(capabilities.get("drop") or [])]:
        if capability not in LINUX_CAPABILITIES:
            _fail(msg.unknown_capability(name, capability))
    if container.get("healthCheck") is not None:
        _check_health_check(name, container["healthCheck"])
    _check_ulimits(name, container.get("ulimits") or [])
    for mount in container.get("mountPoints") or []:
        if mount.get("sourceVolume") not in volume_names:
            _fail(msg.unknown_source_volume(name, str(mount.get("sourceVolume"))))
    for source in container.get("volumesFrom") or []:
        if source.get("sourceContainer") not in container_names:
            _fail(msg.unknown_source_container(name, str(source.get("sourceContainer"))))


def _check_container_memory(container: Json, task_memory: int | None) -> None:
    name = container["name"]
    memory = container.get("memory")
    reservation = container.get("memoryReservation")
    if task_memory is None and memory is None and reservation is None:
        _fail(msg.container_memory_missing(name))
    if memory is not None and memory < MIN_CONTAINER_MEMORY_MIB:
        _fail(msg.container_memory_too_small(name))
    if memory is not None and reservation is not None and reservation > memory:
        _fail(msg.container_reservation_above_memory(name))
    if task_memory is not None and memory is not None and memory > task_memory:
        _fail(msg.container_memory_above_task(name))
    if task_memory is not None and reservation is not None and reservation > task_memory:
        _fail(msg.container_memory_reservation_above_task(name))


def _check_port_mappings(name: str, mappings: list[Json], network_mode: str) -> None:
    for mapping in mappings:
        container_port = mapping.get("containerPort")
        if container_port is None and not mapping.get("containerPortRange"):
            _fail(msg.port_mapping_without_port(name))
        host_port = mapping.get("hostPort")
        if container_port is not None and not 1 <= container_port <= 65535:
            _fail(msg.port_out_of_range(name, container_port))
        # hostPort 0 asks bridge mode for a dynamic port.
        if host_port is not None and not 0 <= host_port <= 65535:
            _fail(msg.port_out_of_range(name, host_port))
        if network_mode in ("awsvpc", "host") and host_port is not None and host_port != container_port:
            _fail(msg.awsvpc_port_mismatch(network_mode))


def _check_health_check(name: str, health_check: Json) -> None:
    if not health_check.get("command"):
        _fail(msg.health_check_without_command(name))
    for field, (low, high) in HEALTH_CHECK_RANGES.items():
        value = health_check.get(field)
        if value is not None and not low <= value <= high:
            _fail(msg.health_check_range(name, field, low, high))


def _check_ulimits(name: str, ulimits: list[Json]) -> None:
    for ulimit, count in Counter(u.get("name") for u in ulimits).items():
        if count > 1:
            _fail(msg.duplicate_ulimit(name, str(ulimit)))
    for ulimit in ulimits:
        if ulimit.get("softLimit", 0) > ulimit.get("hardLimit", 0):
            _fail(msg.ulimit_soft_above_hard(name, str(ulimit.get("name"))))


def check_dependencies(containers: list[Json]) -> None:
    """dependsOn names existing, non-self containers, forms no cycle, and fits each condition."""
    by_name = {c["name"]: c for c in containers}
    for container in containers:
        name = container["name"]
        for dependency in container.get("dependsOn") or []:
            target = dependency.get("containerName")
            condition = dependency.get("condition")
            if target == name:
                _fail(msg.depends_on_itself(name))
            if target not in by_name:
                _fail(msg.depends_on_unknown(name, str(target)))
            if condition in EXIT_CONDITIONS and is_essential(by_name[target]):
                _fail(msg.depends_on_essential(name, target, condition))
            if condition == "HEALTHY" and not by_name[target].get("healthCheck"):
                _fail(msg.depends_on_healthy_without_check(name, target))
    cycle = _find_cycle({n: [d["containerName"] for d in c.get("dependsOn") or []] for n, c in by_name.items()})
    if cycle:
        _fail(msg.depends_on_cycle(cycle))


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path that starts and ends at the same container, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in edges:
        if start not in state and (found := visit(start)):
            return found
    return None


def check_task_totals(containers: Iterable[Json], task_cpu: int | None, task_memory: int | None) -> None:
    """Containers together must fit in the task's cpu and memory."""
    containers = list(containers)
    if task_cpu is not None:
        total_cpu = sum(c.get("cpu") or 0 for c in containers)
        if total_cpu > task_cpu:
            _fail(msg.containers_cpu_above_task(total_cpu, task_cpu))
    if task_memory is not None:
        # A container reserves its soft limit if it has one, else its hard limit.
        reserved = sum(c.get("memoryReservation") or c.get("memory") or 0 for c in containers)
        if reserved > task_memory:
            _fail(msg.containers_memory_above_task(reserved, task_memory))
