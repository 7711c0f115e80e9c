"""The image hook: in PENDING, each container's image is resolved to its config and digest (the digest is
what DescribeTasks shows as imageDigest). Images come from `fargo image import` today.
"""
from __future__ import annotations

from fargo import clock
from fargo.agent.hooks.base import HookPhase, TaskCannotStart, TaskContext, TaskHook
from fargo.runtime.errors import ContainerRuntimeError, ImageNotFound


class ImageHook(TaskHook):
    name = "image"
    phase = HookPhase.PENDING

    async def prestart(self, task: TaskContext) -> None:
        started = clock.now()
        for container in task.containers.values():
            ref = container.definition["image"]
            try:
                config = await self.host.runtime.image_config(ref)
            except ImageNotFound:
                raise TaskCannotStart(
                    f"CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve "
                    f"ref {ref}: {ref}: not found") from None
            except ContainerRuntimeError as e:
                raise TaskCannotStart(f"CannotPullContainerError: {e}") from None
            container.image, container.image_digest = config, config.digest
        task.set_pull_times(started, clock.now())
