"""botocore's service models, loaded once: the shapes every request is checked against.

Validation turns botocore's report into AWS's own wording ("1 validation error detected: ...").
"""
from __future__ import annotations

import functools
import hashlib
import secrets
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

from fargo.errors import SerializationException, ValidationException


@functools.cache
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


_validator = ParamValidator()
# Bodies found valid, by service, operation and a keyed digest of the body: a poller (a waiter, a scheduler,
# `watch`) sends the same small body again and again, and checking it against the model was a sixth of a
# DescribeTasks call. Only digests are kept, under a key of this process: no body (a secret's value, say)
# stays in memory, and no digest tells what it was made from.
_VALID_BODIES: dict[tuple[str, str, bytes], None] = {}
_VALID_BODIES_LIMIT = 1024
_REMEMBERED_BODY_BYTES = 4096
_DIGEST_KEY = secrets.token_bytes(32)


def validate_body(operation: OperationModel, body: bytes, params: dict[str, Any]) -> None:
    """`validate_input` of `params`, parsed from `body`: a body found valid before is not checked again
    (the outcome depends on nothing else)."""
    remember = len(body) <= _REMEMBERED_BODY_BYTES
    key = (operation.service_model.service_name, operation.name,
           hashlib.blake2b(body, key=_DIGEST_KEY, digest_size=16).digest() if remember else b"")
    if remember and key in _VALID_BODIES:
        return
    validate_input(operation, params)
    if remember:
        if len(_VALID_BODIES) >= _VALID_BODIES_LIMIT:
            _VALID_BODIES.clear()  # pollers send few kinds of body: those come back at once
        _VALID_BODIES[key] = None


def validate_input(operation: OperationModel, params: dict[str, Any]) -> None:
    """Raise the AWS-shaped error for the first kind of problem found in `params`."""
    shape = operation.input_shape
    if shape is None:
        if params:
            raise ValidationException(f"Unknown parameters in input: {', '.join(sorted(params))}")
        return
    report = _validator.validate(params, shape)
    if not report.has_errors():
        bad_enum = _first_bad_enum(params, shape, "")
        if bad_enum:
            raise ValidationException("1 validation error detected: " + _coral_message(*bad_enum))
        return
    # botocore keeps (kind, name, details) tuples here; names start with "." (".containers[0].name")
    errors = [(kind, name.lstrip("."), details) for kind, name, details in report._errors]
    type_errors = [e for e in errors if e[0] == "invalid type"]
    if type_errors:
        _, name, details = type_errors[0]
        raise SerializationException(
            f"Unexpected value for '{name or 'input'}': expected {_json_type(details)}")
    messages = [_coral_message(kind, name, details) for kind, name, details in errors]
    noun = "error" if len(messages) == 1 else "errors"
    raise ValidationException(f"{len(messages)} validation {noun} detected: " + "; ".join(messages))


def _json_type(details: dict) -> str:
    names = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "list": "list",
             "dict": "object", "tuple": "list", "datetime": "timestamp", "Decimal": "number"}
    found = set()
    for t in details.get("valid_types") or []:
        raw = str(t).removeprefix("<class '").removesuffix("'>").rsplit(".", 1)[-1]
        if raw in names:
            found.add(names[raw])
    return " or ".join(sorted(found)) or "another type"


def _coral_message(kind: str, name: str, details: dict) -> str:
    where = name or "input"
    if kind == "missing required field":
        member = details.get("required_name")
        path = f"{name}.{member}" if name else member
        return f"Value null at '{path}' failed to satisfy constraint: Member must not be null"
    if kind == "unknown field":
        member = details.get("unknown_param")
        path = f"{name}.{member}" if name else member
        return f"Unknown parameter '{path}': not a member of this operation's input"
    if kind == "invalid range":
        return (f"Value '{details.get('param')}' at '{where}' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {details.get('min_allowed')}")
    if kind == "invalid length":
        return (f"Value at '{where}' failed to satisfy constraint: "
                f"Member must have length greater than or equal to {details.get('min_allowed')}")
    if kind == "invalid enum":
        return (f"Value '{details.get('param')}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(details.get('valid_values', []))}]")
    return f"Value at '{where}' is invalid: {kind}"


def enum_values(shape: Shape) -> list[str]:
    return list(shape.enum) if getattr(shape, "enum", None) else []


def _first_bad_enum(value: Any, shape: Shape, path: str) -> tuple[str, str, dict] | None:
    """botocore leaves enums to the service; AWS refuses values outside the model's set."""
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, member_value in value.items():
            member = shape.members.get(key)
            if member is not None:
                found = _first_bad_enum(member_value, member, f"{path}.{key}" if path else key)
                if found:
                    return found
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            found = _first_bad_enum(item, shape.member, f"{path}[{i}]")
            if found:
                return found
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            found = _first_bad_enum(item, shape.value, f"{path}.{key}")
            if found:
                return found
    elif shape.type_name == "string" and isinstance(value, str):
        allowed = enum_values(shape)
        if allowed and value not in allowed:
            return ("invalid enum", path, {"param": value, "valid_values": allowed})
    return None
