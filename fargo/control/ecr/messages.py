"""Every Amazon ECR text, API and registry side, in one place.

Marks: OBS = seen in a real AWS response (the public report named); OWN = Fargo's, in AWS's style, because AWS's
wording is not public (UNVERIFIED).
"""
from __future__ import annotations

# --- repositories ------------------------------------------------------------------------------------


def repository_not_found(name: str, registry_id: str) -> str:  # OBS plexsystems/sinker#55, aws-actions/amazon-ecr-login#166
    return f"The repository with name '{name}' does not exist in the registry with id '{registry_id}'"


def repository_already_exists(name: str, registry_id: str) -> str:  # OBS metaps/genova#164
    return f"The repository with name '{name}' already exists in the registry with id '{registry_id}'"


def repository_not_empty(name: str, registry_id: str) -> str:  # OBS terraform reports (RepositoryNotEmptyException)
    return (f"The repository with name '{name}' in registry with id '{registry_id}' cannot be deleted because it "
            "still contains images")


# The pattern AWS quotes (OBS localstack/localstack#8051, jenkins-x/jx#1344); the check itself uses the model's.
_QUOTED_NAME_PATTERN = "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"


def invalid_repository_name(member: str = "repositoryName") -> str:  # OBS localstack/localstack#8051
    return (f"Invalid parameter at '{member}' failed to satisfy constraint: "
            f"'must satisfy regular expression '{_QUOTED_NAME_PATTERN}''")


def repository_name_too_short(member: str = "repositoryName") -> str:  # OBS aws/aws-dotnet-deploy#549
    return f"Invalid parameter at '{member}' failed to satisfy constraint: 'must have length greater than or equal to 2'"


def repository_name_too_long(member: str = "repositoryName") -> str:  # OWN (the short form's twin)
    return f"Invalid parameter at '{member}' failed to satisfy constraint: 'must have length less than or equal to 256'"


def other_registry(registry_id: str, account_id: str) -> str:  # OWN
    return (f"Invalid parameter at 'registryId' failed to satisfy constraint: 'Fargo serves one registry, "
            f"'{account_id}'; '{registry_id}' is not it'")


NAMES_AND_NEXT_TOKEN = (  # OWN (the documentation says the two cannot be combined)
    "Invalid parameter: nextToken and maxResults cannot be used when repositoryNames are specified.")
KMS_KEY_WITH_AES256 = (  # OWN
    "Invalid parameter at 'encryptionConfiguration' failed to satisfy constraint: "
    "'kmsKey can be specified only when encryptionType is KMS or KMS_DSSE'")
EXCLUSION_FILTERS_NEED_EXCLUSION_MODE = (  # OWN
    "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'exclusion filters "
    "can be specified only with IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION'")
EXCLUSION_FILTERS_REQUIRED = (  # OWN
    "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: "
    "'IMMUTABLE_WITH_EXCLUSION and MUTABLE_WITH_EXCLUSION need at least one exclusion filter'")
INVALID_TOKEN = "Invalid parameter at 'nextToken' failed to satisfy constraint: 'invalid pagination token'"  # OWN


# --- images ------------------------------------------------------------------------------------------


def image_not_found(image_id: dict, name: str, registry_id: str) -> str:  # OBS (ImageNotFoundException of DescribeImages)
    digest, tag = image_id.get("imageDigest") or "null", image_id.get("imageTag") or "null"
    return (f"The image with imageId {{imageDigest:'{digest}', imageTag:'{tag}'}} does not exist within the "
            f"repository with name '{name}' in the registry with id '{registry_id}'")


IMAGE_NOT_FOUND_REASON = "Requested image not found"  # OBS aws/aws-cli#6424 (failureReason of ImageNotFound)
MISSING_DIGEST_AND_TAG_REASON = "Invalid request parameters: image digest and image tag are both missing"  # OWN
INVALID_DIGEST_REASON = "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"  # OWN
TAG_DOES_NOT_MATCH_DIGEST_REASON = "Invalid request parameters: given tag does not map to the given digest"  # OWN
UNSUPPORTED_MEDIA_TYPE_REASON = (  # OWN (Fargo does not convert between manifest formats)
    "Requested image not found: its manifest media type is not one of acceptedMediaTypes")


def referenced_by_manifest_list(index_digests: list[str]) -> str:  # OWN
    return f"Requested image is referenced by manifest list: [{', '.join(index_digests)}]"


FILTER_WITH_IMAGE_IDS = "Invalid parameter: filter cannot be used together with imageIds."  # OWN


# --- tags --------------------------------------------------------------------------------------------


def invalid_arn(arn: str) -> str:  # OWN
    return f"Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN {arn}'"


def reserved_tag_key(key: str) -> str:  # OWN
    return f"The tag key '{key}' is invalid: keys starting with 'aws:' are reserved for AWS use."


def too_many_tags(limit: int) -> str:  # OWN
    return f"A repository can have at most {limit} tags."


# --- the registry (/v2/), as registry-shaped errors {"errors":[{code, message}]} ----------------------

NOT_AUTHORIZED = "Not Authorized"  # OBS (what ECR answers an anonymous /v2/ request)
TOKEN_EXPIRED = "Your authorization token has expired. Reauthenticate and try again."  # OBS aws/aws-cli#6580
TOKEN_INVALID = "Your authorization token is invalid. Reauthenticate and try again."  # OWN (the expired text's twin)
REGISTRY_UNAVAILABLE = "Fargo's registry is not answering; try again in a moment."  # OWN


def tag_immutable(tag: str, name: str) -> str:  # OBS aws/containers-roadmap#862 (code TAG_INVALID)
    return (f"The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten because "
            "the repository is immutable.")


MANIFEST_TOO_LARGE = "The manifest is larger than the 4 MiB a registry accepts."  # OWN
