"""JSON request and response bodies as the JSON-based AWS protocols (JSON 1.0/1.1, REST-JSON) use them.

Parsing is bounded in depth: no request reaches validation or a handler nested deeper than a model allows.
"""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from botocore.model import Shape

from fargo.errors import SerializationException

# Far deeper than any AWS input shape (an ECS task definition nests 7 levels), far below Python's stack.
MAX_NESTING_DEPTH = 100
TOO_DEEP = f"The request body is nested more than {MAX_NESTING_DEPTH} levels deep."
_NOT_AN_OBJECT = "Start of structure or map found where not expected."
Shaper = Callable[[Any], Any]


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request's members; an empty body is an empty structure."""
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except RecursionError:  # the C scanner gives up near Python's recursion limit
        raise SerializationException(TOO_DEEP) from None
    except (ValueError, UnicodeDecodeError):
        raise SerializationException(_NOT_AN_OBJECT) from None
    if not isinstance(params, dict):
        raise SerializationException(_NOT_AN_OBJECT)
    if _deeper_than(params, MAX_NESTING_DEPTH):
        raise SerializationException(TOO_DEEP)
    return params


def _deeper_than(value: dict | list, limit: int) -> bool:
    # Iterative on purpose: the point is not to recurse on what the caller sent.
    stack: list[tuple[dict | list, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def shape_output(value: Any, shape: Shape | None) -> Any:
    """Drop members the model does not know and None values, as AWS's serializers do."""
    if shape is None:
        return {}
    shaper = _shaper_of(shape)
    return value if shaper is None else shaper(value)


# A shaper for each output shape, made once: walking botocore's shapes for every response was most of the
# cost of a DescribeTasks of 100 tasks. Kept with its shape, so an id is never taken for another's.
_SHAPERS: dict[int, tuple[Shape, Shaper | None]] = {}


def _shaper_of(shape: Shape) -> Shaper | None:
    held = _SHAPERS.get(id(shape))
    if held is None or held[0] is not shape:
        held = _SHAPERS[id(shape)] = (shape, _compile(shape, {}))
    return held[1]


def _compile(shape: Shape, made: dict[tuple[str, str], Shaper | None]) -> Shaper | None:
    """A function that shapes a value of `shape`; None for a scalar, which stays as it is. `made` holds the
    shapers of this model by shape name, so a recursive shape refers to itself instead of unrolling."""
    kind = shape.type_name
    if kind not in ("structure", "list", "map"):
        return None
    key = (kind, shape.name)
    if key in made:
        return made[key]
    if kind == "structure":
        members: dict[str, Shaper | None] = {}

        def structure(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            return {name: v if (shaper := members[name]) is None else shaper(v)
                    for name, v in value.items() if v is not None and name in members}

        made[key] = structure
        members.update((name, _compile(member, made)) for name, member in shape.members.items())
        return structure
    inner: list[Shaper | None] = [None]
    if kind == "list":
        def sequence(value: Any) -> Any:
            shaper = inner[0]
            if not isinstance(value, list) or shaper is None:
                return value
            return [shaper(v) for v in value]

        made[key] = sequence
        inner[0] = _compile(shape.member, made)  # type: ignore[attr-defined]
        return sequence

    def mapping(value: Any) -> Any:
        shaper = inner[0]
        if not isinstance(value, dict) or shaper is None:
            return value
        return {k: shaper(v) for k, v in value.items()}

    made[key] = mapping
    inner[0] = _compile(shape.value, made)  # type: ignore[attr-defined]
    return mapping


class EncodedJson:
    """A member value already shaped and encoded (a document kept from an earlier answer): shaping passes it
    by as it is, and `dump` puts its bytes where it stands."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body


def encoded(value: Any, shape: Shape) -> EncodedJson:
    return EncodedJson(dump(shape_output(value, shape)))


# What `dump` writes in place of an EncodedJson before it splices the bytes in: a NUL and a nonce of this
# process, so that no string a client sent can be taken for one.
_MARK = f"\x00{uuid.uuid4().hex}:"
_MARKED = re.compile(re.escape(json.dumps(_MARK).encode()[:-1]) + rb'(\d+)"')


def dump(value: Any) -> bytes:
    pieces: list[bytes] = []

    def splice_later(member: Any) -> str:
        if not isinstance(member, EncodedJson):
            raise TypeError(f"{type(member).__name__} is not JSON")
        pieces.append(member.body)
        return f"{_MARK}{len(pieces) - 1}"

    body = json.dumps(value, separators=(",", ":"), default=splice_later).encode()
    if not pieces:
        return body
    return _MARKED.sub(lambda m: pieces[int(m.group(1))], body)
