"""AWS error classes, defined once: the error code (`__type`), HTTP status and message.

Handlers and the control plane raise these; the wire layer (`fargo.api`) turns them into the wire format.
"""
from __future__ import annotations


class AwsError(Exception):
    """An error the caller sees. `code` is the AWS error name, `status` the HTTP status."""

    code = "InternalFailure"
    status = 400

    def __init__(self, message: str = "", **members: str) -> None:
        super().__init__(message)
        self.message = message
        # Modeled members beside the message (EFS's FileSystemId of FileSystemAlreadyExists, ...).
        self.members = members


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
ServiceNotFoundException = _error("ServiceNotFoundException")
ServiceNotActiveException = _error("ServiceNotActiveException")
ResourceInUseException = _error("ResourceInUseException")

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

# EFS (rest-json error codes; statuses as botocore's EFS model gives them, checked by a unit test).
BadRequest = _error("BadRequest")
FileSystemAlreadyExists = _error("FileSystemAlreadyExists", 409)
FileSystemNotFound = _error("FileSystemNotFound", 404)
FileSystemInUse = _error("FileSystemInUse", 409)
FileSystemLimitExceeded = _error("FileSystemLimitExceeded", 403)
IncorrectFileSystemLifeCycleState = _error("IncorrectFileSystemLifeCycleState", 409)
AccessPointAlreadyExists = _error("AccessPointAlreadyExists", 409)
AccessPointNotFound = _error("AccessPointNotFound", 404)
AccessPointLimitExceeded = _error("AccessPointLimitExceeded", 403)
MountTargetNotFound = _error("MountTargetNotFound", 404)
MountTargetConflict = _error("MountTargetConflict", 409)
IncorrectMountTargetState = _error("IncorrectMountTargetState", 409)
SubnetNotFound = _error("SubnetNotFound")
SecurityGroupNotFound = _error("SecurityGroupNotFound")
SecurityGroupLimitExceeded = _error("SecurityGroupLimitExceeded")
IpAddressInUse = _error("IpAddressInUse", 409)
NoFreeAddressesInSubnet = _error("NoFreeAddressesInSubnet", 409)
UnsupportedAvailabilityZone = _error("UnsupportedAvailabilityZone")
AvailabilityZonesMismatch = _error("AvailabilityZonesMismatch")
PolicyNotFound = _error("PolicyNotFound", 404)
InternalServerError = _error("InternalServerError", 500)

# Secrets Manager and SSM Parameter Store (all HTTP 400).
InvalidRequestException = _error("InvalidRequestException")
ResourceExistsException = _error("ResourceExistsException")
InvalidNextTokenException = _error("InvalidNextTokenException")
DecryptionFailure = _error("DecryptionFailure")
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

# ECR (names and statuses as botocore's "ecr" model gives them).
RepositoryNotFoundException = _error("RepositoryNotFoundException")
RepositoryAlreadyExistsException = _error("RepositoryAlreadyExistsException")
RepositoryNotEmptyException = _error("RepositoryNotEmptyException")
ImageNotFoundException = _error("ImageNotFoundException")
InvalidTagParameterException = _error("InvalidTagParameterException")
TooManyTagsException = _error("TooManyTagsException")
