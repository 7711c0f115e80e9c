"""containerd's content store: immutable blobs (manifests, configs, layers) by digest. Reads a blob whole,
writes one with its garbage-collection labels, and adds labels to one that is there already.
"""
from __future__ import annotations

from google.protobuf import field_mask_pb2

from fargo.runtime.errors import ImageImportFailed, RuntimeCallFailed
from fargo.runtime.grpc_channel import Channel
from fargo.runtime.image_archive import Blob, iter_chunks
from fargo.runtime.protos import content_pb2

_WRITE, _COMMIT = 1, 2  # WriteAction values of Content.Write


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
            await self._label(blob, lease)
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
                await self._label(blob, lease)
                return
            raise
        finally:
            call.cancel()  # a no-op once the call is done; ends it if a write failed half-way
        if reply is None or reply.digest != blob.ref.digest:
            raise ImageImportFailed(f"content write of {blob.ref.digest} did not commit")

    async def _label(self, blob: Blob, lease: str) -> None:
        # Labels are only set at commit; a blob that was there already gets this import's GC references now.
        if not blob.labels:
            return
        info = content_pb2.ContentInfo(digest=blob.ref.digest, labels=blob.labels)
        mask = field_mask_pb2.FieldMask(paths=[f"labels.{key}" for key in blob.labels])
        await self._channel.call(
            "content.v1.Content/Update", content_pb2.UpdateContentRequest(info=info, update_mask=mask),
            content_pb2.ContentInfoResponse, lease=lease,
        )
