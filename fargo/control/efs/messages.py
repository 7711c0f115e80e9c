"""Every Amazon EFS error text, in one place.

Marks (as shared/reference/vpc-and-efs.md part B gives the sources): OBS = seen in a real AWS response (the
public issue named); MOTO = moto's wording, UNVERIFIED against AWS; OWN = Fargo's, in AWS's style, because
AWS's wording is not public (also UNVERIFIED).
"""
from __future__ import annotations

# --- file systems ----------------------------------------------------------------------------------


def file_system_already_exists(file_system_id: str, creation_token: str) -> str:  # OBS hashicorp/nomad#7352
    return f"File system '{file_system_id}' already exists with creation token '{creation_token}'"


def file_system_not_found(file_system_id: str) -> str:  # MOTO
    return f"File system '{file_system_id}' does not exist."


def file_system_in_use(file_system_id: str) -> str:  # OBS rebuy-de/aws-nuke#1203
    return (f"The file system '{file_system_id}' cannot be deleted because it has mount targets. "
            "You must delete the mount targets, and then try again.")


def file_system_not_available(file_system_id: str, state: str) -> str:  # OWN
    return f"File system '{file_system_id}' is in the '{state}' state; it must be 'available'."


FILE_SYSTEM_ID_AND_CREATION_TOKEN = (  # OWN (AWS takes one of the two, per its documentation)
    "Specify either a FileSystemId or a CreationToken, not both.")
PROVISIONED_THROUGHPUT_REQUIRED = (  # OWN
    "ProvisionedThroughputInMibps is required when ThroughputMode is 'provisioned'.")
PROVISIONED_THROUGHPUT_NOT_ALLOWED = (  # OWN
    "ProvisionedThroughputInMibps can be set only when ThroughputMode is 'provisioned'.")
KMS_KEY_WITHOUT_ENCRYPTION = "KmsKeyId can be specified only when Encrypted is true."  # OWN


def unsupported_availability_zone(zone: str) -> str:  # OWN
    return f"Availability Zone '{zone}' is not supported by this service."


# --- access points ---------------------------------------------------------------------------------


def access_point_not_found(access_point_id: str) -> str:  # MOTO
    return f"Access Point {access_point_id} does not exist."


def access_point_already_exists(client_token: str) -> str:  # OWN
    return f"An access point with client token '{client_token}' already exists."


def access_point_limit(file_system_id: str, limit: int) -> str:  # OWN
    return f"File system '{file_system_id}' has the maximum of {limit} access points."


ACCESS_POINT_ID_AND_FILE_SYSTEM_ID = (  # OWN (both given: BadRequest is inferred from the documentation)
    "Specify either an AccessPointId or a FileSystemId, not both.")


def bad_root_directory_path(path: str) -> str:  # OWN (the rule is botocore's Path pattern)
    return (f"Invalid RootDirectory Path '{path}'. Use '/' or up to 4 components of the form '/name' (at most "
            "100 characters), none starting with '.' or containing $ # < > ; | & ? { } ^ * ` or a newline.")


def bad_permissions(permissions: str) -> str:  # OWN (the rule is botocore's Permissions pattern)
    return f"Invalid CreationInfo Permissions '{permissions}'. Use 3 or 4 octal digits, such as 755."


def bad_posix_id(name: str, value: int) -> str:  # OWN
    return f"Invalid {name} {value}. POSIX ids are between 0 and 4294967295."


# --- mount targets ---------------------------------------------------------------------------------


def mount_target_not_found(mount_target_id: str) -> str:  # OWN
    return f"Mount target '{mount_target_id}' does not exist."


MOUNT_TARGET_IN_ZONE = "mount target already exists in this AZ"  # OBS hashicorp/terraform-provider-aws#2525
MOUNT_TARGET_OTHER_VPC = (  # MOTO
    "requested subnet for new mount target is not in the same VPC as existing mount targets")
DESCRIBE_MOUNT_TARGETS_NEEDS_ONE = (  # OWN (BadRequest is inferred from the documentation)
    "Specify one of FileSystemId, MountTargetId or AccessPointId.")
IPV4_ONLY = "Fargo's mount targets have IPv4 addresses only: IpAddressType must be IPV4_ONLY."  # OWN


def subnet_not_found(subnet_id: str) -> str:  # MOTO
    return f"The subnet ID '{subnet_id}' does not exist"


def security_group_not_found(group_id: str) -> str:  # MOTO
    return f"The SecurityGroup ID '{group_id}' does not exist"


def security_group_limit(limit: int) -> str:  # OWN
    return f"A mount target can have at most {limit} security groups."


def security_group_in_other_vpc(group_id: str, subnet_id: str) -> str:  # OBS for EC2 (cloudfoundry/bosh#650)
    return f"Security group {group_id} and subnet {subnet_id} belong to different networks."


SECURITY_GROUPS_REQUIRED = "SecurityGroups must name at least one security group."  # OWN


def ip_address_in_use(ip: str, subnet_id: str) -> str:  # OWN
    return f"IP address {ip} is already in use in subnet {subnet_id}."


def ip_address_not_in_subnet(ip: str, subnet_id: str) -> str:  # OWN
    return f"IP address {ip} is not an available address of subnet {subnet_id}."


def no_free_addresses(subnet_id: str) -> str:  # OWN
    return f"Subnet {subnet_id} has no free IP address for a mount target."


def availability_zones_mismatch(zone: str) -> str:  # OWN
    return (f"The file system is a One Zone file system in {zone}: its mount target must be in a subnet of "
            "that Availability Zone.")


def mount_target_not_available(mount_target_id: str, state: str) -> str:  # OWN
    return f"Mount target '{mount_target_id}' is in the '{state}' state; it must be 'available'."


# --- tags and paging -------------------------------------------------------------------------------


def reserved_tag_key(key: str) -> str:  # OWN
    return f"Tag key '{key}' is invalid: keys starting with 'aws:' are reserved for AWS use."


INVALID_MARKER = "The pagination token is not valid."  # OWN
