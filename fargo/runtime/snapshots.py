"""containerd's snapshots (overlayfs): the committed layers of images, keyed by chain id, and the active
snapshots that are containers' writable root filesystems, keyed by container id. Mounts stay in runtime/.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf import empty_pb2

from fargo.runtime.errors import RuntimeCallFailed
from fargo.runtime.grpc_channel import Channel
from fargo.runtime.image_archive import SNAPSHOTTER
from fargo.runtime.protos import snapshots_pb2, types_pb2

# types_pb2.Mount: the protos are compiled at import time, so type checkers cannot see their classes.
Mounts = list[Any]


class Snapshots:
    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    async def exists(self, key: str) -> bool:
        try:
            await self._channel.call(
                "snapshots.v1.Snapshots/Stat", snapshots_pb2.SnapshotKeyRequest(snapshotter=SNAPSHOTTER, key=key),
                snapshots_pb2.StatSnapshotResponse,
            )
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                return False
            raise
        return True

    async def prepare(self, key: str, parent: str, *, lease: str | None = None,
                      labels: dict[str, str] | None = None) -> Mounts:
        """A new writable snapshot on top of `parent` (a chain id, or "" for an empty one); its mounts."""
        reply = await self._channel.call(
            "snapshots.v1.Snapshots/Prepare",
            snapshots_pb2.PrepareSnapshotRequest(snapshotter=SNAPSHOTTER, key=key, parent=parent, labels=labels),
            snapshots_pb2.SnapshotMounts, lease=lease,
        )
        return list(reply.mounts)

    async def view(self, key: str, parent: str) -> Mounts:
        """A read-only view of `parent`, to read files from an image's layers."""
        reply = await self._channel.call(
            "snapshots.v1.Snapshots/View",
            snapshots_pb2.PrepareSnapshotRequest(snapshotter=SNAPSHOTTER, key=key, parent=parent),
            snapshots_pb2.SnapshotMounts,
        )
        return list(reply.mounts)

    async def commit(self, name: str, key: str, *, lease: str | None = None) -> None:
        await self._channel.call(
            "snapshots.v1.Snapshots/Commit",
            snapshots_pb2.CommitSnapshotRequest(snapshotter=SNAPSHOTTER, name=name, key=key),
            empty_pb2.Empty, lease=lease,
        )

    async def mounts(self, key: str) -> Mounts:
        reply = await self._channel.call(
            "snapshots.v1.Snapshots/Mounts", snapshots_pb2.SnapshotKeyRequest(snapshotter=SNAPSHOTTER, key=key),
            snapshots_pb2.SnapshotMounts,
        )
        return list(reply.mounts)

    async def remove(self, key: str) -> None:
        """Remove a snapshot; one that is gone already (or taken by GC) is fine."""
        try:
            await self._channel.call(
                "snapshots.v1.Snapshots/Remove", snapshots_pb2.SnapshotKeyRequest(snapshotter=SNAPSHOTTER, key=key),
                empty_pb2.Empty,
            )
        except RuntimeCallFailed as exc:
            if exc.code != "NOT_FOUND":
                raise

    async def keys(self) -> list[str]:
        """Every snapshot's key: chain ids for committed layers, container ids for root filesystems."""
        keys: list[str] = []
        async for reply in self._channel.stream(
            "snapshots.v1.Snapshots/List", snapshots_pb2.ListSnapshotsRequest(snapshotter=SNAPSHOTTER),
            snapshots_pb2.ListSnapshotsResponse,
        ):
            keys.extend(info.name for info in reply.info)
        return keys


def relocate_writable_layer(mounts: Mounts, writable_dir: Path) -> Mounts:
    """The rootfs mounts with the overlay's upperdir and workdir moved into `writable_dir` (made here).

    The image layers stay containerd's (lowerdir); only what the container writes moves, so that it lands on
    the task's own volume and counts against its size. A snapshot without layers (a bind mount) is kept.
    """
    upper, work = writable_dir / "upper", writable_dir / "work"
    out: Mounts = []
    for mount in mounts:
        if mount.type != "overlay":
            out.append(mount)
            continue
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        options = [o for o in mount.options if not o.startswith(("upperdir=", "workdir="))]
        options += [f"upperdir={upper}", f"workdir={work}"]
        out.append(types_pb2.Mount(type=mount.type, source=mount.source, target=mount.target, options=options))
    return out
