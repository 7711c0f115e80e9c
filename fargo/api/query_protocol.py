"""EC2's query protocol: form-encoded `Action=...&Version=...` in, XML out.

Parameters are decoded and responses encoded by walking botocore's EC2 shapes, so member names
(`VpcId.1`, `Filter.1.Value.1`, `<vpcSet><item>`) follow the model rather than hand-written tables.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import ServiceModel, Shape

from fargo.errors import AwsError, InvalidAction, InvalidParameterValue, ServerException

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class QueryService:
    model: ServiceModel
    handlers: dict[str, Handler]


async def dispatch_query(service: QueryService, body: bytes) -> tuple[int, bytes]:
    request_id = str(uuid.uuid4())
    try:
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            raise InvalidParameterValue("The request body is not valid form-encoded UTF-8.") from None
        action = form.pop("Action", "")
        form.pop("Version", None)
        handler = service.handlers.get(action)
        if handler is None or action not in service.model.operation_names:
            raise InvalidAction(f"The action {action or '(none)'} is not valid for this web service.")
        op = service.model.operation_model(action)
        params = _decode(form, "", op.input_shape) if op.input_shape else {}
        result = await handler(params or {})
        xmlns = service.model.metadata.get("xmlNamespace", "")
        xmlns = xmlns if xmlns.endswith("/") else xmlns + "/"
        inner = _encode_members(result, op.output_shape) if op.output_shape else ""
        doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{xmlns}">'
               f"<requestId>{request_id}</requestId>{inner}</{action}Response>")
        return 200, doc.encode()
    except AwsError as e:
        return e.status, _error_xml(e, request_id)
    except Exception:
        log.exception("unhandled error in EC2 query request")
        return 500, _error_xml(ServerException("An internal error has occurred."), request_id)


def _error_xml(e: AwsError, request_id: str) -> bytes:
    code = "InternalError" if e.status >= 500 else e.code
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(e.message)}</Message></Error></Errors><RequestID>{request_id}</RequestID>"
            "</Response>").encode()


def _query_name(name: str, member: Shape) -> str:
    ser = member.serialization
    if ser.get("queryName"):
        return ser["queryName"]
    if ser.get("name"):
        return ser["name"][0].upper() + ser["name"][1:]
    return name


def _decode(form: dict[str, str], prefix: str, shape: Shape) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            key = f"{prefix}.{_query_name(name, member)}" if prefix else _query_name(name, member)
            value = _decode(form, key, member)
            if value is not None:
                out[name] = value
        return out or None
    if kind == "list":
        items = []
        i = 1
        while any(k == f"{prefix}.{i}" or k.startswith(f"{prefix}.{i}.") for k in form):
            items.append(_decode(form, f"{prefix}.{i}", shape.member))
            i += 1
        return items or None
    if prefix not in form:
        return None
    raw = form[prefix]
    try:
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("float", "double"):
            return float(raw)
    except ValueError:
        raise InvalidParameterValue(f"Invalid value '{raw}' for {prefix}.") from None
    if kind == "boolean":
        return raw.lower() == "true"
    return raw


def _xml_name(name: str, member: Shape) -> str:
    return member.serialization.get("name", name)


def _encode_members(value: dict[str, Any], shape: Shape) -> str:
    parts = []
    for name, member in shape.members.items():
        if name in value and value[name] is not None:
            tag = _xml_name(name, member)
            parts.append(f"<{tag}>{_encode_value(value[name], member)}</{tag}>")
    return "".join(parts)


def _encode_value(value: Any, shape: Shape) -> str:
    kind = shape.type_name
    if kind == "structure":
        return _encode_members(value, shape)
    if kind == "list":
        item = shape.member.serialization.get("name", "item")
        return "".join(f"<{item}>{_encode_value(v, shape.member)}</{item}>" for v in value)
    if kind == "boolean":
        return "true" if value else "false"
    return escape(str(value))
