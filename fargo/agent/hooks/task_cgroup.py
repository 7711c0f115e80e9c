"""The task cgroup hook: the task's cpu and memory as one cgroup that all its containers nest in, and the
OutOfMemoryError reason when the memory cgroup killed a container.

The CPU limit is set once the task's first container has started, not when the cgroup is made. runc's own
set-up of a container (its Go runtime, the seccomp filter it compiles, the mounts) runs inside the container's
cgroup, and under a 0.25 vCPU quota that set-up was throttled: Tasks.Create took 170 ms instead of 130. Before
that start no process of the task's own has run.
"""
from __future__ import annotations

import asyncio

from fargo.agent.hooks.base import ContainerRun, ContainerSpecContribution, TaskContext, TaskHook
from fargo.protocol import stop_reasons as reasons
from fargo.agent.task_cgroup import (container_cgroup_path, create_task_cgroup, limit_task_cpu, oom_kills,
                                     remove_task_cgroup)

SIGKILL_EXIT = 137


class TaskCgroupHook(TaskHook):
    name = "task-cgroup"

    async def prestart(self, task: TaskContext) -> None:
        a = task.assignment
        await asyncio.to_thread(create_task_cgroup, task.task_id, a.memory_mib,
                                self.host.task_dir(task.task_id).parent.parent)  # DATA_DIR: where layers live

    def contribute(self, task: TaskContext, container: ContainerRun, spec: ContainerSpecContribution) -> None:
        spec.cgroups_path = container_cgroup_path(task.task_id, container.runtime_id)

    async def container_started(self, task: TaskContext, container: ContainerRun) -> None:
        # Also for a container found running after a restart: the same limit again. Two writes to cgroupfs
        # (no disk behind it) on the loop: a thread hop would cost more and delay the RUNNING report.
        limit_task_cpu(task.task_id, task.assignment.cpu_units)

    async def container_exited(self, task: TaskContext, container: ContainerRun) -> None:
        if container.exit_code == SIGKILL_EXIT and (self.host.oom_seen(container.runtime_id)
                                                    or oom_kills(task.task_id, container.runtime_id)):
            container.reason = reasons.OUT_OF_MEMORY

    async def stop(self, task: TaskContext) -> None:
        await asyncio.to_thread(remove_task_cgroup, task.task_id)
