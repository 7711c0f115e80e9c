"""SSM Parameter Store through boto3 and the AWS CLI against a real `fargo up`: the three types, versions and
selectors, names and ARNs, GetParameters' InvalidParameters, paths, DescribeParameters' filters and paging,
tags, AWS's error codes and texts on the wire, SecureString sealed at rest and kept across a restart."""
from __future__ import annotations

import base64
import stat
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import FargoProcess
from tests.fargo_process import free_port

INVALID_NAME = ("Parameter name: can't be prefixed with \"ssm\" (case-insensitive). If formed as a path, it can "
                "consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, "
                "numbers and the following 3 symbols .-_")
ARN = "arn:aws:ssm:us-east-1:000000000000:parameter"


def _error(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    return (e.value.response["Error"]["Code"], e.value.response["Error"]["Message"],
            e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _path() -> str:
    return f"/e2e/{uuid.uuid4().hex[:10]}"


@pytest.fixture
def ssm(fargo: FargoProcess):  # noqa: ANN201
    return fargo.client("ssm")


def test_put_and_get_the_three_types(ssm) -> None:  # noqa: ANN001
    base = _path()
    assert ssm.put_parameter(Name=f"{base}/s", Value="plain", Type="String")["Version"] == 1
    ssm.put_parameter(Name=f"{base}/l", Value="a,b,c", Type="StringList")
    put = ssm.put_parameter(Name=f"{base}/secure", Value="hunter2", Type="SecureString")
    assert (put["Version"], put["Tier"]) == (1, "Standard")
    got = ssm.get_parameter(Name=f"{base}/s")["Parameter"]
    assert (got["Name"], got["Type"], got["Value"], got["Version"], got["ARN"], got["DataType"]) == (
        f"{base}/s", "String", "plain", 1, f"{ARN}{base}/s", "text")
    assert ssm.get_parameter(Name=f"{base}/l")["Parameter"]["Value"] == "a,b,c"
    hidden = ssm.get_parameter(Name=f"{base}/secure")["Parameter"]
    assert hidden["Type"] == "SecureString" and hidden["Value"] != "hunter2" and "hunter2" not in hidden["Value"]
    assert b"hunter2" not in base64.b64decode(hidden["Value"])
    assert ssm.get_parameter(Name=f"{base}/secure", WithDecryption=True)["Parameter"]["Value"] == "hunter2"
    by_arn = ssm.get_parameter(Name=f"{ARN}{base}/secure", WithDecryption=True)["Parameter"]
    assert (by_arn["Name"], by_arn["Value"]) == (f"{base}/secure", "hunter2")
    plain = f"plain{uuid.uuid4().hex[:8]}"  # a name without a hierarchy
    ssm.put_parameter(Name=plain, Value="v", Type="String")
    assert ssm.get_parameter(Name=f"{ARN}/{plain}")["Parameter"]["Name"] == plain


def test_overwrite_makes_versions_and_selectors_read_them(ssm) -> None:  # noqa: ANN001
    name = f"{_path()}/p"
    ssm.put_parameter(Name=name, Value="v1", Type="String", Tags=[{"Key": "k", "Value": "v"}])
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=name, Value="v2", Type="String")
    assert _error(e) == ("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the "
                         "overwrite option in the request to true.", 400)
    assert ssm.put_parameter(Name=name, Value="v2", Overwrite=True)["Version"] == 2
    assert ssm.put_parameter(Name=name, Value="v3", Type="SecureString", Overwrite=True)["Version"] == 3
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=name, Value="v4", Overwrite=True, Tags=[{"Key": "k", "Value": "v"}])
    assert _error(e)[0] == "ValidationException" and "tags and overwrite can't be used together" in _error(e)[1]
    old = ssm.get_parameter(Name=f"{name}:1")["Parameter"]
    assert (old["Value"], old["Version"], old["Selector"], old["Type"]) == ("v1", 1, ":1", "String")
    current = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert (current["Value"], current["Version"], current["Type"]) == ("v3", 3, "SecureString")
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=f"{name}:9")
    assert _error(e) == ("ParameterVersionNotFound",
                         f"Systems Manager could not find version 9 of {name}. Verify the version and try again.", 400)


def test_missing_parameters_and_bad_names_get_awss_answers(ssm) -> None:  # noqa: ANN001
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/no/such/parameter")
    assert _error(e) == ("ParameterNotFound", "", 400)
    with pytest.raises(ClientError) as e:
        ssm.delete_parameter(Name="/no/such/parameter")
    assert _error(e)[0] == "ParameterNotFound"
    for name, expected in (("a/b", ("ValidationException", "Parameter name must be a fully qualified name.", 400)),
                           ("/ssm/x", ("ValidationException", INVALID_NAME, 400)),
                           ("has space", ("ValidationException", INVALID_NAME, 400)),
                           ("awsreserved", ("AccessDeniedException",
                                            "No access to reserved parameter name: awsreserved.", 400))):
        with pytest.raises(ClientError) as e:
            ssm.put_parameter(Name=name, Value="v", Type="String")
        assert _error(e) == expected
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/" + "/".join(["l"] * 16), Value="v", Type="String")
    assert _error(e)[0] == "HierarchyLevelLimitExceededException"
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=f"{_path()}/x", Value="v")
    assert _error(e) == ("ValidationException", "A parameter type is required when you create a parameter.", 400)
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=f"{_path()}/x", Value="v", Type="Number")
    assert _error(e)[0] == "ValidationException"


