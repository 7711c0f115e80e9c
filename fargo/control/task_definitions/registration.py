"""RegisterTaskDefinition as pure logic: validate a request and build the stored TaskDefinition.

The API layer has already checked the request against botocore's model (types, required members,
enums); this module applies ECS's own rules, Fargate's when the definition requires FARGATE.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fargo.errors import ClientException
from fargo.control.task_definitions import rules as rules
from fargo.control.task_definitions.attributes import required_attributes
from fargo.control.task_definitions.document import task_definition_document
from fargo.protocol.container_settings import (
    EffectiveContainerSettings,
    HealthCheckSettings,
    effective_container_settings,
    effective_health_check,
    task_network_mode,
)
from fargo.control.task_definitions.fargate import fargate_incompatibility
from fargo.control.task_definitions.platform import check_platform_supports
from fargo.control.task_definitions.references import (
    TaskDefinitionArn,
    parse_task_definition_arn,
    parse_task_definition_reference,
    task_definition_arn,
)
from fargo.control.task_definitions.sizes import parse_task_cpu, parse_task_memory, task_size_supported

Json = dict[str, Any]

__all__ = [
    "EffectiveContainerSettings",
    "HealthCheckSettings",
    "TaskDefinitionArn",
    "check_platform_supports",
    "compatibilities_of",
    "effective_container_settings",
    "effective_health_check",
    "parse_task_definition_arn",
    "parse_task_definition_reference",
    "register_task_definition_document",
    "task_definition_arn",
    "task_network_mode",
    "task_size_supported",
    "validate_task_definition",
]


@dataclass(frozen=True)
class _Validated:
    cpu: int | None  # task cpu units
    memory: int | None  # task memory, MiB
    compatibilities: list[str]


def _validate(request: Json) -> _Validated:
    rules.check_family(request["family"])
    containers = request["containerDefinitions"]
    rules.check_container_names(containers)
    cpu = parse_task_cpu(request["cpu"]) if request.get("cpu") is not None else None
    memory = parse_task_memory(request["memory"]) if request.get("memory") is not None else None
    rules.check_volume_types(request.get("volumes") or [])
    fargate_problem = fargate_incompatibility(request, cpu, memory)
    # Fargate's messages come before the generic ones for a definition that requires FARGATE.
    if "FARGATE" in (request.get("requiresCompatibilities") or []) and fargate_problem is not None:
        raise ClientException(fargate_problem)
    rules.check_ephemeral_storage(request.get("ephemeralStorage"))
    volumes = request.get("volumes") or []
    rules.check_volumes(volumes)
    network_mode = task_network_mode(request)
    volume_names = {v["name"] for v in volumes}
    container_names = {c["name"] for c in containers}
    for container in containers:
        rules.check_container(container, network_mode=network_mode, task_memory=memory,
                              volume_names=volume_names, container_names=container_names,
                              has_execution_role=bool(request.get("executionRoleArn")))
    rules.check_dependencies(containers)
    rules.check_task_totals(containers, cpu, memory)
    return _Validated(cpu, memory, compatibilities_of(request, fargate_compatible=fargate_problem is None))


def validate_task_definition(request: Json) -> list[str]:
    """Raise ClientException for the first broken rule; return the definition's `compatibilities`."""
    return _validate(request).compatibilities


def compatibilities_of(request: Json, *, fargate_compatible: bool) -> list[str]:
    """ECS lists every launch type the definition can use, not only the required ones."""
    compatibilities = ["EC2"]
    if fargate_compatible:
        compatibilities.append("FARGATE")
    for required in request.get("requiresCompatibilities") or []:
        if required not in compatibilities and required != "FARGATE":
            compatibilities.append(required)
    return compatibilities


def register_task_definition_document(request: Json, *, family_revision: int, account_id: str, region: str,
                                      registered_at: float, registered_by: str | None) -> Json:
    """Validate a RegisterTaskDefinition request and return the TaskDefinition to store and return.

    `family_revision` is the revision this registration gets (the caller allocates it);
    `registered_at` is epoch seconds. Request `tags` are ignored here: the caller stores them.
    """
    validated = _validate(request)
    return task_definition_document(
        request,
        arn=task_definition_arn(region, account_id, request["family"], family_revision),
        revision=family_revision,
        cpu=validated.cpu,
        memory=validated.memory,
        requires_attributes=required_attributes(request),
        compatibilities=validated.compatibilities,
        registered_at=registered_at,
        registered_by=registered_by,
    )
