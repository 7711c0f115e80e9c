"""ECR's names: repository names (botocore's rule), repository ARNs, the URI images are pushed to, digests."""
from __future__ import annotations

import re
from dataclasses import dataclass

from fargo.control.ecr import messages as msg
from fargo.errors import InvalidParameterException

# botocore's RepositoryName pattern, whole-name (2 to 256 characters).
_REPOSITORY_NAME = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
_DIGEST = re.compile(r"^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$")
_ARN = re.compile(r"^arn:aws[a-z-]*:ecr:(?P<region>[^:]+):(?P<account>[0-9]{12}):repository/(?P<name>.+)$")
MAX_TAG_LENGTH = 300


def check_repository_name(name: str, member: str = "repositoryName") -> str:
    """The name if ECR accepts it, else InvalidParameterException with AWS's text."""
    if len(name) < 2:
        raise InvalidParameterException(msg.repository_name_too_short(member))
    if len(name) > 256:
        raise InvalidParameterException(msg.repository_name_too_long(member))
    if not _REPOSITORY_NAME.fullmatch(name):
        raise InvalidParameterException(msg.invalid_repository_name(member))
    return name


def is_repository_name(name: str) -> bool:
    return 2 <= len(name) <= 256 and _REPOSITORY_NAME.fullmatch(name) is not None


def is_digest(reference: str) -> bool:
    """A manifest reference that is a digest (`sha256:<hex>`) rather than a tag."""
    return _DIGEST.match(reference) is not None


@dataclass(frozen=True)
class RegistryNames:
    """What this Fargo's registry is called: its id (the account), region and the edge's host:port."""

    account_id: str
    region: str
    edge: str  # host:port of the edge port, where clients push and pull

    def repository_arn(self, name: str) -> str:
        return f"arn:aws:ecr:{self.region}:{self.account_id}:repository/{name}"

    def repository_uri(self, name: str) -> str:
        return f"{self.edge}/{name}"

    @property
    def proxy_endpoint(self) -> str:
        return f"http://{self.edge}"

    @property
    def aws_host(self) -> str:
        """The host name ECR gives this registry on AWS; it means Fargo's registry too."""
        return f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com"

    def check_registry_id(self, registry_id: str | None) -> None:
        """Fargo has one registry, the account's: a request naming another is refused."""
        if registry_id is not None and registry_id != self.account_id:
            raise InvalidParameterException(msg.other_registry(registry_id, self.account_id))

    def repository_of_arn(self, arn: str) -> str:
        """The repository an ARN of this registry names; InvalidParameterException for anything else."""
        found = _ARN.match(arn)
        if not found or found["region"] != self.region or found["account"] != self.account_id \
                or not is_repository_name(found["name"]):
            raise InvalidParameterException(msg.invalid_arn(arn))
        return found["name"]
