"""The task metadata hook: registers the task with the agent's metadata server at 169.254.170.2 (v4, v3 and,
with a task role, its credentials), and runs the task's stats collector, which `/stats` and `/task/stats`
read. The server answers a container's endpoint id only from the task's own ENI in its own VPC.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass

from fargo.agent.hooks.base import ContainerRun, ContainerSpecContribution, HookPhase, TaskContext, TaskHook
from fargo.agent.metadata.server import MetadataTask
from fargo.agent.metadata.stats import TaskStatsCollector
from fargo.agent.metadata.task_view import ContainerView, EniView, TaskView
from fargo.network import ipam
from fargo.network.dns_names import private_zone
from fargo.network.names import netns_name, netns_path
from fargo.network.vpc_resolver import resolver_address
from fargo.storage.ephemeral_volume import TaskStorageLayout

METADATA_ADDRESS = "http://169.254.170.2"
_STOPPED = "STOPPED"


@dataclass
class _Registered:
    collector: TaskStatsCollector
    credentials_id: str | None
    sampling: bool = False  # the collector's run() is spawned


class TaskMetadataHook(TaskHook):
    name = "task-metadata"
    phase = HookPhase.PROVISIONING

    def __init__(self, host) -> None:  # noqa: ANN001 - a HostFacilities
        super().__init__(host)
        self._tasks: dict[str, _Registered] = {}

    async def prestart(self, task: TaskContext) -> None:
        # Made afresh each time: a runner made again after a crash is a new TaskContext, and the old one's
        # collector ended with its TaskGroup. Ids stay: credentials ids are derived, the server replaces.
        previous = self._tasks.pop(task.task_id, None)
        if previous is not None:
            previous.collector.close()
        role = task.assignment.task_definition.get("taskRoleArn") or \
            task.assignment.overrides.get("taskRoleArn")
        credentials_id = self.host.metadata.credentials.issue(
            task.task_id, role, credentials_id_for(self.host.credentials_key, task.task_id)) if role else None
        collector = TaskStatsCollector(
            task.task_id, netns_path(netns_name(task.task_id, self.host.network_prefix)),
            lambda: {c.runtime_id: c.name for c in task.containers.values() if c.progress.started},
            network_stats=task.platform.metadata_v4,
            pids=lambda: [c.pid for c in list(task.containers.values()) if c.pid and not c.progress.exited])
        self._tasks[task.task_id] = _Registered(collector, credentials_id)
        storage = TaskStorageLayout(self.host.task_dir(task.task_id))
        eni = task.assignment.eni
        self.host.metadata.register(MetadataTask(
            task_id=task.task_id, vpc_id=eni.vpc_id, ip=eni.ip,
            endpoint_ids={c.runtime_id: c.name for c in task.containers.values()},
            # statvfs of the task's volume on each request: a few µs, and as current as the kernel's count
            view=lambda: task_view(task, self.host.region, storage.utilized_mib() if task.platform.metadata_v4
                                   else None),
            stats=collector.stats, credentials_id=credentials_id))

    def contribute(self, task: TaskContext, container: ContainerRun, spec: ContainerSpecContribution) -> None:
        registered = self._tasks.get(task.task_id)
        if registered is not None and registered.credentials_id is not None:
            spec.environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = f"/v2/credentials/{registered.credentials_id}"

    async def poststart(self, task: TaskContext) -> None:
        registered = self._tasks.get(task.task_id)
        if registered is not None and not registered.sampling:
            registered.sampling = True
            # its schedule samples it at once, in the schedule's worker thread (a first sample here, on the
            # loop, took 1.5 ms and held the RUNNING report back)
            task.spawn(registered.collector.run())

    async def stop(self, task: TaskContext) -> None:
        self.host.metadata.unregister(task.task_id)
        self.host.metadata.credentials.revoke(task.task_id)
        registered = self._tasks.pop(task.task_id, None)
        if registered is not None:
            registered.collector.close()  # its file in the task's namespace would keep the namespace alive


def credentials_id_for(key: bytes, task_id: str) -> str:
    """The task's credentials id: a UUID only this agent can derive, the same after an agent restart (the
    container's AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is fixed when it is created)."""
    digest = hmac.new(key, task_id.encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def task_view(task: TaskContext, region: str, storage_utilized_mib: int | None = None) -> TaskView:
    """The task as the metadata endpoint shows it now. EphemeralStorageMetrics (1.4.0): Utilized is what the
    task's volume holds (`storage_utilized_mib`, None without a volume), Reserved its size."""
    a, report = task.assignment, task.report()
    storage = None
    if task.platform.metadata_v4 and storage_utilized_mib is not None:
        reserved_gib = a.ephemeral_storage_gib or task.platform.ephemeral_storage_gib
        storage = (storage_utilized_mib, reserved_gib * 1024)
    stopping = _STOPPED in (a.desired_status, report.desired_status)
    eni = a.eni
    return TaskView(
        task_arn=a.task_arn, cluster_arn=a.cluster_arn, family=a.task_definition.get("family", ""),
        revision=str(a.task_definition.get("revision", "")), desired_status=_STOPPED if stopping else "RUNNING",
        known_status=report.known_status, cpu_vcpu=a.cpu_units / 1024, memory_mib=a.memory_mib,
        availability_zone=eni.availability_zone, platform_version=task.platform.version,
        eni=EniView(ip=eni.ip, mac=eni.mac, subnet_cidr=eni.subnet_cidr,
                    gateway_cidr=f"{ipam.gateway_ip(eni.subnet_cidr)}/{ipam.prefix_length(eni.subnet_cidr)}",
                    private_dns_name=eni.private_dns_name, dns_servers=[resolver_address(eni.vpc_cidr)],
                    dns_search=[private_zone(region)]),
        containers=[_container_view(a.container_arns.get(run.name, ""), run, stopping)
                    for run in task.containers.values()],
        pull_started_at=report.pull_started_at, pull_stopped_at=report.pull_stopped_at,
        execution_stopped_at=report.execution_stopped_at, ephemeral_storage_mib=storage)


def _container_view(arn: str, run: ContainerRun, stopping: bool) -> ContainerView:
    d = run.definition
    logging = d.get("logConfiguration") or {}
    memory = d.get("memory")
    return ContainerView(
        name=run.name, docker_id=run.runtime_id, image=d["image"], image_id=run.image_digest, container_arn=arn,
        desired_status=_STOPPED if stopping else "RUNNING", known_status=run.last_status, exit_code=run.exit_code,
        cpu_units=int(d.get("cpu") or 0), memory_mib=int(memory) if memory is not None else None,
        created_at=run.created_at, started_at=run.started_at, finished_at=run.finished_at,
        log_driver=logging.get("logDriver"), log_options=dict(logging.get("options") or {}),
        health={"status": run.health_status} if d.get("healthCheck") else None)
