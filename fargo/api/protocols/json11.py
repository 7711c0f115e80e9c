"""AWS JSON 1.1: `X-Amz-Target: <targetPrefix>.<Operation>`, a JSON body in, a JSON body out.

Errors travel as `{"__type": name, "message": text}` with the error's HTTP status (ECS, Logs, SSM, ...).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.model import ServiceModel

from fargo.api.protocols.codec import Call, Codec, Route, WireRequest, WireResponse
from fargo.api.protocols.json_bodies import TOO_DEEP, dump, parse_json_object, shape_output
from fargo.api.service_models import validate_body
from fargo.errors import AwsError, SerializationException, UnknownOperationException

if TYPE_CHECKING:
    from fargo.api.aws_service import AwsService

CONTENT_TYPE = "application/x-amz-json-1.1"


class AwsJson11(Codec):
    protocol = "json"
    json_version = "1.1"

    def speaks_for(self, model: ServiceModel) -> bool:
        return super().speaks_for(model) and model.metadata.get("jsonVersion") == self.json_version

    def route(self, request: WireRequest, services: Sequence[AwsService]) -> Route | None:
        target = request.header("x-amz-target")
        if target is None:
            return None
        prefix = target.partition(".")[0]
        for service in services:
            if service.model.metadata.get("targetPrefix") == prefix:
                return Route(service, exact=True)
        return Route(None, exact=False)  # a target no service here has: UnknownOperationException

    def decode(self, request: WireRequest, service: AwsService | None) -> Call:
        target = request.header("x-amz-target") or ""
        name = target.partition(".")[2]
        if service is None or not name:
            raise UnknownOperationException(f"The target {target} is not a known operation.")
        operation = service.operation(name)
        if operation is None:
            raise UnknownOperationException(f"Operation {name} is not supported by this endpoint.")
        params = parse_json_object(request.body)
        try:
            validate_body(operation, request.body, params)
        except RecursionError:  # parse bounds depth; this guards models with recursive or document shapes
            raise SerializationException(TOO_DEEP) from None
        return Call(service, operation, params)

    def encode_result(self, call: Call, result: dict[str, Any], request_id: str) -> WireResponse:
        return WireResponse(200, dump(shape_output(result, call.operation.output_shape)), CONTENT_TYPE,
                            {"x-amzn-RequestId": request_id})

    def encode_error(self, error: AwsError, request_id: str) -> WireResponse:
        return WireResponse(error.status, dump({"__type": error.code, "message": error.message}), CONTENT_TYPE,
                            {"x-amzn-RequestId": request_id})


AWS_JSON_1_1 = AwsJson11()
