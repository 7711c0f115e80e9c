"""Protocols and services register without touching each other: a new codec is one module, a new service one more."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botocore.model import ServiceModel

from fargo.api.aws_service import AwsService
from fargo.api.protocol_router import ProtocolRouter
from fargo.api.protocols.codec import Call, Codec, Route, WireRequest, WireResponse
from fargo.api.protocols.ec2_query import EC2_QUERY
from fargo.api.protocols.json11 import AWS_JSON_1_1
from fargo.api.server import EdgeServer
from fargo.api.service_models import service_model
from fargo.errors import AwsError, UnknownOperationException

ECS_TARGET = "AmazonEC2ContainerServiceV20141113."


class PathRpc(Codec):
    """A protocol no AWS service uses: `POST /rpc/<Operation>` with a JSON body, addressed by path alone."""

    protocol = "path-rpc"

    def route(self, request: WireRequest, services: Sequence[AwsService]) -> Route | None:
        if not request.path.startswith("/rpc/"):
            return None
        return Route(services[0], exact=True)

    def decode(self, request: WireRequest, service: AwsService | None) -> Call:
        name = request.path.removeprefix("/rpc/")
        operation = service.operation(name) if service else None
        if service is None or operation is None:
            raise UnknownOperationException(name)
        return Call(service, operation, json.loads(request.body or b"{}"))

    def encode_result(self, call: Call, result: dict[str, Any], request_id: str) -> WireResponse:
        return WireResponse(200, json.dumps({"result": result}).encode(), "application/json")

    def encode_error(self, error: AwsError, request_id: str) -> WireResponse:
        return WireResponse(error.status, json.dumps({"error": error.code}).encode(), "application/json")


# A botocore model of a made-up service, as botocore would load one from its data files.
ECHO_MODEL = ServiceModel({
    "metadata": {"apiVersion": "2030-01-01", "endpointPrefix": "echo", "protocol": "path-rpc",
                 "protocols": ["path-rpc"], "serviceId": "Echo", "signatureVersion": "v4"},
    "operations": {"Echo": {"name": "Echo", "http": {"method": "POST", "requestUri": "/"},
                            "input": {"shape": "EchoMessage"}, "output": {"shape": "EchoMessage"}}},
    "shapes": {"EchoMessage": {"type": "structure", "members": {"text": {"shape": "String"}}},
               "String": {"type": "string"}},
}, service_name="echo")


async def _echo(params: dict) -> dict:
    return {"text": params.get("text", "")}


async def _no_clusters(_params: dict) -> dict:
    return {"clusterArns": []}


async def _one_zone(_params: dict) -> dict:
    return {"AvailabilityZones": [{"ZoneName": "us-east-1a"}]}


async def _no_log_groups(_params: dict) -> dict:
    return {"logGroups": []}


def _ecs() -> AwsService:
    return AwsService(service_model("ecs"), AWS_JSON_1_1, {"ListClusters": _no_clusters})


def _ec2() -> AwsService:
    return AwsService(service_model("ec2"), EC2_QUERY, {"DescribeAvailabilityZones": _one_zone})


def _echo_service() -> AwsService:
    return AwsService(ECHO_MODEL, PathRpc(), {"Echo": _echo})


def _answer(router: ProtocolRouter, path: str, headers: dict[str, str], body: bytes) -> WireResponse:
    answer = asyncio.run(router.answer(WireRequest("POST", path, headers, body)))
    assert answer is not None
    return answer


def test_a_new_codec_and_service_answer_beside_ecs_and_ec2() -> None:
    router = ProtocolRouter([_ecs(), _ec2(), _echo_service()])
    echoed = _answer(router, "/rpc/Echo", {}, b'{"text": "hi"}')
    assert (echoed.status, json.loads(echoed.body)) == (200, {"result": {"text": "hi"}})
    ecs = _answer(router, "/", {"x-amz-target": ECS_TARGET + "ListClusters"}, b"{}")
    assert ecs.content_type == "application/x-amz-json-1.1" and json.loads(ecs.body) == {"clusterArns": []}
    ec2 = _answer(router, "/", {"content-type": "application/x-www-form-urlencoded"},
                  b"Action=DescribeAvailabilityZones&Version=2016-11-15")
    assert ec2.status == 200 and b"<zoneName>us-east-1a</zoneName>" in ec2.body


def test_a_second_json_service_is_routed_by_its_target_prefix() -> None:
    logs = AwsService(service_model("logs"), AWS_JSON_1_1, {"DescribeLogGroups": _no_log_groups})
    router = ProtocolRouter([_ecs(), logs])
    answer = _answer(router, "/", {"x-amz-target": "Logs_20140328.DescribeLogGroups"}, b"{}")
    assert json.loads(answer.body) == {"logGroups": []}
    refused = _answer(router, "/", {"x-amz-target": "Logs_20140328.ListClusters"}, b"{}")
    assert json.loads(refused.body)["__type"] == "UnknownOperationException"


def test_an_exact_claim_beats_a_codec_that_claims_everything_listed_before_it() -> None:
    class Greedy(PathRpc):
        def route(self, request: WireRequest, services: Sequence[AwsService]) -> Route | None:
            return Route(services[0], exact=False)

    router = ProtocolRouter([AwsService(ECHO_MODEL, Greedy(), {"Echo": _echo}), _ec2()])
    signed = {"authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ec2/aws4_request, "
                               "SignedHeaders=host, Signature=0"}
    answer = _answer(router, "/", signed, b"Action=DescribeAvailabilityZones&Version=2016-11-15")
    assert answer.status == 200 and answer.content_type == "text/xml"


def test_a_service_must_be_served_over_a_protocol_its_model_names() -> None:
    with pytest.raises(ValueError, match="not served over the 'ec2' protocol"):
        AwsService(service_model("ecs"), EC2_QUERY, {})
    with pytest.raises(ValueError, match="not served over the 'json' protocol"):
        AwsService(service_model("cloudwatch"), AWS_JSON_1_1, {})  # CloudWatch speaks JSON 1.0, not 1.1
    with pytest.raises(ValueError, match="no operations named FlyToTheMoon"):
        AwsService(service_model("ecs"), AWS_JSON_1_1, {"FlyToTheMoon": _no_clusters})


def test_the_edge_server_hands_any_path_outside_fargo_routes_to_the_codecs() -> None:
    async def health() -> tuple[bool, dict]:
        return True, {}

    async def images(_request: web.Request) -> web.Response:
        return web.json_response({"images": []})

    edge = EdgeServer([_ecs(), _echo_service()], health)
    edge.add_routes([web.get("/_fargo/images", images)])  # added after the catch-all, still reachable

    async def scenario() -> None:
        async with TestClient(TestServer(edge.app)) as client:
            echoed = await client.post("/rpc/Echo", data=b'{"text": "path"}')
            assert await echoed.json() == {"result": {"text": "path"}}
            listed = await client.post("/", data=b"{}", headers={"X-Amz-Target": ECS_TARGET + "ListClusters"})
            assert listed.headers["x-amzn-RequestId"] and await listed.json(content_type=None) == {"clusterArns": []}
            assert (await client.get("/_fargo/images")).status == 200
            assert (await client.get("/_fargo/health")).status == 200
            assert (await client.get("/favicon.ico")).status == 404
            unclaimed = await client.post("/", data=b"hello")
            assert unclaimed.status == 400
            assert (await unclaimed.json(content_type=None))["__type"] == "SerializationException"

    asyncio.run(scenario())
