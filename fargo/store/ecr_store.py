"""The SQL of Amazon ECR: repositories, the images pushed to them (one row per manifest), image tags and
repository tags. Each `writing()` is one transaction; a repository's rows go with it."""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from fargo.store.database import Store
from fargo.store.ecr_schema import ecr_image_tags, ecr_images, ecr_repositories, ecr_tags


@dataclass(frozen=True)
class RepositoryRow:
    name: str
    created_at: float
    image_tag_mutability: str
    mutability_exclusions: list | None
    scan_on_push: bool
    encryption_type: str
    kms_key: str | None


@dataclass(frozen=True)
class ImageRow:
    repository_name: str
    image_digest: str
    manifest: str
    manifest_media_type: str
    artifact_media_type: str | None
    size_in_bytes: int
    pushed_at: float


@dataclass(frozen=True)
class Image:
    """An image with its tags, oldest tag first."""

    row: ImageRow
    tags: tuple[str, ...]


class EcrStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    @contextlib.contextmanager
    def reading(self) -> Iterator[EcrReads]:
        with self._store.engine.connect() as c:
            yield EcrReads(c)

    @contextlib.contextmanager
    def writing(self) -> Iterator[EcrWrites]:
        with self._store._writing() as c:
            yield EcrWrites(c)


class EcrReads:
    def __init__(self, conn: Connection) -> None:
        self._c = conn

    # --- repositories ---------------------------------------------------------------------------

    def repository(self, name: str, lock: bool = False) -> RepositoryRow | None:
        t = ecr_repositories
        q = select(t).where(t.c.name == name)
        row = self._c.execute(q.with_for_update() if lock else q).first()
        return RepositoryRow(**row._mapping) if row else None

    def repositories(self, offset: int = 0, limit: int | None = None) -> list[RepositoryRow]:
        t = ecr_repositories
        q = select(t).order_by(t.c.created_at, t.c.name).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        return [RepositoryRow(**row._mapping) for row in self._c.execute(q)]

    def image_count(self, repository: str) -> int:
        t = ecr_images
        return int(self._c.execute(select(func.count()).select_from(t)
                                   .where(t.c.repository_name == repository)).scalar() or 0)

    # --- images ---------------------------------------------------------------------------------

    def images(self, repository: str, digests: Sequence[str] | None = None) -> list[Image]:
        """The repository's images (those named, if given), oldest push first, with their tags."""
        t = ecr_images
        q = select(t).where(t.c.repository_name == repository)
        if digests is not None:
            q = q.where(t.c.image_digest.in_(list(digests)))
        rows = [ImageRow(**row._mapping) for row in self._c.execute(q.order_by(t.c.pushed_at, t.c.image_digest))]
        tags = self._tags_by_digest(repository, [r.image_digest for r in rows] if digests is not None else None)
        return [Image(r, tuple(tags.get(r.image_digest, ()))) for r in rows]

    def image(self, repository: str, digest: str) -> Image | None:
        found = self.images(repository, [digest])
        return found[0] if found else None

    def digest_of_tag(self, repository: str, tag: str) -> str | None:
        t = ecr_image_tags
        return self._c.execute(select(t.c.image_digest).where(
            and_(t.c.repository_name == repository, t.c.tag == tag))).scalar()

    def _tags_by_digest(self, repository: str, digests: list[str] | None) -> dict[str, list[str]]:
        t = ecr_image_tags
        q = select(t.c.image_digest, t.c.tag).where(t.c.repository_name == repository)
        if digests is not None:
            q = q.where(t.c.image_digest.in_(digests))
        out: dict[str, list[str]] = {}
        for digest, tag in self._c.execute(q.order_by(t.c.tagged_at, t.c.tag)):
            out.setdefault(digest, []).append(tag)
        return out

    # --- repository tags ------------------------------------------------------------------------

    def resource_tags(self, repository: str) -> list[tuple[str, str]]:
        t = ecr_tags
        q = select(t.c.key, t.c.value).where(t.c.repository_name == repository).order_by(t.c.position)
        return [(k, v) for k, v in self._c.execute(q)]


class EcrWrites(EcrReads):
    def insert_repository(self, row: RepositoryRow) -> bool:
        """False when the name is taken; nothing is written then."""
        try:
            with self._c.begin_nested():
                self._c.execute(insert(ecr_repositories).values(**dataclasses.asdict(row)))
        except IntegrityError:
            return False
        return True

    def set_mutability(self, name: str, mutability: str, exclusions: list | None) -> None:
        t = ecr_repositories
        self._c.execute(update(t).where(t.c.name == name)
                        .values(image_tag_mutability=mutability, mutability_exclusions=exclusions))

    def delete_repository(self, name: str) -> None:
        """The repository, its images, image tags and resource tags."""
        for t in (ecr_image_tags, ecr_images, ecr_tags):
            self._c.execute(delete(t).where(t.c.repository_name == name))
        self._c.execute(delete(ecr_repositories).where(ecr_repositories.c.name == name))

    def put_image(self, row: ImageRow) -> None:
        """Record a pushed manifest; a manifest pushed again keeps its first push time."""
        t = ecr_images
        if self._c.execute(select(t.c.image_digest).where(and_(
                t.c.repository_name == row.repository_name, t.c.image_digest == row.image_digest))).first():
            return
        self._c.execute(insert(t).values(**dataclasses.asdict(row)))

    def tag_image(self, repository: str, tag: str, digest: str, at: float) -> None:
        """Point `tag` at `digest` (moving it off any other image of the repository)."""
        t = ecr_image_tags
        where = and_(t.c.repository_name == repository, t.c.tag == tag)
        current = self._c.execute(select(t.c.image_digest).where(where)).scalar()
        if current == digest:
            return
        if current is not None:
            self._c.execute(update(t).where(where).values(image_digest=digest, tagged_at=at))
        else:
            self._c.execute(insert(t).values(repository_name=repository, tag=tag, image_digest=digest, tagged_at=at))

    def untag(self, repository: str, tag: str) -> None:
        t = ecr_image_tags
        self._c.execute(delete(t).where(and_(t.c.repository_name == repository, t.c.tag == tag)))

    def delete_image(self, repository: str, digest: str) -> None:
        for t in (ecr_image_tags, ecr_images):
            self._c.execute(delete(t).where(and_(t.c.repository_name == repository, t.c.image_digest == digest)))

    def put_resource_tags(self, repository: str, tags: Sequence[tuple[str, str]]) -> None:
        """Add or overwrite tags; new keys go after the existing ones."""
        t = ecr_tags
        existing = {k for k, _ in self.resource_tags(repository)}
        pos = self._c.execute(select(func.max(t.c.position)).where(t.c.repository_name == repository)).scalar() or 0
        for key, value in tags:
            if key in existing:
                self._c.execute(update(t).where(and_(t.c.repository_name == repository, t.c.key == key))
                                .values(value=value))
                continue
            pos += 1
            existing.add(key)
            self._c.execute(insert(t).values(repository_name=repository, key=key, value=value, position=pos))

    def delete_resource_tags(self, repository: str, keys: Sequence[str]) -> None:
        t = ecr_tags
        self._c.execute(delete(t).where(and_(t.c.repository_name == repository, t.c.key.in_(list(keys)))))
