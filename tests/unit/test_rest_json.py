"""The REST-JSON codec, judged by botocore: requests are made by botocore's own rest-json serializer (as boto3
sends them) and answers read back by its own parser (as boto3 reads them)."""
from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any
from urllib.parse import unquote, urlencode

import pytest
from botocore.model import OperationModel
from botocore.parsers import RestJSONParser
from botocore.serialize import RestJSONSerializer

from fargo import errors
from fargo.api.aws_service import AwsService
from fargo.api.protocol_router import ProtocolRouter
from fargo.api.protocols.codec import Call, WireRequest
from fargo.api.protocols.ec2_query import EC2_QUERY
from fargo.api.protocols.json11 import AWS_JSON_1_1
from fargo.api.protocols.rest_json import REST_JSON
from fargo.api.service_models import service_model

EFS = service_model("efs")
SIGNED_FOR_EFS = ("AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/elasticfilesystem/aws4_request, "
                  "SignedHeaders=host;x-amz-date, Signature=0")


def _operation(name: str) -> OperationModel:
    return EFS.operation_model(name)


def wire(name: str, params: dict[str, Any], signed: bool = True) -> WireRequest:
    """The request botocore makes for `params`, as the edge server hands it on (path and query decoded)."""
    serialized = RestJSONSerializer().serialize_to_request(params, _operation(name))
    query = urlencode(serialized["query_string"], doseq=True) if serialized["query_string"] else ""
    headers = {k.lower(): str(v) for k, v in serialized["headers"].items()}
    if signed:
        headers["authorization"] = SIGNED_FOR_EFS
    body = serialized["body"] if isinstance(serialized["body"], bytes) else serialized["body"].encode()
    return WireRequest(serialized["method"], unquote(serialized["url_path"]), headers, body, query_string=query)


def service(**handlers: Any) -> AwsService:
    return AwsService(EFS, REST_JSON, handlers)


def decode(name: str, params: dict[str, Any], **kwargs: Any) -> Call:
    svc = service(**{name: _echo})
    return REST_JSON.decode(wire(name, params, **kwargs), svc)


async def _echo(p: dict) -> dict:
    return p


def parsed(name: str, status: int, headers: dict[str, str], body: bytes) -> dict:
    """What boto3 makes of an answer."""
    response = {"status_code": status, "headers": {k.lower(): v for k, v in headers.items()}, "body": body}
    out = RestJSONParser().parse(response, _operation(name).output_shape)
    code = out.get("Error", {}).get("Code")
    if code:  # as botocore's client does: the error's modeled members come from its shape
        out.update(RestJSONParser().parse(response, EFS.shape_for(code)))
    return out


def answer(name: str, params: dict[str, Any], handler: Any) -> tuple[int, dict, dict]:
    router = ProtocolRouter([service(**{name: handler})])
    out = asyncio.run(router.answer(wire(name, params)))
    assert out is not None
    return out.status, dict(out.headers), parsed(name, out.status, dict(out.headers), out.body)


# --- requests ------------------------------------------------------------------------------------

def test_a_json_body_decodes_to_the_operations_members() -> None:
    call = decode("CreateFileSystem", {"CreationToken": "t", "Encrypted": True,
                                       "Tags": [{"Key": "Name", "Value": "n"}]})
    assert call.operation.name == "CreateFileSystem"
    assert call.params == {"CreationToken": "t", "Encrypted": True, "Tags": [{"Key": "Name", "Value": "n"}]}


def test_query_members_decode_with_their_types_and_lists_repeat() -> None:
    assert decode("DescribeFileSystems", {"MaxItems": 5, "Marker": "a+b/c"}).params == {
        "MaxItems": 5, "Marker": "a+b/c"}
    untag = decode("UntagResource", {"ResourceId": "fs-0123456789abcdef0", "TagKeys": ["a", "b c", "x+y"]})
    assert untag.params == {"ResourceId": "fs-0123456789abcdef0", "TagKeys": ["a", "b c", "x+y"]}


def test_path_labels_take_ids_and_arns_whose_slash_arrives_decoded() -> None:
    arn = "arn:aws:elasticfilesystem:us-east-1:000000000000:file-system/fs-0123456789abcdef0"
    assert decode("DeleteFileSystem", {"FileSystemId": arn}).params == {"FileSystemId": arn}
    assert decode("DescribeTags", {"FileSystemId": "fs-1"}).params == {"FileSystemId": "fs-1"}  # trailing '/'
    members = {"MountTargetId": "fsmt-0123456789abcdef0", "SecurityGroups": ["sg-0123456789abcdef0"]}
    groups = decode("ModifyMountTargetSecurityGroups", members)
    assert (groups.operation.name, groups.params) == ("ModifyMountTargetSecurityGroups", members)
    assert decode("DescribeMountTargetSecurityGroups", {"MountTargetId": "fsmt-0123456789abcdef0"}).operation.name == (
        "DescribeMountTargetSecurityGroups")


