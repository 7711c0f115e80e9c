"""AWS JSON 1.1 protocol: `X-Amz-Target: <prefix>.<Operation>`, a JSON body in, a JSON body out.

Errors travel as `{"__type": name, "message": text}` with the error's HTTP status.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from botocore.model import ServiceModel, Shape

from fargo.errors import (AwsError, SerializationException, ServerException, UnknownOperationException)
from fargo.api.service_models import validate_input

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
CONTENT_TYPE = "application/x-amz-json-1.1"


@dataclass
class JsonService:
    model: ServiceModel
    handlers: dict[str, Handler]

    @property
    def target_prefix(self) -> str:
        return self.model.metadata["targetPrefix"]


async def dispatch_json(services: dict[str, JsonService], target: str, body: bytes) -> tuple[int, bytes]:
    """Run one request; never raises: every failure becomes an AWS-shaped error body."""
    try:
        prefix, _, operation = target.partition(".")
        service = services.get(prefix)
        if service is None or not operation:
            raise UnknownOperationException(f"The target {target} is not a known operation.")
        handler = service.handlers.get(operation)
        if handler is None or operation not in service.model.operation_names:
            raise UnknownOperationException(f"Operation {operation} is not supported by this endpoint.")
        params = _parse_body(body)
        op_model = service.model.operation_model(operation)
        validate_input(op_model, params)
        result = await handler(params)
        return 200, json.dumps(_shape_output(result, op_model.output_shape)).encode()
    except AwsError as e:
        return e.status, error_body(e)
    except Exception:  # a bug must still answer in AWS's shape, never with a traceback
        log.exception("unhandled error in %s", target)
        err = ServerException("An internal error occurred.")
        return err.status, error_body(err)


def error_body(e: AwsError) -> bytes:
    return json.dumps({"__type": e.code, "message": e.message}).encode()


def _parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise SerializationException("Start of structure or map found where not expected.") from None
    if not isinstance(params, dict):
        raise SerializationException("Start of structure or map found where not expected.")
    return params


def _shape_output(value: Any, shape: Shape | None) -> Any:
    """Drop members the model does not know and empty values, as AWS's serializers do."""
    if shape is None:
        return {}
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        out = {}
        for key, member_value in value.items():
            member = shape.members.get(key)
            if member is not None and member_value is not None:
                out[key] = _shape_output(member_value, member)
        return out
    if kind == "list" and isinstance(value, list):
        return [_shape_output(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _shape_output(v, shape.value) for k, v in value.items()}
    return value
