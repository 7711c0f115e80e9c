"""The task cgroup hook: the task's cpu and memory as one cgroup that all its containers nest in, and the
OutOfMemoryError reason when the memory cgroup killed a container.
"""
from __future__ import annotations

import asyncio

from fargo.agent.hooks.base import ContainerRun, ContainerSpecContribution, TaskContext, TaskHook
from fargo.protocol import stop_reasons as reasons
from fargo.agent.task_cgroup import container_cgroup_path, create_task_cgroup, oom_kills, remove_task_cgroup

SIGKILL_EXIT = 137


class TaskCgroupHook(TaskHook):
    name = "task-cgroup"

    async def prestart(self, task: TaskContext) -> None:
        a = task.assignment
        await asyncio.to_thread(create_task_cgroup, task.task_id, a.cpu_units, a.memory_mib,
                                self.host.task_dir(task.task_id).parent.parent)  # DATA_DIR: where layers live

    def contribute(self, task: TaskContext, container: ContainerRun, spec: ContainerSpecContribution) -> None:
        spec.cgroups_path = container_cgroup_path(task.task_id, container.runtime_id)

    async def container_exited(self, task: TaskContext, container: ContainerRun) -> None:
        if container.exit_code == SIGKILL_EXIT and (self.host.oom_seen(container.runtime_id)
                                                    or oom_kills(task.task_id, container.runtime_id)):
            container.reason = reasons.OUT_OF_MEMORY

    async def stop(self, task: TaskContext) -> None:
        await asyncio.to_thread(remove_task_cgroup, task.task_id)
