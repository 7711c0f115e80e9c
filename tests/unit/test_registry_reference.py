"""Image references split for registry requests, and the scheme and address each registry host is dialed at."""
from __future__ import annotations

import pytest

from fargo.runtime.image_ref import InvalidReference
from fargo.runtime.registry import RegistryAccess, split_reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("ref, name, host, repository, tag, digest", [
    ("nginx", "docker.io/library/nginx:latest", "registry-1.docker.io", "library/nginx", "latest", None),
    ("library/nginx:1.27", "docker.io/library/nginx:1.27", "registry-1.docker.io", "library/nginx", "1.27", None),
    ("index.docker.io/me/app:v1", "docker.io/me/app:v1", "registry-1.docker.io", "me/app", "v1", None),
    ("public.ecr.aws/nginx/nginx:1", "public.ecr.aws/nginx/nginx:1", "public.ecr.aws", "nginx/nginx", "1", None),
    ("127.0.0.1:8400/team/app", "127.0.0.1:8400/team/app:latest", "127.0.0.1:8400", "team/app", "latest", None),
    (f"localhost/app@{DIGEST}", f"localhost/app@{DIGEST}", "localhost", "app", None, DIGEST),
    (f"123456789012.dkr.ecr.us-east-1.amazonaws.com/a/b:t@{DIGEST}",
     f"123456789012.dkr.ecr.us-east-1.amazonaws.com/a/b:t@{DIGEST}",
     "123456789012.dkr.ecr.us-east-1.amazonaws.com", "a/b", "t", DIGEST),
])
def test_split_reference(ref: str, name: str, host: str, repository: str, tag: str | None, digest: str | None) -> None:
    split = split_reference(ref)
    assert (split.name, split.host, split.repository, split.tag, split.digest) == (name, host, repository, tag, digest)
    assert split.object == (digest or tag)


def test_invalid_references_are_refused() -> None:
    for ref in ("", "UPPER/case", "a b", "x@sha256:short"):
        with pytest.raises(InvalidReference):
            split_reference(ref)


def test_https_unless_listed_as_plain_http_or_loopback() -> None:
    access = RegistryAccess(plain_http=["registry.internal:5000"], timeout=1, attempts=1)
    assert access.endpoint("ghcr.io").base_url == "https://ghcr.io"
    assert access.endpoint("registry.internal:5000").base_url == "http://registry.internal:5000"
    for host in ("127.0.0.1:5000", "localhost", "localhost:8400", "[::1]:5000", "127.1.2.3"):
        assert access.endpoint(host).scheme == "http", host


def test_fargos_own_registry_names_can_be_dialed_elsewhere() -> None:
    ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    access = RegistryAccess(endpoints={ecr: "http://127.0.0.1:8400", "mirror.example": "10.0.0.3:80"},
                            plain_http=["mirror.example"], timeout=1, attempts=1)
    assert access.endpoint(ecr).base_url == "http://127.0.0.1:8400"
    assert access.endpoint("mirror.example").base_url == "http://10.0.0.3:80"


def test_timeout_and_attempts_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARGO_PULL_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("FARGO_PULL_ATTEMPTS", "2")
    access = RegistryAccess()
    assert (access.timeout, access.attempts) == (0.5, 2)
    monkeypatch.setenv("FARGO_PULL_ATTEMPTS", "nonsense")
    assert RegistryAccess().attempts == 5
