"""`Containerd`, the one object the rest of Fargo uses to drive containerd: a facade over the service modules
(images, content, snapshots, containers, tasks, execs, events, leases) that share one channel and namespace.

Callers see only the records of `fargo.runtime.records` and the exceptions of `fargo.runtime.errors`.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

from google.protobuf import empty_pb2

from fargo.runtime.containerd_daemon import owned_state_dir
from fargo.runtime.containers import Containers, runc_runtime
from fargo.runtime.content import Content
from fargo.runtime.errors import ContainerdUnavailable, RuntimeTimeout
from fargo.runtime.events import Events
from fargo.runtime.execs import Execs
from fargo.runtime.grpc_channel import Channel
from fargo.runtime.image_import import ImageImport
from fargo.runtime.image_pull import ImagePuller, ProgressCallback, PulledImage
from fargo.runtime.images import Images, ResolvedImage
from fargo.runtime.leases import Leases
from fargo.runtime.platforms import DEFAULT_PLATFORM, Platform
from fargo.runtime.protos import version_pb2
from fargo.runtime.registry import Credentials, RegistryAccess
from fargo.runtime.records import (
    ContainerRecord,
    ExitStatus,
    Image,
    ImageConfig,
    RuntimeEvent,
    TaskInfo,
    TaskMetrics,
    UserDatabase,
)
from fargo.runtime.shim_leftovers import ShimLeftovers
from fargo.runtime.snapshots import Snapshots, relocate_writable_layer
from fargo.runtime.tasks import Tasks

__all__ = ["Containerd", "TaskMetrics"]


class Containerd:
    """Client for one containerd namespace. Create with `await Containerd.connect(address)`.

    `state_dir` (containerd's --state) lets a start clear the bundle a cut-off Tasks.Create left; it is found
    by itself for a containerd that Fargo started. `runc_root` moves runc's state out of /run/containerd/runc.
    """

    def __init__(
        self,
        address: str,
        namespace: str = "fargo",
        *,
        runc_root: Path | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self._channel = Channel(address, namespace)
        self.address = self._channel.address
        self.namespace = namespace
        self.runc_root = runc_root
        self.state_dir = state_dir if state_dir is not None else owned_state_dir(self.address)
        content, snapshots = Content(self._channel), Snapshots(self._channel)
        self._images = Images(self._channel, content, snapshots)
        leases = Leases(self._channel)
        self._import = ImageImport(self._channel, content, snapshots, leases, self._images)
        self._puller = ImagePuller(self._channel, content, snapshots, leases, self._images)
        self._snapshots = snapshots
        self._tasks = Tasks(self._channel, ShimLeftovers(self.address, self.state_dir, namespace))
        self._containers = Containers(self._channel, self._images, snapshots, self._tasks, runc_runtime(runc_root))
        self._execs = Execs(self._channel, self._containers)
        self._events = Events(self._channel)

    @classmethod
    async def connect(
        cls,
        address: str,
        namespace: str = "fargo",
        *,
        runc_root: Path | None = None,
        state_dir: Path | None = None,
    ) -> Containerd:
        client = cls(address, namespace, runc_root=runc_root, state_dir=state_dir)
        try:
            await client.version()
        except BaseException:
            await client.close()
            raise
        return client

    async def close(self) -> None:
        await self._puller.close()
        await self._channel.close()

    async def version(self) -> str:
        """containerd's version; ContainerdUnavailable if it does not answer within 5 s (the liveness probe)."""
        try:
            reply = await self._channel.call("version.v1.Version/Version", empty_pb2.Empty(), version_pb2.VersionResponse)
        except RuntimeTimeout as exc:
            raise ContainerdUnavailable(exc.message) from None
        return str(reply.version)

    # -- images -----------------------------------------------------------------------------------

    async def import_image(self, tar_path: Path, name: str | None = None) -> list[Image]:
        """Import an OCI image-layout or docker-archive tarball; `name` sets (or overrides) the reference."""
        return await self._import.run(tar_path, name)

    async def pull_image(
        self,
        ref: str,
        *,
        platform: Platform | tuple[str, ...] | str = DEFAULT_PLATFORM,
        access: RegistryAccess | None = None,
        credentials: Credentials | None = None,
        progress: ProgressCallback | None = None,
    ) -> PulledImage:
        """Pull `ref` from its registry for `platform` (linux/amd64 unless told), unpacked and ready to run.

        `access` says how to reach registries (scheme, endpoint, connector; default: the host's network, plain
        HTTP for loopback only). Raises PullFailed (step, attempts, containerd's text). Blobs already here are
        not fetched; a pull of the same image under way is joined; cancelling stops this pull at once.
        """
        return await self._puller.pull(ref, platform=platform, access=access, credentials=credentials,
                                       progress=progress)

    async def list_images(self) -> list[Image]:
        return await self._images.list()

    async def get_image(self, ref: str) -> Image:
        """Look up an image; short names resolve as docker does (`busybox` = docker.io/library/busybox:latest)."""
        return await self._images.get(ref)

    async def local_image(self, ref: str) -> tuple[Image, ResolvedImage]:
        """`get_image` and `resolve_image` in one lookup: the record, and its config and top layer."""
        return await self._images.local(ref)

    async def resolve_image(self, ref: str) -> ResolvedImage:
        """The image's config and top layer's chain id (a container's rootfs parent), for the platform it was
        pulled for, else the host's."""
        return await self._images.resolve(ref)

    async def image_config(self, ref: str, platform: Platform | tuple[str, ...] | str | None = None) -> ImageConfig:
        """The image's config; for an index, `platform`'s (default: the platform it was pulled for, else the host's)."""
        return (await self._images.resolve(ref, Platform.of(platform) if platform else None)).config

    async def delete_image(self, ref: str, *, sync: bool = True) -> None:
        """Remove the image record; its content and layers go with the next GC (at once with `sync`)."""
        await self._images.delete(ref, sync=sync)

    async def prune_images(self) -> tuple[list[str], int]:
        """Remove every image no container uses; the names removed and the bytes of content freed."""
        images = await self._images.list()
        used = {container.image for container in await self._containers.list(None)}
        unused = [image.name for image in images if image.name not in used]
        kept: set[str] = set()
        for image in images:
            if image.name in used:
                kept.update(await self._images.blobs(image.name))
        freed: dict[str, int] = {}
        for name in unused:
            freed.update({d: size for d, size in (await self._images.blobs(name)).items() if d not in kept})
        for i, name in enumerate(unused):
            await self._images.delete(name, sync=i == len(unused) - 1)
        return unused, sum(freed.values())

    async def image_users(self, ref: str) -> UserDatabase:
        """The image's /etc/passwd and /etc/group, read from its unpacked layers (cached per image)."""
        return await self._images.users(ref)

    # -- containers and snapshots -----------------------------------------------------------------

    async def create_container(
        self, container_id: str, image_ref: str, spec: dict[str, Any], labels: dict[str, str] | None = None,
        rootfs_parent: str | None = None,
    ) -> None:
        """Create the container record and its rootfs snapshot (key = container id) from the image; on
        `rootfs_parent` (the chain id `resolve_image` gave) when given, which saves looking the image up again.

        ContainerAlreadyExists if the record exists; a rootfs snapshot (or task) left by an earlier container of
        this id without a record is removed first.
        """
        await self._containers.create(container_id, image_ref, spec, labels, rootfs_parent)

    async def list_containers(self, labels: dict[str, str] | None = None) -> list[ContainerRecord]:
        """Containers in the namespace whose labels include all of `labels`."""
        return await self._containers.list(labels)

    async def delete_container(self, container_id: str) -> None:
        """Remove the container, its task if one is left, its snapshot and any bundle no shim serves; missing parts are fine."""
        await self._containers.delete(container_id)

    async def list_snapshots(self) -> list[str]:
        """Keys of every snapshot in the namespace: container ids for root filesystems, chain ids for layers."""
        return await self._snapshots.keys()

    async def delete_snapshot(self, key: str) -> None:
        """Remove one snapshot (an orphaned container rootfs, say); a missing one is fine.

        RuntimeCallFailed (FAILED_PRECONDITION) for a layer that other snapshots still build on.
        """
        await self._snapshots.remove(key)

    # -- tasks ------------------------------------------------------------------------------------

    async def start_task(self, container_id: str, stdout: Path, stderr: Path,
                         writable_dir: Path | None = None) -> int:
        """Create and start the container's task; its output is appended to the given, existing regular files.

        With stdout == stderr both streams land in one file, in the order they were written. What an earlier,
        cut-off start of this container left (a task, or a bundle directory) is cleared first; that may take
        a few seconds while containerd retires the old shim. With `writable_dir`, the rootfs overlay keeps its
        upper and work directories there (made if missing) instead of in containerd's snapshot.
        """
        rootfs = await self._containers.rootfs(container_id)
        if writable_dir is not None:
            rootfs = relocate_writable_layer(rootfs, writable_dir)
        return await self._tasks.start(container_id, rootfs, stdout, stderr)

    async def wait(self, container_id: str) -> ExitStatus:
        """Block until the task's init process exits."""
        return await self._tasks.wait(container_id)

    async def kill(self, container_id: str, signal: int, all: bool = False) -> bool:
        """Signal the init process (or every process with `all`); False if there is no running task."""
        return await self._tasks.kill(container_id, signal, all)

    async def delete_task(self, container_id: str) -> ExitStatus | None:
        """Delete a stopped (or never started) task; None if there was none. Output files are complete after this."""
        return await self._tasks.delete(container_id)

    async def task_info(self, container_id: str) -> TaskInfo | None:
        return await self._tasks.info(container_id)

    async def task_pids(self, container_id: str) -> list[int]:
        return await self._tasks.pids(container_id)

    async def task_metrics(self, container_id: str) -> TaskMetrics | None:
        """cgroup v1 counters of a running task, or None (no task, or not a cgroup v1 host)."""
        return await self._tasks.metrics(container_id)

    async def exec_process(
        self, container_id: str, exec_id: str, args: list[str], *, timeout: float,
        env: list[str] | None = None, cwd: str | None = None, user: tuple[int, int] | None = None,
    ) -> int:
        """Run `args` as an extra process in the container's running task; return its exit code.

        The process copies the container's OCI `process` (env, cwd, user, capabilities, rlimits...) with
        `args` replaced and no terminal; `env` entries override same-named variables, `cwd` and `user`
        (uid, gid) replace. Its stdio is /dev/null. If Exec+Start+Wait take longer than `timeout` seconds the
        process is SIGKILLed and ExecTimedOut raised. The exec process is deleted in every case (also on cancel).
        Raises ContainerNotFound when there is no such container or task, and RuntimeCallFailed when the
        process cannot be started: a task that is not running, or an `args[0]` that does not exist (runc
        fails the start; `/bin/sh -c missing` instead exits 127 from the shell and that is returned).
        """
        return await self._execs.run(container_id, exec_id, args, timeout=timeout, env=env, cwd=cwd, user=user)

    # -- events -----------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        """Task exits and OOM kills in this namespace, as they happen (one TaskOomKilled per task life).

        The stream ends with ContainerdUnavailable if containerd goes away; callers resubscribe and
        reconcile with `task_info`, since events sent meanwhile are lost.
        """
        async with aclosing(self._events.subscribe()) as events:
            async for event in events:
                yield event
