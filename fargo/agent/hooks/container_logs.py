"""The container logs hook: each container's stdout and stderr go to a file of the task's, which
`fargo logs` reads; the files outlive the task (the agent purges them with the task, an hour on).
"""
from __future__ import annotations

from fargo.agent.hooks.base import ContainerRun, ContainerSpecContribution, TaskContext, TaskHook


class ContainerLogsHook(TaskHook):
    name = "container-logs"

    async def prestart(self, task: TaskContext) -> None:
        for name in task.containers:
            path = self.host.log_path(task.task_id, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

    def contribute(self, task: TaskContext, container: ContainerRun, spec: ContainerSpecContribution) -> None:
        spec.stdout_path = spec.stderr_path = self.host.log_path(task.task_id, container.name)
