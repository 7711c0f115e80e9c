"""AWS error classes, defined once: the error code (`__type`), HTTP status and message.

Handlers and the control plane raise these; the wire layer (`fargo.api`) turns them into the wire format.
"""
from __future__ import annotations


class AwsError(Exception):
    """An error the caller sees. `code` is the AWS error name, `status` the HTTP status."""

    code = "InternalFailure"
    status = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


def _error(name: str, status: int = 400) -> type[AwsError]:
    return type(name, (AwsError,), {"code": name, "status": status})


# Protocol-level errors (any service).
SerializationException = _error("SerializationException")
UnknownOperationException = _error("UnknownOperationException")
ValidationException = _error("ValidationException")
InvalidAction = _error("InvalidAction")
RequestEntityTooLarge = _error("RequestEntityTooLarge", 413)
ServerException = _error("ServerException", 500)

# ECS (names as in botocore's ECS model).
ClientException = _error("ClientException")
InvalidParameterException = _error("InvalidParameterException")
ClusterNotFoundException = _error("ClusterNotFoundException")
ClusterContainsTasksException = _error("ClusterContainsTasksException")
ClusterContainsServicesException = _error("ClusterContainsServicesException")
PlatformUnknownException = _error("PlatformUnknownException")
PlatformTaskDefinitionIncompatibilityException = _error("PlatformTaskDefinitionIncompatibilityException")
ResourceNotFoundException = _error("ResourceNotFoundException")
LimitExceededException = _error("LimitExceededException")
UnsupportedFeatureException = _error("UnsupportedFeatureException")
ConflictException = _error("ConflictException")

# EC2 (query protocol error codes).
InvalidParameterValue = _error("InvalidParameterValue")
InvalidVpcIDNotFound = _error("InvalidVpcID.NotFound")
InvalidSubnetIDNotFound = _error("InvalidSubnetID.NotFound")
InvalidGroupNotFound = _error("InvalidGroup.NotFound")
MissingParameter = _error("MissingParameter")
InvalidParameter = _error("InvalidParameter")
InvalidParameterCombination = _error("InvalidParameterCombination")
UnsupportedOperation = _error("UnsupportedOperation")
DryRunOperation = _error("DryRunOperation", 412)
InvalidID = _error("InvalidID")
FilterLimitExceeded = _error("FilterLimitExceeded")
TagLimitExceeded = _error("TagLimitExceeded")
DependencyViolation = _error("DependencyViolation")
CannotDelete = _error("CannotDelete")
InvalidVpcRange = _error("InvalidVpc.Range")
InvalidSubnetRange = _error("InvalidSubnet.Range")
InvalidSubnetConflict = _error("InvalidSubnet.Conflict")
InvalidGroupDuplicate = _error("InvalidGroup.Duplicate")
VPCIdNotSpecified = _error("VPCIdNotSpecified")
InvalidPermissionDuplicate = _error("InvalidPermission.Duplicate")
InvalidPermissionNotFound = _error("InvalidPermission.NotFound")
InvalidPermissionMalformed = _error("InvalidPermission.Malformed")
InvalidSecurityGroupRuleIdNotFound = _error("InvalidSecurityGroupRuleId.NotFound")
InvalidPrefixListIdNotFound = _error("InvalidPrefixListID.NotFound")
RulesPerSecurityGroupLimitExceeded = _error("RulesPerSecurityGroupLimitExceeded")
InvalidNetworkInterfaceIDNotFound = _error("InvalidNetworkInterfaceID.NotFound")
