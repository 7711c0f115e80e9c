"""The stored TaskDefinition reads like AWS's DescribeTaskDefinition output."""
from __future__ import annotations

import botocore.session
import pytest
from botocore.validate import ParamValidator

from tests.unit.task_definition_requests import (
    ACCOUNT,
    EXECUTION_ROLE,
    REGION,
    container,
    ec2_request,
    fargate_request,
    register,
)


@pytest.fixture(scope="module")
def task_definition_shape():  # type: ignore[no-untyped-def]
    return botocore.session.get_session().get_service_model("ecs").shape_for("TaskDefinition")


def _attribute_names(document: dict) -> list[str]:
    return [a["name"] for a in document["requiresAttributes"]]


def test_document_fits_botocores_task_definition_shape(task_definition_shape) -> None:  # type: ignore[no-untyped-def]
    app = container(portMappings=[{"containerPort": 80}], healthCheck={"command": ["CMD", "true"]},
                    logConfiguration={"logDriver": "awslogs", "options": {"awslogs-group": "g"}})
    document = register(fargate_request(app, executionRoleArn=EXECUTION_ROLE, ephemeralStorage={"sizeInGiB": 30},
                                        tags=[{"key": "team", "value": "a"}]))
    report = ParamValidator().validate(document, task_definition_shape)
    assert not report.has_errors(), report.generate_report()


def test_minimal_fargate_definition_is_stored_as_aws_returns_it() -> None:
    document = register(fargate_request(cpu="0.25 vCPU", memory="0.5GB"), revision=7)
    assert document == {
        "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:7",
        "containerDefinitions": [{
            "name": "app", "image": "busybox:latest", "cpu": 0, "portMappings": [], "essential": True,
            "environment": [], "mountPoints": [], "volumesFrom": [],
        }],
        "family": "web",
        "networkMode": "awsvpc",
        "revision": 7,
        "volumes": [],
        "status": "ACTIVE",
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"},
                               {"name": "ecs.capability.task-eni"}],
        "placementConstraints": [],
        "compatibilities": ["EC2", "FARGATE"],
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "registeredAt": 1_700_000_000.25,
        "registeredBy": f"arn:aws:iam::{ACCOUNT}:root",
        "enableFaultInjection": False,
    }
    assert list(document)[:3] == ["taskDefinitionArn", "containerDefinitions", "family"]


@pytest.mark.parametrize(("cpu", "memory", "stored"), [
    ("1 vCPU", "2 GB", ("1024", "2048")),
    ("1vcpu", "2GB", ("1024", "2048")),
    ("0.5 vCPU", "1gb", ("512", "1024")),
    ("2 VCPU", "4096", ("2048", "4096")),
])
def test_task_cpu_and_memory_are_stored_as_units_and_mib(cpu: str, memory: str, stored: tuple[str, str]) -> None:
    document = register(fargate_request(cpu=cpu, memory=memory))
    assert (document["cpu"], document["memory"]) == stored


def test_awsvpc_port_mappings_get_host_port_and_tcp() -> None:
    app = container(portMappings=[{"containerPort": 80}, {"containerPort": 53, "protocol": "udp"},
                                  {"containerPortRange": "9000-9010"}])
    mappings = register(fargate_request(app))["containerDefinitions"][0]["portMappings"]
    assert mappings == [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"},
                        {"containerPort": 53, "hostPort": 53, "protocol": "udp"},
                        {"protocol": "tcp", "containerPortRange": "9000-9010"}]


def test_bridge_port_mappings_keep_a_dynamic_host_port() -> None:
    app = container(memory=64, portMappings=[{"containerPort": 80}])
    mappings = register(ec2_request(app))["containerDefinitions"][0]["portMappings"]
    assert mappings == [{"containerPort": 80, "protocol": "tcp"}]


def test_health_check_defaults_are_filled_in() -> None:
    app = container(healthCheck={"command": ["CMD-SHELL", "true"], "startPeriod": 10})
    health_check = register(fargate_request(app))["containerDefinitions"][0]["healthCheck"]
    assert health_check == {"command": ["CMD-SHELL", "true"], "interval": 30, "timeout": 5, "retries": 3,
                            "startPeriod": 10}


def test_given_container_settings_are_kept_as_given() -> None:
    app = container(essential=False, cpu=128, environment=[{"name": "A", "value": "1"}], command=["sleep", "1"])
    essential = container("main")
    stored = register(fargate_request(essential, app))["containerDefinitions"][1]
    assert stored["essential"] is False and stored["cpu"] == 128 and stored["command"] == ["sleep", "1"]
    assert stored["environment"] == [{"name": "A", "value": "1"}]


