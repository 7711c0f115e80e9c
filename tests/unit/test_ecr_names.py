"""ECR's repository names (botocore's rule, AWS's texts), ARNs, URIs and digests."""
from __future__ import annotations

import pytest

from fargo.control.ecr.names import RegistryNames, check_repository_name, is_digest
from fargo.errors import InvalidParameterException

NAMES = RegistryNames("123456789012", "eu-west-1", "127.0.0.1:8400")


@pytest.mark.parametrize("name", ["ab", "app", "team/app", "a.b_c-d", "a__b", "a---b", "x/y/z9", "a" * 256])
def test_names_the_model_allows_are_accepted(name: str) -> None:
    assert check_repository_name(name) == name


@pytest.mark.parametrize("name", ["App", "-app", "app-", "a..b", "a/", "/a", "a//b", "a b", "a:b", "a_-b", "a___b"])
def test_names_outside_the_pattern_get_awss_regular_expression_text(name: str) -> None:
    with pytest.raises(InvalidParameterException) as e:
        check_repository_name(name)
    assert e.value.message == (
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression "
        "'(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''")


def test_lengths_are_checked_with_awss_texts() -> None:
    with pytest.raises(InvalidParameterException, match="must have length greater than or equal to 2"):
        check_repository_name("a")
    with pytest.raises(InvalidParameterException, match="must have length less than or equal to 256"):
        check_repository_name("a" * 257)


def test_arn_uri_and_endpoint_follow_the_registry() -> None:
    assert NAMES.repository_arn("team/app") == "arn:aws:ecr:eu-west-1:123456789012:repository/team/app"
    assert NAMES.repository_uri("team/app") == "127.0.0.1:8400/team/app"
    assert NAMES.proxy_endpoint == "http://127.0.0.1:8400"
    assert NAMES.aws_host == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert NAMES.repository_of_arn("arn:aws:ecr:eu-west-1:123456789012:repository/team/app") == "team/app"


@pytest.mark.parametrize("arn", ["team/app", "arn:aws:ecr:us-east-1:123456789012:repository/app",
                                 "arn:aws:ecr:eu-west-1:000000000000:repository/app",
                                 "arn:aws:ecs:eu-west-1:123456789012:cluster/app",
                                 "arn:aws:ecr:eu-west-1:123456789012:repository/App"])
def test_an_arn_of_another_registry_or_service_is_an_invalid_parameter(arn: str) -> None:
    with pytest.raises(InvalidParameterException, match="resourceArn"):
        NAMES.repository_of_arn(arn)


def test_another_registry_id_is_refused_and_the_own_one_or_none_accepted() -> None:
    NAMES.check_registry_id(None)
    NAMES.check_registry_id("123456789012")
    with pytest.raises(InvalidParameterException, match="registryId"):
        NAMES.check_registry_id("210987654321")


def test_digests_and_tags_are_told_apart() -> None:
    assert is_digest("sha256:" + "ab" * 32)
    assert not is_digest("latest") and not is_digest("v1.2")
