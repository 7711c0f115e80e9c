"""The stored TaskDefinition document: the request with AWS's defaults filled in, keys in model order.

DescribeTaskDefinition returns this document as it is (tags are kept apart by the caller).
"""
from __future__ import annotations

import copy
from typing import Any

Json = dict[str, Any]

# Member order of botocore's ECS shapes, so documents read like AWS's.
TASK_DEFINITION_KEYS = (
    "taskDefinitionArn", "containerDefinitions", "family", "taskRoleArn", "executionRoleArn", "networkMode",
    "revision", "volumes", "status", "requiresAttributes", "placementConstraints", "compatibilities",
    "runtimePlatform", "requiresCompatibilities", "cpu", "memory", "inferenceAccelerators", "pidMode", "ipcMode",
    "proxyConfiguration", "registeredAt", "deregisteredAt", "deleteRequestedAt", "registeredBy",
    "ephemeralStorage", "enableFaultInjection", "trustedExecutionConfiguration",
)
CONTAINER_KEYS = (
    "name", "image", "repositoryCredentials", "cpu", "memory", "memoryReservation", "links", "portMappings",
    "essential", "restartPolicy", "entryPoint", "command", "environment", "environmentFiles", "mountPoints",
    "volumesFrom", "linuxParameters", "secrets", "dependsOn", "startTimeout", "stopTimeout", "versionConsistency",
    "hostname", "user", "workingDirectory", "disableNetworking", "privileged", "readonlyRootFilesystem",
    "dnsServers", "dnsSearchDomains", "extraHosts", "dockerSecurityOptions", "interactive", "pseudoTerminal",
    "dockerLabels", "ulimits", "logConfiguration", "healthCheck", "systemControls", "resourceRequirements",
    "firelensConfiguration", "credentialSpecs",
)
# What RegisterTaskDefinition fills into every container definition.
CONTAINER_DEFAULTS: dict[str, Any] = {
    "cpu": 0,
    "portMappings": [],
    "essential": True,
    "environment": [],
    "mountPoints": [],
    "volumesFrom": [],
}
# Docker's health check defaults, which ECS echoes back; startPeriod stays absent when not given.
HEALTH_CHECK_DEFAULTS: dict[str, int] = {"interval": 30, "timeout": 5, "retries": 3}
_PORT_MAPPING_KEYS = ("containerPort", "hostPort", "protocol", "name", "appProtocol", "containerPortRange")
_EFS_KEYS = ("fileSystemId", "rootDirectory", "transitEncryption", "transitEncryptionPort", "authorizationConfig")


def _ordered(values: Json, order: tuple[str, ...]) -> Json:
    """`values` with known keys in `order` and unknown ones after, as given."""
    known = {key: values[key] for key in order if key in values}
    return known | {key: value for key, value in values.items() if key not in known}


def _port_mapping(mapping: Json, network_mode: str) -> Json:
    filled = dict(mapping)
    # awsvpc and host publish the container port itself; a range leaves hostPort empty.
    if network_mode in ("awsvpc", "host") and "hostPort" not in filled and "containerPort" in filled:
        filled["hostPort"] = filled["containerPort"]
    filled.setdefault("protocol", "tcp")
    return _ordered(filled, _PORT_MAPPING_KEYS)


def volume_document(volume: Json) -> Json:
    """A volume as ECS describes it: an EFS volume without rootDirectory mounts the file system's "/"."""
    filled = copy.deepcopy(volume)
    efs = filled.get("efsVolumeConfiguration")
    if efs is not None:
        filled["efsVolumeConfiguration"] = _ordered({"rootDirectory": "/"} | efs, _EFS_KEYS)
    return filled


def container_document(container: Json, network_mode: str) -> Json:
    filled = copy.deepcopy(CONTAINER_DEFAULTS) | copy.deepcopy(container)
    filled["portMappings"] = [_port_mapping(m, network_mode) for m in filled["portMappings"] or []]
    if filled.get("healthCheck") is not None:
        filled["healthCheck"] = _ordered(HEALTH_CHECK_DEFAULTS | filled["healthCheck"],
                                         ("command", "interval", "timeout", "retries", "startPeriod"))
    return _ordered(filled, CONTAINER_KEYS)


def task_definition_document(request: Json, *, arn: str, revision: int, cpu: int | None, memory: int | None,
                             requires_attributes: list[Json], compatibilities: list[str], registered_at: float,
                             registered_by: str | None) -> Json:
    """Assemble the stored document; `request` has already passed validation."""
    network_mode = request.get("networkMode", "bridge")
    document: Json = {key: copy.deepcopy(value) for key, value in request.items() if key != "tags"}
    document |= {
        "taskDefinitionArn": arn,
        "containerDefinitions": [container_document(c, network_mode) for c in request["containerDefinitions"]],
        "revision": revision,
        "volumes": [volume_document(v) for v in request.get("volumes") or []],
        "status": "ACTIVE",
        "requiresAttributes": requires_attributes,
        "placementConstraints": copy.deepcopy(request.get("placementConstraints") or []),
        "compatibilities": compatibilities,
        "registeredAt": registered_at,
        "enableFaultInjection": bool(request.get("enableFaultInjection", False)),
    }
    # Task cpu and memory are stored as unit/MiB strings whatever form the caller used.
    for key, value in (("cpu", cpu), ("memory", memory)):
        if value is not None:
            document[key] = str(value)
    if registered_by is not None:
        document["registeredBy"] = registered_by
    return _ordered(document, TASK_DEFINITION_KEYS)
