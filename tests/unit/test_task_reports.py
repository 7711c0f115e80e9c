"""Known state from the agent's reports: never backwards, applied once, the first stop reason kept; desired
state from RunTask and StopTask reaches the agent as assignments with growing generations."""
from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from fargo.config import Config
from fargo.control.agent_gateway import InProcessControlPlane
from fargo.control.vpcs.network import Network
from fargo.control.clusters import Clusters
from fargo.control.context import ControlContext
from fargo.control.task_definitions.registry import TaskDefinitionRegistry
from fargo.control.task_reports import apply_report, raise_desired_stop
from fargo.control.tasks import EMBEDDED_AGENT_ID, Tasks
from fargo.protocol.messages import (AttachmentReport, ContainerReport, TaskAssignment, TaskReport, from_json,
                                     to_json)
from fargo.store.database import Store

T = TypeVar("T")
ARN = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef"


def _doc(**fields: Any) -> dict:
    doc = {"taskArn": ARN, "lastStatus": "PROVISIONING", "desiredStatus": "RUNNING", "healthStatus": "UNKNOWN",
           "version": 1, "containers": [{"name": "app", "lastStatus": "PENDING", "healthStatus": "UNKNOWN"}],
           "attachments": [{"id": "att-1", "type": "ElasticNetworkInterface", "status": "PRECREATED",
                            "details": [{"name": "subnetId", "value": "subnet-a"}]}]}
    doc.update(fields)
    return doc


def _report(seq: int, status: str, container: str = "PENDING", **fields: Any) -> TaskReport:
    exit_code = fields.pop("exit_code", None)
    return TaskReport(task_arn=ARN, seq=seq, known_status=status,
                      containers=[ContainerReport(name="app", runtime_id="app-1", last_status=container,
                                                  exit_code=exit_code)], **fields)


# --- merging one report -------------------------------------------------------------------------

def test_a_report_maps_onto_the_document_as_ecs_shows_it() -> None:
    doc = _doc()
    report = _report(1, "RUNNING", "RUNNING", connectivity="CONNECTED", connectivity_at=5.0, started_at=7.0,
                     pull_started_at=6.0, health_status="HEALTHY",
                     attachment=AttachmentReport("att-1", "ATTACHED", [{"name": "privateIPv4Address",
                                                                        "value": "10.0.0.4"}]))
    assert apply_report(doc, report, applied_seq=0) is True
    assert doc["lastStatus"] == "RUNNING" and doc["healthStatus"] == "HEALTHY"
    assert (doc["connectivity"], doc["connectivityAt"], doc["startedAt"], doc["pullStartedAt"]) == (
        "CONNECTED", 5.0, 7.0, 6.0)
    assert "stoppedAt" not in doc and "pullStoppedAt" not in doc  # None fields are not set
    assert doc["containers"][0] == {"name": "app", "lastStatus": "RUNNING", "healthStatus": "UNKNOWN",
                                    "runtimeId": "app-1"}
    assert doc["attachments"][0]["status"] == "ATTACHED"
    assert doc["attachments"][0]["details"] == [{"name": "privateIPv4Address", "value": "10.0.0.4"}]
    assert doc["version"] == 2


def test_a_replayed_report_is_not_applied_again() -> None:
    doc = _doc()
    assert apply_report(doc, _report(1, "PENDING"), applied_seq=0)
    applied = copy.deepcopy(doc)
    assert apply_report(doc, _report(1, "PENDING"), applied_seq=1) is False
    assert doc == applied


def test_out_of_order_reports_never_move_a_task_backwards() -> None:
    doc = _doc()
    assert apply_report(doc, _report(3, "RUNNING", "RUNNING"), applied_seq=0)
    # seq 2 arrives late: stale
    assert apply_report(doc, _report(2, "PENDING"), applied_seq=3) is False
    # a newer seq with an older status (an agent that lost its state) is refused as well
    assert apply_report(doc, _report(4, "ACTIVATING", "PENDING"), applied_seq=3) is False
    assert doc["lastStatus"] == "RUNNING" and doc["containers"][0]["lastStatus"] == "RUNNING"


def test_a_newer_report_with_the_same_status_updates_container_details() -> None:
    doc = _doc(lastStatus="RUNNING")
    assert apply_report(doc, _report(5, "RUNNING", "RUNNING", health_status="UNHEALTHY"), applied_seq=4)
    assert doc["healthStatus"] == "UNHEALTHY" and doc["version"] == 2
    # same status, nothing new: applied (its seq is held) but the version stays
    assert apply_report(doc, _report(6, "RUNNING", "RUNNING", health_status="UNHEALTHY"), applied_seq=5)
    assert doc["version"] == 2


