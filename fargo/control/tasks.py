"""ECS tasks on the control plane: RunTask, StopTask, DescribeTasks, ListTasks, and the task records.

The control plane owns a task's desired state and the agent its known state. RunTask and StopTask change
desired state only, each with a new generation that wakes the agent's waiting `assignments()` call; the
agent's reports bring known state (`task_reports.py`). The store is the truth: another replica may have
changed any task, so every call reads it (through a thread, off the event loop).
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from fargo import clock
from fargo.errors import (ClientException, InvalidParameterException,
                              PlatformTaskDefinitionIncompatibilityException)
from fargo.control.pagination import next_token, page_bounds
from fargo.arns import parse_ecs_arn
from fargo.control.capacity_providers import choose_providers, resolve_strategy
from fargo.control.clusters import Clusters
from fargo.control.context import ControlContext
from fargo.control.efs.task_volumes import TaskVolumes
from fargo.control.efs.volume_plans import EfsView, TaskPlacement
from fargo.control.task_assignments import PRIVATE, AssignmentChanges, eni_id_of
from fargo.control.task_definitions.registry import TaskDefinitionRegistry
from fargo.control.task_definitions.rules import check_ephemeral_storage
from fargo.control.task_definitions.registration import check_platform_supports, task_size_supported
from fargo.control.task_definitions.sizes import parse_task_cpu, parse_task_memory
from fargo.control.task_reports import raise_desired_stop
from fargo.network.ipam import SubnetFullError, mac_address, private_dns_name
from fargo.protocol import stop_reasons as reasons
from fargo.protocol.messages import to_json
from fargo.platform import PLATFORM_VERSIONS, resolve_platform_version

log = logging.getLogger("fargo.control")

STOPPED_TASK_RETENTION_SECONDS = 3600
EMBEDDED_AGENT_ID = "embedded"
# DescribeTasks of at most this many tasks runs on the event loop when the store reads quickly (SQLite).
QUICK_DESCRIBE_TASKS = 10
_STARTED_BY = re.compile(r"^[A-Za-z0-9/_-]{1,128}$")


class SubnetChoice(Protocol):
    subnet_id: str
    cidr: str
    availability_zone: str


class AwsvpcChoice(Protocol):
    vpc_id: str
    vpc_cidr: str
    subnets: list[SubnetChoice]
    security_groups: list[str]
    assign_public_ip: bool


class ServiceTasks(Protocol):
    """What ListTasks needs of the services (fargo.control.services.services.Services)."""

    def task_arns(self, cluster_arn: str, service_ref: str, desired_status: str, family: str | None,
                  started_by: str | None, offset: int, limit: int) -> list[str]: ...


class TaskNetworks(Protocol):
    """What RunTask needs of the VPCs (fargo.control.vpcs.Network)."""

    def resolve_awsvpc(self, awsvpc: dict | None) -> AwsvpcChoice: ...


class Tasks:
    def __init__(self, ctx: ControlContext, clusters: Clusters, registry: TaskDefinitionRegistry,
                 network: TaskNetworks, agent_id: str = EMBEDDED_AGENT_ID,
                 efs_volumes: TaskVolumes | None = None) -> None:
        self.ctx = ctx
        self.clusters = clusters
        self.registry = registry
        self.network = network
        self.efs_volumes = efs_volumes or TaskVolumes(ctx)
        self.agent_id = agent_id  # the agent new tasks go to (one for now: placement comes later)
        self.changes = AssignmentChanges()  # rung when this process changes an agent's desired set
        self.on_stopped: list[Callable[[dict], None]] = []  # called with the public document
        # called when a service's task changed status or health (reached RUNNING, became HEALTHY, ...)
        self.on_service_tasks_changed: list[Callable[[], None]] = []
        self.services: ServiceTasks | None = None  # ListTasks by serviceName asks the services (set by service.py)
        self._documents = DecodedDocuments(self._described)

    def handlers(self) -> dict:
        return {"RunTask": self.run_task, "StopTask": self.stop_task, "DescribeTasks": self.describe_tasks,
                "ListTasks": self.list_tasks}

    # --- for the rest of Fargo -----------------------------------------------------------------

    async def find_task(self, task_id: str) -> dict | None:
        """The public document of a task, by id, in any cluster."""
        doc = await asyncio.to_thread(self.ctx.store.get_task, task_id)
        return self._public(doc) if doc is not None else None

    def notify_stopped(self, docs: list[dict]) -> None:
        """Agent reports moved these tasks to STOPPED: tell who asked (service schedulers, ...)."""
        for doc in docs:
            public = self._public(doc)
            for hook in self.on_stopped:
                try:
                    hook(public)
                except Exception:  # noqa: BLE001 - one listener's bug must not lose the others' news
                    log.exception("on_stopped hook failed for %s", doc["taskArn"])

    def notify_service_tasks_changed(self) -> None:
        for hook in self.on_service_tasks_changed:
            try:
                hook()
            except Exception:  # noqa: BLE001 - as above
                log.exception("on_service_tasks_changed hook failed")

    def definition_for_run(self, ref: str) -> dict:
        """The ACTIVE task definition `ref` names, or the error RunTask gives (CreateService checks so too)."""
        return self._task_definition_for_run(ref)

    def check_launch(self, p: dict) -> list[dict] | None:
        """launchType / capacityProviderStrategy checked as RunTask checks them: the strategy to run by (the
        cluster's default when neither is given), None for the FARGATE launch type."""
        return self._launch_type(p)

    async def purge_old(self) -> list[str]:
        """Forget tasks stopped more than an hour ago (ECS keeps them describable about that long)."""
        return await asyncio.to_thread(self.ctx.store.purge_stopped_tasks,
                                       clock.now() - STOPPED_TASK_RETENTION_SECONDS)

    # --- API -----------------------------------------------------------------------------------

    async def run_task(self, p: dict, inactive_definition_ok: bool = False) -> dict:
        """RunTask; the service scheduler starts its tasks here too, and may use a deregistered definition
        (ECS keeps a service's tasks running after its definition is deregistered)."""
        out, created = await asyncio.to_thread(self._run_task, p, inactive_definition_ok)
        if created:
            await self.changes.changed(self.agent_id)
        return out

    def _run_task(self, p: dict, inactive_definition_ok: bool = False) -> tuple[dict, bool]:
        cluster = self.clusters.get_active(p.get("cluster"))
        count = p.get("count", 1)
        if not 1 <= count <= 10:
            raise InvalidParameterException("Count must be between 1 and 10.")
        td = self._task_definition_for_run(p["taskDefinition"], inactive_definition_ok)
        strategy = self._launch_type(p, cluster)
        # the provider of each task: by the strategy's base and weights; none for the FARGATE launch type
        providers: list[str | None] = list(choose_providers(strategy, count)) if strategy else [None] * count
        if "FARGATE" not in td.get("compatibilities", []):
            raise InvalidParameterException("Task definition does not support launch_type FARGATE.")
        platform = resolve_platform_version(p.get("platformVersion"), self.ctx.config.latest_platform)
        overrides = p.get("overrides") or {}
        cpu, memory = self._task_size(td, overrides)
        if not any(task_size_supported(cpu, memory, known) for known in PLATFORM_VERSIONS.values()):
            raise InvalidParameterException("No Fargate configuration exists for given values.")
        storage = overrides.get("ephemeralStorage")
        if storage is not None:
            try:
                check_ephemeral_storage(storage)
            except ClientException as e:  # RunTask names bad parameters so; registration says ClientException
                raise InvalidParameterException(e.message) from None
        # an ephemeralStorage override needs what the definition's own would (1.4.0)
        check_platform_supports(td if storage is None else {**td, "ephemeralStorage": storage}, platform, cpu=cpu)
        if not task_size_supported(cpu, memory, platform):
            raise PlatformTaskDefinitionIncompatibilityException(
                "One or more of the requested capabilities are not supported.")
        self._check_container_overrides(td, overrides)
        awsvpc = self.network.resolve_awsvpc((p.get("networkConfiguration") or {}).get("awsvpcConfiguration"))
        started_by = p.get("startedBy")
        if started_by is not None and not _STARTED_BY.match(started_by):
            raise InvalidParameterException(
                "startedBy may contain up to 128 letters, numbers, hyphens, forward slashes and underscores.")
        token = p.get("clientToken")
        if token is not None:
            if not 1 <= len(token) <= 64 or not all(33 <= ord(ch) <= 126 for ch in token):
                raise InvalidParameterException("clientToken must be 1-64 printable ASCII characters.")
            previous = self.ctx.store.tasks_by_client_token(cluster["clusterArn"], token)
            if previous:
                return {"tasks": [self._public(t) for t in previous], "failures": []}, False

        # what the definition's EFS volumes depend on, read once for all the tasks of this call
        efs_view = self.efs_volumes.read(td, awsvpc.security_groups)
        tasks, failures = [], []
        for subnet, capacity_provider in zip(_spread_over_zones(awsvpc.subnets, count), providers):
            task_id = uuid.uuid4().hex
            task_arn = self.ctx.arns.task(cluster["clusterName"], task_id)
            try:
                with self.ctx.store.task_writes() as w:
                    ip = w.allocate_ip(subnet.subnet_id, subnet.cidr, task_arn)
                    task = self._new_task(cluster, td, p, platform.version, cpu, memory, subnet, task_id, ip,
                                          awsvpc, capacity_provider, efs_view)
                    w.insert(task, task_id, td["family"], token, self.agent_id)
                    w.insert_network_interface(_eni_row(task))
            except SubnetFullError:
                failures.append({"arn": cluster["clusterArn"], "reason": "RESOURCE:ENI",
                                 "detail": f"Subnet {subnet.subnet_id} has no free IP address."})
                continue
            if p.get("tags"):
                self.ctx.store.put_tags(task["taskArn"], p["tags"])
            tasks.append(self._public(task))
        return {"tasks": tasks, "failures": failures}, bool(tasks)

    async def stop_task(self, p: dict, stop_code: str = reasons.USER_INITIATED) -> dict:
        """StopTask; the service scheduler stops its tasks here too, with its own stop code."""
        out, agent_id = await asyncio.to_thread(self._stop_task, p, stop_code)
        await self.changes.changed(agent_id)
        return out

    def _stop_task(self, p: dict, stop_code: str = reasons.USER_INITIATED) -> tuple[dict, str | None]:
        """Desired status to STOPPED with a new generation; known state is the agent's to report."""
        cluster = self.clusters.get_active(p.get("cluster"))
        with self.ctx.store.task_writes() as w:
            record = w.lock_by_id(self._task_id(p["task"]))
            if record is None or record.doc["clusterArn"] != cluster["clusterArn"]:
                raise InvalidParameterException("The referenced task was not found.")
            task, changed_agent = record.doc, None
            if raise_desired_stop(task, stop_code, p.get("reason") or reasons.STOPPED_BY_USER, clock.now()):
                task["version"] = task.get("version", 0) + 1
                record.generation = w.next_generation()
                w.save(record)
                changed_agent = record.agent_id
        return {"task": self._public(task)}, changed_agent

    async def describe_tasks(self, p: dict) -> dict:
        if self.ctx.store.quick_reads and len(p.get("tasks") or ()) <= QUICK_DESCRIBE_TASKS:
            # What waiters poll: a task or a few, every few ms. On the loop such a call takes 0.42 ms of CPU
            # instead of 0.65 in a thread, and less of the interpreter from the starts being watched.
            return self._describe_tasks(p)
        return await asyncio.to_thread(self._describe_tasks, p)

    def _describe_tasks(self, p: dict) -> dict:
        cluster = self.clusters.get_active(p.get("cluster"))
        refs = p["tasks"]
        if not 1 <= len(refs) <= 100:
            raise InvalidParameterException("Tasks cannot be empty and may name at most 100 tasks.")
        with_tags = "TAGS" in (p.get("include") or [])
        ids = [self._task_id(ref) for ref in refs]
        found = self._documents.decode(self.ctx.store.get_task_texts(ids))
        tasks, failures = [], []
        for ref, task_id in zip(refs, ids):
            task = found.get(task_id)  # the public view, shared with later calls: copied before a change
            if task is None or task["clusterArn"] != cluster["clusterArn"]:
                failures.append({"arn": ref if ref.startswith("arn:") else
                                 self.ctx.arns.task(cluster["clusterName"], ref), "reason": "MISSING"})
                continue
            tasks.append({**task, "tags": self.ctx.store.get_tags(task["taskArn"])} if with_tags else task)
        return {"tasks": tasks, "failures": failures}

    async def list_tasks(self, p: dict) -> dict:
        return await asyncio.to_thread(self._list_tasks, p)

    def _list_tasks(self, p: dict) -> dict:
        cluster = self.clusters.get_active(p.get("cluster"))
        offset, limit = page_bounds(p)
        desired = p.get("desiredStatus") or "RUNNING"
        if p.get("containerInstance") or p.get("launchType") not in (None, "FARGATE"):
            return {"taskArns": []}
        if p.get("serviceName"):
            if self.services is None:
                return {"taskArns": []}
            arns = self.services.task_arns(cluster["clusterArn"], p["serviceName"], desired, p.get("family"),
                                           p.get("startedBy"), offset, limit + 1)
            return {"taskArns": arns[:limit], "nextToken": next_token(offset, limit, len(arns))}
        arns = self.ctx.store.list_task_arns(cluster["clusterArn"], desired, p.get("family"), p.get("startedBy"),
                                             offset, limit + 1)
        return {"taskArns": arns[:limit], "nextToken": next_token(offset, limit, len(arns))}

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _task_id(ref: str) -> str:
        """A task named by ARN (old or new format) or by id."""
        if not ref.startswith("arn:"):
            return ref
        parsed = parse_ecs_arn(ref)
        return parsed.resource.rsplit("/", 1)[-1] if parsed and parsed.kind == "task" else ref

    def _task_definition_for_run(self, ref: str, inactive_ok: bool = False) -> dict:
        try:
            td = self.registry.find(ref)
        except ClientException:
            td = None
        if td is None:  # seen in real output as "ClientException: TaskDefinition not found."
            raise ClientException("TaskDefinition not found.")
        if td["status"] != "ACTIVE" and not inactive_ok:
            raise InvalidParameterException("TaskDefinition is inactive")
        return td

    def _launch_type(self, p: dict, cluster: dict | None = None) -> list[dict] | None:
        """The capacity provider strategy the call runs by: its own, else the cluster's default when it names
        no launch type; None means the FARGATE launch type (tasks without a capacityProviderName)."""
        cluster = cluster if cluster is not None else self.clusters.get_active(p.get("cluster"))
        strategy = resolve_strategy(cluster, p.get("launchType"), p.get("capacityProviderStrategy"))
        if strategy is None and p.get("launchType") not in (None, "FARGATE"):
            raise InvalidParameterException(
                f"Launch type {p['launchType']} is not available here: Fargo runs FARGATE tasks only.")
        return strategy

    @staticmethod
    def _task_size(td: dict, overrides: dict) -> tuple[str, str]:
        try:
            cpu = str(parse_task_cpu(overrides["cpu"])) if overrides.get("cpu") else td["cpu"]
            memory = str(parse_task_memory(overrides["memory"])) if overrides.get("memory") else td["memory"]
        except ClientException as e:
            raise InvalidParameterException(e.message) from None
        return cpu, memory

    @staticmethod
    def _check_container_overrides(td: dict, overrides: dict) -> None:
        names = {c["name"] for c in td["containerDefinitions"]}
        for o in overrides.get("containerOverrides") or []:
            if o.get("name") not in names:
                raise InvalidParameterException(
                    f"Override for container named {o.get('name')} is not a container in the TaskDefinition.")

    def _new_task(self, cluster: dict, td: dict, p: dict, platform_version: str, cpu: str, memory: str,
                  subnet: SubnetChoice, task_id: str, ip: str, awsvpc: AwsvpcChoice,
                  capacity_provider: str | None, efs_view: EfsView | None = None) -> dict:
        cluster_name = cluster["clusterName"]
        task_arn = self.ctx.arns.task(cluster_name, task_id)
        overrides = p.get("overrides") or {}
        by_name = {o["name"]: o for o in overrides.get("containerOverrides") or []}
        attachment_id = str(uuid.uuid4())
        containers = []
        for c in td["containerDefinitions"]:
            o = by_name.get(c["name"], {})
            container: dict[str, Any] = {
                "containerArn": self.ctx.arns.container(cluster_name, task_id, str(uuid.uuid4())),
                "taskArn": task_arn, "name": c["name"], "image": c["image"], "lastStatus": "PENDING",
                "networkBindings": [], "networkInterfaces": [{"attachmentId": attachment_id,
                                                               "privateIpv4Address": ip}],
                "healthStatus": "UNKNOWN", "cpu": str(o.get("cpu", c.get("cpu", 0))),
            }
            mem, reservation = o.get("memory", c.get("memory")), o.get("memoryReservation", c.get("memoryReservation"))
            if mem is not None:
                container["memory"] = str(mem)
            if reservation is not None:
                container["memoryReservation"] = str(reservation)
            containers.append(container)
        platform = PLATFORM_VERSIONS[platform_version]
        # 1.4.0: one volume of 20 GiB unless the definition or RunTask asks for more; 1.3.0 has no such field
        storage = overrides.get("ephemeralStorage") or td.get("ephemeralStorage") or {
            "sizeInGiB": platform.ephemeral_storage_gib}
        mac = mac_address(task_id)
        efs_volumes = self.efs_volumes.plan(td, efs_view, TaskPlacement(
            vpc_id=awsvpc.vpc_id, availability_zone=subnet.availability_zone, ip=ip,
            security_groups=list(awsvpc.security_groups)))
        task: dict[str, Any] = {
            "taskArn": task_arn, "clusterArn": cluster["clusterArn"], "taskDefinitionArn": td["taskDefinitionArn"],
            "containers": containers,
            "overrides": {"containerOverrides": overrides.get("containerOverrides")
                          or [{"name": c["name"]} for c in td["containerDefinitions"]],
                          "inferenceAcceleratorOverrides": [],
                          **{k: v for k, v in overrides.items() if k in ("cpu", "memory", "taskRoleArn",
                                                                         "executionRoleArn", "ephemeralStorage")}},
            "lastStatus": "PROVISIONING", "desiredStatus": "RUNNING", "cpu": cpu, "memory": memory,
            "createdAt": clock.now(), "group": p.get("group") or f"family:{td['family']}",
            "launchType": "FARGATE", "platformVersion": platform_version, "platformFamily": "Linux",
            "availabilityZone": subnet.availability_zone, "startedBy": p.get("startedBy"),
            "attachments": [{"id": attachment_id, "type": "ElasticNetworkInterface", "status": "PRECREATED",
                             "details": [{"name": "subnetId", "value": subnet.subnet_id}]}],
            "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
            "enableExecuteCommand": bool(p.get("enableExecuteCommand", False)),
            "healthStatus": "UNKNOWN", "version": 1, "tags": p.get("tags") or [],
            # the ENI plan; the definition stays in task_definitions (immutable), read by ARN when assigned
            PRIVATE: {"subnetId": subnet.subnet_id, "subnetCidr": subnet.cidr, "ip": ip, "mac": mac,
                      "attachmentId": attachment_id, "availabilityZone": subnet.availability_zone,
                      "privateDnsName": private_dns_name(ip, self.ctx.config.region),
                      "securityGroups": list(awsvpc.security_groups), "assignPublicIp": awsvpc.assign_public_ip,
                      "vpcId": awsvpc.vpc_id, "vpcCidr": awsvpc.vpc_cidr,
                      # the EFS volumes resolved now: file system, mount target, access point, or the failure
                      "efsVolumes": to_json(efs_volumes)},
        }
        if capacity_provider:
            task["capacityProviderName"] = capacity_provider
        if platform.ephemeral_storage_configurable:
            task["ephemeralStorage"] = {"sizeInGiB": storage["sizeInGiB"]}
            task["fargateEphemeralStorage"] = {"sizeInGiB": storage["sizeInGiB"]}
        return task

    def _public(self, task: dict) -> dict:
        out = {k: v for k, v in task.items() if k != PRIVATE}
        out.setdefault("tags", [])
        return out

    def _described(self, task: dict) -> dict:
        """DescribeTasks' view: no tags unless asked for (include TAGS: then read from the tags table, where
        TagResource keeps them; the document holds those given to RunTask)."""
        return {**self._public(task), "tags": []}


class DecodedDocuments:
    """Task documents as last decoded and seen through `view` (the API's public part), by task id and the
    stored text: DescribeTasks polls (waiters, schedulers, dashboards) mostly read tasks that have not
    changed, and decoding them again, then copying out their public part, was most of such a call. The text
    is kept to compare with (equal texts compare as memory: cheaper than hashing them, which cost a tenth of
    a 100-task call). What it hands out is shared by later calls: read only. Describe calls run in threads,
    hence the lock."""

    LIMIT = 4096

    def __init__(self, view: Callable[[dict], dict]) -> None:
        self._view = view
        self._held: dict[str, tuple[str, dict]] = {}
        self._lock = threading.Lock()

    def decode(self, texts: dict[str, str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        with self._lock:
            held = {tid: self._held.get(tid) for tid in texts}
        fresh: dict[str, tuple[str, dict]] = {}
        for tid, text in texts.items():
            known = held[tid]
            if known is not None and known[0] == text:
                out[tid] = known[1]
            else:
                out[tid] = self._view(json.loads(text))
                fresh[tid] = (text, out[tid])
        if fresh:
            with self._lock:
                if len(self._held) + len(fresh) > self.LIMIT:
                    self._held.clear()  # rare (thousands of tasks described): start over
                self._held.update(fresh)
        return out


def _spread_over_zones(subnets: list[SubnetChoice], count: int) -> list[SubnetChoice]:
    """A subnet for each of `count` tasks: the zones of the given subnets in turn, from a random start (as ECS
    spreads a RunTask's tasks across Availability Zones), and a random subnet within each zone."""
    zones: dict[str, list[SubnetChoice]] = {}
    for subnet in subnets:
        zones.setdefault(subnet.availability_zone, []).append(subnet)
    order = sorted(zones)
    first = random.randrange(len(order))
    return [random.choice(zones[order[(first + i) % len(order)]]) for i in range(count)]


def _eni_row(task: dict) -> dict:
    """The task ENI's row for the EC2 API (DescribeNetworkInterfaces, subnet counts, security groups)."""
    private = task[PRIVATE]
    return {"eni_id": eni_id_of(task["taskArn"].rsplit("/", 1)[-1]), "attachment_id": private["attachmentId"],
            "task_arn": task["taskArn"], "subnet_id": private["subnetId"], "vpc_id": private["vpcId"],
            "availability_zone": private["availabilityZone"], "ip": private["ip"], "mac": private["mac"],
            "private_dns_name": private["privateDnsName"], "group_ids": list(private["securityGroups"]),
            "assign_public_ip": private["assignPublicIp"], "attach_time": task["createdAt"]}
