"""A thin, typed asyncio client for containerd's gRPC API: images, containers, tasks, execs and task events.

One channel serves every call; the namespace (default "fargo") goes with each one. Callers see only the
dataclasses of `fargo.runtime.records` and the exceptions of `fargo.runtime.errors`.
"""
from __future__ import annotations

import asyncio
import copy
import ctypes
import json
import os
import secrets
import shutil
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, empty_pb2, field_mask_pb2, message, timestamp_pb2

from fargo.runtime.errors import (
    ContainerAlreadyExists,
    ContainerdUnavailable,
    ContainerNotFound,
    ExecTimedOut,
    ImageImportFailed,
    ImageNotFound,
    RuntimeCallFailed,
)
from fargo.runtime.image_archive import (
    INDEX_TYPES,
    SNAPSHOTTER,
    ArchiveContents,
    Blob,
    LayerStack,
    chain_ids,
    choose_manifest,
    iter_chunks,
    read_archive,
)
from fargo.runtime.image_ref import InvalidReference, normalize_ref
from fargo.runtime.protos import (
    cgroups_v1_pb2,
    containers_pb2,
    content_pb2,
    diff_pb2,
    events_pb2,
    images_pb2,
    leases_pb2,
    runc_options_pb2,
    snapshots_pb2,
    tasks_pb2,
    types_pb2,
    version_pb2,
)
from fargo.runtime.records import (
    ContainerRecord,
    ExitStatus,
    Image,
    ImageConfig,
    RuntimeEvent,
    TaskExited,
    TaskInfo,
    TaskOomKilled,
    TaskStatus,
    UserDatabase,
)

RUNTIME = "io.containerd.runc.v2"
SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
PROCESS_SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process"
RUNC_OPTIONS_TYPE_URL = "containerd.runc.v1.Options"
_STATUSES: dict[int, TaskStatus] = {0: "unknown", 1: "created", 2: "running", 3: "stopped", 4: "paused", 5: "pausing"}
_WRITE, _COMMIT = 1, 2
_MNT_DETACH = 2
_EXEC_CLEANUP_TIMEOUT = 10.0  # seconds for each kill/wait/delete of an exec process being discarded

M = TypeVar("M", bound=message.Message)


@dataclass(frozen=True)
class TaskMetrics:
    """A task's cgroup counters (Tasks.Metrics, cgroup v1)."""

    memory_usage: int
    memory_max_usage: int
    memory_limit: int
    cpu_total_ns: int
    pids: int
    oom_kills: int


@dataclass(frozen=True)
class _ResolvedImage:
    """What the hot path needs from an image, cached per target digest (content is immutable)."""

    config: ImageConfig
    chain_id: str
    size: int


def _timestamp(ts: timestamp_pb2.Timestamp) -> datetime | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=timezone.utc)


def _translate(error: grpc.aio.AioRpcError, what: str) -> RuntimeCallFailed | ContainerdUnavailable:
    code = error.code()
    detail = error.details() or str(code)
    if code == grpc.StatusCode.UNAVAILABLE:
        return ContainerdUnavailable(f"{what}: containerd unavailable: {detail}")
    return RuntimeCallFailed(f"{what}: {detail}", code.name if code else "UNKNOWN")


