"""Reading image tarballs: OCI image layouts and `docker save` archives, as the blobs and images to import.

The client writes what this module finds through containerd's content, diff, snapshot and image services;
for a docker archive it also synthesises the (docker schema 2) manifest that `docker save` leaves out.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from fargo.runtime.errors import ImageImportFailed
from fargo.runtime.image_ref import InvalidReference, normalize_ref
from fargo.runtime.platforms import INDEX_TYPES, MANIFEST_TYPES, Platform, host_platform
from fargo.runtime.platforms import choose_manifest as _best_manifest
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
SNAPSHOTTER = "overlayfs"
CHUNK = 1 << 20


@dataclass(frozen=True)
class BlobRef:
    media_type: str
    digest: str
    size: int


@dataclass
class Blob:
    ref: BlobRef
    open: Callable[[], IO[bytes]]  # a fresh reader of the blob's bytes
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerStack:
    """One manifest's layers, bottom first, with their uncompressed digests and chain ids."""

    layers: list[BlobRef]
    diff_ids: list[str]

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)


@dataclass(frozen=True)
class ArchiveImage:
    name: str | None  # fully qualified; None when the archive names no image
    target: BlobRef


@dataclass
class ArchiveContents:
    blobs: dict[str, Blob]  # by digest, in write order (layers and configs before what refers to them)
    stacks: list[LayerStack]
    images: list[ArchiveImage]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """containerd/OCI chain ids: C0 = D0, Cn = sha256(C(n-1) + " " + Dn)."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def choose_manifest(index: dict[str, Any], wanted: Platform | None = None) -> dict[str, Any] | None:
    """The index entry for `wanted` (default: this host's platform), or the only entry of a one-image index."""
    chosen = _best_manifest(index, wanted)
    if chosen is not None:
        return chosen
    manifests = [m for m in index.get("manifests", []) if m.get("mediaType") in MANIFEST_TYPES | INDEX_TYPES]
    return manifests[0] if len(manifests) == 1 else None


def _ref(entry: dict[str, Any]) -> BlobRef:
    return BlobRef(entry["mediaType"], entry["digest"], int(entry["size"]))


class _Tar:
    """Member lookup by normalised name ("./x" == "x") in an open tarball."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members = {m.name.removeprefix("./").lstrip("/"): m for m in tar.getmembers() if m.isfile()}

    def has(self, name: str) -> bool:
        return name in self.members

    def opener(self, name: str) -> Callable[[], IO[bytes]]:
        member = self.members[name]

        def open_member() -> IO[bytes]:
            reader = self.tar.extractfile(member)
            assert reader is not None
            return reader

        return open_member

    def read(self, name: str) -> bytes:
        if name not in self.members:
            raise ImageImportFailed(f"archive has no {name}")
        return self.opener(name)().read()

    def size(self, name: str) -> int:
        return self.members[name].size

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as exc:
            raise ImageImportFailed(f"{name} is not valid JSON: {exc}") from exc


def read_archive(tar: tarfile.TarFile) -> ArchiveContents:
    files = _Tar(tar)
    if files.has("oci-layout") and files.has("index.json"):
        return _read_oci_layout(files)
    if files.has("manifest.json"):
        return _read_docker_archive(files)
    raise ImageImportFailed("not an OCI image layout (oci-layout, index.json) or docker archive (manifest.json)")


def _normalized(name: str) -> str | None:
    try:
        return normalize_ref(name)
    except InvalidReference:
        return None


def _read_oci_layout(files: _Tar) -> ArchiveContents:
    contents = ArchiveContents(blobs={}, stacks=[], images=[])
    index = files.json("index.json")

    def blob_path(digest: str) -> str:
        algorithm, _, hex_digest = digest.partition(":")
        return f"blobs/{algorithm}/{hex_digest}"

    def add_manifest(entry: dict[str, Any]) -> None:
        ref = _ref(entry)
        manifest = files.json(blob_path(ref.digest))
        config = _ref(manifest["config"])
        layers = [_ref(layer) for layer in manifest.get("layers", [])]
        config_json = files.json(blob_path(config.digest))
        diff_ids = list(config_json.get("rootfs", {}).get("diff_ids", []))
        if len(diff_ids) != len(layers):
            raise ImageImportFailed(f"config {config.digest} has {len(diff_ids)} diff_ids for {len(layers)} layers")
        stack = LayerStack(layers, diff_ids)
        for layer, diff_id in zip(layers, diff_ids):
            _add(contents, files, layer, blob_path(layer.digest), {"containerd.io/uncompressed": diff_id})
        config_labels = {f"containerd.io/gc.ref.snapshot.{SNAPSHOTTER}": stack.chain_ids[-1]} if layers else {}
        _add(contents, files, config, blob_path(config.digest), config_labels)
        labels = {"containerd.io/gc.ref.content.config": config.digest}
        labels.update({f"containerd.io/gc.ref.content.l.{i}": layer.digest for i, layer in enumerate(layers)})
        _add(contents, files, ref, blob_path(ref.digest), labels)
        contents.stacks.append(stack)

    def add_index(ref: BlobRef) -> None:
        nested = files.json(blob_path(ref.digest))
        chosen = choose_manifest(nested)
        if chosen is None:
            raise ImageImportFailed(f"index {ref.digest} has no manifest for {host_platform()}")
        add_target(chosen)
        labels = {
            f"containerd.io/gc.ref.content.m.{i}": m["digest"]
            for i, m in enumerate(nested.get("manifests", []))
            if files.has(blob_path(m["digest"]))
        }
        _add(contents, files, ref, blob_path(ref.digest), labels)

    def add_target(entry: dict[str, Any]) -> None:
        if entry.get("mediaType") in INDEX_TYPES:
            add_index(_ref(entry))
        elif entry.get("mediaType") in MANIFEST_TYPES:
            add_manifest(entry)
        else:
            raise ImageImportFailed(f"unsupported media type {entry.get('mediaType')!r} in index.json")

    for entry in index.get("manifests", []):
        add_target(entry)
        annotations = entry.get("annotations") or {}
        # containerd and docker write the full name here; plain OCI tools write only the tag.
        name = annotations.get("io.containerd.image.name") or annotations.get("org.opencontainers.image.ref.name")
        full = _normalized(name) if name and ("/" in name or "." in name.partition(":")[0]) else None
        contents.images.append(ArchiveImage(full, _ref(entry)))
    if not contents.images:
        raise ImageImportFailed("index.json lists no images")
    return contents


def _hash_member(files: _Tar, name: str) -> tuple[str, bool]:
    digest = hashlib.sha256()
    gzipped = None
    with files.opener(name)() as reader:
        while chunk := reader.read(CHUNK):
            if gzipped is None:
                gzipped = chunk[:2] == b"\x1f\x8b"
            digest.update(chunk)
    return "sha256:" + digest.hexdigest(), bool(gzipped)


def _read_docker_archive(files: _Tar) -> ArchiveContents:
    contents = ArchiveContents(blobs={}, stacks=[], images=[])
    entries = files.json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ImageImportFailed("manifest.json lists no images")
    for entry in entries:
        config_name = entry["Config"]
        config_bytes = files.read(config_name)
        config_json = json.loads(config_bytes)
        config = BlobRef(DOCKER_CONFIG, "sha256:" + hashlib.sha256(config_bytes).hexdigest(), len(config_bytes))
        diff_ids = list(config_json.get("rootfs", {}).get("diff_ids", []))
        if len(diff_ids) != len(entry.get("Layers", [])):
            raise ImageImportFailed(f"{config_name}: diff_ids and Layers differ in length")
        layers = []
        for layer_name, diff_id in zip(entry["Layers"], diff_ids):
            digest, gzipped = _hash_member(files, layer_name)
            layer = BlobRef(DOCKER_LAYER_GZIP if gzipped else DOCKER_LAYER, digest, files.size(layer_name))
            _add(contents, files, layer, layer_name, {"containerd.io/uncompressed": diff_id})
            layers.append(layer)
        stack = LayerStack(layers, diff_ids)
        labels = {f"containerd.io/gc.ref.snapshot.{SNAPSHOTTER}": stack.chain_ids[-1]} if layers else {}
        contents.blobs.setdefault(config.digest, Blob(config, files.opener(config_name), labels))
        manifest_bytes = json.dumps({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.size},
            "layers": [{"mediaType": l.media_type, "digest": l.digest, "size": l.size} for l in layers],
        }, indent=3).encode()
        manifest = BlobRef(DOCKER_MANIFEST, "sha256:" + hashlib.sha256(manifest_bytes).hexdigest(), len(manifest_bytes))
        manifest_labels = {"containerd.io/gc.ref.content.config": config.digest}
        manifest_labels.update({f"containerd.io/gc.ref.content.l.{i}": l.digest for i, l in enumerate(layers)})
        contents.blobs.setdefault(manifest.digest, Blob(manifest, _bytes_opener(manifest_bytes), manifest_labels))
        contents.stacks.append(stack)
        names = [_normalized(tag) for tag in entry.get("RepoTags") or []]
        for name in names or [None]:
            contents.images.append(ArchiveImage(name, manifest))
    return contents


def _bytes_opener(data: bytes) -> Callable[[], IO[bytes]]:
    return lambda: io.BytesIO(data)


def _add(contents: ArchiveContents, files: _Tar, ref: BlobRef, path: str, labels: dict[str, str]) -> None:
    if not files.has(path):
        raise ImageImportFailed(f"archive is missing blob {ref.digest}")
    blob = contents.blobs.setdefault(ref.digest, Blob(ref, files.opener(path)))
    blob.labels.update(labels)


def iter_chunks(reader: IO[bytes]) -> Iterator[bytes]:
    with reader:
        while chunk := reader.read(CHUNK):
            yield chunk
