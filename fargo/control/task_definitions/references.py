"""Task definition names: families, ARNs and the `family[:revision]` / ARN references callers pass.

The one place that builds and reads `arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from fargo.errors import ClientException
from fargo.control.task_definitions import messages as msg

FAMILY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,255}")
_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):ecs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"task-definition/(?P<family>[^:/]+)(?::(?P<revision>[^:/]*))?"
)


@dataclass(frozen=True)
class TaskDefinitionArn:
    partition: str
    region: str
    account_id: str
    family: str
    revision: int | None


def is_valid_family(family: str) -> bool:
    return FAMILY_PATTERN.fullmatch(family) is not None


def task_definition_arn(region: str, account_id: str, family: str, revision: int) -> str:
    return f"arn:aws:ecs:{region}:{account_id}:task-definition/{family}:{revision}"


def _revision(text: str) -> int:
    # A revision is a positive decimal number; ":latest" is a common mistake AWS refuses.
    if not text.isdecimal() or int(text) < 1:
        raise ClientException(msg.invalid_revision(text))
    return int(text)


def _family(family: str, reference: str) -> str:
    if not is_valid_family(family):
        raise ClientException(msg.invalid_task_definition_reference(reference))
    return family


def parse_task_definition_arn(arn: str) -> TaskDefinitionArn:
    """Split a task definition ARN; the revision may be absent (then None)."""
    match = _ARN.fullmatch(arn)
    if match is None:
        raise ClientException(msg.invalid_task_definition_reference(arn))
    revision = match["revision"]
    return TaskDefinitionArn(
        partition=match["partition"],
        region=match["region"],
        account_id=match["account"],
        family=_family(match["family"], arn),
        revision=None if revision is None else _revision(revision),
    )


def parse_task_definition_reference(reference: str) -> tuple[str, int | None]:
    """`family`, `family:revision` or an ARN -> (family, revision or None for "latest ACTIVE")."""
    if reference.startswith("arn:"):
        parsed = parse_task_definition_arn(reference)
        return parsed.family, parsed.revision
    family, colon, revision = reference.partition(":")
    if not colon:
        return _family(family, reference), None
    return _family(family, reference), _revision(revision)
