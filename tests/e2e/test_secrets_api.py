"""AWS Secrets Manager through boto3 and the AWS CLI against a real `fargo up`: every operation, AWS's error
codes and texts on the wire, partial ARNs, staging labels, deletion and restore, values sealed at rest (the
database file does not hold them, nor does Fargo's log), and the values across a restart."""
from __future__ import annotations

import base64
import json
import re
import stat
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import FargoProcess
from tests.fargo_process import free_port

NOT_FOUND = ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.", 400)
MARKED = ("InvalidRequestException",
          "You can't perform this operation on the secret because it was marked for deletion.", 400)


def _error(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    return (e.value.response["Error"]["Code"], e.value.response["Error"]["Message"],
            e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _name(prefix: str = "e2e") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def _value() -> str:
    return f"value-{uuid.uuid4().hex}"


@pytest.fixture
def sm(fargo: FargoProcess):  # noqa: ANN201
    return fargo.client("secretsmanager")


def test_create_get_and_the_arn_with_its_suffix(sm) -> None:  # noqa: ANN001
    name, value = _name(), _value()
    made = sm.create_secret(Name=name, SecretString=value, Description="db password",
                            Tags=[{"Key": "team", "Value": "a"}])
    assert re.fullmatch(rf"arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-[A-Za-z]{{6}}", made["ARN"])
    for secret_id in (name, made["ARN"], made["ARN"][:-7]):  # name, full ARN, partial ARN
        got = sm.get_secret_value(SecretId=secret_id)
        assert (got["ARN"], got["Name"], got["SecretString"], got["VersionId"], got["VersionStages"]) == (
            made["ARN"], name, value, made["VersionId"], ["AWSCURRENT"])
        assert got["CreatedDate"].timestamp() > 0
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=name, SecretString=value)
    assert _error(e) == ("ResourceExistsException", f"The operation failed because the secret {name} already exists.",
                         400)
    for missing in ("no/such/secret", made["ARN"][:-6] + "XXXXXX",
                    "arn:aws:secretsmanager:us-east-1:000000000000:secret:no-such"):
        with pytest.raises(ClientError) as e:
            sm.get_secret_value(SecretId=missing)
        assert _error(e) == NOT_FOUND
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name="bad name")
    assert _error(e) == ("ValidationException", "Invalid name. Must be a valid name containing alphanumeric "
                         "characters, or any of the following: -/_+=.@!", 400)


def test_binary_secrets_and_a_secret_without_a_value(sm) -> None:  # noqa: ANN001
    name = _name()
    sm.create_secret(Name=name, SecretBinary=b"\x00\x01binary\xff")
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == b"\x00\x01binary\xff"
    empty = _name()
    made = sm.create_secret(Name=empty)
    assert "VersionId" not in made
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=empty)
    assert _error(e) == ("ResourceNotFoundException",
                         "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT", 400)
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=_name(), SecretString="a", SecretBinary=b"b")
    assert _error(e)[0] == "InvalidParameterException"


def test_put_secret_value_moves_the_labels_and_is_idempotent_by_token(sm) -> None:  # noqa: ANN001
    name = _name()
    first = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    token = str(uuid.uuid4())
    put = sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=token)
    assert (put["VersionId"], put["VersionStages"]) == (token, ["AWSCURRENT"])
    assert sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=token)["VersionId"] == token
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name, SecretString="three", ClientRequestToken=token)
    arn = put["ARN"]
    assert _error(e) == ("ResourceExistsException", f"You can't use ClientRequestToken {token} because that value is "
                         f"already in use for a version of secret {arn}.", 400)
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {first: ["AWSPREVIOUS"], token: ["AWSCURRENT"]}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "one"
    assert sm.get_secret_value(SecretId=name, VersionId=first)["SecretString"] == "one"
    assert sm.get_secret_value(SecretId=name, VersionId=first, VersionStage="AWSPREVIOUS")["SecretString"] == "one"
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionId=first, VersionStage="AWSCURRENT")
    assert _error(e)[0] == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    assert _error(e) == ("ResourceNotFoundException",
                         "Secrets Manager can't find the specified secret value for staging label: AWSPENDING", 400)
    missing = str(uuid.uuid4())
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionId=missing)
    assert _error(e)[0] == "ResourceNotFoundException"
    third = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {token: ["AWSPREVIOUS"], third: ["AWSCURRENT"]}  # the first is deprecated: no label


