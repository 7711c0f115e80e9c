"""The one place that builds and parses ECS ARNs (long format, as AWS has used since 2021)."""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Arns:
    region: str
    account_id: str

    def _prefix(self, service: str = "ecs") -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}"

    def cluster(self, name: str) -> str:
        return f"{self._prefix()}:cluster/{name}"

    def task_definition(self, family: str, revision: int) -> str:
        return f"{self._prefix()}:task-definition/{family}:{revision}"

    def task(self, cluster_name: str, task_id: str) -> str:
        return f"{self._prefix()}:task/{cluster_name}/{task_id}"

    def container(self, cluster_name: str, task_id: str, container_uuid: str) -> str:
        return f"{self._prefix()}:container/{cluster_name}/{task_id}/{container_uuid}"

    def service(self, cluster_name: str, service_name: str) -> str:
        return f"{self._prefix()}:service/{cluster_name}/{service_name}"

    def capacity_provider(self, name: str) -> str:
        return f"{self._prefix()}:capacity-provider/{name}"

    def cloud_map_namespace(self, namespace_id: str) -> str:
        return f"{self._prefix('servicediscovery')}:namespace/{namespace_id}"

    def account_root(self) -> str:
        """The account's root user: the principal of account-wide (default) ECS account settings."""
        return f"arn:aws:iam::{self.account_id}:root"


_ECS_ARN = re.compile(r"^arn:aws[a-z-]*:ecs:(?P<region>[^:]*):(?P<account>[^:]*):(?P<kind>[a-z-]+)/(?P<rest>.+)$")


@dataclass(frozen=True)
class ParsedArn:
    region: str
    account_id: str
    kind: str
    resource: str


def parse_ecs_arn(arn: str) -> ParsedArn | None:
    m = _ECS_ARN.match(arn)
    if not m:
        return None
    return ParsedArn(m["region"], m["account"], m["kind"], m["rest"])


def name_from_cluster_ref(ref: str) -> str:
    """A cluster may be named by name or by ARN."""
    parsed = parse_ecs_arn(ref)
    if parsed and parsed.kind == "cluster":
        return parsed.resource
    return ref
