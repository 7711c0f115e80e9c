"""Names and ARNs of secrets and parameters: the rules a name must follow, and the one place that builds and
reads their ARNs.

A secret's ARN is `arn:aws:secretsmanager:<region>:<account>:secret:<Name>-<6 random letters>`; a re-created
name gets a new suffix, so an old full ARN never names the new secret. A parameter's ARN is
`arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash>`.
"""
from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

from fargo.control.secrets import messages as msg
from fargo.errors import AccessDeniedException, HierarchyLevelLimitExceededException
from fargo.errors import ValidationException

SECRET_NAME_MAX = 512
ARN_SUFFIX_LENGTH = 6
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]+$")

PARAMETER_NAME_MAX = 2048
PARAMETER_LEVELS_MAX = 15
_PARAMETER_NAME = re.compile(r"^/?[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*$")
_PARAMETER_PATH = re.compile(r"^/([a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*)?/?$")


@dataclass(frozen=True)
class SecretRef:
    """What a SecretId names: a name, a full ARN (with the suffix) or, maybe, a partial ARN (without it)."""

    name: str | None = None
    arn: str | None = None


@dataclass(frozen=True)
class ParameterRef:
    """A parameter asked for: its candidate names (an ARN may mean `x` or `/x`) and the `:version` selector."""

    names: tuple[str, ...]
    selector: str | None


@dataclass(frozen=True)
class NameRules:
    region: str
    account_id: str

    # --- Secrets Manager ----------------------------------------------------------------------------

    @property
    def secret_arn_prefix(self) -> str:
        return f"arn:aws:secretsmanager:{self.region}:{self.account_id}:secret:"

    def new_secret_arn(self, name: str) -> str:
        suffix = "".join(secrets.choice(string.ascii_letters) for _ in range(ARN_SUFFIX_LENGTH))
        return f"{self.secret_arn_prefix}{name}-{suffix}"

    def secret_ref(self, secret_id: str) -> SecretRef:
        if secret_id.startswith("arn:"):
            return SecretRef(arn=secret_id)
        return SecretRef(name=secret_id)

    # --- SSM Parameter Store -------------------------------------------------------------------------

    @property
    def parameter_arn_prefix(self) -> str:
        return f"arn:aws:ssm:{self.region}:{self.account_id}:parameter/"

    def parameter_arn(self, name: str) -> str:
        return self.parameter_arn_prefix + name.removeprefix("/")

    def parameter_ref(self, ref: str) -> ParameterRef | None:
        """A name or ARN, with an optional `:selector`; None when it cannot name a parameter of ours."""
        if ref.startswith("arn:"):
            if not ref.startswith(self.parameter_arn_prefix):
                return None  # another region's or account's parameter, or not a parameter ARN at all
            rest, sep, selector = ref.removeprefix(self.parameter_arn_prefix).partition(":")
            names: tuple[str, ...] = ("/" + rest,) if "/" in rest else (rest, "/" + rest)
        else:
            name, sep, selector = ref.partition(":")
            names = (name,)
        return ParameterRef(names, selector if sep else None)


def check_secret_name(name: str) -> None:
    if len(name) > SECRET_NAME_MAX:
        raise ValidationException(msg.too_long("name", SECRET_NAME_MAX))
    if not _SECRET_NAME.match(name):
        raise ValidationException(msg.INVALID_SECRET_NAME)


def check_parameter_name(name: str, *, creating: bool = False) -> None:
    """AWS's rules for a parameter name; `creating`: also refuse the names AWS keeps for itself."""
    if len(name) > PARAMETER_NAME_MAX:
        raise ValidationException(msg.too_long("name", PARAMETER_NAME_MAX))
    if "/" in name and not name.startswith("/"):
        raise ValidationException(msg.NOT_FULLY_QUALIFIED)
    first = name.removeprefix("/").lower()
    if creating and first.startswith("aws"):
        raise AccessDeniedException(msg.reserved_parameter_name(name))
    if first.startswith("ssm") or not _PARAMETER_NAME.match(name):
        raise ValidationException(msg.INVALID_PARAMETER_NAME)
    if name.count("/") > PARAMETER_LEVELS_MAX:
        raise HierarchyLevelLimitExceededException(msg.HIERARCHY_TOO_DEEP)


def check_parameter_path(path: str) -> str:
    """A GetParametersByPath path, without its trailing slash ("/" stays "/")."""
    if len(path) > PARAMETER_NAME_MAX:
        raise ValidationException(msg.too_long("path", PARAMETER_NAME_MAX))
    if not _PARAMETER_PATH.match(path) or path.removeprefix("/").lower().startswith("ssm"):
        raise ValidationException(msg.INVALID_PATH)
    return path if path == "/" else path.rstrip("/")


def in_path(name: str, path: str, recursive: bool) -> bool:
    """Whether parameter `name` is under `path` ("/" or "/a/b"): directly, or at any depth if `recursive`."""
    prefix = "/" if path == "/" else path + "/"
    if not name.startswith(prefix) or len(name) == len(prefix):
        return False
    return recursive or "/" not in name[len(prefix):]
