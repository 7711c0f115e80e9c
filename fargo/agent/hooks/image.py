"""The image hook: in PENDING, after the secrets hook, each container's image is pulled (side by side, as
Fargate pulls a task's images) and resolved to its config and digest, which DescribeTasks shows as imageDigest.

- An image imported with `fargo image import` is used as it is: nothing is asked of a registry.
- A pulled image's tag is resolved again for every task (a HEAD of its manifest), and only content the host
  lacks is fetched, so a second task of an image downloads nothing. A reference by digest is never asked again.
- On 1.4.0 the pull leaves from the task ENI (`execution.paths`): Fargo's own registry through the VPC
  endpoint, any other one like the task's own traffic, so a subnet with no way out reaches none.
"""
from __future__ import annotations

import asyncio
import logging

from fargo import clock
from fargo.agent.execution.paths import ExecutionPath, execution_path
from fargo.agent.execution.registry_hosts import fargo_registry_names
from fargo.agent.hooks.base import (ContainerRun, HookPhase, TaskCannotStart, TaskContext, TaskHook,
                                    resumed_past_pending)
from fargo.protocol import stop_reasons as reasons
from fargo.runtime.errors import ContainerRuntimeError, ImageNotFound
from fargo.runtime.image_pull import PullFailed
from fargo.runtime.images import ResolvedImage
from fargo.runtime.registry import Credentials, RegistryAccess

log = logging.getLogger(__name__)
# runtimePlatform.cpuArchitecture -> the OCI architecture pulled (Fargate's default is X86_64).
_ARCHITECTURES = {"X86_64": "amd64", "ARM64": "arm64"}


class ImageHook(TaskHook):
    name = "image"
    phase = HookPhase.PENDING

    async def prestart(self, task: TaskContext) -> None:
        started = clock.now()
        path: ExecutionPath | None = None
        if not resumed_past_pending(task):
            path = execution_path(task.platform, task.task_id, task.assignment.eni,
                                  network_prefix=self.host.network_prefix, region=self.host.region,
                                  edge=self.host.edge_address)
        jobs = [asyncio.ensure_future(self._image(task, c, path)) for c in task.containers.values()]
        try:
            await asyncio.gather(*jobs)
        finally:
            for job in jobs:
                job.cancel()
        task.set_pull_times(started, clock.now())

    async def _image(self, task: TaskContext, container: ContainerRun, path: ExecutionPath | None) -> None:
        ref = container.definition["image"]
        runtime = self.host.runtime
        try:
            local, resolved = await runtime.local_image(ref)
        except ImageNotFound:
            local = resolved = None
        except ContainerRuntimeError as e:
            raise TaskCannotStart(reasons.cannot_pull(e.message)) from None
        digest_pinned = "@" in ref
        if local is not None and resolved is not None and (path is None or not local.pulled or digest_pinned):
            # (one lookup gives the record and the config: an image lookup costs a round trip to containerd)
            container.image, container.rootfs_parent = resolved.config, resolved.chain_id
            container.image_digest = local.digest
            return
        if path is None:  # resumed, and the image is gone: pull it as a task would
            path = execution_path(task.platform, task.task_id, task.assignment.eni,
                                  network_prefix=self.host.network_prefix, region=self.host.region,
                                  edge=self.host.edge_address)
        credentials = container.registry_credentials
        try:
            pulled = await runtime.pull_image(
                ref, platform=("linux", _ARCHITECTURES.get(_cpu_architecture(task), "amd64")),
                access=self._access(task, path),
                credentials=Credentials(credentials.username, credentials.password) if credentials else None)
        except PullFailed as failed:
            raise TaskCannotStart(reasons.pull_failed(task.platform, failed.step, failed.attempts, failed.detail,
                                                      kind=failed.kind, ref=ref)) from None
        resolved = await self._resolve(pulled.name)
        container.image, container.rootfs_parent = resolved.config, resolved.chain_id
        container.image_digest = pulled.digest

    async def _resolve(self, ref: str) -> ResolvedImage:
        try:
            return await self.host.runtime.resolve_image(ref)
        except ImageNotFound:
            raise TaskCannotStart(reasons.image_not_found(ref)) from None
        except ContainerRuntimeError as e:
            raise TaskCannotStart(reasons.cannot_pull(e.message)) from None

    def _access(self, task: TaskContext, path: ExecutionPath) -> RegistryAccess:
        eni = task.assignment.eni
        # Tasks share a download only when their network reaches what the other's does: same subnet and way out.
        network = (f"{eni.subnet_id}/{'public' if eni.assign_public_ip else 'private'}" if path.over_task_eni
                   else "host")
        return RegistryAccess(plain_http=self.host.insecure_registries,
                              endpoints={name: f"http://{path.registry_endpoint}"
                                         for name in fargo_registry_names(self.host)},
                              connector=path.connector, network=network)


def _cpu_architecture(task: TaskContext) -> str:
    return (task.assignment.task_definition.get("runtimePlatform") or {}).get("cpuArchitecture") or "X86_64"
