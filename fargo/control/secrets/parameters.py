"""SSM Parameter Store: String, StringList and SecureString parameters, their versions (1 at creation, +1 on
each overwrite, the newest `KEEP_VERSIONS` kept), paths, filters and tags.

SecureString values are sealed at rest; asked for without decryption, they come back as the sealed bytes
in base64 (opaque, as AWS's KMS ciphertext is), never as the value.
"""
from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Callable

from fargo import clock
from fargo.control.secrets import messages as msg
from fargo.errors import (InvalidAllowedPatternException, InvalidNextToken, InvalidResourceId,
                                          InvalidResourceType, ParameterAlreadyExists, ParameterNotFound,
                                          ParameterPatternMismatchException, ParameterVersionNotFound,
                                          TooManyTagsError)
from fargo.control.secrets.names import NameRules, check_parameter_name, check_parameter_path, in_path
from fargo.control.secrets.paging import page, page_size
from fargo.control.secrets.parameter_filters import by_path_filters, describe_filters, matches
from fargo.control.secrets.sealing import Sealer
from fargo.errors import ValidationException
from fargo.store.secrets_store import ParameterVersionRow, SecretsReads, SecretsStore

KEEP_VERSIONS = 100
STANDARD_MAX, ADVANCED_MAX = 4096, 8192
MAX_NAMES = 10
MAX_TAGS = 50
DEFAULT_KEY = "alias/aws/ssm"
DATA_TYPES = ("text", "aws:ec2:image", "aws:ssm:integration")


