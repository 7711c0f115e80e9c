"""Bad input never gives a 5xx or a traceback: every answer is an AWS-shaped 4xx error."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TARGET = "AmazonEC2ContainerServiceV20141113."
ECS_OPERATIONS = sorted(botocore.session.get_session().get_service_model("ecs").operation_names)


def post(endpoint: str, body: bytes, target: str | None = None,
         content_type: str = "application/x-amz-json-1.1") -> tuple[int, dict | str]:
    headers = {"Content-Type": content_type}
    if target:
        headers["X-Amz-Target"] = target
    req = urllib.request.Request(endpoint + "/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def test_malformed_json_is_a_serialization_exception(fargo) -> None:
    status, body = post(fargo.endpoint, b"{not json", TARGET + "ListClusters")
    assert status == 400 and body["__type"] == "SerializationException"


def test_a_json_array_body_is_a_serialization_exception(fargo) -> None:
    status, body = post(fargo.endpoint, b"[1,2]", TARGET + "ListClusters")
    assert status == 400 and body["__type"] == "SerializationException"


def test_unknown_operation(fargo) -> None:
    status, body = post(fargo.endpoint, b"{}", TARGET + "FlyToTheMoon")
    assert status == 400 and body["__type"] == "UnknownOperationException"


def test_wrong_types_are_serialization_exceptions(fargo) -> None:
    status, body = post(fargo.endpoint, json.dumps({"maxResults": "ten"}).encode(), TARGET + "ListClusters")
    assert status == 400 and body["__type"] == "SerializationException"


def test_unknown_fields_and_missing_required_fields_are_validation_errors(fargo) -> None:
    status, body = post(fargo.endpoint, json.dumps({"bogus": 1}).encode(), TARGET + "ListClusters")
    assert status == 400 and body["__type"] == "ValidationException"
    status, body = post(fargo.endpoint, b"{}", TARGET + "DescribeTaskDefinition")
    assert status == 400 and body["__type"] == "ValidationException"
    assert "taskDefinition" in body["message"]


def test_bad_enum_is_a_validation_error(fargo) -> None:
    status, body = post(fargo.endpoint, json.dumps({"status": "SLEEPY"}).encode(), TARGET + "ListTaskDefinitions")
    assert status == 400 and body["__type"] == "ValidationException"


def test_huge_body_is_refused_with_413(fargo) -> None:
    status, body = post(fargo.endpoint, b"{" + b" " * (5 * 1024 * 1024) + b"}", TARGET + "ListClusters")
    assert status == 413 and body["__type"] == "RequestEntityTooLarge"


@pytest.mark.parametrize("body", [
    b'{"clusters": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,
    b'{"clusters": ' + b"[" * 500 + b"]" * 500 + b"}",  # parses, but deeper than any ECS shape
], ids=["array-100000", "object-100000", "array-500"])
def test_json_nested_deeply_is_a_serialization_exception(fargo, body: bytes) -> None:
    status, answer = post(fargo.endpoint, body, TARGET + "DescribeClusters")
    assert status == 400 and answer["__type"] == "SerializationException", answer


def test_unknown_ec2_action(fargo) -> None:
    status, body = post(fargo.endpoint, b"Action=LaunchRockets&Version=2016-11-15",
                        content_type="application/x-www-form-urlencoded")
    assert status == 400 and "<Code>InvalidAction</Code>" in body


def test_ec2_query_with_100000_list_members_is_answered_at_once(fargo) -> None:
    many = "&".join(f"SubnetId.{i}=subnet-{i}" for i in range(1, 100_001))
    status, body = post(fargo.endpoint, f"Action=DescribeSubnets&Version=2016-11-15&{many}".encode(),
                        content_type="application/x-www-form-urlencoded")
    assert status == 400 and "<Code>InvalidSubnetID.NotFound</Code>" in body


def test_ec2_query_with_a_parameter_name_100000_levels_deep_is_answered(fargo) -> None:
    deep = "Filter.1.Name=vpc-id&Filter.1.Value.1" + ".1" * 100_000 + "=x"
    status, body = post(fargo.endpoint, f"Action=DescribeVpcs&Version=2016-11-15&{deep}".encode(),
                        content_type="application/x-www-form-urlencoded")
    assert status == 200 and "<vpcSet" in body


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)


@pytest.mark.parametrize("operation", ECS_OPERATIONS)
def test_random_bodies_never_give_a_server_error(fargo, operation: str) -> None:
    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64),
                          st.dictionaries(st.sampled_from(_members(operation) or ["x"]), json_values, max_size=5)
                          .map(lambda v: json.dumps(v).encode())))
    def run(body: bytes) -> None:
        status, answer = post(fargo.endpoint, body, TARGET + operation)
        assert status < 500, (operation, body, answer)
        if status >= 400:
            assert isinstance(answer, dict) and answer.get("__type"), answer
    run()


def _members(operation: str) -> list[str]:
    model = botocore.session.get_session().get_service_model("ecs").operation_model(operation)
    return list(model.input_shape.members) if model.input_shape else []


EC2_OPERATIONS = ["DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups", "DescribeAvailabilityZones"]
form_keys = st.sampled_from(["VpcId.1", "SubnetId.1", "Filter.1.Name", "Filter.1.Value.1", "MaxResults",
                             "DryRun", "GroupId.1", "ZoneName.1", "NextToken", "Bogus"])


@pytest.mark.parametrize("operation", EC2_OPERATIONS)
def test_random_ec2_query_bodies_never_give_a_server_error(fargo, operation: str) -> None:
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(params=st.dictionaries(form_keys, st.text(max_size=12), max_size=5), junk=st.binary(max_size=16))
    def run(params: dict, junk: bytes) -> None:
        from urllib.parse import urlencode
        body = urlencode({"Action": operation, "Version": "2016-11-15", **params}).encode() + junk
        status, answer = post(fargo.endpoint, body, content_type="application/x-www-form-urlencoded")
        assert status < 500, (operation, body, answer)
        if status >= 400:
            assert "<Code>" in answer, answer
    run()
