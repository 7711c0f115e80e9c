"""ParameterFilters of DescribeParameters and GetParametersByPath (and DescribeParameters' older Filters):
which keys and options each call takes, checked as AWS checks them, and whether a parameter matches."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fargo.control.secrets import messages as msg
from fargo.errors import InvalidFilterKey, InvalidFilterOption, InvalidFilterValue
from fargo.control.secrets.names import check_parameter_path, in_path
from fargo.store.secrets_store import ParameterVersionRow

TYPES = ["String", "StringList", "SecureString"]
TIERS = ["Standard", "Advanced", "Intelligent-Tiering"]
_DESCRIBE_KEYS = ["Path", "Name", "Type", "KeyId", "Tier"]  # as AWS lists them in its error text
_BY_PATH_KEYS = ["Type", "KeyId"]


@dataclass(frozen=True)
class ParameterFilter:
    key: str
    option: str
    values: tuple[str, ...]


Tags = Sequence[tuple[str, str]]


def describe_filters(parameter_filters: Sequence[dict] | None, legacy: Sequence[dict] | None) -> list[ParameterFilter]:
    """DescribeParameters' filters, checked; the older `Filters` (Name, Type, KeyId) as their equivalents."""
    if legacy:
        return [ParameterFilter(f["Key"], "BeginsWith" if f["Key"] == "Name" else "Equals", tuple(f["Values"]))
                for f in legacy]
    out: list[ParameterFilter] = []
    for f in parameter_filters or []:
        key, values = f["Key"], tuple(f.get("Values") or ())
        if key == "Label":
            raise InvalidFilterKey(msg.bad_filter_key(key, _DESCRIBE_KEYS))
        if key == "Path":
            option = f.get("Option") or "OneLevel"
            if option not in ("Recursive", "OneLevel"):
                raise InvalidFilterOption(msg.bad_filter_option(option, ["Recursive", "OneLevel"]))
            values = tuple(check_parameter_path(v) for v in values)
        else:
            option = f.get("Option") or "Equals"
            valid = ["Equals", "BeginsWith", "Contains"] if key == "Name" else ["Equals", "BeginsWith"]
            if option not in valid:
                raise InvalidFilterOption(msg.bad_filter_option(option, valid))
        out.append(_checked(ParameterFilter(key, option, values), out))
    return out


def by_path_filters(parameter_filters: Sequence[dict] | None) -> list[ParameterFilter]:
    out: list[ParameterFilter] = []
    for f in parameter_filters or []:
        key, values = f["Key"], tuple(f.get("Values") or ())
        if key not in ("Type", "KeyId", "Label") and not key.startswith("tag:"):
            raise InvalidFilterKey(msg.bad_filter_key(key, _BY_PATH_KEYS))
        option = f.get("Option") or "Equals"
        valid = ["Equals"] if key == "Label" else ["Equals", "BeginsWith"]
        if option not in valid:
            raise InvalidFilterOption(msg.bad_filter_option(option, valid))
        out.append(_checked(ParameterFilter(key, option, values), out))
    return out


def _checked(f: ParameterFilter, earlier: Sequence[ParameterFilter]) -> ParameterFilter:
    if any(e.key == f.key for e in earlier):
        raise InvalidFilterKey(msg.duplicate_filter(f.key))
    if not f.values and not f.key.startswith("tag:"):
        raise InvalidFilterValue(msg.missing_filter_values(f.key))
    for value, valid in ((v, TYPES if f.key == "Type" else TIERS) for v in f.values if f.key in ("Type", "Tier")):
        if value not in valid and f.option == "Equals":
            raise InvalidFilterValue(msg.bad_filter_value(value, valid))
    return f


def matches(row: ParameterVersionRow, tags: Tags, filters: Sequence[ParameterFilter]) -> bool:
    return all(_matches(row, tags, f) for f in filters)


def _matches(row: ParameterVersionRow, tags: Tags, f: ParameterFilter) -> bool:
    if f.key == "Path":
        return any(in_path(row.name, path, f.option == "Recursive") for path in f.values)
    if f.key == "Label":
        return False  # Fargo's parameters have no labels
    if f.key.startswith("tag:"):
        tag_key = f.key.removeprefix("tag:")
        present = [v for k, v in tags if k == tag_key]
        return bool(present) and (not f.values or any(_compare(f.option, v, want) for v in present for want in f.values))
    field = {"Name": row.name, "Type": row.type, "KeyId": row.key_id or "", "Tier": row.tier,
             "DataType": row.data_type}.get(f.key)
    if field is None:
        return False
    return any(_compare(f.option, field, v) for v in f.values)


_COMPARISONS: dict[str, Callable[[str, str], bool]] = {
    "Equals": lambda field, value: field == value,
    "BeginsWith": lambda field, value: field.startswith(value),
    "Contains": lambda field, value: value in field,
}


def _compare(option: str, field: str, value: str) -> bool:
    return _COMPARISONS[option](field, value)
