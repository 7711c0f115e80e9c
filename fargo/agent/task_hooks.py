"""What a task needs around its containers, one hook per concern: its ENI, its cgroup, its files.

The runner calls `provision` in order before the containers start (and `resume` after an agent
restart), and `deprovision` in reverse order once they are gone. Each hook undoes only its own work,
and tolerates finding its work half done or already undone.
"""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from fargo import clock
from fargo.agent.container_spec import TaskFacts
from fargo.agent.task_cgroup import create_task_cgroup, remove_task_cgroup
from fargo.control.task_definition_sizes import parse_task_cpu, parse_task_memory
from fargo.network.task_eni import TaskEniError, create_task_eni_async, delete_task_eni_async, plan_task_eni

if TYPE_CHECKING:
    from fargo.agent.agent import Agent
    from fargo.agent.task_runner import TaskRunner

METADATA_URI = "http://169.254.170.2"


class TaskHook:
    name = "hook"

    def __init__(self, agent: Agent, runner: TaskRunner) -> None:
        self.agent, self.runner = agent, runner

    async def provision(self) -> None: ...

    async def resume(self) -> None: ...

    async def deprovision(self) -> None: ...


class TaskEniHook(TaskHook):
    """The task's network namespace and veth on its subnet's bridge, with the IP RunTask chose."""

    name = "task-eni"

    def _attachment(self) -> dict:
        return self.runner.task["attachments"][0]

    def _plan(self):  # noqa: ANN202
        p = self.runner.private
        return plan_task_eni(self.runner.task_id, p["subnetId"], p["subnetCidr"], p["ip"],
                             self.runner.platform.task_eni_mtu, p["mac"], prefix=self.agent.settings.network_prefix)

    async def provision(self) -> None:
        from fargo.agent.task_runner import TaskCannotStart

        p = self.runner.private
        attachment = self._attachment()
        attachment["status"] = "ATTACHING"
        await self.agent.ensure_subnet(p["subnetId"], p["subnetCidr"])
        try:
            await create_task_eni_async(self.runner.task_id, p["subnetId"], p["subnetCidr"], p["ip"],
                                        self.runner.platform.task_eni_mtu, p["mac"],
                                        prefix=self.agent.settings.network_prefix)
        except TaskEniError as e:
            attachment["status"] = "FAILED"
            raise TaskCannotStart(_resource_init_error(self.runner, f"failed to configure ENI: {e}")) from None
        attachment["status"] = "ATTACHED"
        attachment["details"] = [
            {"name": "subnetId", "value": p["subnetId"]},
            {"name": "networkInterfaceId", "value": "eni-" + self.runner.task_id[:17]},
            {"name": "macAddress", "value": p["mac"]},
            {"name": "privateDnsName", "value": p["privateDnsName"]},
            {"name": "privateIPv4Address", "value": p["ip"]},
        ]
        self.runner.task["connectivity"] = "CONNECTED"
        self.runner.task["connectivityAt"] = clock.now()

    async def deprovision(self) -> None:
        attachment = self._attachment()
        if attachment["status"] in ("ATTACHED", "ATTACHING", "FAILED"):
            attachment["status"] = "DETACHING"
        await delete_task_eni_async(self.runner.task_id, prefix=self.agent.settings.network_prefix)
        attachment["status"] = "DELETED"


class TaskCgroupHook(TaskHook):
    """The task's own cgroup: its cpu and memory, which all its containers share."""

    name = "task-cgroup"

    async def provision(self) -> None:
        task = self.runner.task
        await asyncio.to_thread(create_task_cgroup, self.runner.task_id, parse_task_cpu(task["cpu"]),
                                parse_task_memory(task["memory"]))

    async def deprovision(self) -> None:
        await asyncio.to_thread(remove_task_cgroup, self.runner.task_id)


class TaskFilesHook(TaskHook):
    """The task's /etc/hosts, bind-mounted into its containers. Logs stay after the task stops."""

    name = "task-files"

    async def provision(self) -> None:
        p = self.runner.private
        short = p["privateDnsName"].split(".")[0]
        hosts = f"127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n{p['ip']} {p['privateDnsName']} {short}\n"
        path = hosts_file(self.agent, self.runner.task_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(hosts)

    async def deprovision(self) -> None:
        shutil.rmtree(self.agent.task_dir(self.runner.task_id) / "run", ignore_errors=True)


def hosts_file(agent: Agent, task_id: str) -> Path:
    return agent.task_dir(task_id) / "run" / "hosts"


def task_facts(agent: Agent, runner: TaskRunner) -> TaskFacts:
    """What container specs are built from; all known before any host work, so containers can be created early."""
    p = runner.private
    return TaskFacts(
        task_id=runner.task_id, task_arn=runner.task["taskArn"], region=agent.region,
        task_memory_mib=parse_task_memory(runner.task["memory"]), hostname=p["privateDnsName"],
        netns_path=TaskEniHook(agent, runner)._plan().netns_path, hosts_file=str(hosts_file(agent, runner.task_id)),
        metadata_uri=METADATA_URI)


def _resource_init_error(runner: TaskRunner, message: str) -> str:
    name = "ResourceInitializationError" if runner.platform.resource_initialization_error else "CannotStartContainerError"
    return f"{name}: {message}"


def default_hooks(agent: Agent, runner: TaskRunner) -> list[TaskHook]:
    return [TaskEniHook(agent, runner), TaskCgroupHook(agent, runner), TaskFilesHook(agent, runner)]