class ParameterStore:
    def __init__(self, store: SecretsStore, sealer: Sealer, rules: NameRules,
                 now: Callable[[], float] = clock.now) -> None:
        self.store = store
        self.sealer = sealer
        self.rules = rules
        self.now = now

    def handlers(self) -> dict[str, Callable[[dict], dict]]:
        return {"PutParameter": self.put_parameter, "GetParameter": self.get_parameter,
                "GetParameters": self.get_parameters, "GetParametersByPath": self.get_parameters_by_path,
                "DeleteParameter": self.delete_parameter, "DeleteParameters": self.delete_parameters,
                "DescribeParameters": self.describe_parameters, "AddTagsToResource": self.add_tags,
                "ListTagsForResource": self.list_tags, "RemoveTagsFromResource": self.remove_tags}

    # --- API -----------------------------------------------------------------------------------

    def put_parameter(self, p: dict) -> dict:
        name, value = p["Name"], p["Value"]
        check_parameter_name(name, creating=True)
        overwrite, tags = bool(p.get("Overwrite", False)), _tags_of(p.get("Tags"))
        if value == "":
            raise ValidationException(msg.EMPTY_VALUE)
        if overwrite and tags:
            raise ValidationException(msg.TAGS_WITH_OVERWRITE)
        if len(tags) > MAX_TAGS:
            raise TooManyTagsError(msg.too_many_tags(MAX_TAGS))
        if p.get("Description") is not None and len(p["Description"]) > 1024:
            raise ValidationException(msg.too_long("description", 1024))
        data_type = p.get("DataType") or "text"
        if data_type not in DATA_TYPES:
            raise ValidationException(msg.unsupported_data_type(data_type))
        now = self.now()
        with self.store.writing() as w:
            current = w.lock_parameter(name)
            old = w.parameter(name) if current is not None else None
            if current is not None and not overwrite:
                raise ParameterAlreadyExists(msg.PARAMETER_EXISTS)
            kind = p.get("Type") or (old.type if old else None)
            if kind is None:
                raise ValidationException(msg.TYPE_REQUIRED)
            pattern = p.get("AllowedPattern", old.allowed_pattern if old else None)
            _check_pattern(value, pattern)
            version = (current or 0) + 1
            key_id = None
            if kind == "SecureString":
                key_id = p.get("KeyId") or (old.key_id if old and old.type == "SecureString" else None) or DEFAULT_KEY
            row = ParameterVersionRow(
                name=name, version=version, type=kind, value=None, sealed=None, key_id=key_id,
                description=p.get("Description", old.description if old else None), allowed_pattern=pattern,
                tier=_tier(value, p.get("Tier"), old.tier if old else None), data_type=data_type,
                last_modified_at=now)
            if kind == "SecureString":
                row = _with(row, sealed=self.sealer.seal(value.encode("utf-8", "surrogatepass"), _owner(name, version)))
            else:
                row = _with(row, value=value)
            if old is None:
                if not w.insert_parameter(row):
                    raise ParameterAlreadyExists(msg.PARAMETER_EXISTS)
                w.put_tags(self.rules.parameter_arn(name), tags)
            else:
                w.add_parameter_version(row, KEEP_VERSIONS)
        return {"Version": version, "Tier": row.tier}

    def get_parameter(self, p: dict) -> dict:
        ref, decrypt = p["Name"], bool(p.get("WithDecryption", False))
        with self.store.reading() as r:
            row, selector = self._lookup(r, ref, strict=True)
        if row is None:
            raise ParameterNotFound(msg.PARAMETER_NOT_FOUND)
        return {"Parameter": self._render(row, decrypt, selector)}

    def get_parameters(self, p: dict) -> dict:
        names, decrypt = list(dict.fromkeys(p["Names"])), bool(p.get("WithDecryption", False))
        if len(p["Names"]) > MAX_NAMES:
            raise ValidationException(msg.too_long("names", MAX_NAMES))
        found, invalid = [], []
        with self.store.reading() as r:
            for ref in names:
                try:
                    row, selector = self._lookup(r, ref, strict=False)
                except (ParameterVersionNotFound, ValidationException):
                    row, selector = None, None
                if row is None:
                    invalid.append(ref)
                else:
                    found.append(self._render(row, decrypt, selector))
        return {"Parameters": sorted(found, key=lambda x: x["Name"]), "InvalidParameters": sorted(invalid)}

    def get_parameters_by_path(self, p: dict) -> dict:
        path = check_parameter_path(p["Path"])
        recursive, decrypt = bool(p.get("Recursive", False)), bool(p.get("WithDecryption", False))
        filters = by_path_filters(p.get("ParameterFilters"))
        size = page_size(p.get("MaxResults"), 10, 10)
        with self.store.reading() as r:
            rows = [row for row in r.parameters(prefix="/" if path == "/" else path + "/")
                    if in_path(row.name, path, recursive)]
            tags = r.tags([self.rules.parameter_arn(row.name) for row in rows]) if filters else {}
        rows = sorted((row for row in rows if matches(row, tags.get(self.rules.parameter_arn(row.name), []), filters)),
                      key=lambda row: row.name)
        chunk, next_token = page(rows, p.get("NextToken"), size, lambda: InvalidNextToken(msg.INVALID_NEXT_TOKEN_SSM))
        out: dict = {"Parameters": [self._render(row, decrypt, None) for row in chunk]}
        if next_token:
            out["NextToken"] = next_token
        return out

    def delete_parameter(self, p: dict) -> dict:
        name = p["Name"]
        check_parameter_name(name)
        with self.store.writing() as w:
            if not w.delete_parameter(name, self.rules.parameter_arn(name)):
                raise ParameterNotFound(msg.PARAMETER_NOT_FOUND)
        return {}

    def delete_parameters(self, p: dict) -> dict:
        if len(p["Names"]) > MAX_NAMES:
            raise ValidationException(msg.too_long("names", MAX_NAMES))
        deleted: list[str] = []
        invalid: list[str] = []
        with self.store.writing() as w:
            for name in dict.fromkeys(p["Names"]):
                (deleted if w.delete_parameter(name, self.rules.parameter_arn(name)) else invalid).append(name)
        return {"DeletedParameters": deleted, "InvalidParameters": invalid}

    def describe_parameters(self, p: dict) -> dict:
        if p.get("Filters") and p.get("ParameterFilters"):
            raise ValidationException(msg.FILTERS_AND_PARAMETER_FILTERS)
        filters = describe_filters(p.get("ParameterFilters"), p.get("Filters"))
        size = page_size(p.get("MaxResults"), 10, 50)
        with self.store.reading() as r:
            rows = r.parameters()
            tags = r.tags([self.rules.parameter_arn(row.name) for row in rows]) if filters else {}
        rows = sorted((row for row in rows if matches(row, tags.get(self.rules.parameter_arn(row.name), []), filters)),
                      key=lambda row: row.name)
        chunk, next_token = page(rows, p.get("NextToken"), size, lambda: InvalidNextToken(msg.INVALID_NEXT_TOKEN_SSM))
        out: dict = {"Parameters": [self._metadata(row) for row in chunk]}
        if next_token:
            out["NextToken"] = next_token
        return out

    def add_tags(self, p: dict) -> dict:
        tags = _tags_of(p["Tags"])
        with self.store.writing() as w:
            arn = self._tagged(w, p)
            keys = {k for k, _ in w.tags([arn]).get(arn, [])} | {k for k, _ in tags}
            if len(keys) > MAX_TAGS:
                raise TooManyTagsError(msg.too_many_tags(MAX_TAGS))
            w.put_tags(arn, tags)
        return {}

    def list_tags(self, p: dict) -> dict:
        with self.store.reading() as r:
            arn = self._tagged(r, p)
            tags = r.tags([arn]).get(arn, [])
        return {"TagList": [{"Key": k, "Value": v} for k, v in tags]}

    def remove_tags(self, p: dict) -> dict:
        with self.store.writing() as w:
            w.remove_tags(self._tagged(w, p), p["TagKeys"])
        return {}

    # --- helpers -------------------------------------------------------------------------------

    def _lookup(self, r: SecretsReads, ref: str, strict: bool) -> tuple[ParameterVersionRow | None, str | None]:
        """The parameter version `ref` names (name or ARN, maybe `:version`) and its selector; None if absent.

        `strict`: a malformed name is a ValidationException (GetParameter), not just absent (GetParameters)."""
        parsed = self.rules.parameter_ref(ref)
        if parsed is None:
            return None, None
        if not ref.startswith("arn:") and strict:
            check_parameter_name(parsed.names[0])
        for name in parsed.names:
            if parsed.selector is None:
                row = r.parameter(name)
            elif parsed.selector.isdigit():
                row = r.parameter(name, int(parsed.selector))
                if row is None and r.parameter_exists(name):
                    raise ParameterVersionNotFound(msg.version_not_found(name, parsed.selector))
            else:
                row = None  # a label: Fargo's parameters have none
            if row is not None:
                return row, parsed.selector
        return None, None

    def _tagged(self, r: SecretsReads, p: dict) -> str:
        if p["ResourceType"] != "Parameter":
            raise InvalidResourceType(msg.INVALID_RESOURCE_TYPE)
        parsed = self.rules.parameter_ref(p["ResourceId"])
        for name in parsed.names if parsed and parsed.selector is None else ():
            if r.parameter_exists(name):
                return self.rules.parameter_arn(name)
        raise InvalidResourceId(msg.INVALID_RESOURCE_ID)

    def _render(self, row: ParameterVersionRow, decrypt: bool, selector: str | None) -> dict:
        if row.sealed is None:
            value = row.value or ""
        elif decrypt:
            value = self.sealer.open(row.sealed, _owner(row.name, row.version)).decode("utf-8", "surrogatepass")
        else:
            value = base64.b64encode(row.sealed).decode()
        out = {"Name": row.name, "Type": row.type, "Value": value, "Version": row.version,
               "LastModifiedDate": row.last_modified_at, "ARN": self.rules.parameter_arn(row.name),
               "DataType": row.data_type}
        if selector is not None:
            out["Selector"] = ":" + selector
        return out

    def _metadata(self, row: ParameterVersionRow) -> dict:
        out = {"Name": row.name, "ARN": self.rules.parameter_arn(row.name), "Type": row.type,
               "LastModifiedDate": row.last_modified_at,
               "LastModifiedUser": f"arn:aws:iam::{self.rules.account_id}:root", "Version": row.version,
               "Tier": row.tier, "Policies": [], "DataType": row.data_type}
        for member, value in (("KeyId", row.key_id), ("Description", row.description),
                              ("AllowedPattern", row.allowed_pattern)):
            if value:
                out[member] = value
        return out


