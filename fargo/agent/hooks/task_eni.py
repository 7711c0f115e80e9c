"""The task ENI hook: the task's network namespace, routed to its VPC's router with the IP, MAC and DNS
name the control plane planned, filtered by its security groups; every container joins that namespace.
"""
from __future__ import annotations

import logging

from fargo import clock
from fargo.agent.hooks.base import ContainerRun, ContainerSpecContribution, TaskCannotStart, TaskContext, TaskHook
from fargo.network.names import netns_name, netns_path
from fargo.network.rtnl import NetlinkError
from fargo.network.security_groups import VpcFilterError
from fargo.network.task_eni import TaskEniError
from fargo.network.vpc_router import VpcRouterError
from fargo.protocol import stop_reasons as reasons

log = logging.getLogger(__name__)


class TaskEniHook(TaskHook):
    name = "task-eni"

    async def prestart(self, task: TaskContext) -> None:
        eni = task.assignment.eni
        attachment = task.attachment
        attachment.status = "ATTACHING"
        try:
            await self.host.networks.attach(task.task_id, eni, task.platform.task_eni_mtu)
        except (TaskEniError, VpcFilterError, VpcRouterError, NetlinkError, OSError) as e:
            log.warning("the ENI of task %s could not be made", task.task_id, exc_info=True)
            attachment.status = "FAILED"
            raise TaskCannotStart(reasons.resource_initialization(task.platform, f"failed to configure ENI: {e}")) \
                from None
        attachment.status = "ATTACHED"
        attachment.details = [
            {"name": "subnetId", "value": eni.subnet_id},
            {"name": "networkInterfaceId", "value": eni.eni_id},
            {"name": "macAddress", "value": eni.mac},
            {"name": "privateDnsName", "value": eni.private_dns_name},
            {"name": "privateIPv4Address", "value": eni.ip},
        ]
        task.set_connectivity(clock.now())

    def contribute(self, task: TaskContext, container: ContainerRun, spec: ContainerSpecContribution) -> None:
        spec.netns_path = netns_path(netns_name(task.task_id, self.host.network_prefix))
        spec.hostname = task.assignment.eni.private_dns_name

    async def stop(self, task: TaskContext) -> None:
        attachment = task.attachment
        if attachment.status in ("ATTACHED", "ATTACHING", "FAILED"):
            attachment.status = "DETACHING"
        await self.host.networks.detach(task.task_id, task.assignment.eni)
        attachment.status = "DELETED"
