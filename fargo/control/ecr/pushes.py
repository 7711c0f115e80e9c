"""What the registry proxy asks of ECR: does a repository exist, may this tag be pushed (tag immutability), and
the record of each manifest pushed (what DescribeImages reports) or deleted through the registry API."""
from __future__ import annotations

import fnmatch
import hashlib

from fargo import clock
from fargo.control.ecr import messages as msg
from fargo.control.ecr.manifests import manifest_facts
from fargo.store.ecr_store import EcrStore, ImageRow, RepositoryRow


class RegistryRefusal(Exception):
    """A registry request ECR refuses: the HTTP status and the registry error code and message to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class RegistryPushes:
    def __init__(self, store: EcrStore, account_id: str) -> None:
        self.store, self.account_id = store, account_id

    def repository(self, name: str) -> RepositoryRow:
        """The repository, or the refusal ECR's registry answers for one never created (NAME_UNKNOWN)."""
        with self.store.reading() as r:
            row = r.repository(name)
        if row is None:
            raise RegistryRefusal(404, "NAME_UNKNOWN", msg.repository_not_found(name, self.account_id))
        return row

    def check_tag_push(self, repository: RepositoryRow, tag: str, body: bytes) -> None:
        """Refuse moving a tag of an immutable repository to another manifest (pushing the same one is fine)."""
        if not _immutable(repository, tag):
            return
        with self.store.reading() as r:
            current = r.digest_of_tag(repository.name, tag)
        if current is not None and current != _sha256(body):
            raise RegistryRefusal(400, "TAG_INVALID", msg.tag_immutable(tag, repository.name))

    def record_push(self, repository: str, digest: str | None, tag: str | None, body: bytes,
                    content_type: str | None) -> None:
        """A manifest the registry accepted, under its digest, and the tag it was pushed with."""
        facts = manifest_facts(body, content_type)
        digest = digest or _sha256(body)
        now = clock.now()
        with self.store.writing() as w:
            if w.repository(repository, lock=True) is None:  # deleted while the push was under way
                return
            w.put_image(ImageRow(repository_name=repository, image_digest=digest,
                                 manifest=body.decode("utf-8", errors="replace"), manifest_media_type=facts.media_type,
                                 artifact_media_type=facts.artifact_media_type, size_in_bytes=facts.size_in_bytes,
                                 pushed_at=now))
            if tag:
                w.tag_image(repository, tag, digest, now)

    def forget(self, repository: str, digest: str) -> None:
        """A manifest deleted through the registry API (DELETE /v2/<name>/manifests/<digest>)."""
        with self.store.writing() as w:
            w.delete_image(repository, digest)


def _immutable(repository: RepositoryRow, tag: str) -> bool:
    mode = repository.image_tag_mutability
    if mode in ("MUTABLE", "IMMUTABLE"):
        return mode == "IMMUTABLE"
    excluded = any(fnmatch.fnmatchcase(tag, f.get("filter", "")) for f in repository.mutability_exclusions or [])
    return excluded if mode == "MUTABLE_WITH_EXCLUSION" else not excluded


def _sha256(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()
