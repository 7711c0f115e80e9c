"""The AWS error classes of Secrets Manager and SSM that `fargo.errors` does not have yet (all HTTP 400).

The ones it has (ResourceNotFoundException, InvalidParameterException, ValidationException,
LimitExceededException) are used from there; these belong beside them once the wire layer gathers them.
"""
from __future__ import annotations

from fargo.errors import AwsError


def _error(name: str, status: int = 400) -> type[AwsError]:
    return type(name, (AwsError,), {"code": name, "status": status})


# Secrets Manager
InvalidRequestException = _error("InvalidRequestException")
ResourceExistsException = _error("ResourceExistsException")
InvalidNextTokenException = _error("InvalidNextTokenException")
DecryptionFailure = _error("DecryptionFailure")

# SSM Parameter Store
ParameterNotFound = _error("ParameterNotFound")
ParameterVersionNotFound = _error("ParameterVersionNotFound")
ParameterAlreadyExists = _error("ParameterAlreadyExists")
ParameterPatternMismatchException = _error("ParameterPatternMismatchException")
InvalidAllowedPatternException = _error("InvalidAllowedPatternException")
HierarchyLevelLimitExceededException = _error("HierarchyLevelLimitExceededException")
AccessDeniedException = _error("AccessDeniedException")
InvalidFilterKey = _error("InvalidFilterKey")
InvalidFilterOption = _error("InvalidFilterOption")
InvalidFilterValue = _error("InvalidFilterValue")
InvalidNextToken = _error("InvalidNextToken")
InvalidResourceId = _error("InvalidResourceId")
InvalidResourceType = _error("InvalidResourceType")
TooManyTagsError = _error("TooManyTagsError")
