"""Every EC2 VPC error text (and the ECS awsvpcConfiguration ones), in one place.

Marks: AWS = seen in a real response (shared/reference/vpc-and-efs.md part A, or the public issue named);
MOTO = moto's wording, not confirmed against AWS; RECALLED = AWS's wording as users quote it, no citable
source at hand; OWN = Fargo's, in AWS's style, because AWS's wording is not public.
"""
from __future__ import annotations

from collections.abc import Sequence

# --- request-level --------------------------------------------------------------------------------
DRY_RUN = "Request would have succeeded, but DryRun flag is set."  # AWS


def missing_parameter(name: str) -> str:  # MOTO
    return f"The request must contain the parameter {name}"


MISSING_GROUP_NAME_OR_ID = "The request must contain the parameter groupName or groupId"  # RECALLED


def invalid_filter(name: str) -> str:  # AWS (aws/aws-cli#7225)
    return f"The filter '{name}' is invalid"


FILTER_VALUE_TOO_LONG = "The maximum length for a filter value is 255 characters"  # AWS (amazon.aws#2393)
TOO_MANY_FILTER_VALUES = "The maximum number of filter values specified on a single call is 200"  # RECALLED


def max_results_out_of_range(value: int) -> str:  # OWN
    return f"Value ( {value} ) for parameter maxResults is invalid. Parameter must be between 5 and 1000."


def ids_with_max_results(ids_parameter: str) -> str:  # RECALLED (the DescribeInstances form)
    return f"The parameter {ids_parameter} cannot be used with the parameter maxResults"


INVALID_NEXT_TOKEN = "The specified next token is not valid."  # OWN


def invalid_id(resource_id: str) -> str:  # AWS (pulumi/pulumi-awsx#187)
    return f"The ID '{resource_id}' is not valid"


# --- not found --------------------------------------------------------------------------------------
def vpc_not_found(vpc_id: str) -> str:  # AWS (no period)
    return f"The vpc ID '{vpc_id}' does not exist"


def subnet_not_found(subnet_id: str) -> str:  # AWS
    return f"The subnet ID '{subnet_id}' does not exist"


def group_not_found(group: str) -> str:  # AWS
    return f"The security group '{group}' does not exist"


def group_not_found_in_vpc(group: str, vpc_id: str) -> str:  # AWS
    return f"The security group '{group}' does not exist in VPC '{vpc_id}'"


def group_not_found_in_default_vpc(name: str, vpc_id: str) -> str:  # AWS
    return f"The security group '{name}' does not exist in default VPC '{vpc_id}'"


NO_DEFAULT_VPC = ("No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")  # AWS


def rule_not_found(rule_id: str) -> str:  # MOTO
    return f"The security group rule ID '{rule_id}' does not exist"


def network_interface_not_found(eni_id: str) -> str:  # RECALLED (Kubernetes CNI logs quote it often)
    return f"The networkInterface ID '{eni_id}' does not exist"


def prefix_list_not_found(prefix_list_id: str) -> str:  # OWN
    return f"The prefix list ID '{prefix_list_id}' does not exist"


# --- VPCs and subnets -------------------------------------------------------------------------------
def not_a_cidr(value: str, parameter: str = "cidrBlock") -> str:  # MOTO
    return f"Value ({value}) for parameter {parameter} is invalid. This is not a valid CIDR block."


def cidr_invalid(cidr: str) -> str:  # AWS (InvalidVpc.Range and InvalidSubnet.Range alike)
    return f"The CIDR '{cidr}' is invalid."


def subnet_conflict(cidr: str) -> str:  # MOTO (punctuation unverified)
    return f"The CIDR '{cidr}' conflicts with another subnet"


def bad_availability_zone(zone: str, zones: Sequence[str]) -> str:  # MOTO
    return (f"Value ({zone}) for parameter availabilityZone is invalid. Subnets can currently only be created in "
            f"the following availability zones: {', '.join(zones)}.")


