"""What a `valueFrom` names, read the way the ECS agent reads it (agent/taskresource/asmsecret, ssmsecret):
an ARN of service `secretsmanager` is a Secrets Manager secret, optionally with `:json-key:version-stage:
version-id`; anything else is an SSM parameter, by name (the task's Region) or by ARN (its own Region).
"""
from __future__ import annotations

from dataclasses import dataclass

from fargo.protocol import stop_reasons as reasons


class InvalidSecretReference(ValueError):
    """The valueFrom is a Secrets Manager ARN of the wrong shape."""


@dataclass(frozen=True)
class SecretsManagerRef:
    secret_id: str  # the whole ARN, or `arn:...:secret:<name-suffix>` when extras were given
    json_key: str = ""
    version_stage: str = ""
    version_id: str = ""


@dataclass(frozen=True)
class ParameterRef:
    name: str  # as sent to GetParameters: the name, or the whole ARN
    region: str


SecretRef = SecretsManagerRef | ParameterRef


def parse_value_from(value_from: str, task_region: str) -> SecretRef:
    parts = value_from.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "secretsmanager":
        return _secrets_manager(value_from, parts)
    if value_from.startswith("arn:") and len(parts) >= 6 and parts[2] == "ssm":
        return ParameterRef(value_from, parts[3] or task_region)
    return ParameterRef(value_from, task_region)


def _secrets_manager(value_from: str, parts: list[str]) -> SecretsManagerRef:
    # arn:aws:secretsmanager:region:account:secret:NAME[:json-key:version-stage:version-id]
    resource = parts[5:]
    if len(resource) == 2:
        return SecretsManagerRef(value_from)
    if len(resource) == 5:
        return SecretsManagerRef(":".join(parts[:7]), json_key=resource[2], version_stage=resource[3],
                                 version_id=resource[4])
    raise InvalidSecretReference(reasons.INVALID_SECRET_ARN)
