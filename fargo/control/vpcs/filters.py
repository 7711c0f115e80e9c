"""EC2's `Filters=[{Name, Values}]`: a filter's values OR, filters AND, `*` and `?` wildcards (`\\` escapes).

Each describe call names its filters as field getters: the item's value(s) for that filter name. A value
may be a string, number, boolean (matched as "true"/"false"), None (no value) or a list of those.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from fargo.control.vpcs import messages as msg
from fargo.errors import FilterLimitExceeded, InvalidParameterValue

T = TypeVar("T")
Field = Callable[[Any], Any]
TagsOf = Callable[[Any], Mapping[str, str]]

_MAX_VALUE_LENGTH = 255
_MAX_VALUES = 200


def apply_filters(items: Sequence[T], filters: Sequence[dict] | None, fields: Mapping[str, Field],
                  tags_of: TagsOf | None = None) -> list[T]:
    """The items every filter matches. Unknown filter names are refused, as EC2 does; with `tags_of`,
    `tag:<key>`, `tag-key` and `tag-value` are known too."""
    matchers = [_matcher(f, fields, tags_of) for f in filters or []]
    if sum(len(f.get("Values") or []) for f in filters or []) > _MAX_VALUES:
        raise FilterLimitExceeded(msg.TOO_MANY_FILTER_VALUES)
    return [item for item in items if all(m(item) for m in matchers)]


def _matcher(f: dict, fields: Mapping[str, Field], tags_of: TagsOf | None) -> Callable[[Any], bool]:
    name = str(f.get("Name") or "")
    values = [str(v) for v in f.get("Values") or []]
    if any(len(v) > _MAX_VALUE_LENGTH for v in values):
        raise FilterLimitExceeded(msg.FILTER_VALUE_TOO_LONG)
    field = fields.get(name)
    if field is None and tags_of is not None:
        field = _tag_field(name, tags_of)
    if field is None:
        raise InvalidParameterValue(msg.invalid_filter(name))
    patterns = [wildcard(v) for v in values]
    get = field

    def matches(item: Any) -> bool:
        return any(p.fullmatch(v) for v in _strings(get(item)) for p in patterns)
    return matches


def _tag_field(name: str, tags_of: TagsOf) -> Field | None:
    if name.startswith("tag:") and len(name) > 4:
        key = name[4:]
        return lambda item: tags_of(item).get(key)
    if name == "tag-key":
        return lambda item: list(tags_of(item))
    if name == "tag-value":
        return lambda item: list(tags_of(item).values())
    return None


def wildcard(value: str) -> re.Pattern[str]:
    """EC2's filter wildcards: `*` any run of characters, `?` one character, a backslash makes the next literal."""
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(re.escape(value[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _strings(value: Any) -> Iterable[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [str(value)]
