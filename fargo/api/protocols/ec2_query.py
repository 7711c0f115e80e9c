"""EC2's query protocol: form-encoded `Action=...&Version=...` in, XML out.

Parameters are decoded and responses encoded by walking botocore's EC2 shapes, so member names
(`VpcId.1`, `Filter.1.Value.1`, `<vpcSet><item>`) follow the model rather than hand-written tables.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_to_bytes
from xml.sax.saxutils import escape

from botocore.model import Shape

from fargo.api.protocols.codec import Call, Codec, Route, WireRequest, WireResponse
from fargo.errors import AwsError, InvalidAction, InvalidParameterValue

if TYPE_CHECKING:
    from fargo.api.aws_service import AwsService

FORM = "application/x-www-form-urlencoded"
_VERSION = re.compile(rb"(?:^|&)Version=([^&]*)")
# Deeper than any EC2 input shape's parameter names; keys nested deeper can match no member.
_MAX_KEY_SEGMENTS = 32


class Ec2Query(Codec):
    protocol = "ec2"

    def route(self, request: WireRequest, services: Sequence[AwsService]) -> Route | None:
        signed_for = request.signed_for
        for service in services:
            if service.signing_name == signed_for:
                return Route(service, exact=True)
        if request.content_type != FORM or not services:
            return None
        found = _VERSION.search(request.body)
        version = unquote_to_bytes(found.group(1)).decode(errors="replace") if found else None
        for service in services:
            if service.model.api_version == version:
                return Route(service, exact=True)
        return Route(services[0], exact=False)  # an unsigned form without a version we know: EC2 words it

    def decode(self, request: WireRequest, service: AwsService | None) -> Call:
        try:
            form = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            raise InvalidParameterValue("The request body is not valid form-encoded UTF-8.") from None
        action = form.pop("Action", "")
        form.pop("Version", None)
        operation = service.operation(action) if service is not None else None
        if service is None or operation is None:
            raise InvalidAction(f"The action {action or '(none)'} is not valid for this web service.")
        params = decode_query_params(form, operation.input_shape) if operation.input_shape else {}
        return Call(service, operation, params)

    def encode_result(self, call: Call, result: dict[str, Any], request_id: str) -> WireResponse:
        action = call.operation.name
        xmlns = call.service.model.metadata.get("xmlNamespace", "")
        xmlns = xmlns if xmlns.endswith("/") else xmlns + "/"
        shape = call.operation.output_shape
        inner = _encode_members(result, shape) if shape is not None else ""
        doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{xmlns}">'
               f"<requestId>{request_id}</requestId>{inner}</{action}Response>")
        return WireResponse(200, doc.encode(), "text/xml")

    def encode_error(self, error: AwsError, request_id: str) -> WireResponse:
        code, message = error.code, error.message
        if error.status >= 500:
            code, message = "InternalError", "An internal error has occurred."
        doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{escape(code)}</Code>'
               f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID>"
               "</Response>")
        return WireResponse(error.status, doc.encode(), "text/xml")


EC2_QUERY = Ec2Query()


def decode_query_params(form: dict[str, str], shape: Shape) -> dict[str, Any]:
    """`form` (without Action and Version) as the members of input `shape`."""
    return _decode(form, _list_elements(form), "", shape) or {}


def _list_elements(form: dict[str, str]) -> set[str]:
    """Every `Name.N` (and `A.N.B.M`) some key starts with: the list elements present, found in one pass."""
    found = set()
    for key in form:
        parts = key.split(".", _MAX_KEY_SEGMENTS)[:_MAX_KEY_SEGMENTS]
        for i, part in enumerate(parts):
            if part.isdigit():
                found.add(".".join(parts[:i + 1]))
    return found


def _query_name(name: str, member: Shape) -> str:
    ser = member.serialization
    if ser.get("queryName"):
        return ser["queryName"]
    if ser.get("name"):
        return ser["name"][0].upper() + ser["name"][1:]
    return name


def _decode(form: dict[str, str], elements: set[str], prefix: str, shape: Shape) -> Any:
    # Recursion follows the model's shapes, never the depth of what the caller sent.
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            key = f"{prefix}.{_query_name(name, member)}" if prefix else _query_name(name, member)
            value = _decode(form, elements, key, member)
            if value is not None:
                out[name] = value
        return out or None
    if kind == "list":
        items = []
        i = 1
        while f"{prefix}.{i}" in elements:  # numbered from 1; the first gap ends the list
            items.append(_decode(form, elements, f"{prefix}.{i}", shape.member))
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
