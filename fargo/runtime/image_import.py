"""Importing an OCI image-layout or docker-archive tarball into containerd, all under one lease: blobs into
the content store, layers unpacked into committed snapshots (Diff.Apply), then the image records.
"""
from __future__ import annotations

import tarfile
from datetime import timedelta
from pathlib import Path

from fargo.runtime.content import Content
from fargo.runtime.errors import ImageImportFailed
from fargo.runtime.grpc_channel import Channel
from fargo.runtime.image_archive import ArchiveContents, read_archive
from fargo.runtime.images import Images, normalize
from fargo.runtime.leases import Leases
from fargo.runtime.layer_unpack import LayerUnpacker
from fargo.runtime.protos import types_pb2
from fargo.runtime.records import Image
from fargo.runtime.snapshots import Snapshots

_LEASE_LIFETIME = timedelta(hours=1)  # outlives any import; frees what a crashed import pinned


class ImageImport:
    def __init__(self, channel: Channel, content: Content, snapshots: Snapshots, leases: Leases, images: Images) -> None:
        self._channel, self._content, self._snapshots = channel, content, snapshots
        self._leases, self._images = leases, images
        self._unpacker = LayerUnpacker(channel, snapshots)

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
                    await self._unpacker.unpack(stack, lease, ImageImportFailed)
                return await self._create_images(contents, override, lease)

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
            imported.append(await self._images.put(name, target, lease=lease))
        return imported
