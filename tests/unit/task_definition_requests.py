"""Builders for RegisterTaskDefinition requests shared by the task definition unit tests."""
from __future__ import annotations

from typing import Any

import pytest

from fargo.errors import ClientException
from fargo.control.task_definitions.registration import register_task_definition_document

Json = dict[str, Any]

ACCOUNT = "123456789012"
REGION = "eu-west-1"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole"


def container(name: str = "app", **settings: Any) -> Json:
    return {"name": name, "image": "busybox:latest", **settings}


def fargate_request(*containers: Json, **settings: Any) -> Json:
    """A minimal valid Fargate definition (0.25 vCPU / 512 MiB), changed by `settings`."""
    request: Json = {
        "family": "web",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": list(containers) or [container()],
    }
    request.update(settings)
    return {key: value for key, value in request.items() if value is not None}


def ec2_request(*containers: Json, **settings: Any) -> Json:
    request: Json = {"family": "web", "containerDefinitions": list(containers) or [container(memory=128)]}
    request.update(settings)
    return {key: value for key, value in request.items() if value is not None}


def register(request: Json, revision: int = 1) -> Json:
    return register_task_definition_document(
        request, family_revision=revision, account_id=ACCOUNT, region=REGION,
        registered_at=1_700_000_000.25, registered_by=f"arn:aws:iam::{ACCOUNT}:root",
    )


def refusal(request: Json) -> str:
    """The ClientException message registering `request` gives."""
    with pytest.raises(ClientException) as caught:
        register(request)
    assert caught.value.code == "ClientException" and caught.value.status == 400
    return caught.value.message
