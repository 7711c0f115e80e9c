"""containerd's containers: a container's record (OCI spec, runtime and its options, labels, image) and its
root filesystem, an active snapshot keyed by the container id. Creating, listing and deleting both, and the
OCI `process` section each container's execs start from.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from pathlib import Path
from typing import Any

from google.protobuf import any_pb2, empty_pb2

from fargo.runtime.errors import ContainerAlreadyExists, ContainerNotFound, ImageNotFound, RuntimeCallFailed
from fargo.runtime.grpc_channel import Channel, quote
from fargo.runtime.image_archive import SNAPSHOTTER
from fargo.runtime.images import Images, normalize
from fargo.runtime.protos import containers_pb2, runc_options_pb2
from fargo.runtime.records import ContainerRecord
from fargo.runtime.snapshots import Mounts, Snapshots
from fargo.runtime.tasks import STALE_PATIENCE_S, Tasks

RUNTIME = "io.containerd.runc.v2"
SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
RUNC_OPTIONS_TYPE_URL = "containerd.runc.v1.Options"
# A container's rootfs is kept from GC by its own label, not by its record (made beside it, see create)
_ROOTFS_LABELS = {"containerd.io/gc.root": "fargo"}


def runc_runtime(runc_root: Path | None) -> Any:
    """The runc v2 shim, with runc's state under `runc_root` when given (else /run/containerd/runc)."""
    runtime = containers_pb2.Container.Runtime(name=RUNTIME)
    if runc_root is not None:
        options = runc_options_pb2.RuncOptions(root=str(runc_root))
        runtime.options.CopyFrom(any_pb2.Any(type_url=RUNC_OPTIONS_TYPE_URL, value=options.SerializeToString()))
    return runtime