def test_tiers_and_their_size_limits(ssm) -> None:  # noqa: ANN001
    base = _path()
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=f"{base}/big", Value="x" * 4097, Type="String")
    assert _error(e)[0] == "ValidationException" and "Standard tier parameters support a maximum" in _error(e)[1]
    assert ssm.put_parameter(Name=f"{base}/big", Value="x" * 4097, Type="String", Tier="Advanced")["Tier"] == "Advanced"
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=f"{base}/big", Value="x", Overwrite=True, Tier="Standard")
    assert _error(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=f"{base}/huge", Value="x" * 8193, Type="String", Tier="Advanced")
    assert _error(e)[0] == "ValidationException"
    assert ssm.put_parameter(Name=f"{base}/auto", Value="x" * 5000, Type="String",
                             Tier="Intelligent-Tiering")["Tier"] == "Advanced"


def test_get_parameters_reports_misses_in_invalid_parameters(ssm) -> None:  # noqa: ANN001
    base = _path()
    ssm.put_parameter(Name=f"{base}/b", Value="B", Type="String")
    ssm.put_parameter(Name=f"{base}/a", Value="A", Type="SecureString")
    got = ssm.get_parameters(Names=[f"{base}/b", f"{base}/zz", f"{ARN}{base}/a", f"{base}/missing", f"{base}/b:7"],
                             WithDecryption=True)
    assert [(p["Name"], p["Value"]) for p in got["Parameters"]] == [(f"{base}/a", "A"), (f"{base}/b", "B")]
    assert got["InvalidParameters"] == sorted([f"{base}/zz", f"{base}/missing", f"{base}/b:7"])
    with pytest.raises(ClientError) as e:
        ssm.get_parameters(Names=[f"{base}/{i}" for i in range(11)])
    assert _error(e)[0] == "ValidationException"


