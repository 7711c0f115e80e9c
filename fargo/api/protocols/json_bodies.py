"""JSON request and response bodies as the JSON-based AWS protocols (JSON 1.0/1.1, REST-JSON) use them.

Parsing is bounded in depth: no request reaches validation or a handler nested deeper than a model allows.
"""
from __future__ import annotations

import json
from typing import Any

from botocore.model import Shape

from fargo.errors import SerializationException

# Far deeper than any AWS input shape (an ECS task definition nests 7 levels), far below Python's stack.
MAX_NESTING_DEPTH = 100
TOO_DEEP = f"The request body is nested more than {MAX_NESTING_DEPTH} levels deep."
_NOT_AN_OBJECT = "Start of structure or map found where not expected."


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
    """Drop members the model does not know and empty values, as AWS's serializers do."""
    if shape is None:
        return {}
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        out = {}
        for key, member_value in value.items():
            member = shape.members.get(key)
            if member is not None and member_value is not None:
                out[key] = shape_output(member_value, member)
        return out
    if kind == "list" and isinstance(value, list):
        return [shape_output(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: shape_output(v, shape.value) for k, v in value.items()}
    return value


def dump(value: Any) -> bytes:
    return json.dumps(value).encode()
