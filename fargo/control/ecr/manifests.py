"""What ECR reports of a pushed manifest: its media type, the artifact (config) media type, the size (config
plus layers, compressed, as ECR counts), and for an index or manifest list the manifests it lists."""
from __future__ import annotations

import json
from dataclasses import dataclass

DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # what distribution accepts


@dataclass(frozen=True)
class ManifestFacts:
    media_type: str
    artifact_media_type: str | None
    size_in_bytes: int  # an index's own is 0: ECR reports the largest of its manifests, found at push
    children: tuple[str, ...]  # digests an index lists

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def manifest_facts(body: bytes, content_type: str | None) -> ManifestFacts:
    """Facts of a manifest the registry accepted (so it is well-formed JSON for the types that are)."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    header_type = (content_type or "").split(";")[0].strip()
    media_type = doc.get("mediaType") or header_type or (DOCKER_SCHEMA1 if doc.get("schemaVersion") == 1 else
                                                         OCI_MANIFEST)
    if media_type in INDEX_TYPES:
        children = tuple(str(m.get("digest")) for m in doc.get("manifests") or [] if isinstance(m, dict))
        return ManifestFacts(media_type, None, 0, children)
    config = doc.get("config")
    if not isinstance(config, dict):
        config = {}
    layers = [layer for layer in doc.get("layers") or [] if isinstance(layer, dict)]
    size = _size(config) + sum(_size(layer) for layer in layers)
    artifact = doc.get("artifactType") or config.get("mediaType")
    return ManifestFacts(media_type, artifact, size, ())


def _size(descriptor: dict) -> int:
    value = descriptor.get("size")
    return value if isinstance(value, int) and value > 0 else 0