def bad_availability_zone_id(zone_id: str, zone_ids: Sequence[str]) -> str:  # OWN, after the one above
    return (f"Value ({zone_id}) for parameter availabilityZoneId is invalid. Subnets can currently only be created "
            f"in the following availability zone ids: {', '.join(zone_ids)}.")


ZONE_AND_ZONE_ID = "The parameter availabilityZone cannot be used with the parameter availabilityZoneId"  # OWN


def bad_tenancy(value: str) -> str:  # OWN
    return f"Value ({value}) for parameter instanceTenancy is invalid. Valid values are default and dedicated."


IPV4_ONLY = "Fargo VPCs and subnets are IPv4 only: IPv6 CIDR blocks and IPAM pools are not supported."  # OWN
OUTPOSTS_UNSUPPORTED = "Fargo has no Outposts: OutpostArn is not supported."  # OWN


def vpc_has_dependencies(vpc_id: str) -> str:  # AWS
    return f"The vpc '{vpc_id}' has dependencies and cannot be deleted."


def subnet_has_dependencies(subnet_id: str) -> str:  # AWS
    return f"The subnet '{subnet_id}' has dependencies and cannot be deleted."


# --- security groups --------------------------------------------------------------------------------
def group_duplicate(name: str, vpc_id: str) -> str:  # AWS
    return f"The security group '{name}' already exists for VPC '{vpc_id}'"


def group_name_sg_prefix(name: str) -> str:  # AWS
    return f"Value ({name}) for parameter GroupName is invalid. Group names may not be in the format sg-*."


def not_ascii(value: str, parameter: str) -> str:  # AWS (psd401/aistudio#1049, for GroupDescription)
    return f"Value ({value}) for parameter {parameter} is invalid. Character sets beyond ASCII are not supported."


def bad_group_characters(value: str, parameter: str) -> str:  # OWN
    return (f"Value ({value}) for parameter {parameter} is invalid. Valid characters are a-z, A-Z, 0-9, spaces, "
            "and ._-:/()#,@[]+=&;{}!$*")


def too_long(value: str, parameter: str, limit: int = 255) -> str:  # OWN
    return f"Value ({value}) for parameter {parameter} is invalid. Length exceeds the maximum of {limit}."


def group_has_dependent_object(group_id: str) -> str:  # AWS
    return f"resource {group_id} has a dependent object"


def default_group_cannot_be_deleted(group_id: str) -> str:  # AWS (medium confidence)
    return f'the specified group: "{group_id}" name: "default" cannot be deleted by a user'


# --- rules --------------------------------------------------------------------------------------------
def unknown_protocol(protocol: str) -> str:  # AWS (hashicorp/terraform-provider-aws#1793)
    return f"Invalid value '{protocol}' for IP protocol. Unknown protocol."


PROTOCOL_REQUIRED = ("Invalid value 'null' for protocol. VPC security group rules must specify protocols "
                     "explicitly.")  # AWS (nanovms/ops#735)
TCP_UDP_PORTS_REQUIRED = "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange."  # AWS
ICMP_PORTS_REQUIRED = "Invalid value 'Must specify both from and to ports with ICMP.' for portRange."  # AWS


def port_out_of_range(port: int) -> str:  # AWS (boto/boto3#336)
    return f"TCP/UDP port ({port}) out of range"


def port_range_reversed(from_port: int, to_port: int) -> str:  # OWN
    return f"Invalid TCP/UDP port range: from port {from_port} is greater than to port {to_port}."


def icmp_type_out_of_range(value: int) -> str:  # OWN, after the TCP/UDP one
    return f"ICMP type ({value}) out of range"


def icmp_code_out_of_range(value: int) -> str:  # OWN, after the TCP/UDP one
    return f"ICMP code ({value}) out of range"


def cidr_malformed(cidr: str) -> str:  # AWS (aws/aws-cli#2428)
    return f"CIDR block {cidr} is malformed"


BAD_RULE_DESCRIPTION = ("Invalid rule description. Valid descriptions are strings less than 256 characters from the "
                        "following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*")  # RECALLED
