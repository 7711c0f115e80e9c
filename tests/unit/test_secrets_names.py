"""Names and ARNs of secrets and parameters: AWS's rules and texts, the 6-letter suffix, ARN forms."""
from __future__ import annotations

import re

import pytest

from fargo.control.secrets import messages as msg
from fargo.errors import AccessDeniedException, HierarchyLevelLimitExceededException
from fargo.control.secrets.names import (NameRules, check_parameter_name, check_parameter_path, check_secret_name,
                                         in_path)
from fargo.errors import AwsError, ValidationException

RULES = NameRules("us-east-1", "000000000000")


def test_secret_arns_end_in_a_new_six_letter_suffix_each_time() -> None:
    first, second = RULES.new_secret_arn("db/pass"), RULES.new_secret_arn("db/pass")
    assert re.fullmatch(r"arn:aws:secretsmanager:us-east-1:000000000000:secret:db/pass-[A-Za-z]{6}", first)
    assert first != second


@pytest.mark.parametrize("name", ["a", "db/pass", "A-Z_a+z=0.9@x", "x" * 512])
def test_secret_names_of_the_allowed_characters_pass(name: str) -> None:
    check_secret_name(name)


@pytest.mark.parametrize("name", ["with space", "semi;colon", "star*", "bang!"])
def test_other_secret_names_get_awss_invalid_name_text(name: str) -> None:
    with pytest.raises(ValidationException) as e:
        check_secret_name(name)
    assert e.value.message == msg.INVALID_SECRET_NAME


def test_a_secret_name_over_512_characters_is_refused() -> None:
    with pytest.raises(ValidationException):
        check_secret_name("x" * 513)


def test_secret_ids_are_names_or_arns() -> None:
    assert RULES.secret_ref("db/pass").name == "db/pass"
    assert RULES.secret_ref("arn:aws:secretsmanager:us-east-1:000000000000:secret:db").arn is not None


@pytest.mark.parametrize("name", ["x", "/x", "/a/b.c/d-e_f", "/" + "/".join(["l"] * 15)])
def test_parameter_names_that_aws_accepts(name: str) -> None:
    check_parameter_name(name, creating=True)


@pytest.mark.parametrize("name,error,text", [
    ("a/b", ValidationException, msg.NOT_FULLY_QUALIFIED),
    ("/ssm/x", ValidationException, msg.INVALID_PARAMETER_NAME),
    ("SSMthing", ValidationException, msg.INVALID_PARAMETER_NAME),
    ("has space", ValidationException, msg.INVALID_PARAMETER_NAME),
    ("/a//b", ValidationException, msg.INVALID_PARAMETER_NAME),
    ("/a/", ValidationException, msg.INVALID_PARAMETER_NAME),
    ("awslimitschecker", AccessDeniedException, msg.reserved_parameter_name("awslimitschecker")),
    ("/" + "/".join(["l"] * 16), HierarchyLevelLimitExceededException, msg.HIERARCHY_TOO_DEEP),
])
def test_parameter_names_that_aws_refuses_with_its_texts(name: str, error: type[AwsError], text: str) -> None:
    with pytest.raises(error) as e:
        check_parameter_name(name, creating=True)
    assert e.value.message == text


def test_reserved_aws_names_are_refused_only_on_creation() -> None:
    check_parameter_name("/aws/service/ami")  # public parameters are read by that name


def test_parameter_arns_drop_the_leading_slash_and_read_back_both_ways() -> None:
    assert RULES.parameter_arn("/a/b") == "arn:aws:ssm:us-east-1:000000000000:parameter/a/b"
    assert RULES.parameter_arn("x") == "arn:aws:ssm:us-east-1:000000000000:parameter/x"
    ref = RULES.parameter_ref("arn:aws:ssm:us-east-1:000000000000:parameter/a/b:3")
    assert ref is not None and (ref.names, ref.selector) == (("/a/b",), "3")
    ref = RULES.parameter_ref("arn:aws:ssm:us-east-1:000000000000:parameter/x")
    assert ref is not None and (ref.names, ref.selector) == (("x", "/x"), None)
    assert RULES.parameter_ref("arn:aws:ssm:eu-west-1:000000000000:parameter/x") is None
    ref = RULES.parameter_ref("/a:label")
    assert ref is not None and (ref.names, ref.selector) == (("/a",), "label")


def test_paths_and_what_is_under_them() -> None:
    assert check_parameter_path("/a/b/") == "/a/b" and check_parameter_path("/") == "/"
    with pytest.raises(ValidationException) as e:
        check_parameter_path("a/b")
    assert e.value.message == msg.INVALID_PATH
    assert in_path("/a/b", "/a", False) and not in_path("/a/b/c", "/a", False) and in_path("/a/b/c", "/a", True)
    assert in_path("/x", "/", False) and not in_path("/ab", "/a", True) and not in_path("x", "/", True)