def test_tags_are_not_part_of_the_document() -> None:
    assert "tags" not in register(fargate_request(tags=[{"key": "k", "value": "v"}]))


def test_optional_task_settings_appear_only_when_given() -> None:
    document = register(fargate_request())
    for absent in ("taskRoleArn", "executionRoleArn", "pidMode", "ipcMode", "ephemeralStorage", "runtimePlatform",
                   "proxyConfiguration"):
        assert absent not in document
    platform = {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"}
    document = register(fargate_request(runtimePlatform=platform, taskRoleArn="arn:aws:iam::1:role/t",
                                        ephemeralStorage={"sizeInGiB": 50}))
    assert document["runtimePlatform"] == platform and document["ephemeralStorage"] == {"sizeInGiB": 50}


def test_registered_by_is_left_out_when_unknown() -> None:
    from fargo.control.task_definitions.registration import register_task_definition_document

    document = register_task_definition_document(fargate_request(), family_revision=1, account_id=ACCOUNT,
                                                 region=REGION, registered_at=1.0, registered_by=None)
    assert "registeredBy" not in document


def test_request_is_not_modified() -> None:
    request = fargate_request(container(portMappings=[{"containerPort": 80}]))
    snapshot = repr(request)
    register(request)
    assert repr(request) == snapshot


# --- compatibilities --------------------------------------------------------------------------


def test_fargate_ready_definition_without_requires_compatibilities_is_fargate_compatible() -> None:
    document = register(fargate_request(requiresCompatibilities=None))
    assert document["compatibilities"] == ["EC2", "FARGATE"]
    assert "requiresCompatibilities" not in document


def test_bridge_definition_is_ec2_only() -> None:
    assert register(ec2_request())["compatibilities"] == ["EC2"]


def test_ec2_required_awsvpc_definition_with_fargate_size_is_also_fargate_compatible() -> None:
    assert register(fargate_request(requiresCompatibilities=["EC2"]))["compatibilities"] == ["EC2", "FARGATE"]


def test_external_requirement_is_listed_among_compatibilities() -> None:
    document = register(ec2_request(requiresCompatibilities=["EXTERNAL"]))
    assert document["compatibilities"] == ["EC2", "EXTERNAL"]


# --- requiresAttributes -------------------------------------------------------------------------


def test_awslogs_with_execution_role_requires_logging_attributes() -> None:
    app = container(logConfiguration={"logDriver": "awslogs",
                                      "options": {"awslogs-group": "g", "awslogs-create-group": "true"}})
    names = _attribute_names(register(fargate_request(app, executionRoleArn=EXECUTION_ROLE)))
    assert {"com.amazonaws.ecs.capability.logging-driver.awslogs", "ecs.capability.execution-role-awslogs",
            "com.amazonaws.ecs.capability.docker-remote-api.1.19",
            "com.amazonaws.ecs.capability.docker-remote-api.1.29"} <= set(names)


def test_ecr_image_task_role_secrets_and_health_check_require_their_attributes() -> None:
    app = container(image=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web:1",
                    healthCheck={"command": ["CMD", "true"]},
                    secrets=[{"name": "A", "valueFrom": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/a"},
                             {"name": "B", "valueFrom": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:b"}])
    names = set(_attribute_names(register(fargate_request(app, executionRoleArn=EXECUTION_ROLE,
                                                          taskRoleArn="arn:aws:iam::1:role/t"))))
    assert {"com.amazonaws.ecs.capability.ecr-auth", "ecs.capability.execution-role-ecr-pull",
            "com.amazonaws.ecs.capability.task-iam-role", "ecs.capability.container-health-check",
            "ecs.capability.secrets.ssm.environment-variables",
            "ecs.capability.secrets.asm.environment-variables"} <= names


def test_efs_volume_requires_efs_attributes() -> None:
    volume = {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "transitEncryption": "ENABLED"}}
    names = set(_attribute_names(register(fargate_request(volumes=[volume]))))
    assert {"ecs.capability.efs", "ecs.capability.efsAuth", "com.amazonaws.ecs.capability.docker-remote-api.1.25"} <= names


def test_bridge_definition_does_not_require_task_eni() -> None:
    assert _attribute_names(register(ec2_request())) == ["com.amazonaws.ecs.capability.docker-remote-api.1.18"]