def test_get_parameters_by_path_recursive_filtered_and_paged(ssm) -> None:  # noqa: ANN001
    base = _path()
    for name, kind in (("a", "String"), ("b", "SecureString"), ("c/d", "String"), ("c/e/f", "StringList")):
        ssm.put_parameter(Name=f"{base}/{name}", Value=f"value-{name}", Type=kind)
    direct = ssm.get_parameters_by_path(Path=base, WithDecryption=True)["Parameters"]
    assert [(p["Name"], p["Value"]) for p in direct] == [(f"{base}/a", "value-a"), (f"{base}/b", "value-b")]
    pages = list(ssm.get_paginator("get_parameters_by_path").paginate(
        Path=base + "/", Recursive=True, PaginationConfig={"PageSize": 3}))
    assert len(pages) == 2 and [p["Name"] for page in pages for p in page["Parameters"]] == [
        f"{base}/{n}" for n in ("a", "b", "c/d", "c/e/f")]
    typed = ssm.get_parameters_by_path(Path=base, Recursive=True,
                                       ParameterFilters=[{"Key": "Type", "Values": ["String"]}])["Parameters"]
    assert [p["Name"] for p in typed] == [f"{base}/a", f"{base}/c/d"]
    with pytest.raises(ClientError) as e:
        ssm.get_parameters_by_path(Path=base, ParameterFilters=[{"Key": "Name", "Values": ["x"]}])
    assert _error(e) == ("InvalidFilterKey",
                         "The following filter key is not valid: Name. Valid filter keys include: [Type, KeyId].", 400)
    with pytest.raises(ClientError) as e:
        ssm.get_parameters_by_path(Path="no-slash")
    assert _error(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        ssm.get_parameters_by_path(Path=base, MaxResults=11)
    assert _error(e)[0] == "ValidationException"


def test_describe_parameters_filters_and_pages_without_values(ssm) -> None:  # noqa: ANN001
    base = _path()
    for name, kind in (("x1", "String"), ("x2", "SecureString"), ("deep/y", "String")):
        ssm.put_parameter(Name=f"{base}/{name}", Value="secret-ish", Type=kind, Description=f"about {name}")
    one_level = ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Values": [base]}])["Parameters"]
    assert [p["Name"] for p in one_level] == [f"{base}/x1", f"{base}/x2"]
    assert all("Value" not in p for p in one_level) and one_level[1]["KeyId"] == "alias/aws/ssm"
    assert one_level[0]["Description"] == "about x1" and one_level[0]["Version"] == 1
    recursive = ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [base]},
                                                          {"Key": "Type", "Values": ["String"]}])["Parameters"]
    assert [p["Name"] for p in recursive] == [f"{base}/deep/y", f"{base}/x1"]
    begins = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "BeginsWith",
                                                        "Values": [f"{base}/x"]}])["Parameters"]
    assert [p["Name"] for p in begins] == [f"{base}/x1", f"{base}/x2"]
    exact = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [f"{base}/x2"]}])["Parameters"]
    assert [p["Name"] for p in exact] == [f"{base}/x2"]
    pages = list(ssm.get_paginator("describe_parameters").paginate(
        ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [base]}], PaginationConfig={"PageSize": 1}))
    assert len(pages) == 3
    with pytest.raises(ClientError) as e:
        ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "BeginsWith", "Values": [base]}])
    assert _error(e)[0] == "InvalidFilterOption"
    with pytest.raises(ClientError) as e:
        ssm.describe_parameters(MaxResults=51)
    assert _error(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        ssm.describe_parameters(NextToken="garbage")
    assert _error(e)[0] == "InvalidNextToken"


def test_delete_parameters_and_tags(ssm) -> None:  # noqa: ANN001
    base = _path()
    ssm.put_parameter(Name=f"{base}/t", Value="v", Type="String", Tags=[{"Key": "a", "Value": "1"}])
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=f"{base}/t", Tags=[{"Key": "b", "Value": "2"}])
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{base}/t")["TagList"] == [
        {"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=f"{base}/t", TagKeys=["a"])
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{base}/t")["TagList"] == [
        {"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as e:
        ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{base}/none")
    assert _error(e)[0] == "InvalidResourceId"
    ssm.put_parameter(Name=f"{base}/u", Value="v", Type="String")
    deleted = ssm.delete_parameters(Names=[f"{base}/t", f"{base}/nope", f"{base}/u"])
    assert (deleted["DeletedParameters"], deleted["InvalidParameters"]) == ([f"{base}/t", f"{base}/u"], [f"{base}/nope"])
    ssm.put_parameter(Name=f"{base}/t", Value="again", Type="String")  # a fresh parameter: version 1, no tags
    assert ssm.get_parameter(Name=f"{base}/t")["Parameter"]["Version"] == 1
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{base}/t")["TagList"] == []
    ssm.delete_parameter(Name=f"{base}/t")
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=f"{base}/t")
    assert _error(e) == ("ParameterNotFound", "", 400)


def test_the_aws_cli_speaks_to_it(fargo: FargoProcess) -> None:
    name = f"{_path()}/cli"
    assert fargo.aws_json("ssm", "put-parameter", "--name", name, "--value", "hunter2", "--type",
                          "SecureString")["Version"] == 1
    got = fargo.aws_json("ssm", "get-parameter", "--name", name, "--with-decryption")["Parameter"]
    assert got["Value"] == "hunter2"
    assert fargo.aws_json("ssm", "get-parameters", "--names", name, "/none")["InvalidParameters"] == ["/none"]
    assert [p["Name"] for p in fargo.aws_json("ssm", "get-parameters-by-path", "--path",
                                              name.rsplit("/", 1)[0])["Parameters"]] == [name]
    assert [p["Name"] for p in fargo.aws_json("ssm", "describe-parameters", "--parameter-filters",
                                              f"Key=Name,Values={name}")["Parameters"]] == [name]
    fargo.aws_json("ssm", "delete-parameter", "--name", name)
    missing = fargo.aws_cli("ssm", "get-parameter", "--name", name, check=False)
    assert missing.returncode != 0
    assert "An error occurred (ParameterNotFound) when calling the GetParameter operation: " in missing.stderr


def test_secure_strings_are_sealed_at_rest_kept_across_a_restart_and_never_logged(fresh_fargo_dir: Path) -> None:
    name, value = f"{_path()}/kept", f"secure-{uuid.uuid4().hex}"
    plain_name, plain = f"{_path()}/plain", f"plain-{uuid.uuid4().hex}"
    f = FargoProcess(fresh_fargo_dir, free_port()).start()
    try:
        ssm = f.client("ssm")
        ssm.put_parameter(Name=name, Value=value, Type="SecureString")
        ssm.put_parameter(Name=name, Value=value + "-2", Overwrite=True)
        ssm.put_parameter(Name=plain_name, Value=plain, Type="String")
        with pytest.raises(ClientError) as e:
            ssm.put_parameter(Name=name, Value=value + "-3")
        assert value not in str(e.value.response)
    finally:
        assert f.stop() == 0, f.log_tail()
    key = fresh_fargo_dir / "secrets" / "key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    stored = b"".join(p.read_bytes() for p in fresh_fargo_dir.glob("fargo.db*"))
    assert name.encode() in stored and plain.encode() in stored  # String values may stay plain
    assert value.encode() not in stored
    assert value not in f.log_path.read_text(errors="replace")
    f = FargoProcess(fresh_fargo_dir, free_port()).start()
    try:
        ssm = f.client("ssm")
        assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == value + "-2"
        assert ssm.get_parameter(Name=f"{name}:1", WithDecryption=True)["Parameter"]["Value"] == value
        assert ssm.get_parameter(Name=plain_name)["Parameter"]["Value"] == plain
    finally:
        f.stop()
    assert value not in f.log_path.read_text(errors="replace")
