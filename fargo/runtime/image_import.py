"""Importing an OCI image-layout or docker-archive tarball into containerd, all under one lease: blobs into
the content store, layers unpacked into committed snapshots (Diff.Apply), then the image records.
"""
from __future__ import annotations

import secrets
import tarfile
from datetime import timedelta
from pathlib import Path

from google.protobuf import field_mask_pb2

from fargo.runtime.content import Content
from fargo.runtime.errors import ImageImportFailed, RuntimeCallFailed
from fargo.runtime.grpc_channel import Channel
from fargo.runtime.image_archive import ArchiveContents, LayerStack, read_archive
from fargo.runtime.images import Images, normalize
from fargo.runtime.leases import Leases
from fargo.runtime.protos import diff_pb2, images_pb2, types_pb2
from fargo.runtime.records import Image
from fargo.runtime.snapshots import Snapshots

_LEASE_LIFETIME = timedelta(hours=1)  # outlives any import; frees what a crashed import pinned


class ImageImport:
    def __init__(self, channel: Channel, content: Content, snapshots: Snapshots, leases: Leases, images: Images) -> None:
        self._channel, self._content, self._snapshots = channel, content, snapshots
        self._leases, self._images = leases, images

    async def run(self, tar_path: Path, name: str | None = None) -> list[Image]:
        """Import the tarball; `name` sets (or overrides) the reference of its one image."""
        override = normalize(name, ImageImportFailed) if name else None
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
            async with self._leases.held("fargo-import", _LEASE_LIFETIME) as lease:
                for blob in contents.blobs.values():
                    await self._content.write(blob, lease)
                for stack in contents.stacks:
                    await self._unpack(stack, lease)
                return await self._create_images(contents, override, lease)

    async def _unpack(self, stack: LayerStack, lease: str) -> None:
        """Each layer not unpacked yet becomes a committed snapshot named by its chain id."""
        parent = ""
        for layer, diff_id, chain_id in zip(stack.layers, stack.diff_ids, stack.chain_ids):
            if not await self._snapshots.exists(chain_id):
                key = f"extract-{secrets.token_hex(8)} {chain_id}"
                mounts = await self._snapshots.prepare(key, parent, lease=lease)
                try:
                    descriptor = types_pb2.Descriptor(media_type=layer.media_type, digest=layer.digest, size=layer.size)
                    applied = await self._channel.call(
                        "diff.v1.Diff/Apply", diff_pb2.ApplyRequest(diff=descriptor, mounts=mounts),
                        diff_pb2.ApplyResponse, lease=lease,
                    )
                    if applied.applied.digest != diff_id:
                        raise ImageImportFailed(f"layer {layer.digest} unpacked to {applied.applied.digest}, expected {diff_id}")
                    await self._snapshots.commit(chain_id, key, lease=lease)
                except BaseException:
                    await self._snapshots.remove(key)
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
                reply = await self._channel.call(
                    "images.v1.Images/Create", images_pb2.ImageEnvelope(image=record), images_pb2.ImageEnvelope, lease=lease,
                )
            except RuntimeCallFailed as exc:
                if exc.code != "ALREADY_EXISTS":
                    raise
                # Re-importing under a taken name moves the name to this archive's image, as `ctr import` does.
                mask = field_mask_pb2.FieldMask(paths=["target"])
                reply = await self._channel.call(
                    "images.v1.Images/Update", images_pb2.ImageEnvelope(image=record, update_mask=mask),
                    images_pb2.ImageEnvelope, lease=lease,
                )
            imported.append(await self._images.record(reply.image))
        return imported
