"""Every Secrets Manager and SSM Parameter Store error text, in one place. None carries a value.

Marks (sources as shared/reference/secrets-and-pulls.md §3-4 gives them): OBS = seen in a real AWS response
(the public issue named); MOTO = moto 5.2.1's wording, UNVERIFIED against AWS; OWN = Fargo's, in AWS's style,
because AWS's wording is not public (UNVERIFIED too). CORAL = AWS's generic validation wording.
"""
from __future__ import annotations

# --- generic validation (AWS's "1 validation error detected: ..." form, without the value) ---------------


def too_long(member: str, limit: int) -> str:  # CORAL (AWS leaves out sensitive values; we leave out all)
    return (f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {limit}")


def above_maximum(member: str, value: int, limit: int) -> str:  # CORAL
    return (f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
            f"Member must have value less than or equal to {limit}")


# --- Secrets Manager ------------------------------------------------------------------------------

SECRET_NOT_FOUND = "Secrets Manager can't find the specified secret."  # OBS aws/aws-secretsmanager-jdbc#22
MARKED_FOR_DELETION = (  # OBS external-secrets/kubernetes-external-secrets#114
    "You can't perform this operation on the secret because it was marked for deletion.")
SCHEDULED_FOR_DELETION = (  # OBS redpanda-data/console#1835
    "You can't create this secret because a secret with this name is already scheduled for deletion.")
INVALID_SECRET_NAME = (  # OBS smithy-lang/smithy-typescript#1546 (a ValidationException)
    "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
STRING_AND_BINARY = (  # MOTO
    "You can't specify both a binary secret value and a string secret value in the same secret.")
VALUE_REQUIRED = "You must provide either SecretString or SecretBinary."  # MOTO
STAGE_NOT_OF_VERSION = (  # MOTO
    "You provided a VersionStage that is not associated to the provided VersionId.")
RECOVERY_WINDOW_RANGE = (  # MOTO (moto says it checked this against AWS)
    "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
FORCE_AND_RECOVERY_WINDOW = (  # MOTO
    "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
INVALID_NEXT_TOKEN = "The NextToken value is invalid."  # OWN
DECRYPTION_FAILURE = (  # OWN (AWS's documentation words DecryptionFailure so; the exact reply is UNVERIFIED)
    "Secrets Manager can't decrypt the protected secret text using the provided KMS key.")
BAD_CLIENT_REQUEST_TOKEN = "ClientRequestToken must be 32-64 characters long."  # MOTO


def secret_exists(name: str) -> str:  # OBS getmoto/moto#9700 (real AWS output quoted there)
    return f"The operation failed because the secret {name} already exists."


def no_value_for_stage(stage: str) -> str:  # OBS aws/aws-sdk-js-v3#7701, boto/boto3#2794
    return f"Secrets Manager can't find the specified secret value for staging label: {stage}"


def no_value_for_version(version_id: str) -> str:  # MOTO
    return f"Secrets Manager can't find the specified secret value for VersionId: {version_id}"


def token_in_use(token: str, arn: str) -> str:  # MOTO (moto#9741 says validated against AWS)
    return (f"You can't use ClientRequestToken {token} because that value is already in use for a version of "
            f"secret {arn}.")


def reserved_tag_key(key: str) -> str:  # OWN
    return f"Invalid tag key {key}: keys starting with 'aws:' are reserved for AWS use."


# --- SSM Parameter Store --------------------------------------------------------------------------

PARAMETER_NOT_FOUND = ""  # OBS awslabs/aws-simple-cicd#10 (GetParameter; DeleteParameter's is UNVERIFIED)
PARAMETER_EXISTS = (  # OBS garystafford/emr-demo#1
    "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
NOT_FULLY_QUALIFIED = "Parameter name must be a fully qualified name."  # OBS terraform-provider-aws#7251
INVALID_PARAMETER_NAME = (  # OBS boto/boto3#1499, localstack/localstack#7712
    "Parameter name: can't be prefixed with \"ssm\" (case-insensitive). If formed as a path, it can consist of "
    "sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the "
    "following 3 symbols .-_")
INVALID_PATH = (  # OBS aws-samples/resource-autotagger#1
    "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward "
    "slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, "
    "numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not "
    "allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: "
    "/get/parameters2-/by1./path0_.")
HIERARCHY_TOO_DEEP = (  # OWN
    "A hierarchy can have a maximum of 15 levels. For more information, see Requirements and constraints for "
    "parameter names in the AWS Systems Manager User Guide.")
TYPE_REQUIRED = "A parameter type is required when you create a parameter."  # MOTO
EMPTY_VALUE = (  # MOTO (AWS's Coral text; the value is empty, so nothing is shown)
    "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length "
    "greater than or equal to 1.")
TAGS_WITH_OVERWRITE = (  # MOTO
    "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove "
    "overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or "
    "RemoveTagsFromResource.")
STANDARD_TOO_LARGE = (  # OWN
    "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger "
    "parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see "
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html")
NO_DOWNGRADE = (  # OWN (the rule is in AWS's user guide)
    "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the "
    "advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter "
    "and recreate it as a standard parameter.")
FILTERS_AND_PARAMETER_FILTERS = (  # MOTO
    "You can use either Filters or ParameterFilters in a single request.")
INVALID_NEXT_TOKEN_SSM = "The specified token is not valid."  # OWN
INVALID_RESOURCE_ID = "Invalid Resource Id"  # MOTO
INVALID_RESOURCE_TYPE = "Invalid Resource Type"  # MOTO


def reserved_parameter_name(name: str) -> str:  # OBS aws-solutions/quota-monitor-for-aws#30
    return f"No access to reserved parameter name: {name}."


def version_not_found(name: str, version: str) -> str:  # MOTO
    return f"Systems Manager could not find version {version} of {name}. Verify the version and try again."


def pattern_mismatch(pattern: str) -> str:  # MOTO
    return f"Parameter value, cannot be validated against allowedPattern: {pattern}"


def bad_allowed_pattern(pattern: str) -> str:  # OWN
    return f"The allowed pattern {pattern} is not a valid regular expression."


def unsupported_data_type(data_type: str) -> str:  # MOTO
    return f"The following data type is not supported: {data_type} (Data type names are all lowercase.)"


def bad_filter_key(key: str, valid: list[str]) -> str:  # MOTO
    return f"The following filter key is not valid: {key}. Valid filter keys include: [{', '.join(valid)}]."


def bad_filter_option(option: str, valid: list[str]) -> str:  # MOTO
    return f"The following filter option is not valid: {option}. Valid options include: [{', '.join(valid)}]."


def bad_filter_value(value: str, valid: list[str]) -> str:  # MOTO
    return f"The following filter value is not valid: {value}. Valid values include: [{', '.join(valid)}]."


def missing_filter_values(key: str) -> str:  # MOTO
    return f"The following filter values are missing : null for filter key {key}."


def duplicate_filter(key: str) -> str:  # MOTO
    return (f"The following filter is duplicated in the request: {key}. A request can contain only one "
            "occurrence of a specific filter.")


def too_many_tags(limit: int) -> str:  # OWN
    return f"A resource can have at most {limit} tags."