def test_requests_are_claimed_by_signing_name_or_by_a_path_of_the_service() -> None:
    svc = service()
    assert REST_JSON.route(wire("DescribeFileSystems", {}), [svc]).service is svc
    unsigned = wire("DescribeFileSystems", {}, signed=False)
    assert REST_JSON.route(unsigned, [svc]).service is svc
    ecs = WireRequest("POST", "/", {"x-amz-target": "AmazonEC2ContainerServiceV20141113.ListClusters"}, b"{}")
    assert REST_JSON.route(ecs, [svc]) is None
    form = WireRequest("POST", "/", {"content-type": "application/x-www-form-urlencoded"},
                       b"Action=DescribeVpcs&Version=2016-11-15")
    assert REST_JSON.route(form, [svc]) is None


def test_efs_is_routed_beside_ecs_and_ec2() -> None:
    async def listed(_p: dict) -> dict:
        return {"FileSystems": []}
    router = ProtocolRouter([AwsService(service_model("ecs"), AWS_JSON_1_1, {}),
                             AwsService(service_model("ec2"), EC2_QUERY, {}), service(DescribeFileSystems=listed)])
    out = asyncio.run(router.answer(wire("DescribeFileSystems", {})))
    assert out is not None and (out.status, json.loads(out.body)) == (200, {"FileSystems": []})


# --- answers -------------------------------------------------------------------------------------

def test_an_answer_has_the_operations_status_and_boto3_reads_it() -> None:
    async def created(_p: dict) -> dict:
        return {"FileSystemId": "fs-1", "CreationTime": 1595286880.0, "LifeCycleState": "creating",
                "SizeInBytes": {"Value": 0}, "NotInTheModel": 1}
    status, headers, out = answer("CreateFileSystem", {"CreationToken": "t"}, created)
    assert status == 201 and headers["x-amzn-RequestId"]
    assert out["FileSystemId"] == "fs-1" and out["SizeInBytes"] == {"Value": 0} and "NotInTheModel" not in out
    assert out["CreationTime"] == datetime.datetime.fromtimestamp(1595286880.0, datetime.timezone.utc)


def test_deletes_answer_204_with_no_body() -> None:
    router = ProtocolRouter([service(DeleteFileSystem=_echo)])
    out = asyncio.run(router.answer(wire("DeleteFileSystem", {"FileSystemId": "fs-1"})))
    assert out is not None and (out.status, out.body) == (204, b"")


def test_an_error_carries_its_code_in_x_amzn_errortype_and_its_modeled_members() -> None:
    async def exists(_p: dict) -> dict:
        raise errors.FileSystemAlreadyExists("File system 'fs-1' already exists with creation token 't'",
                                             FileSystemId="fs-1")
    status, headers, out = answer("CreateFileSystem", {"CreationToken": "t"}, exists)
    assert (status, headers["x-amzn-ErrorType"]) == (409, "FileSystemAlreadyExists")
    assert out["Error"] == {"Code": "FileSystemAlreadyExists",
                            "Message": "File system 'fs-1' already exists with creation token 't'"}
    assert out["FileSystemId"] == "fs-1" and out["ErrorCode"] == "FileSystemAlreadyExists"


def test_a_handler_bug_is_an_internal_server_error_without_its_details() -> None:
    async def broken(_p: dict) -> dict:
        raise KeyError("boom")
    status, headers, out = answer("DescribeFileSystems", {}, broken)
    assert (status, out["Error"]["Code"]) == (500, "InternalServerError")
    assert "boom" not in json.dumps(out, default=str)


# --- bad input -----------------------------------------------------------------------------------

def _bad(request: WireRequest, handlers: dict[str, Any] | None = None) -> tuple[int, dict]:
    router = ProtocolRouter([service(**(handlers or {"CreateFileSystem": _echo, "DescribeFileSystems": _echo,
                                                     "CreateAccessPoint": _echo, "TagResource": _echo}))])
    out = asyncio.run(router.answer(request))
    assert out is not None
    return out.status, json.loads(out.body) | {"type": out.headers["x-amzn-ErrorType"]}