class Containers:
    def __init__(
        self, channel: Channel, images: Images, snapshots: Snapshots, tasks: Tasks,
        runtime: Any,  # a containers_pb2.Container.Runtime, from runc_runtime
    ) -> None:
        self._channel, self._images, self._snapshots, self._tasks = channel, images, snapshots, tasks
        self._runtime = runtime
        self._mounts: dict[str, Mounts] = {}  # from Prepare, taken by the start that follows (saves a Mounts call)
        self._process_specs: dict[str, dict[str, Any]] = {}  # each container's OCI `process`, its execs' template

    async def create(self, container_id: str, image_ref: str, spec: dict[str, Any], labels: dict[str, str] | None,
                     parent: str | None = None) -> None:
        """Create the container record and its rootfs snapshot (key = container id) from the image."""
        if parent is None:
            parent = (await self._images.resolve(image_ref)).chain_id
        spec_any = any_pb2.Any(type_url=SPEC_TYPE_URL, value=json.dumps(spec, separators=(",", ":")).encode())
        container = containers_pb2.Container(
            id=container_id, labels=labels or {}, image=normalize(image_ref, ImageNotFound), runtime=self._runtime,
            spec=spec_any, snapshotter=SNAPSHOTTER, snapshot_key=container_id,
        )
        # The record and the rootfs are made side by side (one round trip instead of two). The rootfs is a GC
        # root from its Prepare on, so GC cannot take it before the record references it; it goes with the
        # container (delete), and reconciliation removes one whose task is gone.
        both = asyncio.ensure_future(asyncio.gather(
            self._create_record(container), self._try_prepare(container_id, parent), return_exceptions=True))
        try:
            record, rootfs = await asyncio.shield(both)
        except asyncio.CancelledError:
            # (a runtime step's deadline) containerd finishes both calls whatever the client does: let them land,
            # then take back what they made, or a late Prepare would leave a snapshot after the stop had looked
            await self._take_back(both, container_id)
            raise
        if isinstance(record, BaseException):
            if rootfs is not None and not isinstance(rootfs, BaseException):
                # made just now for this record, so nothing else uses it (if this fails, the task's stop removes it)
                with contextlib.suppress(RuntimeCallFailed):
                    await self._snapshots.remove(container_id)
            raise record
        self._process_specs[container_id] = copy.deepcopy(spec.get("process") or {})
        try:
            if isinstance(rootfs, BaseException):
                raise rootfs
            if rootfs is None:
                rootfs = await self._replace_left_rootfs(container_id, parent)
            self._mounts[container_id] = rootfs
        except BaseException:
            self._process_specs.pop(container_id, None)
            await self._delete_record(container_id)
            raise

    async def _take_back(self, both: asyncio.Future[list[Any]], container_id: str) -> None:
        with contextlib.suppress(Exception):
            record, rootfs = await both
            if rootfs is not None and not isinstance(rootfs, BaseException):
                await self._snapshots.remove(container_id)
            if not isinstance(record, BaseException):
                await self._delete_record(container_id)

    async def _create_record(self, container: Any) -> None:  # a containers_pb2.Container
        try:
            await self._channel.call(
                "containers.v1.Containers/Create", containers_pb2.ContainerEnvelope(container=container),
                containers_pb2.ContainerEnvelope,
            )
        except RuntimeCallFailed as exc:
            if exc.code == "ALREADY_EXISTS":
                raise ContainerAlreadyExists(f"container {container.id} already exists") from None
            raise

    async def _try_prepare(self, container_id: str, parent: str) -> Mounts | None:
        """The new rootfs' mounts; None when an earlier container of this id left its rootfs."""
        try:
            return await self._snapshots.prepare(container_id, parent, labels=_ROOTFS_LABELS)
        except RuntimeCallFailed as exc:
            if exc.code != "ALREADY_EXISTS":
                raise
        return None

    async def _replace_left_rootfs(self, container_id: str, parent: str) -> Mounts:
        # An earlier container of this id left its rootfs (its record was removed, its snapshot not, as after
        # a crash between the two): clear its task, if any, and start from a fresh rootfs, once.
        await self._tasks.clear_stale(container_id, patience=STALE_PATIENCE_S)
        await self._snapshots.remove(container_id)
        return await self._snapshots.prepare(container_id, parent, labels=_ROOTFS_LABELS)

    async def rootfs(self, container_id: str) -> Mounts:
        """The mounts of the container's rootfs snapshot (those of its create, the first time)."""
        mounts = self._mounts.pop(container_id, None)
        return mounts if mounts is not None else await self._snapshots.mounts(container_id)

    async def list(self, labels: dict[str, str] | None) -> list[ContainerRecord]:
        filters = []
        if labels:
            filters.append(",".join(f"labels.{quote(key)}=={quote(value)}" for key, value in labels.items()))
        reply = await self._channel.call(
            "containers.v1.Containers/List", containers_pb2.ListContainersRequest(filters=filters),
            containers_pb2.ListContainersResponse,
        )
        return [ContainerRecord(c.id, dict(c.labels), c.image) for c in reply.containers]

    async def delete(self, container_id: str) -> None:
        """Remove the container's task (if one is left), snapshot, record, and any bundle no shim serves."""
        self._mounts.pop(container_id, None)
        self._process_specs.pop(container_id, None)
        await self._tasks.clear_stale(container_id, patience=0)  # never leave a task without its container
        # Snapshot before record (as containerd's own client does): otherwise GC may remove it under us.
        await self._snapshots.remove(container_id)
        await self._delete_record(container_id)
        self._tasks.remove_abandoned_bundle(container_id)

    async def process_spec(self, container_id: str) -> dict[str, Any]:
        """The container's OCI `process` section, from the cache or (after a restart) Containers.Get."""
        cached = self._process_specs.get(container_id)
        if cached is None:
            try:
                reply = await self._channel.call(
                    "containers.v1.Containers/Get", containers_pb2.ContainerIdRequest(id=container_id),
                    containers_pb2.ContainerEnvelope,
                )
            except RuntimeCallFailed as exc:
                if exc.code == "NOT_FOUND":
                    raise ContainerNotFound(f"container {container_id} not found") from None
                raise
            cached = dict(json.loads(reply.container.spec.value or b"{}").get("process") or {})
            self._process_specs[container_id] = cached
        return cached

    async def _delete_record(self, container_id: str) -> None:
        try:
            await self._channel.call(
                "containers.v1.Containers/Delete", containers_pb2.ContainerIdRequest(id=container_id), empty_pb2.Empty
            )
        except RuntimeCallFailed as exc:
            if exc.code != "NOT_FOUND":
                raise