def _owner(name: str, version: int) -> str:
    """The associated data of a sealed parameter value: it opens only as this version of this parameter."""
    return f"ssm:{name}:{version}"


def _with(row: ParameterVersionRow, **changes: object) -> ParameterVersionRow:
    return dataclasses.replace(row, **changes)  # type: ignore[arg-type]


def _tier(value: str, requested: str | None, old: str | None) -> str:
    """The tier the value is stored in; Advanced never goes back to Standard."""
    if len(value) > ADVANCED_MAX:
        raise ValidationException(msg.too_long("value", ADVANCED_MAX))
    tier = requested or old or "Standard"
    if tier == "Intelligent-Tiering":
        tier = "Advanced" if len(value) > STANDARD_MAX or old == "Advanced" else "Standard"
    if tier == "Standard" and old == "Advanced":
        raise ValidationException(msg.NO_DOWNGRADE)
    if tier == "Standard" and len(value) > STANDARD_MAX:
        raise ValidationException(msg.STANDARD_TOO_LARGE)
    return tier


def _check_pattern(value: str, pattern: str | None) -> None:
    if not pattern:
        return
    try:
        compiled = re.compile(pattern)
    except re.error:
        raise InvalidAllowedPatternException(msg.bad_allowed_pattern(pattern)) from None
    if not compiled.fullmatch(value):
        raise ParameterPatternMismatchException(msg.pattern_mismatch(pattern))


def _tags_of(tags: list[dict] | None) -> list[tuple[str, str]]:
    out = []
    for tag in tags or []:
        key, value = tag["Key"], tag["Value"]
        if len(key) > 128:
            raise ValidationException(msg.too_long("tags.member.key", 128))
        if len(value) > 256:
            raise ValidationException(msg.too_long("tags.member.value", 256))
        out.append((key, value))
    return out