def test_describe_shows_only_what_is_set_and_update_changes_it(sm) -> None:  # noqa: ANN001
    name = _name()
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    shown = sm.describe_secret(SecretId=arn)
    assert {"Description", "KmsKeyId", "DeletedDate", "Tags", "LastAccessedDate"}.isdisjoint(shown)
    sm.get_secret_value(SecretId=name)
    updated = sm.update_secret(SecretId=name, Description="now described")
    assert (updated["ARN"], updated["Name"]) == (arn, name) and "VersionId" not in updated
    rotated = sm.update_secret(SecretId=name, SecretString="v2")
    shown = sm.describe_secret(SecretId=name)
    assert shown["Description"] == "now described" and "LastAccessedDate" in shown
    assert shown["VersionIdsToStages"][rotated["VersionId"]] == ["AWSCURRENT"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v2"


def test_tags_are_appended_and_removed(sm) -> None:  # noqa: ANN001
    name = _name()
    sm.create_secret(Name=name, SecretString="v", Tags=[{"Key": "a", "Value": "1"}])
    sm.tag_resource(SecretId=name, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]
    sm.untag_resource(SecretId=name, TagKeys=["a", "not-there"])
    sm.untag_resource(SecretId=name, TagKeys=["a"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as e:
        sm.tag_resource(SecretId="no/such", Tags=[{"Key": "a", "Value": "1"}])
    assert _error(e) == NOT_FOUND


def test_delete_schedules_restore_undoes_and_force_removes(sm) -> None:  # noqa: ANN001
    name = _name("gone")
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    deleted = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert (deleted["ARN"], deleted["Name"]) == (arn, name)
    assert 7 * 86400 - 60 < deleted["DeletionDate"].timestamp() - time.time() <= 7 * 86400
    shown = sm.describe_secret(SecretId=name)
    assert shown["DeletedDate"] == deleted["DeletionDate"]
    for call in (lambda: sm.get_secret_value(SecretId=name),
                 lambda: sm.put_secret_value(SecretId=name, SecretString="x"),
                 lambda: sm.update_secret(SecretId=name, SecretString="x"),
                 lambda: sm.delete_secret(SecretId=name)):
        with pytest.raises(ClientError) as e:
            call()
        assert _error(e) == MARKED
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=name, SecretString="v")
    assert _error(e) == ("InvalidRequestException", "You can't create this secret because a secret with this name "
                         "is already scheduled for deletion.", 400)
    listed = [s["Name"] for s in sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]]
    assert listed == []
    listed = sm.list_secrets(IncludePlannedDeletion=True, Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    assert [s["Name"] for s in listed] == [name] and "DeletedDate" in listed[0]
    restored = sm.restore_secret(SecretId=name)
    assert (restored["ARN"], restored["Name"]) == (arn, name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    for bad in ({"RecoveryWindowInDays": 6}, {"RecoveryWindowInDays": 31},
                {"RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": True}):
        with pytest.raises(ClientError) as e:
            sm.delete_secret(SecretId=name, **bad)
        assert _error(e)[0] == "InvalidParameterException"
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId=name)
    assert _error(e) == NOT_FOUND
    forced = sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)  # no ResourceNotFoundException
    assert forced["Name"] == name
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=name)
    assert _error(e) == NOT_FOUND
    again = sm.create_secret(Name=name, SecretString="v")["ARN"]
    assert again != arn and again[:-6] == arn[:-6]


