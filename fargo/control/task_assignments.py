"""Desired state going down: a task row as the `TaskAssignment` an agent runs, and the in-process bell
that wakes an agent's waiting `assignments()` call when the control plane changed one of its tasks.

Generations themselves come from the store (one counter for all tasks, bumped in the transaction of the
change); this module only reads them.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from fargo.config import DefaultNetwork
from fargo.control.task_definitions.sizes import parse_task_cpu, parse_task_memory
from fargo.protocol.messages import EfsVolumePlan, EniPlan, TaskAssignment, from_json, task_id_of, to_json

_DEFAULT = DefaultNetwork()
PRIVATE = "_fargo"  # the part of a task document the API never shows: the ENI and EFS volume plans


def eni_id_of(task_id: str) -> str:
    """The task ENI's id, as the attachment's networkInterfaceId shows it."""
    return "eni-" + task_id[:17]


def build_assignment(doc: dict, generation: int, task_definition: dict) -> TaskAssignment:
    """The assignment of a task document (with its private part) and its registered task definition.

    Built from JSON copies, so that nothing the agent holds is shared with what the control plane holds."""
    private = doc[PRIVATE]
    storage = doc.get("ephemeralStorage")
    stopping = doc["desiredStatus"] == "STOPPED"
    eni = EniPlan(
        attachment_id=private["attachmentId"], eni_id=eni_id_of(task_id_of(doc["taskArn"])),
        subnet_id=private["subnetId"], subnet_cidr=private["subnetCidr"],
        availability_zone=private.get("availabilityZone") or doc["availabilityZone"], ip=private["ip"],
        mac=private["mac"], private_dns_name=private["privateDnsName"],
        security_groups=list(private.get("securityGroups") or []),
        assign_public_ip=bool(private.get("assignPublicIp", False)),
        # (tasks from before VPCs could be made are all in the default VPC)
        vpc_id=private.get("vpcId", _DEFAULT.vpc_id), vpc_cidr=private.get("vpcCidr", _DEFAULT.cidr))
    assignment = TaskAssignment(
        task_arn=doc["taskArn"], cluster_arn=doc["clusterArn"], generation=generation,
        desired_status=doc["desiredStatus"], platform_version=doc["platformVersion"],
        task_definition=task_definition, overrides=doc.get("overrides") or {},
        cpu_units=parse_task_cpu(doc["cpu"]), memory_mib=parse_task_memory(doc["memory"]), eni=eni,
        created_at=doc["createdAt"], ephemeral_storage_gib=storage["sizeInGiB"] if storage else None,
        stop_code=doc.get("stopCode") if stopping else None,
        stopped_reason=doc.get("stoppedReason") if stopping else None,
        container_arns={c["name"]: c["containerArn"] for c in doc.get("containers") or []},
        efs_volumes=[from_json(EfsVolumePlan, v) for v in private.get("efsVolumes") or []])
    return from_json(TaskAssignment, to_json(assignment))


class AssignmentChanges:
    """Per agent, how many times this process changed the agent's desired set; waiters wake on a change.

    A waiter notes `count(agent)` before it reads the store and waits for the count to move, so a change
    made while it was reading is not missed. Changes made by another replica are not rung here: waiters
    also look at the store again every so often.
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = defaultdict(int)
        self._condition = asyncio.Condition()

    def count(self, agent_id: str) -> int:
        return self._counts[agent_id]

    async def changed(self, agent_id: str | None) -> None:
        if agent_id is None:
            return
        async with self._condition:
            self._counts[agent_id] += 1
            self._condition.notify_all()

    async def wait(self, agent_id: str, seen: int, timeout: float) -> bool:
        """True once the agent's count differs from `seen`; False after `timeout` seconds without."""
        async with self._condition:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._condition.wait_for(lambda: self._counts[agent_id] != seen), timeout)
            return self._counts[agent_id] != seen