def test_a_report_may_skip_states_it_did_not_send() -> None:
    doc = _doc()
    assert apply_report(doc, _report(2, "STOPPED", "STOPPED", exit_code=1, stopped_at=9.0), applied_seq=0)
    assert doc["lastStatus"] == "STOPPED" and doc["desiredStatus"] == "STOPPED"
    assert doc["containers"][0]["exitCode"] == 1 and doc["stoppedAt"] == 9.0


def test_a_stopped_container_does_not_come_back() -> None:
    doc = _doc(lastStatus="RUNNING")
    assert apply_report(doc, _report(2, "RUNNING", "STOPPED", exit_code=0), applied_seq=1)
    assert apply_report(doc, _report(3, "DEACTIVATING", "RUNNING"), applied_seq=2)
    assert doc["containers"][0]["lastStatus"] == "STOPPED" and doc["containers"][0]["exitCode"] == 0


def test_stop_task_then_essential_exit_keeps_the_user_stop_reason() -> None:
    doc = _doc(lastStatus="RUNNING")
    assert raise_desired_stop(doc, "UserInitiated", "Task stopped by user", 10.0) is True
    exited = _report(2, "DEACTIVATING", "STOPPED", exit_code=1, desired_status="STOPPED",
                     stop_code="EssentialContainerExited", stopped_reason="Essential container in task exited",
                     stopping_at=11.0)
    assert apply_report(doc, exited, applied_seq=1)
    assert (doc["stopCode"], doc["stoppedReason"], doc["stoppingAt"]) == (
        "UserInitiated", "Task stopped by user", 10.0)


def test_essential_exit_then_stop_task_keeps_the_exit_reason() -> None:
    doc = _doc(lastStatus="RUNNING")
    exited = _report(2, "DEACTIVATING", "STOPPED", exit_code=1, desired_status="STOPPED",
                     stop_code="EssentialContainerExited", stopped_reason="Essential container in task exited",
                     stopping_at=11.0)
    assert apply_report(doc, exited, applied_seq=1)
    assert raise_desired_stop(doc, "UserInitiated", "Task stopped by user", 12.0) is False
    assert (doc["desiredStatus"], doc["stopCode"], doc["stoppedReason"], doc["stoppingAt"]) == (
        "STOPPED", "EssentialContainerExited", "Essential container in task exited", 11.0)


def test_desired_status_never_goes_back_to_running() -> None:
    doc = _doc(lastStatus="RUNNING")
    raise_desired_stop(doc, "UserInitiated", "Task stopped by user")
    assert apply_report(doc, _report(2, "RUNNING", "RUNNING", desired_status="RUNNING"), applied_seq=1)
    assert doc["desiredStatus"] == "STOPPED"


# --- through the control plane and the store ----------------------------------------------------