def test_list_secrets_filters_sorts_and_pages(sm) -> None:  # noqa: ANN001
    prefix = f"list-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}/{i}" for i in range(5)]
    for i, name in enumerate(names):
        sm.create_secret(Name=name, SecretString="v", Description=f"Number {i}",
                         Tags=[{"Key": "parity", "Value": "even" if i % 2 == 0 else "odd"}])
    mine = [{"Key": "name", "Values": [prefix]}]
    pages = list(sm.get_paginator("list_secrets").paginate(Filters=mine, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3 and [s["Name"] for p in pages for s in p["SecretList"]] == names
    desc = sm.list_secrets(Filters=mine, SortOrder="desc")["SecretList"]
    assert [s["Name"] for s in desc] == names[::-1]
    assert all(list(s["SecretVersionsToStages"].values()) == [["AWSCURRENT"]] for s in desc)
    even = sm.list_secrets(Filters=mine + [{"Key": "tag-value", "Values": ["even"]}])["SecretList"]
    assert [s["Name"] for s in even] == names[0::2]
    not_even = sm.list_secrets(Filters=mine + [{"Key": "tag-value", "Values": ["!even"]}])["SecretList"]
    assert [s["Name"] for s in not_even] == names[1::2]
    by_description = sm.list_secrets(Filters=mine + [{"Key": "description", "Values": ["number 3"]}])["SecretList"]
    assert [s["Name"] for s in by_description] == [names[3]]
    assert len(sm.list_secrets(Filters=[{"Key": "all", "Values": [prefix]}])["SecretList"]) == 5
    assert [s["Name"] for s in sm.list_secrets(Filters=mine + [{"Key": "tag-key", "Values": ["par"]}])[
        "SecretList"]] == names
    with pytest.raises(ClientError) as e:
        sm.list_secrets(MaxResults=101)
    assert _error(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        sm.list_secrets(NextToken="not-a-token")
    assert _error(e)[0] == "InvalidNextTokenException"


def test_the_aws_cli_speaks_to_it(fargo: FargoProcess) -> None:
    name, value = _name("cli"), _value()
    made = fargo.aws_json("secretsmanager", "create-secret", "--name", name, "--secret-string", value)
    assert fargo.aws_json("secretsmanager", "get-secret-value", "--secret-id", name)["SecretString"] == value
    fargo.aws_json("secretsmanager", "put-secret-value", "--secret-id", made["ARN"], "--secret-string", "v2")
    shown = fargo.aws_json("secretsmanager", "describe-secret", "--secret-id", name)
    assert sorted(map(tuple, shown["VersionIdsToStages"].values())) == [("AWSCURRENT",), ("AWSPREVIOUS",)]
    assert name in [s["Name"] for s in fargo.aws_json("secretsmanager", "list-secrets")["SecretList"]]
    fargo.aws_json("secretsmanager", "update-secret", "--secret-id", name, "--description", "d")
    fargo.aws_json("secretsmanager", "tag-resource", "--secret-id", name, "--tags", "Key=k,Value=v")
    fargo.aws_json("secretsmanager", "untag-resource", "--secret-id", name, "--tag-keys", "k")
    fargo.aws_json("secretsmanager", "delete-secret", "--secret-id", name)
    fargo.aws_json("secretsmanager", "restore-secret", "--secret-id", name)
    fargo.aws_json("secretsmanager", "delete-secret", "--secret-id", name, "--force-delete-without-recovery")
    missing = fargo.aws_cli("secretsmanager", "get-secret-value", "--secret-id", name, check=False)
    assert missing.returncode != 0
    assert ("An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation: "
            "Secrets Manager can't find the specified secret.") in missing.stderr


def test_values_are_sealed_at_rest_kept_across_a_restart_and_never_logged(fresh_fargo_dir: Path) -> None:
    name, value, binary = _name("kept"), _value(), b"binary-" + uuid.uuid4().hex.encode()
    f = FargoProcess(fresh_fargo_dir, free_port()).start()
    try:
        sm = f.client("secretsmanager")
        arn = sm.create_secret(Name=name, SecretString=value)["ARN"]
        sm.create_secret(Name=name + "-bin", SecretBinary=binary)
        sm.put_secret_value(SecretId=name, SecretString=value + "-2")
        assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == value
        with pytest.raises(ClientError) as e:  # an error about a secret does not carry its value
            sm.put_secret_value(SecretId=name, SecretString=value + "-3",
                                ClientRequestToken=sm.describe_secret(SecretId=name)["VersionIdsToStages"].popitem()[0])
        assert value not in json.dumps(e.value.response)
    finally:
        assert f.stop() == 0, f.log_tail()
    key = fresh_fargo_dir / "secrets" / "key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    stored = b"".join(p.read_bytes() for p in fresh_fargo_dir.glob("fargo.db*"))
    assert name.encode() in stored  # the rows are there ...
    for secret in (value.encode(), binary, base64.b64encode(binary)):  # ... their values are not
        assert secret not in stored
    assert value not in f.log_path.read_text(errors="replace")
    f = FargoProcess(fresh_fargo_dir, free_port()).start()
    try:
        sm = f.client("secretsmanager")
        assert sm.get_secret_value(SecretId=arn)["SecretString"] == value + "-2"
        assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == value
        assert sm.get_secret_value(SecretId=name + "-bin")["SecretBinary"] == binary
    finally:
        f.stop()
    assert value not in f.log_path.read_text(errors="replace")