class Containerd:
    """Client for one containerd namespace. Create with `await Containerd.connect(address)`."""

    def __init__(
        self,
        address: str,
        namespace: str = "fargo",
        *,
        runc_root: Path | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.address = address if address.startswith("unix:") else f"unix://{address}"
        self.namespace = namespace
        self.runc_root = runc_root
        self.state_dir = state_dir  # containerd's --state, to clean a failed Tasks.Create's bundle
        self._metadata = (("containerd-namespace", namespace),)
        self._channel = grpc.aio.insecure_channel(
            self.address,
            options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
        )
        self._methods: dict[str, Any] = {}
        self._images: dict[str, _ResolvedImage] = {}
        self._users: dict[str, UserDatabase] = {}
        self._mounts: dict[str, list[types_pb2.Mount]] = {}  # from Prepare, consumed by start_task
        # Each container's OCI `process` section, the template for its execs (dropped by delete_container).
        self._process_specs: dict[str, dict[str, Any]] = {}
        runtime = containers_pb2.Container.Runtime(name=RUNTIME)
        if runc_root is not None:
            options = runc_options_pb2.RuncOptions(root=str(runc_root))
            runtime.options.CopyFrom(any_pb2.Any(type_url=RUNC_OPTIONS_TYPE_URL, value=options.SerializeToString()))
        self._runtime = runtime

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
        await self._channel.close()

    # -- plumbing ---------------------------------------------------------------------------------

    def _method(self, kind: str, path: str, response: type[message.Message]) -> Any:
        method = self._methods.get(path)
        if method is None:
            factory = getattr(self._channel, kind)
            method = factory(
                f"/containerd.services.{path}",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response.FromString,
            )
            self._methods[path] = method
        return method

    async def _call(
        self, path: str, request: message.Message, response: type[M], *, lease: str | None = None,
        timeout: float | None = None,
    ) -> M:
        metadata = self._metadata + ((("containerd-lease", lease),) if lease else ())
        try:
            result: M = await self._method("unary_unary", path, response)(request, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise _translate(error, path.rpartition(".")[2]) from None
        return result

    async def version(self) -> str:
        reply = await self._call("version.v1.Version/Version", empty_pb2.Empty(), version_pb2.VersionResponse, timeout=5)
        return str(reply.version)

    async def _read_content(self, digest: str) -> bytes:
        call = self._method("unary_stream", "content.v1.Content/Read", content_pb2.ReadContentResponse)(
            content_pb2.ReadContentRequest(digest=digest), metadata=self._metadata
        )
        parts: list[bytes] = []
        try:
            async for chunk in call:
                parts.append(chunk.data)
        except grpc.aio.AioRpcError as error:
            raise _translate(error, f"Content/Read {digest}") from None
        return b"".join(parts)

    # -- images -----------------------------------------------------------------------------------

    async def import_image(self, tar_path: Path, name: str | None = None) -> list[Image]:
        """Import an OCI image-layout or docker-archive tarball; `name` sets (or overrides) the reference."""
        override = self._normalize(name, ImageImportFailed) if name else None
        try:
            tar = tarfile.open(tar_path)
        except (OSError, tarfile.TarError) as exc:
            raise ImageImportFailed(f"cannot read {tar_path}: {exc}") from exc
        with tar:
            contents = read_archive(tar)
            targets = {image.target.digest for image in contents.images}
            if override and len(targets) > 1:
                raise ImageImportFailed("--name needs an archive with exactly one image")
            if not override and any(image.name is None for image in contents.images):
                raise ImageImportFailed("the archive does not name its image; give a name")
            lease = await self._create_lease()
            try:
                for blob in contents.blobs.values():
                    await self._write_blob(blob, lease)
                for stack in contents.stacks:
                    await self._unpack(stack, lease)
                imported = await self._create_images(contents, override, lease)
            finally:
                await self._delete_lease(lease)
        return imported

    async def _create_lease(self) -> str:
        expire = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        reply = await self._call(
            "leases.v1.Leases/Create",
            leases_pb2.CreateLeaseRequest(id=f"fargo-import-{secrets.token_hex(8)}", labels={"containerd.io/gc.expire": expire}),
            leases_pb2.CreateLeaseResponse,
        )
        return str(reply.lease.id)

    async def _delete_lease(self, lease: str) -> None:
        try:
            await self._call("leases.v1.Leases/Delete", leases_pb2.DeleteLeaseRequest(id=lease), empty_pb2.Empty)
        except RuntimeCallFailed as exc:
            if exc.code != "NOT_FOUND":
                raise

    async def _write_blob(self, blob: Blob, lease: str) -> None:
        try:
            await self._call(
                "content.v1.Content/Info", content_pb2.ContentDigestRequest(digest=blob.ref.digest),
                content_pb2.ContentInfoResponse, lease=lease,
            )
        except RuntimeCallFailed as exc:
            if exc.code != "NOT_FOUND":
                raise
        else:
            await self._label_existing_blob(blob, lease)
            return
        ref = f"fargo-import-{blob.ref.digest}"
        metadata = self._metadata + (("containerd-lease", lease),)
        call = self._method("stream_stream", "content.v1.Content/Write", content_pb2.WriteContentResponse)(metadata=metadata)
        offset = 0
        try:
            for chunk in iter_chunks(blob.open()):
                await call.write(content_pb2.WriteContentRequest(
                    action=_WRITE, ref=ref, total=blob.ref.size, expected=blob.ref.digest, offset=offset, data=chunk,
                ))
                await call.read()
                offset += len(chunk)
            await call.write(content_pb2.WriteContentRequest(
                action=_COMMIT, ref=ref, total=blob.ref.size, expected=blob.ref.digest, offset=offset, labels=blob.labels,
            ))
            reply = await call.read()
            await call.done_writing()
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.ALREADY_EXISTS:  # written meanwhile by someone else
                await self._label_existing_blob(blob, lease)
                return
            raise _translate(error, f"Content/Write {blob.ref.digest}") from None
        if reply is grpc.aio.EOF or reply.digest != blob.ref.digest:
            raise ImageImportFailed(f"content write of {blob.ref.digest} did not commit")

    async def _label_existing_blob(self, blob: Blob, lease: str) -> None:
        if not blob.labels:
            return
        info = content_pb2.ContentInfo(digest=blob.ref.digest, labels=blob.labels)
        mask = field_mask_pb2.FieldMask(paths=[f"labels.{key}" for key in blob.labels])
        await self._call(
            "content.v1.Content/Update", content_pb2.UpdateContentRequest(info=info, update_mask=mask),
            content_pb2.ContentInfoResponse, lease=lease,
        )

    async def _snapshot_exists(self, key: str) -> bool:
        try:
            await self._call(
                "snapshots.v1.Snapshots/Stat", snapshots_pb2.SnapshotKeyRequest(snapshotter=SNAPSHOTTER, key=key),
                snapshots_pb2.StatSnapshotResponse,
            )
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                return False
            raise
        return True

    async def _unpack(self, stack: LayerStack, lease: str) -> None:
        parent = ""
        for layer, diff_id, chain_id in zip(stack.layers, stack.diff_ids, stack.chain_ids):
            if not await self._snapshot_exists(chain_id):
                key = f"extract-{secrets.token_hex(8)} {chain_id}"
                prepared = await self._call(
                    "snapshots.v1.Snapshots/Prepare",
                    snapshots_pb2.PrepareSnapshotRequest(snapshotter=SNAPSHOTTER, key=key, parent=parent),
                    snapshots_pb2.SnapshotMounts, lease=lease,
                )
                try:
                    descriptor = types_pb2.Descriptor(media_type=layer.media_type, digest=layer.digest, size=layer.size)
                    applied = await self._call(
                        "diff.v1.Diff/Apply", diff_pb2.ApplyRequest(diff=descriptor, mounts=prepared.mounts),
                        diff_pb2.ApplyResponse, lease=lease,
                    )
                    if applied.applied.digest != diff_id:
                        raise ImageImportFailed(f"layer {layer.digest} unpacked to {applied.applied.digest}, expected {diff_id}")
                    await self._call(
                        "snapshots.v1.Snapshots/Commit",
                        snapshots_pb2.CommitSnapshotRequest(snapshotter=SNAPSHOTTER, name=chain_id, key=key),
                        empty_pb2.Empty, lease=lease,
                    )
                except BaseException:
                    await self._remove_snapshot(key)
                    raise
            parent = chain_id

    async def _create_images(self, contents: ArchiveContents, override: str | None, lease: str) -> list[Image]:
        imported: list[Image] = []
        seen: set[str] = set()
        for archived in contents.images:
            name = override or archived.name
            assert name is not None
            if name in seen:
                continue
            seen.add(name)
            target = types_pb2.Descriptor(
                media_type=archived.target.media_type, digest=archived.target.digest, size=archived.target.size
            )
            record = images_pb2.Image(name=name, target=target)
            try:
                reply = await self._call(
                    "images.v1.Images/Create", images_pb2.ImageEnvelope(image=record), images_pb2.ImageEnvelope, lease=lease,
                )
            except RuntimeCallFailed as exc:
                if exc.code != "ALREADY_EXISTS":
                    raise
                mask = field_mask_pb2.FieldMask(paths=["target"])
                reply = await self._call(
                    "images.v1.Images/Update", images_pb2.ImageEnvelope(image=record, update_mask=mask),
                    images_pb2.ImageEnvelope, lease=lease,
                )
            imported.append(await self._image_record(reply.image))
        return imported

    @staticmethod
    def _normalize(ref: str, error: type[Exception]) -> str:
        try:
            return normalize_ref(ref)
        except InvalidReference as exc:
            raise error(str(exc)) from None

    async def _get_image_record(self, ref: str) -> images_pb2.Image:
        name = self._normalize(ref, ImageNotFound)
        try:
            reply = await self._call("images.v1.Images/Get", images_pb2.ImageNameRequest(name=name), images_pb2.ImageEnvelope)
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                raise ImageNotFound(f"image {ref!r} not found") from None
            raise
        return reply.image

    async def _resolve(self, target: types_pb2.Descriptor) -> _ResolvedImage:
        cached = self._images.get(target.digest)
        if cached is not None:
            return cached
        manifest_digest = target.digest
        if target.media_type in INDEX_TYPES:
            chosen = choose_manifest(json.loads(await self._read_content(target.digest)))
            if chosen is None:
                raise ImageNotFound(f"image {target.digest} has no manifest for this platform")
            manifest_digest = chosen["digest"]
        manifest = json.loads(await self._read_content(manifest_digest))
        config_json = json.loads(await self._read_content(manifest["config"]["digest"]))
        container_config = config_json.get("config") or {}
        diff_ids = list((config_json.get("rootfs") or {}).get("diff_ids", []))
        resolved = _ResolvedImage(
            config=ImageConfig(
                digest=target.digest,
                entrypoint=container_config.get("Entrypoint") or None,
                cmd=container_config.get("Cmd") or None,
                env=list(container_config.get("Env") or []),
                working_dir=container_config.get("WorkingDir") or "",
                user=container_config.get("User") or "",
                labels=dict(container_config.get("Labels") or {}),
            ),
            chain_id=chain_ids(diff_ids)[-1] if diff_ids else "",
            size=int(manifest["config"]["size"]) + sum(int(layer["size"]) for layer in manifest.get("layers", [])),
        )
        self._images[target.digest] = resolved
        return resolved

    async def _image_record(self, record: images_pb2.Image) -> Image:
        resolved = await self._resolve(record.target)
        return Image(name=record.name, digest=record.target.digest, size=resolved.size, created=_timestamp(record.created_at))

    async def list_images(self) -> list[Image]:
        reply = await self._call("images.v1.Images/List", images_pb2.ListImagesRequest(), images_pb2.ListImagesResponse)
        return [await self._image_record(record) for record in reply.images]

    async def get_image(self, ref: str) -> Image:
        """Look up an image; short names resolve as docker does (`busybox` = docker.io/library/busybox:latest)."""
        return await self._image_record(await self._get_image_record(ref))

    async def image_config(self, ref: str) -> ImageConfig:
        return (await self._resolve((await self._get_image_record(ref)).target)).config

    async def delete_image(self, ref: str) -> None:
        name = self._normalize(ref, ImageNotFound)
        try:
            await self._call("images.v1.Images/Delete", images_pb2.ImageNameRequest(name=name, sync=True), empty_pb2.Empty)
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                raise ImageNotFound(f"image {ref!r} not found") from None
            raise

    async def image_users(self, ref: str) -> UserDatabase:
        """The image's /etc/passwd and /etc/group, read from its unpacked layers (cached per image)."""
        record = await self._get_image_record(ref)
        cached = self._users.get(record.target.digest)
        if cached is not None:
            return cached
        resolved = await self._resolve(record.target)
        layer_dirs: list[str] = []
        if resolved.chain_id:
            key = f"fargo-users-{secrets.token_hex(8)}"
            view = await self._call(
                "snapshots.v1.Snapshots/View",
                snapshots_pb2.PrepareSnapshotRequest(snapshotter=SNAPSHOTTER, key=key, parent=resolved.chain_id),
                snapshots_pb2.SnapshotMounts,
            )
            try:
                layer_dirs = _layer_dirs(list(view.mounts))
                users = UserDatabase(
                    passwd=_read_layered(layer_dirs, "etc/passwd"), group=_read_layered(layer_dirs, "etc/group")
                )
            finally:
                await self._remove_snapshot(key)
        else:
            users = UserDatabase("", "")
        self._users[record.target.digest] = users
        return users

    # -- containers -------------------------------------------------------------------------------

    async def create_container(
        self, container_id: str, image_ref: str, spec: dict[str, Any], labels: dict[str, str] | None = None
    ) -> None:
        """Create the container record and its rootfs snapshot (key = container id) from the image."""
        record = await self._get_image_record(image_ref)
        resolved = await self._resolve(record.target)
        spec_any = any_pb2.Any(type_url=SPEC_TYPE_URL, value=json.dumps(spec, separators=(",", ":")).encode())
        container = containers_pb2.Container(
            id=container_id, labels=labels or {}, image=record.name, runtime=self._runtime, spec=spec_any,
            snapshotter=SNAPSHOTTER, snapshot_key=container_id,
        )
        # The container is created first: it references the snapshot key, so GC cannot take the snapshot
        # between Prepare and Create (containerd does not check that the key exists).
        try:
            await self._call(
                "containers.v1.Containers/Create", containers_pb2.ContainerEnvelope(container=container),
                containers_pb2.ContainerEnvelope,
            )
        except RuntimeCallFailed as exc:
            if exc.code == "ALREADY_EXISTS":
                raise ContainerAlreadyExists(f"container {container_id} already exists") from None
            raise
        self._process_specs[container_id] = copy.deepcopy(spec.get("process") or {})
        try:
            prepared = await self._call(
                "snapshots.v1.Snapshots/Prepare",
                snapshots_pb2.PrepareSnapshotRequest(snapshotter=SNAPSHOTTER, key=container_id, parent=resolved.chain_id),
                snapshots_pb2.SnapshotMounts,
            )
        except BaseException:
            await self._delete_container_record(container_id)
            raise
        self._mounts[container_id] = list(prepared.mounts)

    async def list_containers(self, labels: dict[str, str] | None = None) -> list[ContainerRecord]:
        """Containers in the namespace whose labels include all of `labels`."""
        filters = []
        if labels:
            filters.append(",".join(f"labels.{_quote(key)}=={_quote(value)}" for key, value in labels.items()))
        reply = await self._call(
            "containers.v1.Containers/List", containers_pb2.ListContainersRequest(filters=filters),
            containers_pb2.ListContainersResponse,
        )
        return [ContainerRecord(c.id, dict(c.labels), c.image) for c in reply.containers]

    async def delete_container(self, container_id: str) -> None:
        """Remove the container, its snapshot and any bundle a failed Tasks.Create left; missing parts are fine."""
        self._mounts.pop(container_id, None)
        self._process_specs.pop(container_id, None)
        # Snapshot before record (as containerd's own client does): otherwise GC may remove it under us.
        await self._remove_snapshot(container_id)
        await self._delete_container_record(container_id)
        self._remove_bundle_leftover(container_id)

    async def _delete_container_record(self, container_id: str) -> None:
        try:
            await self._call(
                "containers.v1.Containers/Delete", containers_pb2.ContainerIdRequest(id=container_id), empty_pb2.Empty
            )
        except RuntimeCallFailed as exc:
            if exc.code != "NOT_FOUND":
                raise

    async def _remove_snapshot(self, key: str) -> None:
        try:
            await self._call(
                "snapshots.v1.Snapshots/Remove", snapshots_pb2.SnapshotKeyRequest(snapshotter=SNAPSHOTTER, key=key),
                empty_pb2.Empty,
            )
        except RuntimeCallFailed as exc:
            if exc.code != "NOT_FOUND":
                raise

    def _remove_bundle_leftover(self, container_id: str) -> None:
        if self.state_dir is None:
            return
        bundle = self.state_dir / "io.containerd.runtime.v2.task" / self.namespace / container_id
        if not bundle.exists():
            return
        rootfs = bundle / "rootfs"
        if os.path.ismount(rootfs):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.umount2(str(rootfs).encode(), _MNT_DETACH)
        shutil.rmtree(bundle, ignore_errors=True)

    async def list_snapshots(self) -> list[str]:
        """Keys of every snapshot in the namespace (for tests and reconciliation)."""
        call = self._method("unary_stream", "snapshots.v1.Snapshots/List", snapshots_pb2.ListSnapshotsResponse)(
            snapshots_pb2.ListSnapshotsRequest(snapshotter=SNAPSHOTTER), metadata=self._metadata
        )
        keys: list[str] = []
        try:
            async for reply in call:
                keys.extend(info.name for info in reply.info)
        except grpc.aio.AioRpcError as error:
            raise _translate(error, "Snapshots/List") from None
        return keys

    # -- tasks ------------------------------------------------------------------------------------

    async def start_task(self, container_id: str, stdout: Path, stderr: Path) -> int:
        """Create and start the container's task; its output is appended to the given, existing regular files.

        With stdout == stderr both streams land in one file, in the order they were written.
        """
        mounts = self._mounts.pop(container_id, None)
        if mounts is None:
            mounts = list((await self._call(
                "snapshots.v1.Snapshots/Mounts", snapshots_pb2.SnapshotKeyRequest(snapshotter=SNAPSHOTTER, key=container_id),
                snapshots_pb2.SnapshotMounts,
            )).mounts)
        try:
            await self._call(
                "tasks.v1.Tasks/Create",
                tasks_pb2.CreateTaskRequest(container_id=container_id, rootfs=mounts, stdout=str(stdout), stderr=str(stderr)),
                tasks_pb2.CreateTaskResponse,
            )
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                raise ContainerNotFound(f"container {container_id} not found: {exc.message}") from None
            raise
        try:
            reply = await self._call("tasks.v1.Tasks/Start", tasks_pb2.ProcessRef(container_id=container_id), tasks_pb2.StartResponse)
        except BaseException:
            await asyncio.shield(self.delete_task(container_id))
            raise
        return int(reply.pid)

    async def wait(self, container_id: str) -> ExitStatus:
        """Block until the task's init process exits."""
        try:
            reply = await self._call("tasks.v1.Tasks/Wait", tasks_pb2.ProcessRef(container_id=container_id), tasks_pb2.WaitResponse)
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                raise ContainerNotFound(f"no task for container {container_id}") from None
            raise
        return ExitStatus(int(reply.exit_status), _timestamp(reply.exited_at))

    async def kill(self, container_id: str, signal: int, all: bool = False) -> bool:
        """Signal the init process (or every process with `all`); False if there is no running task."""
        try:
            await self._call(
                "tasks.v1.Tasks/Kill", tasks_pb2.KillRequest(container_id=container_id, signal=signal, all=all), empty_pb2.Empty
            )
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":  # no task, or "process already finished"
                return False
            raise
        return True

    async def delete_task(self, container_id: str) -> ExitStatus | None:
        """Delete a stopped (or never started) task; None if there was none. Output files are complete after this."""
        try:
            reply = await self._call(
                "tasks.v1.Tasks/Delete", tasks_pb2.TaskRef(container_id=container_id), tasks_pb2.DeleteTaskResponse
            )
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        return ExitStatus(int(reply.exit_status), _timestamp(reply.exited_at))

    async def task_info(self, container_id: str) -> TaskInfo | None:
        try:
            reply = await self._call("tasks.v1.Tasks/Get", tasks_pb2.ProcessRef(container_id=container_id), tasks_pb2.GetTaskResponse)
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        process = reply.process
        status = _STATUSES.get(process.status, "unknown")
        exit_status = ExitStatus(int(process.exit_status), _timestamp(process.exited_at)) if status == "stopped" else None
        return TaskInfo(status=status, pid=int(process.pid), exit_status=exit_status)

    async def task_pids(self, container_id: str) -> list[int]:
        try:
            reply = await self._call(
                "tasks.v1.Tasks/ListPids", tasks_pb2.TaskRef(container_id=container_id), tasks_pb2.ListPidsResponse
            )
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                raise ContainerNotFound(f"no task for container {container_id}") from None
            raise
        return [int(p.pid) for p in reply.processes]

    async def task_metrics(self, container_id: str) -> TaskMetrics | None:
        """cgroup v1 counters of a running task, or None (no task, or not a cgroup v1 host)."""
        reply = await self._call(
            "tasks.v1.Tasks/Metrics", tasks_pb2.MetricsRequest(filters=[f"id=={_quote(container_id)}"]), tasks_pb2.MetricsResponse
        )
        for metric in reply.metrics:
            if metric.id == container_id and metric.data.type_url.endswith("io.containerd.cgroups.v1.Metrics"):
                data = cgroups_v1_pb2.CgroupMetrics.FromString(metric.data.value)
                return TaskMetrics(
                    memory_usage=data.memory.usage.usage, memory_max_usage=data.memory.usage.max,
                    memory_limit=data.memory.usage.limit, cpu_total_ns=data.cpu.usage.total,
                    pids=data.pids.current, oom_kills=data.memory_oom_control.oom_kill,
                )
        return None

    # -- execs ------------------------------------------------------------------------------------

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
        if not exec_id or exec_id == container_id:
            raise ValueError("exec_id must be non-empty and differ from the container id")  # else its exit looks like the task's
        process = _exec_process_spec(await self._process_spec(container_id), args, env, cwd, user)
        # All stdio empty: the shim hands runc /dev/null and makes no FIFOs, files or copy goroutines.
        request = tasks_pb2.ExecProcessRequest(
            container_id=container_id, exec_id=exec_id,
            spec=any_pb2.Any(type_url=PROCESS_SPEC_TYPE_URL, value=json.dumps(process, separators=(",", ":")).encode()),
        )
        ref = tasks_pb2.ProcessRef(container_id=container_id, exec_id=exec_id)
        state = _ExecState()
        try:
            # An asyncio timeout, not a gRPC deadline: containerd reports a propagated deadline as UNKNOWN.
            return await asyncio.wait_for(self._run_exec(request, ref, state), timeout)
        except asyncio.TimeoutError:
            raise ExecTimedOut(f"exec {exec_id} in {container_id}: still running after {timeout} s, killed") from None
        finally:
            if state.added:  # shielded: a cancelled health check must not leave the exec process behind
                await asyncio.shield(self._discard_exec(ref, kill=not state.exited))

    async def _run_exec(self, request: Any, ref: Any, state: _ExecState) -> int:
        state.added = True  # until Exec definitely fails: a cancel mid-call may still have added it
        try:
            await self._call("tasks.v1.Tasks/Exec", request, empty_pb2.Empty)
        except RuntimeCallFailed as exc:
            state.added = False  # nothing was added (ALREADY_EXISTS: that id is another exec's, leave it)
            if exc.code == "NOT_FOUND":
                raise ContainerNotFound(f"no task for container {ref.container_id}: {exc.message}") from None
            raise
        await self._call("tasks.v1.Tasks/Start", ref, tasks_pb2.StartResponse)
        reply = await self._call("tasks.v1.Tasks/Wait", ref, tasks_pb2.WaitResponse)
        state.exited = True
        return int(reply.exit_status)

    async def _process_spec(self, container_id: str) -> dict[str, Any]:
        """The container's OCI `process` section, from the cache or (after a restart) Containers.Get."""
        cached = self._process_specs.get(container_id)
        if cached is None:
            try:
                reply = await self._call(
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

    async def _discard_exec(self, ref: Any, *, kill: bool) -> None:
        """Delete an exec process, first SIGKILLing and reaping it if it may still run; gone already is fine."""
        if kill:
            for path, request, response in (
                ("tasks.v1.Tasks/Kill", tasks_pb2.KillRequest(container_id=ref.container_id, exec_id=ref.exec_id, signal=9),
                 empty_pb2.Empty),
                ("tasks.v1.Tasks/Wait", ref, tasks_pb2.WaitResponse),
            ):
                try:
                    await self._call(path, request, response, timeout=_EXEC_CLEANUP_TIMEOUT)
                except RuntimeCallFailed:
                    pass  # never started, already exited, or gone: the delete below settles it
        try:
            await self._call("tasks.v1.Tasks/DeleteProcess", ref, tasks_pb2.DeleteTaskResponse, timeout=_EXEC_CLEANUP_TIMEOUT)
        except RuntimeCallFailed as exc:
            if exc.code != "NOT_FOUND":
                raise

    # -- events -----------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        """Task exits and OOM kills in this namespace, as they happen (one TaskOomKilled per task life).

        The stream ends with ContainerdUnavailable if containerd goes away; callers resubscribe and
        reconcile with `task_info`, since events sent meanwhile are lost.
        """
        topic_filter = f'namespace=={_quote(self.namespace)},topic~="^/tasks/(create|exit|oom)$"'
        call = self._method("unary_stream", "events.v1.Events/Subscribe", events_pb2.Envelope)(
            events_pb2.SubscribeRequest(filters=[topic_filter]), metadata=self._metadata
        )
        oom_reported: set[str] = set()  # the shim repeats TaskOOM for every cgroup notification
        try:
            async for envelope in call:
                if envelope.topic == "/tasks/create":
                    oom_reported.discard(events_pb2.TaskCreateEvent.FromString(envelope.event.value).container_id)
                elif envelope.topic == "/tasks/exit":
                    exited = events_pb2.TaskExitEvent.FromString(envelope.event.value)
                    if exited.id and exited.id != exited.container_id:
                        continue  # an exec'd process, not the task
                    yield TaskExited(exited.container_id, int(exited.exit_status), _timestamp(exited.exited_at))
                elif envelope.topic == "/tasks/oom":
                    oom = events_pb2.TaskOomEvent.FromString(envelope.event.value)
                    if oom.container_id not in oom_reported:
                        oom_reported.add(oom.container_id)
                        yield TaskOomKilled(oom.container_id)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise _translate(error, "Events/Subscribe") from None
        finally:
            call.cancel()


@dataclass
class _ExecState:
    """How far an exec got, so its cleanup knows whether to kill and delete it."""

    added: bool = False
    exited: bool = False


def _exec_process_spec(
    base: dict[str, Any], args: list[str], env: list[str] | None, cwd: str | None, user: tuple[int, int] | None
) -> dict[str, Any]:
    """An exec's OCI process: the container's, with new args, no terminal and the given overrides."""
    process = {key: value for key, value in base.items() if key != "consoleSize"}  # shallow: base stays untouched
    process["args"] = list(args)
    process["terminal"] = False
    if env:
        merged = {item.partition("=")[0]: item for item in base.get("env") or []}
        merged.update({item.partition("=")[0]: item for item in env})
        process["env"] = list(merged.values())
    if cwd is not None:
        process["cwd"] = cwd
    if user is not None:
        process["user"] = {"uid": user[0], "gid": user[1]}  # the container user's extra groups do not carry over
    return process


def _quote(value: str) -> str:
    """A quoted string for containerd's filter syntax."""
    return json.dumps(value)


def _layer_dirs(mounts: list[types_pb2.Mount]) -> list[str]:
    """Host directories of a snapshot view, top layer first (overlay lowerdir order, or one bind source)."""
    for mount in mounts:
        if mount.type == "bind":
            return [mount.source]
        if mount.type == "overlay":
            dirs: list[str] = []
            for option in mount.options:
                if option.startswith("upperdir="):
                    dirs.insert(0, option.removeprefix("upperdir="))
                elif option.startswith("lowerdir="):
                    dirs.extend(option.removeprefix("lowerdir=").split(":"))
            return dirs
    return []


def _read_layered(layer_dirs: list[str], relative: str) -> str:
    """A file's text as the overlay would show it: the topmost layer that has (or whites out) the path."""
    for directory in layer_dirs:
        path = os.path.join(directory, relative)
        try:
            status = os.lstat(path)
        except FileNotFoundError:
            continue
        if os.major(status.st_rdev) == 0 and os.minor(status.st_rdev) == 0 and (status.st_mode & 0o170000) == 0o020000:
            return ""  # an overlay whiteout: deleted in this layer
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""
    return ""
