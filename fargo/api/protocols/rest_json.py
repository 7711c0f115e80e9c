"""AWS REST-JSON: the operation is the HTTP method and path of botocore's `http.requestUri` (`{Label}`s in it),
members travel in the path, the query string, headers and a JSON body; the reply has the operation's
`http.responseCode`. Errors are `{"ErrorCode": code, "Message": text, ...modeled members}` with the header
`x-amzn-ErrorType: <code>`, which is where botocore reads the code from (EFS, ...).

Bad input of an operation that models `BadRequest` is answered as BadRequest (400) with the usual
"1 validation error detected: ..." wording; the maximums botocore leaves to the service (lengths, values)
are checked here too. Patterns are not: ids such as Fargo's `subnet-fargo-default-1a` break the model's id
patterns, and the services check what they must themselves.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from botocore.model import OperationModel, Shape

from fargo.api.protocols.codec import Call, Codec, Route, WireRequest, WireResponse
from fargo.api.protocols.json_bodies import TOO_DEEP, dump, parse_json_object, shape_output
from fargo.api.service_models import validate_input
from fargo.errors import AwsError, BadRequest, SerializationException, UnknownOperationException, ValidationException

if TYPE_CHECKING:
    from fargo.api.aws_service import AwsService

CONTENT_TYPE = "application/json"
_LABEL = re.compile(r"\{([^}]+)\}")
_INTEGERS = ("integer", "long")
_FLOATS = ("float", "double")


@dataclass(frozen=True)
class _Template:
    """One operation's `requestUri`, ready to match a request's method and path."""

    operation: OperationModel
    method: str
    segment_labels: re.Pattern[str]  # labels match one path segment
    spanning_labels: re.Pattern[str]  # labels may span segments (the server hands over %2F decoded: ARNs)
    query_keys: tuple[str, ...]  # fixed query parts of the URI ("?tagging")
    literal_chars: int  # more literal text = a more specific template


def _template(operation: OperationModel) -> _Template:
    uri = operation.http.get("requestUri", "/")
    path, _, query = uri.partition("?")

    def pattern(label_body: str, greedy_body: str) -> re.Pattern[str]:
        out, at = [], 0
        for m in _LABEL.finditer(path):
            out.append(re.escape(path[at:m.start()]))
            name = m.group(1)
            group = name.rstrip("+")
            out.append(f"(?P<{_group_name(group)}>{greedy_body if name.endswith('+') else label_body})")
            at = m.end()
        out.append(re.escape(path[at:]))
        return re.compile("".join(out))

    keys = tuple(part.partition("=")[0] for part in query.split("&") if part)
    return _Template(operation, operation.http.get("method", "POST").upper(), pattern("[^/]+", ".+"),
                     pattern(".+", ".+"), keys, len(_LABEL.sub("", path)))


def _group_name(label: str) -> str:
    return "L_" + re.sub(r"\W", "_", label)


class RestJson(Codec):
    protocol = "rest-json"

    def __init__(self) -> None:
        self._templates: dict[AwsService, list[_Template]] = {}

    def route(self, request: WireRequest, services: Sequence[AwsService]) -> Route | None:
        signed_for = request.signed_for
        for service in services:
            if service.signing_name == signed_for:
                return Route(service, exact=True)
        for service in services:  # unsigned: a path one of the service's operations has
            if any(t.spanning_labels.fullmatch(request.path) for t in self._templates_of(service)):
                return Route(service, exact=True)
        return None

    def decode(self, request: WireRequest, service: AwsService | None) -> Call:
        found = self._match(request, service) if service is not None else None
        if service is None or found is None:
            raise UnknownOperationException(f"No operation matches {request.method} {request.path}.")
        template, labels = found
        operation = service.operation(template.operation.name)
        if operation is None:
            raise UnknownOperationException(
                f"Operation {template.operation.name} is not supported by this endpoint.")
        try:
            params = _params(request, operation, labels)
            validate_input(operation, params)
            if operation.input_shape is not None:
                problem = _constraint_problem(params, operation.input_shape, "")
                if problem:
                    raise ValidationException("1 validation error detected: " + problem)
        except RecursionError:
            raise _as_modeled(operation, SerializationException(TOO_DEEP)) from None
        except (SerializationException, ValidationException) as e:
            raise _as_modeled(operation, e) from None
        return Call(service, operation, params)

    def encode_result(self, call: Call, result: dict[str, Any], request_id: str) -> WireResponse:
        status = int(call.operation.http.get("responseCode", 200))
        headers = {"x-amzn-RequestId": request_id}
        shape = call.operation.output_shape
        if shape is None or status == 204:
            return WireResponse(status, b"", CONTENT_TYPE, headers)
        body: dict[str, Any] = {}
        for name, member in shape.members.items():
            value = result.get(name)
            if value is None:
                continue
            location = member.serialization.get("location")
            if location == "header":
                headers[member.serialization.get("name", name)] = _header_text(value)
            elif location == "statusCode":
                status = int(value)
            elif location is None:
                body[name] = value
        payload = shape.serialization.get("payload")
        if payload:
            member = shape.members[payload]
            value = result.get(payload)
            if member.type_name in ("blob", "string"):
                raw = value.encode() if isinstance(value, str) else (value or b"")
                return WireResponse(status, raw, CONTENT_TYPE, headers)
            return WireResponse(status, dump(shape_output(value or {}, member)), CONTENT_TYPE, headers)
        return WireResponse(status, dump(shape_output(body, shape)), CONTENT_TYPE, headers)

    def encode_error(self, error: AwsError, request_id: str) -> WireResponse:
        code, message = error.code, error.message
        if error.status >= 500 and code == "ServerException":
            code = "InternalServerError"  # what REST-JSON services name a failure of their own
        body = {"ErrorCode": code, "Message": message, **error.members}
        return WireResponse(error.status, dump(body), CONTENT_TYPE,
                            {"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id})

    # --- helpers -------------------------------------------------------------------------------

    def _templates_of(self, service: AwsService) -> list[_Template]:
        found = self._templates.get(service)
        if found is None:
            model = service.model
            found = sorted((_template(model.operation_model(n)) for n in model.operation_names),
                           key=lambda t: -t.literal_chars)
            self._templates[service] = found
        return found

    def _match(self, request: WireRequest, service: AwsService) -> tuple[_Template, dict[str, str]] | None:
        """The most specific template of the request's method and path; labels of one segment first, then
        labels that span segments (an ARN whose `/` reached us decoded)."""
        query = dict(parse_qsl(request.query_string, keep_blank_values=True))
        templates = [t for t in self._templates_of(service)
                     if t.method == request.method.upper() and all(k in query for k in t.query_keys)]
        for attribute in ("segment_labels", "spanning_labels"):
            for t in templates:
                m = getattr(t, attribute).fullmatch(request.path)
                if m:
                    return t, m.groupdict()
        return None


REST_JSON = RestJson()


def _as_modeled(operation: OperationModel, error: AwsError) -> AwsError:
    """Bad input as the operation's model names it: BadRequest where it has one."""
    if any(e.name == "BadRequest" for e in operation.error_shapes):
        return BadRequest(error.message)
    return error


