"""Unpacking image layers into containerd snapshots: each layer, applied (Diff.Apply) on top of its parent,
becomes a committed snapshot named by its chain id. Shared by tarball imports and registry pulls.
"""
from __future__ import annotations

import secrets

from fargo.runtime.errors import RuntimeCallFailed
from fargo.runtime.grpc_channel import Channel
from fargo.runtime.image_archive import BlobRef, LayerStack
from fargo.runtime.protos import diff_pb2, types_pb2
from fargo.runtime.snapshots import Snapshots


class LayerUnpacker:
    def __init__(self, channel: Channel, snapshots: Snapshots) -> None:
        self._channel, self._snapshots = channel, snapshots

    async def unpack(self, stack: LayerStack, lease: str, error: type[Exception]) -> None:
        """Each layer of `stack` not unpacked yet becomes a committed snapshot named by its chain id."""
        parent = ""
        for layer, diff_id, chain_id in zip(stack.layers, stack.diff_ids, stack.chain_ids):
            await self.apply(layer, diff_id, chain_id, parent, lease, error)
            parent = chain_id

    async def apply(self, layer: BlobRef, diff_id: str, chain_id: str, parent: str, lease: str,
                    error: type[Exception]) -> bool:
        """Unpack one layer (its blob in the content store) onto `parent`; False if `chain_id` was there already.

        `error` is raised when the layer unpacks to another diff id than its config says.
        """
        if await self._snapshots.exists(chain_id):
            return False
        key = f"extract-{secrets.token_hex(8)} {chain_id}"
        mounts = await self._snapshots.prepare(key, parent, lease=lease)
        try:
            descriptor = types_pb2.Descriptor(media_type=layer.media_type, digest=layer.digest, size=layer.size)
            applied = await self._channel.call(
                "diff.v1.Diff/Apply", diff_pb2.ApplyRequest(diff=descriptor, mounts=mounts),
                diff_pb2.ApplyResponse, lease=lease,
            )
            if applied.applied.digest != diff_id:
                raise error(f"layer {layer.digest} unpacked to {applied.applied.digest}, expected {diff_id}")
            try:
                await self._snapshots.commit(chain_id, key, lease=lease)
            except RuntimeCallFailed as exc:
                if exc.code != "ALREADY_EXISTS":  # another unpack of the same layer won the race: fine
                    raise
                await self._snapshots.remove(key)
        except BaseException:
            await self._snapshots.remove(key)
            raise
        return True
