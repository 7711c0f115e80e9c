"""Which way a task's execution traffic goes. On 1.4.0 it leaves from the task ENI, inside the task's network
namespace: Fargo's own APIs and registry through the VPC endpoint (VPC base + 3, relayed to the edge port, so
every subnet reaches them), any other registry like any other traffic of the task, so a subnet with no way out
reaches none. On 1.3.0 it leaves from the host.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from fargo.agent.execution.aws_calls import ServiceEndpoint
from fargo.network.ipam import endpoint_ip
from fargo.network.task_dialer import TaskDialer
from fargo.platform import PlatformVersion
from fargo.protocol.messages import EniPlan


@dataclass(frozen=True)
class ExecutionPath:
    """How one task reaches Fargo's APIs and registries."""

    api: ServiceEndpoint  # Secrets Manager, SSM, ECR's API
    registry_endpoint: str  # host:port to dial for Fargo's own registry
    connector: Callable[[], aiohttp.BaseConnector]  # for every connection of the task's pulls
    over_task_eni: bool


def execution_path(platform: PlatformVersion, task_id: str, eni: EniPlan, *, network_prefix: str, region: str,
                   edge: tuple[str, int]) -> ExecutionPath:
    if platform.execution_over_task_eni:
        dialer = TaskDialer.for_task(task_id, eni, network_prefix)
        endpoint = endpoint_ip(eni.vpc_cidr)
        return ExecutionPath(ServiceEndpoint(f"http://{endpoint}/", region, dialer.connector), f"{endpoint}:80",
                             dialer.connector, True)
    host, port = edge
    return ExecutionPath(ServiceEndpoint(f"http://{host}:{port}/", region, aiohttp.TCPConnector), f"{host}:{port}",
                         aiohttp.TCPConnector, False)
