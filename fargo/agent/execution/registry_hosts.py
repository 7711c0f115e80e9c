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


def edge_host_names(host: str, port: int) -> frozenset[str]:
    """The `host:port` names of the edge port; a loopback or wildcard listen is reached as either loopback name."""
    names = {f"{host}:{port}"}
    if host in ("127.0.0.1", "localhost", "0.0.0.0"):
        names |= {f"127.0.0.1:{port}", f"localhost:{port}"}
    return frozenset(names)


def fargo_registry_names(names: FargoRegistryNames) -> frozenset[str]:
    """Every registry host name that means Fargo's own registry."""
    return names.edge_hosts | {ecr_host(names.account_id, names.region)}


def registry_host(image: str) -> str:
    """The registry part of an image reference ("docker.io" for Docker Hub names); "" if it is not one."""
    try:
        return normalize_ref(image).split("/", 1)[0]
    except InvalidReference:
        return ""


def is_fargo_registry(image: str, names: FargoRegistryNames) -> bool:
    return registry_host(image) in fargo_registry_names(names)
