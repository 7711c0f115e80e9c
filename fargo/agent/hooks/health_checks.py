"""The health checks hook: each container with a healthCheck is probed through containerd exec, and its
health (HEALTHY, UNHEALTHY, UNKNOWN) reaches the task, its report and dependsOn HEALTHY.

Container health checks as Docker runs them for ECS: a command in the container every `interval`,
`timeout` each, UNHEALTHY after `retries` failures in a row; failures in `startPeriod` don't count.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable

from fargo.agent.hooks.base import ContainerRun, HostFacilities, TaskContext, TaskHook
from fargo.protocol.container_settings import HealthCheckSettings
from fargo.runtime.errors import ContainerdUnavailable, ContainerRuntimeError

log = logging.getLogger(__name__)


def health_command(command: tuple[str, ...]) -> list[str] | None:
    """ECS's forms: ["CMD-SHELL", "line"], ["CMD", exe, args...]; anything else is run as given."""
    if not command or command[0] == "NONE":
        return None
    if command[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(command[1:])]
    if command[0] == "CMD":
        return list(command[1:])
    return list(command)


class HealthChecker:
    def __init__(self, runtime, container_id: str, settings: HealthCheckSettings,  # noqa: ANN001
                 on_change: Callable[[str], None]) -> None:
        self.runtime = runtime
        self.container_id = container_id
        self.settings = settings
        self.on_change = on_change
        self.status = "UNKNOWN"
        self._task: asyncio.Task | None = None

    async def run(self) -> None:
        await self._loop()

    def attach(self, task: asyncio.Task) -> None:
        self._task = task

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _loop(self) -> None:
        args = health_command(self.settings.command)
        if args is None:
            return
        started = time.monotonic()
        failures = 0
        while True:
            await asyncio.sleep(self.settings.interval)
            ok = await self._check_once(args)
            if ok is None:
                continue  # containerd is away: no verdict either way
            in_start_period = time.monotonic() - started < self.settings.start_period
            if ok:
                failures = 0
                self._set("HEALTHY")
            elif not in_start_period:
                failures += 1
                if failures >= self.settings.retries:
                    self._set("UNHEALTHY")

    async def _check_once(self, args: list[str]) -> bool | None:
        exec_id = "health-" + uuid.uuid4().hex[:12]
        try:
            code = await self.runtime.exec_process(self.container_id, exec_id, args, timeout=self.settings.timeout)
        except ContainerdUnavailable:
            return None
        except ContainerRuntimeError as e:
            log.debug("health check of %s could not run: %s", self.container_id, e)
            return False
        return code == 0

    def _set(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.on_change(status)


class HealthChecksHook(TaskHook):
    name = "health-checks"

    def __init__(self, host: HostFacilities) -> None:
        super().__init__(host)
        self._checkers: dict[tuple[str, str], HealthChecker] = {}  # (task id, container) -> its checker

    async def container_started(self, task: TaskContext, container: ContainerRun) -> None:
        if container.settings.health_check is None:
            return
        checker = HealthChecker(self.host.runtime, container.runtime_id, container.settings.health_check,
                                functools.partial(task.set_health, container))
        self._checkers[(task.task_id, container.name)] = checker
        checker.attach(task.spawn(checker.run()))

    async def container_exited(self, task: TaskContext, container: ContainerRun) -> None:
        checker = self._checkers.pop((task.task_id, container.name), None)
        if checker is not None:
            checker.stop()

    async def stop(self, task: TaskContext) -> None:
        for name in task.containers:
            checker = self._checkers.pop((task.task_id, name), None)
            if checker is not None:
                checker.stop()