def test_a_missing_required_member_is_a_bad_request_in_awss_words() -> None:
    status, body = _bad(WireRequest("POST", "/2015-02-01/access-points", {}, b'{"ClientToken": "t"}'))
    assert (status, body["type"], body["ErrorCode"]) == (400, "BadRequest", "BadRequest")
    assert body["Message"] == ("1 validation error detected: Value null at 'FileSystemId' failed to satisfy "
                               "constraint: Member must not be null")


@pytest.mark.parametrize(("request_", "words"), [
    (WireRequest("POST", "/2015-02-01/file-systems", {}, b"{not json"), "not expected"),
    (WireRequest("POST", "/2015-02-01/file-systems", {}, b"[1]"), "not expected"),
    (WireRequest("POST", "/2015-02-01/file-systems", {}, b'{"CreationToken": 5}'), "expected string"),
    (WireRequest("POST", "/2015-02-01/file-systems", {}, b'{"CreationToken": "t", "Bogus": 1}'), "Bogus"),
    (WireRequest("POST", "/2015-02-01/file-systems", {}, b'{"CreationToken": "%s"}' % (b"x" * 65)),
     "less than or equal to 64"),
    (WireRequest("POST", "/2015-02-01/file-systems", {}, b'{"CreationToken": "t", "PerformanceMode": "fast"}'),
     "enum value set"),
    (WireRequest("GET", "/2015-02-01/file-systems", {}, b"", query_string="MaxItems=many"), "not a number"),
    (WireRequest("GET", "/2015-02-01/file-systems", {}, b"", query_string="MaxItems=0"), "greater than or equal"),
    (WireRequest("POST", "/2015-02-01/access-points", {},
                 json.dumps({"ClientToken": "t", "FileSystemId": "fs-1",
                             "PosixUser": {"Uid": 1, "Gid": 4294967296}}).encode()), "less than or equal"),
    (WireRequest("POST", "/2015-02-01/file-systems", {}, b"[" * 200 + b"]" * 200), "not expected"),
    (WireRequest("POST", "/2015-02-01/file-systems", {},
                 b'{"CreationToken": "t", "Tags": ' + b'[' * 150 + b']' * 150 + b"}"), "nested"),
])
def test_malformed_input_is_a_bad_request_never_a_5xx(request_: WireRequest, words: str) -> None:
    status, body = _bad(request_)
    assert (status, body["ErrorCode"]) == (400, "BadRequest"), body
    assert words in body["Message"]


def test_a_path_of_no_operation_or_one_not_served_is_refused_in_the_protocols_shape() -> None:
    signed = {"authorization": SIGNED_FOR_EFS}
    status, body = _bad(WireRequest("GET", "/2015-02-01/no-such-thing", signed, b""))
    assert (status, body["ErrorCode"]) == (400, "UnknownOperationException")
    status, body = _bad(WireRequest("PUT", "/2015-02-01/file-systems/fs-1", signed, b"{}"))  # UpdateFileSystem
    assert (status, body["ErrorCode"]) == (400, "UnknownOperationException")
    assert "UpdateFileSystem" in body["Message"]


def test_a_member_of_the_path_may_not_come_in_the_body_instead() -> None:
    status, body = _bad(WireRequest("POST", "/2015-02-01/resource-tags/fs-1", {},
                                    b'{"ResourceId": "fs-2", "Tags": []}'))
    assert (status, body["ErrorCode"]) == (400, "BadRequest") and "ResourceId" in body["Message"]


# --- the model's error statuses ----------------------------------------------------------------------

def test_every_efs_error_class_has_the_status_of_botocores_model() -> None:
    modeled = {e.name: e.metadata["error"]["httpStatusCode"]
               for name in EFS.operation_names for e in EFS.operation_model(name).error_shapes}
    other_services = {"ConflictException"}  # ECS's, of another status; EFS's replication calls are not served
    ours = {name: cls for name, cls in vars(errors).items() if isinstance(cls, type)
            and issubclass(cls, errors.AwsError) and name in modeled and name not in other_services}
    assert {"BadRequest", "FileSystemAlreadyExists", "FileSystemInUse", "MountTargetConflict", "SubnetNotFound",
            "IpAddressInUse", "NoFreeAddressesInSubnet", "AccessPointNotFound"} <= set(ours)
    assert {name: cls.status for name, cls in ours.items()} == {name: modeled[name] for name in ours}
