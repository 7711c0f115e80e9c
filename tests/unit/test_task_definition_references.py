"""Task definitions are named by family, family:revision or ARN, the way ECS reads them."""
from __future__ import annotations

import pytest

from fargo.errors import ClientException
from fargo.control.task_definitions.registration import (
    TaskDefinitionArn,
    parse_task_definition_arn,
    parse_task_definition_reference,
    task_definition_arn,
)


def test_arn_names_region_account_family_and_revision() -> None:
    assert task_definition_arn("us-east-1", "000000000000", "web", 3) == (
        "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"
    )


def test_arn_parses_back_into_its_parts() -> None:
    assert parse_task_definition_arn("arn:aws:ecs:us-east-1:000000000000:task-definition/web-app_2:12") == (
        TaskDefinitionArn("aws", "us-east-1", "000000000000", "web-app_2", 12)
    )


@pytest.mark.parametrize(("reference", "parsed"), [
    ("web", ("web", None)),
    ("web:4", ("web", 4)),
    ("arn:aws:ecs:us-east-1:000000000000:task-definition/web:4", ("web", 4)),
    ("arn:aws:ecs:us-east-1:000000000000:task-definition/web", ("web", None)),
])
def test_reference_gives_family_and_revision(reference: str, parsed: tuple[str, int | None]) -> None:
    assert parse_task_definition_reference(reference) == parsed


@pytest.mark.parametrize("revision", ["latest", "0", "-1", ""])
def test_reference_with_a_bad_revision_is_refused(revision: str) -> None:
    with pytest.raises(ClientException) as caught:
        parse_task_definition_reference(f"web:{revision}")
    assert caught.value.message == f"Invalid revision number. Number: {revision}"


@pytest.mark.parametrize("reference", ["web app", "", "a:b:c",
                                       "arn:aws:ecs:us-east-1:000000000000:cluster/default",
                                       "arn:aws:ecs:us-east-1:123:task-definition/web:1"])
def test_malformed_reference_is_refused(reference: str) -> None:
    with pytest.raises(ClientException) as caught:
        parse_task_definition_reference(reference)
    assert caught.value.message in (
        f"Invalid task definition '{reference}'. Use a family, family:revision or a task definition ARN.",
        "Invalid revision number. Number: b:c",
    )
