"""containerd's leases: a lease pins the content and snapshots made under it until it is deleted, so that
garbage collection cannot take an image's blobs and layers while they are being imported.
"""
from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

from google.protobuf import empty_pb2

from fargo.runtime.errors import RuntimeCallFailed
from fargo.runtime.grpc_channel import Channel
from fargo.runtime.protos import leases_pb2


class Leases:
    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    @asynccontextmanager
    async def held(self, prefix: str, expire_after: timedelta) -> AsyncIterator[str]:
        """A new lease for the duration of the block; it expires by itself if this process dies meanwhile."""
        lease = await self.create(prefix, expire_after)
        try:
            yield lease
        finally:
            await self.delete(lease)

    async def create(self, prefix: str, expire_after: timedelta) -> str:
        expire = (datetime.now(timezone.utc) + expire_after).strftime("%Y-%m-%dT%H:%M:%SZ")
        reply = await self._channel.call(
            "leases.v1.Leases/Create",
            leases_pb2.CreateLeaseRequest(id=f"{prefix}-{secrets.token_hex(8)}", labels={"containerd.io/gc.expire": expire}),
            leases_pb2.CreateLeaseResponse,
        )
        return str(reply.lease.id)

    async def delete(self, lease: str) -> None:
        """Delete a lease; one that is gone already is fine."""
        try:
            await self._channel.call("leases.v1.Leases/Delete", leases_pb2.DeleteLeaseRequest(id=lease), empty_pb2.Empty)
        except RuntimeCallFailed as exc:
            if exc.code != "NOT_FOUND":
                raise
