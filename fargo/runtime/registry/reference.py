"""An image reference split into what a registry request needs: the host to ask, the repository, and the tag or
digest; normalised as docker does (`nginx` is docker.io/library/nginx:latest, served by registry-1.docker.io).
"""
from __future__ import annotations

from dataclasses import dataclass

from fargo.runtime.image_ref import DEFAULT_DOMAIN, normalize_ref

DOCKER_HUB_HOST = "registry-1.docker.io"  # what docker.io names are fetched from (containerd's hosts.go)


@dataclass(frozen=True)
class RegistryReference:
    name: str  # the normalised reference, as containerd stores and Fargate's messages print it
    domain: str  # docker.io, 127.0.0.1:8400, <acct>.dkr.ecr.<region>.amazonaws.com
    repository: str  # library/nginx
    tag: str | None
    digest: str | None

    @property
    def host(self) -> str:
        """The registry host to dial (host[:port])."""
        return DOCKER_HUB_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def object(self) -> str:
        """What the manifest URL names: the digest when pinned (it wins over a tag), else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> str:
        """The name pinned to a digest, keeping the tag: `repo:tag@sha256:...`."""
        base = f"{self.domain}/{self.repository}"
        return f"{base}:{self.tag}@{digest}" if self.tag else f"{base}@{digest}"


def split_reference(ref: str) -> RegistryReference:
    """Normalise and split `ref`; InvalidReference if it is not a reference."""
    name = normalize_ref(ref)
    rest, _, digest = name.partition("@")
    domain, _, path = rest.partition("/")
    tag: str | None = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1:]
    return RegistryReference(name=name, domain=domain, repository=path, tag=tag, digest=digest or None)