class _Fargo:
    """The control plane's task side on a SQLite store, with a cluster and a task definition."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = Store(f"sqlite:///{tmp_path / 'fargo.db'}")
        self.store.migrate()
        self.ctx = ControlContext(Config(data_dir=tmp_path), self.store)
        clusters = Clusters(self.ctx)
        clusters.create(None, None, None)
        registry = TaskDefinitionRegistry(self.ctx)
        registry.register({"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                           "cpu": "256", "memory": "512",
                           "containerDefinitions": [{"name": "app", "image": "busybox:latest"}]})
        self.network = network = Network(self.ctx)
        network.ensure_default()
        self.tasks = Tasks(self.ctx, clusters, registry, network)
        self.gateway = InProcessControlPlane(self.ctx, self.tasks, network, poll_seconds=0.05)
        self.subnet = self.ctx.config.network.subnets[0].subnet_id

    async def run(self, **extra: Any) -> dict:
        out = await self.tasks.run_task({"taskDefinition": "web", "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": [self.subnet]}}, **extra})
        return out["tasks"][0]

    async def describe(self, arn: str) -> dict:
        return (await self.tasks.describe_tasks({"tasks": [arn]}))["tasks"][0]


def _async(test: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> T:
        return asyncio.run(test(*args, **kwargs))
    return run


def _agent_report(task: dict, seq: int, status: str, container: str = "PENDING", **fields: Any) -> TaskReport:
    exit_code = fields.pop("exit_code", None)
    return TaskReport(task_arn=task["taskArn"], seq=seq, known_status=status,
                      containers=[ContainerReport(name="app", runtime_id="app-1", last_status=container,
                                                  exit_code=exit_code)], **fields)


@_async
async def test_run_task_becomes_an_assignment_with_the_registered_definition(tmp_path: Path) -> None:
    f = _Fargo(tmp_path)
    task = await f.run()
    assert task["lastStatus"] == "PROVISIONING" and task["desiredStatus"] == "RUNNING" and "_fargo" not in task
    batch = await f.gateway.assignments(EMBEDDED_AGENT_ID, None, timeout=0)
    assert batch.full and [a.task_arn for a in batch.assignments] == [task["taskArn"]]
    a = batch.assignments[0]
    assert from_json(TaskAssignment, to_json(a)) == a
    assert a.task_definition["taskDefinitionArn"] == task["taskDefinitionArn"]
    assert (a.cpu_units, a.memory_mib, a.desired_status, a.ephemeral_storage_gib) == (256, 512, "RUNNING", 20)
    ip = task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
    assert (a.eni.ip, a.eni.subnet_id, a.eni.eni_id) == (ip, f.subnet, "eni-" + a.task_id[:17])
    assert a.eni.security_groups == [f.ctx.config.network.security_group_id]
    assert a.overrides["containerOverrides"] == [{"name": "app"}]
    assert batch.generation == a.generation
    # the agent's copy is its own: changing it changes nothing the control plane holds
    a.task_definition["family"] = "changed"
    again = await f.gateway.assignments(EMBEDDED_AGENT_ID, None, timeout=0)
    assert again.assignments[0].task_definition["family"] == "web"


@_async
async def test_stop_task_raises_desired_state_only_and_wakes_the_waiting_agent(tmp_path: Path) -> None:
    f = _Fargo(tmp_path)
    task = await f.run()
    first = await f.gateway.assignments(EMBEDDED_AGENT_ID, None, timeout=0)
    waiting = asyncio.create_task(f.gateway.assignments(EMBEDDED_AGENT_ID, first.generation, timeout=10))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    stopped = (await f.tasks.stop_task({"task": task["taskArn"], "reason": "enough"}))["task"]
    assert (stopped["desiredStatus"], stopped["lastStatus"], stopped["stopCode"], stopped["stoppedReason"]) == (
        "STOPPED", "PROVISIONING", "UserInitiated", "enough")
    batch = await asyncio.wait_for(waiting, 2)
    assert not batch.full and len(batch.assignments) == 1
    a = batch.assignments[0]
    assert a.generation > first.generation and a.desired_status == "STOPPED"
    assert (a.stop_code, a.stopped_reason) == ("UserInitiated", "enough")
    # nothing new: the wait ends empty after its timeout
    assert (await f.gateway.assignments(EMBEDDED_AGENT_ID, batch.generation, timeout=0.1)).assignments == []


@_async
async def test_the_look_after_a_batch_waits_for_a_change_without_reading_the_store(tmp_path: Path) -> None:
    f = _Fargo(tmp_path)
    await f.run()
    first = await f.gateway.assignments(EMBEDDED_AGENT_ID, None, timeout=0)
    reads: list[int | None] = []
    batch_of = f.gateway._batch
    f.gateway._batch = lambda agent, since: reads.append(since) or batch_of(agent, since)  # type: ignore[method-assign]
    waiting = asyncio.create_task(f.gateway.assignments(EMBEDDED_AGENT_ID, first.generation, timeout=10))
    await asyncio.sleep(0.02)  # (less than the poll: a change is what ends this wait)
    assert reads == [] and not waiting.done()
    second = await f.run()  # rings: the agent reads at once and finds the new task
    batch = await asyncio.wait_for(waiting, 2)
    assert [a.task_arn for a in batch.assignments] == [second["taskArn"]] and reads == [first.generation]
    # with nothing rung, the store is still read at each poll (another replica's changes ring nothing here)
    empty = await f.gateway.assignments(EMBEDDED_AGENT_ID, batch.generation, timeout=0.12)
    assert empty.assignments == [] and len(reads) >= 2


@_async
async def test_a_stale_report_is_acked_but_not_applied(tmp_path: Path) -> None:
    f = _Fargo(tmp_path)
    task = await f.run()
    ack = await f.gateway.report(EMBEDDED_AGENT_ID, [_agent_report(task, 2, "RUNNING", "RUNNING"),
                                                     _agent_report(task, 1, "PENDING")])
    assert ack.acked == {task["taskArn"]: 2}
    assert (await f.describe(task["taskArn"]))["lastStatus"] == "RUNNING"
    ack = await f.gateway.report(EMBEDDED_AGENT_ID, [_agent_report(task, 1, "PENDING")])
    assert ack.acked == {task["taskArn"]: 2}
    described = await f.describe(task["taskArn"])
    assert described["lastStatus"] == "RUNNING" and described["containers"][0]["lastStatus"] == "RUNNING"


@_async
async def test_a_report_for_an_unknown_task_is_acked_and_dropped(tmp_path: Path) -> None:
    f = _Fargo(tmp_path)
    ack = await f.gateway.report(EMBEDDED_AGENT_ID, [_report(3, "RUNNING")])
    assert ack.acked == {ARN: 3}


@_async
async def test_the_address_is_released_when_the_task_is_stopped(tmp_path: Path) -> None:
    f = _Fargo(tmp_path)
    stopped: list[dict] = []
    f.tasks.on_stopped.append(stopped.append)
    first, second = await f.run(), await f.run()
    assert f.network.used_ip_count(f.subnet) == 2
    ip = first["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
    await f.gateway.report(EMBEDDED_AGENT_ID, [_agent_report(first, 1, "DEPROVISIONING", "STOPPED", exit_code=0)])
    assert f.network.used_ip_count(f.subnet) == 2  # not yet: the ENI is still being torn down
    await f.gateway.report(EMBEDDED_AGENT_ID, [_agent_report(first, 2, "STOPPED", "STOPPED", exit_code=0,
                                                             stopped_at=20.0)])
    assert f.network.used_ip_count(f.subnet) == 1
    assert [d["taskArn"] for d in stopped] == [first["taskArn"]] and "_fargo" not in stopped[0]
    # the next task gets the freed address
    third = await f.run()
    assert third["containers"][0]["networkInterfaces"][0]["privateIpv4Address"] == ip
    assert second["taskArn"] != third["taskArn"]


@_async
async def test_an_agent_initiated_stop_keeps_its_reason_against_a_later_stop_task(tmp_path: Path) -> None:
    f = _Fargo(tmp_path)
    task = await f.run()
    before = await f.gateway.assignments(EMBEDDED_AGENT_ID, None, timeout=0)
    exited = _agent_report(task, 1, "DEACTIVATING", "STOPPED", exit_code=3, desired_status="STOPPED",
                           stop_code="EssentialContainerExited",
                           stopped_reason="Essential container in task exited", stopping_at=11.0)
    await f.gateway.report(EMBEDDED_AGENT_ID, [exited])
    # desired state changed, so the assignment has a new generation
    after = await f.gateway.assignments(EMBEDDED_AGENT_ID, before.generation, timeout=0)
    assert [a.desired_status for a in after.assignments] == ["STOPPED"]
    out = (await f.tasks.stop_task({"task": task["taskArn"]}))["task"]
    assert (out["stopCode"], out["stoppedReason"], out["containers"][0]["exitCode"]) == (
        "EssentialContainerExited", "Essential container in task exited", 3)
    # StopTask changed nothing: no new generation
    assert (await f.gateway.assignments(EMBEDDED_AGENT_ID, after.generation, timeout=0)).assignments == []


@_async
async def test_stopped_tasks_leave_the_full_set_and_listing_follows_desired_status(tmp_path: Path) -> None:
    f = _Fargo(tmp_path)
    task, other = await f.run(), await f.run()
    await f.tasks.stop_task({"task": task["taskArn"]})
    assert (await f.tasks.list_tasks({}))["taskArns"] == [other["taskArn"]]
    assert (await f.tasks.list_tasks({"desiredStatus": "STOPPED"}))["taskArns"] == [task["taskArn"]]
    await f.gateway.report(EMBEDDED_AGENT_ID, [_agent_report(task, 1, "STOPPED", "STOPPED")])
    full = await f.gateway.assignments(EMBEDDED_AGENT_ID, None, timeout=0)
    assert [a.task_arn for a in full.assignments] == [other["taskArn"]]
    assert (await f.tasks.find_task(task["taskArn"].rsplit("/", 1)[-1]) or {}).get("lastStatus") == "STOPPED"


@_async
async def test_an_agent_ahead_of_the_store_gets_its_whole_set(tmp_path: Path) -> None:
    f = _Fargo(tmp_path)
    task = await f.run()
    batch = await f.gateway.assignments(EMBEDDED_AGENT_ID, 10_000, timeout=0)
    assert batch.full and [a.task_arn for a in batch.assignments] == [task["taskArn"]]
