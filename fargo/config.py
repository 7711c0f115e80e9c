"""Settings of one Fargo installation: where it keeps state, where it listens, who it pretends to be."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_DIR = Path("/var/lib/fargo")
DEFAULT_LISTEN = "127.0.0.1:8400"
DEFAULT_ENDPOINT = "http://127.0.0.1:8400"
DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"
CONTAINERD_NAMESPACE = "fargo"


@dataclass(frozen=True)
class Subnet:
    subnet_id: str
    cidr: str
    availability_zone: str


@dataclass(frozen=True)
class DefaultNetwork:
    """The VPC every Fargo starts with (DESIGN.md section 3)."""

    vpc_id: str = "vpc-fargo-default"
    cidr: str = "10.213.0.0/16"
    security_group_id: str = "sg-fargo-default"
    subnets: tuple[Subnet, ...] = field(default_factory=lambda: (
        Subnet("subnet-fargo-default-1a", "10.213.0.0/20", "us-east-1a"),
        Subnet("subnet-fargo-default-1b", "10.213.16.0/20", "us-east-1b"),
        Subnet("subnet-fargo-default-1c", "10.213.32.0/20", "us-east-1c"),
    ))


def default_network(region: str) -> DefaultNetwork:
    """The default VPC; its AZs follow the region (us-east-1a, ...)."""
    base = DefaultNetwork()
    subnets = tuple(
        Subnet(f"subnet-fargo-default-{region[-1]}{s.availability_zone[-1]}", s.cidr, region + s.availability_zone[-1])
        for s in base.subnets
    )
    return DefaultNetwork(subnets=subnets)


@dataclass(frozen=True)
class Config:
    data_dir: Path = DEFAULT_DATA_DIR
    listen: str = DEFAULT_LISTEN
    database: str | None = None
    containerd_address: str | None = None
    latest_platform: str = "1.4.0"
    account_id: str = DEFAULT_ACCOUNT_ID
    region: str = DEFAULT_REGION
    # `--dns-upstream IP[:PORT]`: where the VPC resolvers forward; empty means the host's /etc/resolv.conf.
    dns_upstreams: tuple[str, ...] = ()
    network_prefix: str = "fg"  # names of this Fargo's host objects (fargo.network.names)
    # `--efs-root PATH`: where EFS file systems live (<root>/<fs-id>); a shared mount lets agents share them.
    efs_root: Path | None = None
    # `--insecure-registry HOST[:PORT]` (and FARGO_INSECURE_REGISTRIES, comma-separated): registries pulled
    # from over plain HTTP. A bare host means any of its ports. Loopback registries are plain HTTP anyway.
    insecure_registries: tuple[str, ...] = ()
    # False with `--no-agent`: a control-plane replica beside another one on the same PostgreSQL database; it
    # runs no agent and no containerd, and the tasks it creates go to the embedded agent of that other replica.
    run_agent: bool = True

    @property
    def efs_data_root(self) -> Path:
        return self.efs_root or self.data_dir / "efs"

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.data_dir / 'fargo.db'}"

    @property
    def listen_host(self) -> str:
        return self.listen.rsplit(":", 1)[0]

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def network(self) -> DefaultNetwork:
        return default_network(self.region)


ENDPOINT_FILE = "endpoint"  # `fargo up` writes where it listens here, so `--data-dir` finds it


def find_endpoint(explicit: str | None, data_dir: str | Path | None = None) -> str:
    """`--endpoint`, else $AWS_ENDPOINT_URL, else what the Fargo of `--data-dir` recorded, else the default."""
    if explicit:
        return explicit
    if os.environ.get("AWS_ENDPOINT_URL"):
        return os.environ["AWS_ENDPOINT_URL"]
    if data_dir is not None:
        try:
            recorded = (Path(data_dir) / ENDPOINT_FILE).read_text().strip()
            if recorded:
                return recorded
        except OSError:
            pass
    return DEFAULT_ENDPOINT
