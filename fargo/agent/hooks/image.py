"""The image hook: in PENDING, each container's image is resolved to its config and digest (the digest is
what DescribeTasks shows as imageDigest). Images come from `fargo image import` today.
"""
from __future__ import annotations

from fargo import clock
from fargo.agent.hooks.base import HookPhase, TaskCannotStart, TaskContext, TaskHook
from fargo.protocol import stop_reasons as reasons
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
                raise TaskCannotStart(reasons.image_not_found(ref)) from None
            except ContainerRuntimeError as e:
                raise TaskCannotStart(reasons.cannot_pull(e.message)) from None
            container.image, container.image_digest = config, config.digest
        task.set_pull_times(started, clock.now())
