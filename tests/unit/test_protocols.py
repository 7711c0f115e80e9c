"""Wire formats: EC2 query parameters decode by botocore's shapes, AWS errors and pagination tokens."""
from __future__ import annotations

import asyncio

import pytest

from fargo.errors import (
    InvalidParameterException,
    SerializationException,
    ValidationException,
)
from fargo.api.json_protocol import JsonService, dispatch_json
from fargo.control.pagination import decode_token, next_token, page_bounds
from fargo.api.query_protocol import _decode
from fargo.api.service_models import service_model, validate_input


def test_ec2_query_lists_and_filters_decode_by_the_model() -> None:
    op = service_model("ec2").operation_model("DescribeSubnets")
    form = {"SubnetId.1": "a", "SubnetId.2": "b", "Filter.1.Name": "vpc-id", "Filter.1.Value.1": "v",
            "MaxResults": "10"}
    assert _decode(form, "", op.input_shape) == {
        "SubnetIds": ["a", "b"], "Filters": [{"Name": "vpc-id", "Values": ["v"]}], "MaxResults": 10}


def test_validation_uses_awss_wording() -> None:
    op = service_model("ecs").operation_model("DescribeTaskDefinition")
    with pytest.raises(ValidationException) as e:
        validate_input(op, {})
    assert e.value.message == ("1 validation error detected: Value null at 'taskDefinition' failed to satisfy "
                               "constraint: Member must not be null")
    with pytest.raises(SerializationException):
        validate_input(op, {"taskDefinition": 5})


def test_pagination_tokens_round_trip_and_reject_garbage() -> None:
    token = next_token(0, 2, 3)
    assert token is not None and decode_token(token) == 2
    assert next_token(0, 2, 2) is None
    with pytest.raises(InvalidParameterException):
        decode_token("not-a-token")
    with pytest.raises(InvalidParameterException):
        page_bounds({"maxResults": 101})


def test_a_handler_bug_is_a_500_server_exception_not_a_traceback() -> None:
    async def broken(_params: dict) -> dict:
        raise KeyError("boom")

    service = JsonService(service_model("ecs"), {"ListClusters": broken})
    status, body = asyncio.run(dispatch_json({service.target_prefix: service},
                                             service.target_prefix + ".ListClusters", b"{}"))
    assert status == 500 and b'"__type": "ServerException"' in body and b"boom" not in body
