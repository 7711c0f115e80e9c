"""Wire formats: EC2 query parameters decode by botocore's shapes, AWS errors and pagination tokens."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from fargo.errors import (
    InvalidParameterException,
    SerializationException,
    ValidationException,
)
from fargo.api.aws_service import AwsService
from fargo.api.protocol_router import ProtocolRouter
from fargo.api.protocols.codec import WireRequest
from fargo.api.protocols.ec2_query import decode_query_params
from fargo.api.protocols.json11 import AWS_JSON_1_1
from fargo.api.encoded_tasks import EncodedTasks
from fargo.api.protocols.json_bodies import EncodedJson, dump, shape_output
from fargo.api.service_models import service_model, validate_input
from fargo.control.pagination import decode_token, next_token, page_bounds


def test_ec2_query_lists_and_filters_decode_by_the_model() -> None:
    op = service_model("ec2").operation_model("DescribeSubnets")
    form = {"SubnetId.1": "a", "SubnetId.2": "b", "Filter.1.Name": "vpc-id", "Filter.1.Value.1": "v",
            "MaxResults": "10"}
    assert decode_query_params(form, op.input_shape) == {
        "SubnetIds": ["a", "b"], "Filters": [{"Name": "vpc-id", "Values": ["v"]}], "MaxResults": 10}


def test_validation_uses_awss_wording() -> None:
    op = service_model("ecs").operation_model("DescribeTaskDefinition")
    with pytest.raises(ValidationException) as e:
        validate_input(op, {})
    assert e.value.message == ("1 validation error detected: Value null at 'taskDefinition' failed to satisfy "
                               "constraint: Member must not be null")
    with pytest.raises(SerializationException):
        validate_input(op, {"taskDefinition": 5})


def test_a_body_found_valid_is_not_checked_again_and_a_bad_one_always_is(monkeypatch: pytest.MonkeyPatch) -> None:
    from fargo.api import service_models
    model = service_model("ecs")
    describe, stop = model.operation_model("DescribeTasks"), model.operation_model("StopTask")
    checked: list[str] = []
    real = service_models.validate_input
    monkeypatch.setattr(service_models, "validate_input", lambda op, p: (checked.append(op.name), real(op, p)))
    good = b'{"cluster":"default","tasks":["t-1"]}'
    for _ in range(3):
        service_models.validate_body(describe, good, json.loads(good))
    assert checked == ["DescribeTasks"]
    assert all(good not in key and len(key[2]) == 16 for key in service_models._VALID_BODIES)  # digests, no body
    with pytest.raises(ValidationException):  # the same body for another operation is checked for that one
        service_models.validate_body(stop, good, json.loads(good))
    bad = b'{"tasks":["t-1"],"bogus":1}'
    for _ in range(2):
        with pytest.raises(ValidationException):
            service_models.validate_body(describe, bad, json.loads(bad))
    assert checked == ["DescribeTasks", "StopTask", "DescribeTasks", "DescribeTasks"]


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

    router = ProtocolRouter([AwsService(service_model("ecs"), AWS_JSON_1_1, {"ListClusters": broken})])
    answer = asyncio.run(router.answer(WireRequest(
        "POST", "/", {"x-amz-target": "AmazonEC2ContainerServiceV20141113.ListClusters"}, b"{}")))
    assert answer is not None and answer.status == 500
    assert json.loads(answer.body)["__type"] == "ServerException" and b"boom" not in answer.body


def _ecs_answer(body: bytes, operation: str = "DescribeClusters") -> tuple[int, dict]:
    async def describe_clusters(_params: dict) -> dict:
        return {"clusters": []}

    router = ProtocolRouter([AwsService(service_model("ecs"), AWS_JSON_1_1, {operation: describe_clusters})])
    answer = asyncio.run(router.answer(WireRequest(
        "POST", "/", {"x-amz-target": "AmazonEC2ContainerServiceV20141113." + operation}, body)))
    assert answer is not None
    return answer.status, json.loads(answer.body)


@pytest.mark.parametrize("depth", [100_000, 5_000, 990, 101])
def test_json_nested_too_deep_is_a_serialization_exception(depth: int) -> None:
    status, body = _ecs_answer(b'{"clusters": ' + b"[" * depth + b"]" * depth + b"}")
    assert status == 400 and body["__type"] == "SerializationException"
    assert "nested more than 100 levels" in body["message"]


def test_json_nested_within_the_bound_reaches_validation() -> None:
    status, body = _ecs_answer(b'{"clusters": ' + b"[" * 99 + b"]" * 99 + b"}")
    assert status == 400 and body["__type"] == "SerializationException" and "expected string" in body["message"]


def test_ec2_query_list_decoding_is_linear_in_the_number_of_parameters() -> None:
    op = service_model("ec2").operation_model("DescribeSubnets")
    form = {f"SubnetId.{i}": f"subnet-{i}" for i in range(1, 100_001)}
    started = time.perf_counter()
    assert len(decode_query_params(form, op.input_shape)["SubnetIds"]) == 100_000
    assert time.perf_counter() - started < 5  # the old scan per element took minutes here


def test_ec2_query_lists_end_at_the_first_gap_and_deep_keys_match_nothing() -> None:
    op = service_model("ec2").operation_model("DescribeSubnets")
    form = {"SubnetId.1": "a", "SubnetId.3": "c", "NoSuchMember" + ".1" * 100_000: "deep"}
    assert decode_query_params(form, op.input_shape) == {"SubnetIds": ["a"]}


def test_output_is_shaped_by_the_model_dropping_unknown_members_and_nones() -> None:
    output = service_model("ecs").operation_model("DescribeTasks").output_shape
    shaped = shape_output({
        "tasks": [{"taskArn": "arn:t", "internal": {"agent": 1}, "stoppedReason": None,
                   "containers": [{"name": "app", "exitCode": 0, "secret": "x"}],
                   "attachments": [{"details": [{"name": "subnetId", "value": "subnet-1", "extra": 1}]}],
                   "tags": [{"key": "k", "value": "v"}]}],
        "failures": [], "privateNote": "not in the model"}, output)
    assert shaped == {"tasks": [{"taskArn": "arn:t", "containers": [{"name": "app", "exitCode": 0}],
                                 "attachments": [{"details": [{"name": "subnetId", "value": "subnet-1"}]}],
                                 "tags": [{"key": "k", "value": "v"}]}], "failures": []}
    assert shape_output({"tasks": "not a list"}, output) == {"tasks": "not a list"}  # left as it is
    assert shape_output({"anything": 1}, None) == {}


def test_a_task_encoded_once_answers_as_the_model_shapes_it_until_its_version_moves() -> None:
    model = service_model("ecs")
    output = model.operation_model("DescribeTasks").output_shape
    tasks = EncodedTasks(model.shape_for("Task"))
    doc = {"taskArn": "arn:t", "version": 1, "lastStatus": "PENDING", "internal": 1, "stoppedReason": None,
           "containers": [{"name": "app", "secret": "x"}]}
    answer = {"tasks": [doc], "failures": []}
    first = tasks.describe_tasks(answer, with_tags=False)
    assert json.loads(dump(shape_output(first, output))) == json.loads(dump(shape_output(answer, output)))
    assert tasks.describe_tasks(answer, with_tags=False)["tasks"][0] is first["tasks"][0]  # kept
    moved = {**doc, "version": 2, "lastStatus": "RUNNING"}
    again = tasks.describe_tasks({"tasks": [moved], "failures": []}, with_tags=False)
    assert json.loads(dump(again))["tasks"][0]["lastStatus"] == "RUNNING"
    assert tasks.describe_tasks(answer, with_tags=True) is answer  # tags come from elsewhere: not kept


def test_dump_splices_encoded_members_and_nothing_a_client_sent() -> None:
    sent = "\x00" + "0" * 32 + ":0"  # what a marker looks like, without this process's nonce
    body = dump({"a": [EncodedJson(b'{"x":1}'), sent, EncodedJson(b"[2]")]})
    assert json.loads(body) == {"a": [{"x": 1}, sent, [2]]}