def _params(request: WireRequest, operation: OperationModel, labels: dict[str, str]) -> dict[str, Any]:
    shape = operation.input_shape
    if shape is None:
        return {}
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.query_string, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    params: dict[str, Any] = {}
    body_members = {}
    for name, member in shape.members.items():
        ser = member.serialization
        location, wire = ser.get("location"), ser.get("name", name)
        if location == "uri":
            label = labels.get(_group_name(wire))
            if label is not None:
                params[name] = _scalar(label, member, name)
        elif location == "querystring":
            if member.type_name == "map":
                taken = {m.serialization.get("name") for m in shape.members.values()}
                extra = {k: v[0] for k, v in query.items() if k not in taken}
                if extra:
                    params[name] = extra
            elif wire in query:
                values = query[wire]
                params[name] = ([_scalar(v, member.member, name) for v in values] if member.type_name == "list"
                                else _scalar(values[0], member, name))
        elif location == "header":
            header = request.header(wire)
            if header is not None:
                params[name] = ([v.strip() for v in header.split(",")] if member.type_name == "list"
                                else _scalar(header, member, name))
        elif location == "headers":
            prefix = wire.lower()
            found = {k[len(prefix):]: v for k, v in request.headers.items() if k.startswith(prefix)}
            if found:
                params[name] = found
        elif location is None:
            body_members[name] = member
    payload = shape.serialization.get("payload")
    if payload:
        member = shape.members[payload]
        if member.type_name in ("blob", "string"):
            if request.body:
                params[payload] = request.body if member.type_name == "blob" else request.body.decode("utf-8")
        elif request.body.strip():
            params[payload] = parse_json_object(request.body)
        return params
    if body_members:
        body = parse_json_object(request.body)
        located = set(shape.members) - set(body_members)
        misplaced = sorted(k for k in body if k in located)
        if misplaced:  # a path or query member may not come in the body instead
            raise SerializationException(f"Unexpected member '{misplaced[0]}' in the request body.")
        params.update(body)
    return params


def _scalar(text: str, shape: Shape, name: str) -> Any:
    """A path, query or header value as the member's type."""
    kind = shape.type_name
    try:
        if kind in _INTEGERS:
            return int(text)
        if kind in _FLOATS:
            return float(text)
    except ValueError:
        raise SerializationException(f"Value '{text}' for {name} is not a number.") from None
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise SerializationException(f"Value '{text}' for {name} is not a boolean.")
        return text.lower() == "true"
    return text


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _constraint_problem(value: Any, shape: Shape, path: str) -> str | None:
    """The first value above a maximum of the model (botocore checks minimums only)."""
    kind, meta = shape.type_name, shape.metadata
    where = path or "input"
    if kind == "structure" and isinstance(value, dict):
        for key, member_value in value.items():
            member = shape.members.get(key)
            if member is not None and member_value is not None:
                found = _constraint_problem(member_value, member, f"{path}.{key}" if path else key)
                if found:
                    return found
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            return (f"Value '{value}' at '{where}' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {meta['max']}")
        for i, item in enumerate(value):
            found = _constraint_problem(item, shape.member, f"{path}[{i}]")
            if found:
                return found
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            found = _constraint_problem(item, shape.value, f"{path}.{key}")
            if found:
                return found
    elif kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            return (f"Value '{value}' at '{where}' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {meta['max']}")
    elif kind in (*_INTEGERS, *_FLOATS) and isinstance(value, (int, float)) and not isinstance(value, bool):
        if "max" in meta and value > meta["max"]:
            return (f"Value '{value}' at '{where}' failed to satisfy constraint: "
                    f"Member must have value less than or equal to {meta['max']}")
    return None
