"""ECR's error classes (names and statuses as botocore's "ecr" model gives them); the texts are in `messages`.

ECR shares InvalidParameterException, LimitExceededException and ServerException with ECS (`fargo.errors`).
"""
from __future__ import annotations

from fargo.errors import AwsError


def _error(name: str, status: int = 400) -> type[AwsError]:
    return type(name, (AwsError,), {"code": name, "status": status})


RepositoryNotFoundException = _error("RepositoryNotFoundException")
RepositoryAlreadyExistsException = _error("RepositoryAlreadyExistsException")
RepositoryNotEmptyException = _error("RepositoryNotEmptyException")
ImageNotFoundException = _error("ImageNotFoundException")
InvalidTagParameterException = _error("InvalidTagParameterException")
TooManyTagsException = _error("TooManyTagsException")
