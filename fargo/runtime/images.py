"""containerd's images: listing, looking up, creating and deleting them by (docker-normalised) reference, and
what the hot path needs from one, cached per target digest and platform: its config, its top layer's chain id,
its size, and the /etc/passwd and /etc/group of its unpacked layers.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

from google.protobuf import empty_pb2, field_mask_pb2

from fargo.runtime.content import Content
from fargo.runtime.errors import ContainerRuntimeError, ImageNotFound, RuntimeCallFailed
from fargo.runtime.grpc_channel import Channel, timestamp
from fargo.runtime.image_archive import INDEX_TYPES, MANIFEST_TYPES, chain_ids, choose_manifest
from fargo.runtime.image_ref import InvalidReference, normalize_ref
from fargo.runtime.platforms import Platform
from fargo.runtime.protos import images_pb2
from fargo.runtime.records import Image, ImageConfig, UserDatabase
from fargo.runtime.snapshots import Mounts, Snapshots


# Set by a pull on the image record: the platform its index was narrowed to (an index names several).
PLATFORM_LABEL = "fargo.io/platform"


@dataclass(frozen=True)
class ResolvedImage:
    """What the hot path needs from an image (content is immutable, so this is cached by target digest)."""

    config: ImageConfig
    chain_id: str  # of the top layer: the parent of a container's rootfs snapshot ("" for no layers)
    size: int
    manifest_digest: str  # the platform's manifest (the target itself unless it is an index)


def normalize(ref: str, error: type[Exception]) -> str:
    """The fully qualified reference, as docker resolves short names; `error` if it is not a reference."""
    try:
        return normalize_ref(ref)
    except InvalidReference as exc:
        raise error(str(exc)) from None


class Images:
    def __init__(self, channel: Channel, content: Content, snapshots: Snapshots) -> None:
        self._channel, self._content, self._snapshots = channel, content, snapshots
        self._resolved: dict[str, ResolvedImage] = {}
        self._users: dict[str, UserDatabase] = {}

    async def list(self) -> list[Image]:
        reply = await self._channel.call("images.v1.Images/List", images_pb2.ListImagesRequest(), images_pb2.ListImagesResponse)
        return [await self.record(image) for image in reply.images]

    async def get(self, ref: str) -> Image:
        return await self.record(await self._get(ref))

    async def local(self, ref: str) -> tuple[Image, ResolvedImage]:
        """The image's record and its resolution for the platform it was pulled for, from one lookup."""
        return await self._described(await self._get(ref))

    async def resolve(self, ref: str, platform: Platform | None = None) -> ResolvedImage:
        """The image's config, chain id and size; ImageNotFound if there is no such image.

        For an index, the manifest of `platform`; by default the one it was pulled for, else this host's.
        """
        image = await self._get(ref)
        return await self._resolve(image.target, platform or _pulled_platform(image))

    async def held(self, name: str, digest: str, platform: str) -> ResolvedImage | None:
        """The image `name` if a pull for `platform` left it at `digest` with its top layer unpacked, else None.

        Only reads: the image record's GC references keep its content and snapshots for as long as it exists.
        """
        try:
            image = await self._get(name)
        except ImageNotFound:
            return None
        if image.target.digest != digest or (image.labels.get(PLATFORM_LABEL) if image.labels else None) != platform:
            return None
        try:
            resolved = await self._resolve(image.target, _pulled_platform(image))
        except (ContainerRuntimeError, ValueError, KeyError, TypeError):
            return None  # content missing or unreadable: the pull walks the image and mends it
        if resolved.chain_id and not await self._snapshots.exists(resolved.chain_id):
            return None
        return resolved

    async def put(self, name: str, target: Any, *, labels: dict[str, str] | None = None,
                  lease: str | None = None) -> Image:
        """Create the image `name` -> `target` (a types_pb2.Descriptor), or move an existing name to it."""
        record = images_pb2.Image(name=name, target=target, labels=labels or {})
        try:
            reply = await self._channel.call(
                "images.v1.Images/Create", images_pb2.ImageEnvelope(image=record), images_pb2.ImageEnvelope, lease=lease,
            )
        except RuntimeCallFailed as exc:
            if exc.code != "ALREADY_EXISTS":
                raise
            # A taken name moves to the new target, as `ctr import` and `ctr pull` do.
            mask = field_mask_pb2.FieldMask(paths=["target", "labels"])
            reply = await self._channel.call(
                "images.v1.Images/Update", images_pb2.ImageEnvelope(image=record, update_mask=mask),
                images_pb2.ImageEnvelope, lease=lease,
            )
        return await self.record(reply.image)

    async def blobs(self, ref: str) -> dict[str, int]:
        """Digest -> size of every blob of the image that is in the content store (index, manifests, config, layers)."""
        image = await self._get(ref)
        out: dict[str, int] = {}
        pending = [(image.target.digest, int(image.target.size), image.target.media_type)]
        while pending:
            digest, size, media_type = pending.pop()
            if digest in out or not await self._content.exists(digest):
                continue
            out[digest] = size
            if media_type in INDEX_TYPES or media_type in MANIFEST_TYPES:
                document = json.loads(await self._content.read(digest))
                children = list(document.get("manifests") or [])
                children += [document["config"]] if isinstance(document.get("config"), dict) else []
                children += list(document.get("layers") or [])
                pending += [(c["digest"], int(c.get("size", 0)), c.get("mediaType", "")) for c in children]
        return out

    async def delete(self, ref: str, *, sync: bool = True) -> None:
        name = normalize(ref, ImageNotFound)
        try:
            await self._channel.call("images.v1.Images/Delete", images_pb2.ImageNameRequest(name=name, sync=sync), empty_pb2.Empty)
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                raise ImageNotFound(f"image {ref!r} not found") from None
            raise

    async def users(self, ref: str) -> UserDatabase:
        """The image's /etc/passwd and /etc/group, read from its unpacked layers through a snapshot view."""
        image = await self._get(ref)
        cached = self._users.get(image.target.digest)
        if cached is not None:
            return cached
        resolved = await self._resolve(image.target, _pulled_platform(image))
        users = UserDatabase("", "")
        if resolved.chain_id:
            key = f"fargo-users-{secrets.token_hex(8)}"
            mounts = await self._snapshots.view(key, resolved.chain_id)
            try:
                layers = _layer_dirs(mounts)
                users = UserDatabase(passwd=_read_layered(layers, "etc/passwd"), group=_read_layered(layers, "etc/group"))
            finally:
                await self._snapshots.remove(key)
        self._users[image.target.digest] = users
        return users

    async def record(self, image: Any) -> Image:  # an images_pb2.Image
        return (await self._described(image))[0]

    async def _described(self, image: Any) -> tuple[Image, ResolvedImage]:  # an images_pb2.Image
        resolved = await self._resolve(image.target, _pulled_platform(image))
        return Image(name=image.name, digest=image.target.digest, size=resolved.size,
                     created=timestamp(image.created_at), pulled=PLATFORM_LABEL in image.labels), resolved

    async def _get(self, ref: str) -> Any:  # an images_pb2.Image
        name = normalize(ref, ImageNotFound)
        try:
            reply = await self._channel.call("images.v1.Images/Get", images_pb2.ImageNameRequest(name=name), images_pb2.ImageEnvelope)
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                raise ImageNotFound(f"image {ref!r} not found") from None
            raise
        return reply.image

    async def _resolve(self, target: Any, platform: Platform | None) -> ResolvedImage:  # a types_pb2.Descriptor
        key = f"{target.digest} {platform or ''}"
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        manifest_digest, media_type = target.digest, target.media_type
        while media_type in INDEX_TYPES:  # an index may name indexes
            chosen = choose_manifest(json.loads(await self._content.read(manifest_digest)), platform)
            if chosen is None:
                raise ImageNotFound(f"image {target.digest} has no manifest for {platform or 'this platform'}")
            manifest_digest, media_type = chosen["digest"], chosen.get("mediaType")
        manifest = json.loads(await self._content.read(manifest_digest))
        config_json = json.loads(await self._content.read(manifest["config"]["digest"]))
        container_config = config_json.get("config") or {}
        diff_ids = list((config_json.get("rootfs") or {}).get("diff_ids", []))
        resolved = ResolvedImage(
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
            manifest_digest=manifest_digest,
        )
        self._resolved[key] = resolved
        return resolved


def _pulled_platform(image: Any) -> Platform | None:
    text = image.labels.get(PLATFORM_LABEL) if image.labels else None
    try:
        return Platform.parse(text) if text else None
    except ValueError:
        return None


def _layer_dirs(mounts: Mounts) -> list[str]:
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