SAME_PERMISSION_TWICE = "The same permission must not appear multiple times"  # AWS (input-output-hk/bitte#24)
NO_RULE_SOURCE = ("Each permission must name at least one source or destination: IpRanges, Ipv6Ranges, "
                  "UserIdGroupPairs or PrefixListIds.")  # OWN
PERMISSIONS_AND_SHORTHAND = ("The parameter ipPermissions cannot be used with the parameters ipProtocol, fromPort, "
                             "toPort, cidrIp or sourceSecurityGroupName")  # OWN
RULE_IDS_AND_PERMISSIONS = ("The parameter securityGroupRuleIds cannot be used with the parameters ipPermissions, "
                            "ipProtocol, fromPort, toPort, cidrIp or sourceSecurityGroupName")  # OWN
NOTHING_TO_AUTHORIZE = "The request must contain the parameter ipPermissions"  # OWN, after MissingParameter's form
RULE_NOT_FOUND = "The specified rule does not exist in this security group"  # AWS
RULE_LIMIT = "The maximum number of rules per security group has been reached."  # MOTO


def rule_duplicate(peer: str, protocol: str, from_port: int, to_port: int) -> str:
    # AWS for TCP (ansible/ansible#19759); the UDP/ICMP/ALL renderings are unverified.
    if protocol == "-1":
        return f'the specified rule "peer: {peer}, ALL, ALLOW" already exists'
    return (f'the specified rule "peer: {peer}, {protocol.upper()}, from port: {from_port}, to port: {to_port}, '
            'ALLOW" already exists')


# --- tags ---------------------------------------------------------------------------------------------
def tag_key_reserved(key: str) -> str:  # AWS
    return f"Value ( {key} ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use"


def tag_key_empty() -> str:  # AWS (aws/aws-cli#3283)
    return "Value (  ) for parameter Tag key is invalid. Tag key cannot be null or empty."


def tag_key_too_long(key: str) -> str:  # OWN
    return f"Value ( {key} ) for parameter key is invalid. Tag keys may be at most 128 characters long."


def tag_value_too_long(value: str) -> str:  # OWN
    return f"Value ( {value} ) for parameter value is invalid. Tag values may be at most 256 characters long."


TAG_LIMIT = "The maximum number of Tags for a resource has been reached."  # OWN


def not_taggable_here(resource_type: str) -> str:  # RECALLED
    return f"'{resource_type}' is not a valid taggable resource type for this operation."


# --- ECS RunTask/CreateService awsvpcConfiguration (InvalidParameterException) -------------------------
NETWORK_CONFIGURATION_REQUIRED = "Network Configuration must be provided when networkMode 'awsvpc' is specified."  # AWS
SUBNETS_EMPTY = "subnets can not be empty."  # AWS
TOO_MANY_SUBNETS = "subnets can have at most 16 items."  # OWN (limit AWS, wording unverified)
SUBNETS_IN_SEVERAL_VPCS = "Subnets must all be in the same VPC."  # OWN
TOO_MANY_SECURITY_GROUPS = "securityGroups can have at most 5 items."  # OWN (limit AWS, wording unverified)
BAD_ASSIGN_PUBLIC_IP = "assignPublicIp must be ENABLED or DISABLED."  # OWN


def subnets_not_found(subnet_ids: Sequence[str]) -> str:  # AWS
    return (f"Error retrieving subnet information for [{', '.join(subnet_ids)}]: The subnet ID '{subnet_ids[0]}' "
            "does not exist (ErrorCode: InvalidSubnetID.NotFound)")


def security_groups_not_found(group_ids: Sequence[str]) -> str:  # MOTO
    return (f"Error retrieving security group information for [{', '.join(group_ids)}]: The security group "
            f"'{group_ids[0]}' does not exist (ErrorCode: InvalidGroup.NotFound)")


def group_and_subnet_in_different_vpcs(group_id: str, subnet_id: str) -> str:  # AWS (cloudfoundry/bosh#650)
    return f"Security group {group_id} and subnet {subnet_id} belong to different networks."
