"""containerd's content store: immutable blobs (manifests, configs, layers) by digest. Reads a blob whole,
writes one with its garbage-collection labels, and adds labels to one that is there already.
"""
from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

from google.protobuf import field_mask_pb2

from fargo.runtime.errors import ImageImportFailed, RuntimeCallFailed
from fargo.runtime.grpc_channel import Channel
from fargo.runtime.image_archive import Blob, BlobRef, iter_chunks
from fargo.runtime.protos import content_pb2

_WRITE, _COMMIT = 1, 2  # WriteAction values of Content.Write
_DATA_TAG = bytes([6 << 3 | 2])  # WriteContentRequest.data: field 6, length-delimited
_WRITES_AHEAD = 2  # chunks of a download sent before containerd has answered for the earlier ones


class Content:
    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    async def read(self, digest: str) -> bytes:
        parts = [
            chunk.data async for chunk in self._channel.stream(
                "content.v1.Content/Read", content_pb2.ReadContentRequest(digest=digest), content_pb2.ReadContentResponse
            )
        ]
        return b"".join(parts)

    async def exists(self, digest: str, *, lease: str | None = None) -> bool:
        try:
            await self._channel.call(
                "content.v1.Content/Info", content_pb2.ContentDigestRequest(digest=digest),
                content_pb2.ContentInfoResponse, lease=lease,
            )
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                return False
            raise
        return True

    async def write(self, blob: Blob, lease: str) -> None:
        """Store a blob under `lease` with its labels; one stored already (or meanwhile) only gets the labels."""
        if await self.exists(blob.ref.digest, lease=lease):
            await self.label(blob.ref.digest, blob.labels, lease)
            return
        ref = f"fargo-import-{blob.ref.digest}"
        call = self._channel.duplex("content.v1.Content/Write", content_pb2.WriteContentResponse, lease=lease)
        offset = 0
        try:
            for chunk in iter_chunks(blob.open()):
                await call.exchange(content_pb2.WriteContentRequest(
                    action=_WRITE, ref=ref, total=blob.ref.size, expected=blob.ref.digest, offset=offset, data=chunk,
                ))
                offset += len(chunk)
            reply = await call.exchange(content_pb2.WriteContentRequest(
                action=_COMMIT, ref=ref, total=blob.ref.size, expected=blob.ref.digest, offset=offset, labels=blob.labels,
            ))
            await call.finish()
        except RuntimeCallFailed as exc:
            if exc.code == "ALREADY_EXISTS":  # written meanwhile by someone else
                await self.label(blob.ref.digest, blob.labels, lease)
                return
            raise
        finally:
            call.cancel()  # a no-op once the call is done; ends it if a write failed half-way
        if reply is None or reply.digest != blob.ref.digest:
            raise ImageImportFailed(f"content write of {blob.ref.digest} did not commit")

    async def write_stream(
        self, ref: BlobRef, chunks: AsyncIterator[bytes], labels: dict[str, str], lease: str,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        """Store a blob whose bytes arrive as `chunks` (a download), committed with `labels` under `lease`.

        The writer's ref is unique, so a retry never waits on a cut-off attempt's lock; what an attempt left
        half-written belongs to the lease and goes with it. containerd checks size and digest again at commit.
        """
        write_ref = f"fargo-pull-{ref.digest}-{secrets.token_hex(4)}"
        call = self._channel.duplex("content.v1.Content/Write", content_pb2.WriteContentResponse, lease=lease)
        offset, unanswered = 0, 0
        try:
            async for chunk in chunks:
                # A few writes ahead of containerd's replies: the download goes on while containerd writes.
                await call.send(_write_request(write_ref, ref, offset, chunk))
                offset += len(chunk)
                unanswered += 1
                if unanswered > _WRITES_AHEAD:
                    await call.receive()
                    unanswered -= 1
                if on_bytes is not None:
                    on_bytes(len(chunk))
            for _ in range(unanswered):
                await call.receive()
            reply = await call.exchange(content_pb2.WriteContentRequest(
                action=_COMMIT, ref=write_ref, total=ref.size, expected=ref.digest, offset=offset, labels=labels,
            ))
            await call.finish()
        except RuntimeCallFailed as exc:
            if exc.code == "ALREADY_EXISTS":  # committed meanwhile by someone else
                await self.label(ref.digest, labels, lease)
                return
            raise
        finally:
            call.cancel()
        if reply is None or reply.digest != ref.digest:
            raise ImageImportFailed(f"content write of {ref.digest} did not commit")

    async def label(self, digest: str, labels: dict[str, str], lease: str | None = None) -> None:
        """Add labels to a stored blob (labels are only set at commit: one there already gets them now)."""
        if not labels:
            return
        info = content_pb2.ContentInfo(digest=digest, labels=labels)
        mask = field_mask_pb2.FieldMask(paths=[f"labels.{key}" for key in labels])
        await self._channel.call(
            "content.v1.Content/Update", content_pb2.UpdateContentRequest(info=info, update_mask=mask),
            content_pb2.ContentInfoResponse, lease=lease,
        )


def _write_request(write_ref: str, ref: BlobRef, offset: int, data: bytes) -> bytes:
    """A WriteContentRequest of `data`, encoded by hand: the header's fields, then `data` as field 6 (bytes),
    so a MiB of data is copied once, not twice (into the message, then out of it)."""
    header = content_pb2.WriteContentRequest(action=_WRITE, ref=write_ref, total=ref.size, expected=ref.digest,
                                             offset=offset).SerializeToString()
    return b"".join((header, _DATA_TAG, _varint(len(data)), data))


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
