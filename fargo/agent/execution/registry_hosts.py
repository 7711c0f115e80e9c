"""Which registry host names mean Fargo's own registry (its ECR): the edge port's `host:port`, which
`repositoryUri` uses, and the account's ECR host `<account>.dkr.ecr.<region>.amazonaws.com`, so that task
definitions written for AWS run as they are."""
from __future__ import annotations

from typing import Protocol

from fargo.runtime.image_ref import InvalidReference, normalize_ref


class FargoRegistryNames(Protocol):
    account_id: str
    region: str
    edge_hosts: frozenset[str]  # "127.0.0.1:8400", "localhost:8400"


def ecr_host(account_id: str, region: str) -> str:
    return f"{account_id}.dkr.ecr.{region}.amazonaws.com"


def registry_host(image: str) -> str:
    """The registry part of an image reference ("docker.io" for Docker Hub names); "" if it is not one."""
    try:
        return normalize_ref(image).split("/", 1)[0]
    except InvalidReference:
        return ""


def is_fargo_registry(image: str, names: FargoRegistryNames) -> bool:
    host = registry_host(image)
    return host in names.edge_hosts or host == ecr_host(names.account_id, names.region)
