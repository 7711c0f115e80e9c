"""Where the registry keeps its files, and the two edits Fargo makes to its storage itself: removing a tag
(distribution 2.8 has no API for it) and removing a whole repository (ECR's DeleteRepository with force).

Layout (distribution's filesystem driver): `data/docker/registry/v2/repositories/<name>/{_manifests,_layers,
_uploads}`; blobs are shared under `.../v2/blobs` and stay until a garbage collection.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

_REPOSITORY_PARTS = ("_manifests", "_layers", "_uploads")


@dataclass(frozen=True)
class RegistryPaths:
    """Every file of Fargo's registry, all under DATA_DIR/registry/."""

    base: Path

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> RegistryPaths:
        return cls(Path(data_dir).absolute() / "registry")

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def config(self) -> Path:
        return self.base / "config.yml"

    @property
    def socket(self) -> Path:
        return self.base / "registry.sock"

    @property
    def log(self) -> Path:
        return self.base / "registry.log"

    @property
    def http_secret(self) -> Path:
        return self.base / "http.secret"

    @property
    def repositories(self) -> Path:
        return self.data / "docker" / "registry" / "v2" / "repositories"

    def repository_dir(self, name: str) -> Path:
        return self.repositories / name


def remove_tag(paths: RegistryPaths, repository: str, tag: str) -> None:
    """The tag goes; the manifest it named stays (as distribution's own untag does)."""
    shutil.rmtree(paths.repository_dir(repository) / "_manifests" / "tags" / tag, ignore_errors=True)


def remove_repository(paths: RegistryPaths, repository: str) -> None:
    """A repository's manifests, layer links and uploads. Only its own parts: `a/b` may have `a/b/c` below it.
    Parent directories left empty go too."""
    directory = paths.repository_dir(repository)
    for part in _REPOSITORY_PARTS:
        shutil.rmtree(directory / part, ignore_errors=True)
    root = paths.repositories
    while directory != root and directory.is_relative_to(root):
        try:
            directory.rmdir()
        except OSError:  # not empty (another repository below it) or already gone
            if directory.exists():
                break
        directory = directory.parent


def remove_manifest(paths: RegistryPaths, repository: str, digest: str, tags: tuple[str, ...] | list[str]) -> None:
    """A manifest and the tags naming it, as distribution's DELETE of a manifest by digest does."""
    algorithm, _, hex_digest = digest.partition(":")
    manifests = paths.repository_dir(repository) / "_manifests"
    for tag in tags:
        shutil.rmtree(manifests / "tags" / tag, ignore_errors=True)
    shutil.rmtree(manifests / "revisions" / algorithm / hex_digest, ignore_errors=True)
