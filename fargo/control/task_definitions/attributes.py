"""The `requiresAttributes` ECS derives from a task definition: the agent capabilities it needs.

Names and triggers follow real DescribeTaskDefinition output (awsvpc -> task-eni, awslogs -> the
logging-driver and docker-remote-api 1.19, ECR images -> ecr-auth, ...); AWS's order is not stable, ours is.
"""
from __future__ import annotations

from typing import Any

from fargo.control.task_definitions.fargate import ECR_IMAGE

Json = dict[str, Any]

_ECS = "com.amazonaws.ecs.capability."
_NEW = "ecs.capability."


def _docker_api(version: str) -> str:
    return f"{_ECS}docker-remote-api.{version}"


def required_attributes(definition: Json) -> list[Json]:
    """[{"name": ...}] for the stored document of `definition` (a validated request)."""
    names: list[str] = []

    def need(name: str) -> None:
        if name not in names:
            names.append(name)

    has_execution_role = bool(definition.get("executionRoleArn"))
    for container in definition["containerDefinitions"]:
        _container_attributes(container, has_execution_role, need)
    if definition.get("taskRoleArn"):
        need(f"{_ECS}task-iam-role")
    volumes = definition.get("volumes") or []
    if volumes:
        need(_docker_api("1.21"))  # named Docker volumes
    for volume in volumes:
        efs = volume.get("efsVolumeConfiguration")
        if efs is not None:
            need(f"{_NEW}efs")
            need(_docker_api("1.25"))
            if efs.get("authorizationConfig") or efs.get("transitEncryption") == "ENABLED":
                need(f"{_NEW}efsAuth")
    if definition.get("proxyConfiguration"):
        need(f"{_NEW}aws-appmesh")
    need(_docker_api("1.18"))  # every definition AWS returns lists it
    if definition.get("networkMode") == "awsvpc":
        need(f"{_NEW}task-eni")
    return [{"name": name} for name in names]


def _container_attributes(container: Json, has_execution_role: bool, need: Any) -> None:
    log = container.get("logConfiguration") or {}
    driver = log.get("logDriver")
    if driver is not None:
        need(f"{_ECS}logging-driver.{driver}")
    if driver == "awslogs":
        if has_execution_role:
            need(f"{_NEW}execution-role-awslogs")
        need(_docker_api("1.19"))
        if "awslogs-create-group" in (log.get("options") or {}):
            need(_docker_api("1.29"))  # the option arrived with Docker 17.05
    for secret in log.get("secretOptions") or []:
        need(f"{_NEW}secrets.{_secret_store(secret)}.bootstrap.log-driver")
    firelens = container.get("firelensConfiguration")
    if firelens:
        need(f"{_NEW}firelens.{firelens.get('type', 'fluentbit')}")
    if ECR_IMAGE.match(container.get("image") or ""):
        need(f"{_ECS}ecr-auth")
        if has_execution_role:
            need(f"{_NEW}execution-role-ecr-pull")
    if container.get("repositoryCredentials"):
        need(f"{_ECS}private-registry-authentication.secretsmanager")
    if container.get("memoryReservation") is not None:
        need(_docker_api("1.21"))
    if container.get("healthCheck"):
        need(f"{_NEW}container-health-check")
    for secret in container.get("secrets") or []:
        need(f"{_NEW}secrets.{_secret_store(secret)}.environment-variables")
    if container.get("environmentFiles"):
        need(f"{_NEW}env-files.s3")
    if container.get("dependsOn") or container.get("startTimeout") or container.get("stopTimeout"):
        need(f"{_NEW}container-ordering")
    if (container.get("linuxParameters") or {}).get("initProcessEnabled"):
        need(_docker_api("1.25"))


def _secret_store(secret: Json) -> str:
    """Secrets Manager ARNs say `secretsmanager`; everything else is an SSM parameter."""
    return "asm" if ":secretsmanager:" in (secret.get("valueFrom") or "") else "ssm"
