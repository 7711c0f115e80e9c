"""Images of a repository, as the store recorded their pushes: DescribeImages, ListImages, BatchGetImage,
BatchDeleteImage (which removes manifests and tags from the registry's storage too)."""
from __future__ import annotations

from fargo.control.ecr import messages as msg
from fargo.errors import ImageNotFoundException
from fargo.control.ecr.manifests import INDEX_TYPES, manifest_facts
from fargo.control.ecr.names import RegistryNames, is_digest
from fargo.control.ecr.repositories import Repositories
from fargo.control.pagination import next_token, page_bounds
from fargo.errors import InvalidParameterException
from fargo.registry.storage import RegistryPaths, remove_manifest, remove_tag
from fargo.store.ecr_store import EcrStore, EcrWrites, Image


class _Failure(Exception):
    """One image id's failure (failureCode, failureReason) in a batch call."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class Images:
    def __init__(self, store: EcrStore, names: RegistryNames, paths: RegistryPaths,
                 repositories: Repositories) -> None:
        self.store, self.names, self.paths, self.repositories = store, names, paths, repositories

    def handlers(self) -> dict:
        return {"DescribeImages": self.describe_images, "ListImages": self.list_images,
                "BatchGetImage": self.batch_get_image, "BatchDeleteImage": self.batch_delete_image}

    # --- API -----------------------------------------------------------------------------------

    def describe_images(self, p: dict) -> dict:
        self.names.check_registry_id(p.get("registryId"))
        name, wanted = p["repositoryName"], p.get("imageIds")
        if wanted is not None and p.get("filter"):
            raise InvalidParameterException(msg.FILTER_WITH_IMAGE_IDS)
        with self.store.reading() as r:
            self.repositories.existing(r, name)
            images = r.images(name)
        if wanted is not None:
            chosen: dict[str, Image] = {}
            for image_id in wanted:
                try:
                    image = _find(images, image_id)
                except _Failure:
                    raise ImageNotFoundException(msg.image_not_found(image_id, name, self.names.account_id)) from None
                chosen.setdefault(image.row.image_digest, image)
            return {"imageDetails": [self._detail(i, images) for i in chosen.values()]}
        images = _with_tag_status(images, (p.get("filter") or {}).get("tagStatus"))
        offset, limit = page_bounds(p, default_limit=100, max_limit=1000)
        page = images[offset:offset + limit + 1]
        out: dict = {"imageDetails": [self._detail(i, images) for i in page[:limit]]}
        token = next_token(offset, limit, len(page))
        if token:
            out["nextToken"] = token
        return out

    def list_images(self, p: dict) -> dict:
        self.names.check_registry_id(p.get("registryId"))
        name = p["repositoryName"]
        with self.store.reading() as r:
            self.repositories.existing(r, name)
            images = _with_tag_status(r.images(name), (p.get("filter") or {}).get("tagStatus"))
        ids = [_id(i.row.image_digest, tag) for i in images for tag in (i.tags or (None,))]
        offset, limit = page_bounds(p, default_limit=100, max_limit=1000)
        page = ids[offset:offset + limit + 1]
        out: dict = {"imageIds": page[:limit]}
        token = next_token(offset, limit, len(page))
        if token:
            out["nextToken"] = token
        return out

    def batch_get_image(self, p: dict) -> dict:
        self.names.check_registry_id(p.get("registryId"))
        name = p["repositoryName"]
        accepted = p.get("acceptedMediaTypes")
        with self.store.reading() as r:
            self.repositories.existing(r, name)
            images = r.images(name)
        found, failures = [], []
        for image_id in p["imageIds"]:
            try:
                image = _find(images, image_id)
                if accepted and image.row.manifest_media_type not in accepted:
                    raise _Failure("ImageNotFound", msg.UNSUPPORTED_MEDIA_TYPE_REASON)
            except _Failure as f:
                failures.append({"imageId": image_id, "failureCode": f.code, "failureReason": f.reason})
                continue
            found.append({"registryId": self.names.account_id, "repositoryName": name,
                          "imageId": _id(image.row.image_digest, image_id.get("imageTag")),
                          "imageManifest": image.row.manifest,
                          "imageManifestMediaType": image.row.manifest_media_type})
        return {"images": found, "failures": failures}

    def batch_delete_image(self, p: dict) -> dict:
        self.names.check_registry_id(p.get("registryId"))
        name = p["repositoryName"]
        deleted, failures = [], []
        storage_work: list[tuple[str, str, tuple[str, ...]]] = []  # (what, digest or tag, tags) done after commit
        with self.store.writing() as w:
            self.repositories.existing(w, name, lock=True)
            for image_id in p["imageIds"]:
                try:
                    deleted.extend(self._delete_one(w, name, image_id, storage_work))
                except _Failure as f:
                    failures.append({"imageId": image_id, "failureCode": f.code, "failureReason": f.reason})
        for what, ref, tags in storage_work:
            if what == "tag":
                remove_tag(self.paths, name, ref)
            else:
                remove_manifest(self.paths, name, ref, tags)
        return {"imageIds": deleted, "failures": failures}

    # --- helpers -------------------------------------------------------------------------------

    def _delete_one(self, w: EcrWrites, name: str, image_id: dict, storage_work: list) -> list[dict]:
        images = w.images(name)
        image = _find(images, image_id)
        digest, tag = image.row.image_digest, image_id.get("imageTag")
        referenced = _indexes_listing(images, digest)
        if tag is not None and (len(image.tags) > 1 or referenced):
            w.untag(name, tag)  # the image keeps its other tags (or stays, listed by an index)
            storage_work.append(("tag", tag, ()))
            return [_id(digest, tag)]
        if referenced:
            raise _Failure("ImageReferencedByManifestList", msg.referenced_by_manifest_list(referenced))
        w.delete_image(name, digest)
        storage_work.append(("manifest", digest, image.tags))
        return [_id(digest, t) for t in image.tags] or [_id(digest, None)]

    def _detail(self, image: Image, all_images: list[Image]) -> dict:
        row = image.row
        size = row.size_in_bytes
        if row.manifest_media_type in INDEX_TYPES:  # as ECR: the largest of the manifests it lists
            children = set(manifest_facts(row.manifest.encode(), row.manifest_media_type).children)
            size = max((i.row.size_in_bytes for i in all_images if i.row.image_digest in children), default=0)
        out: dict = {"registryId": self.names.account_id, "repositoryName": row.repository_name,
                     "imageDigest": row.image_digest, "imageSizeInBytes": size, "imagePushedAt": row.pushed_at,
                     "imageManifestMediaType": row.manifest_media_type}
        if image.tags:
            out["imageTags"] = list(image.tags)
        if row.artifact_media_type:
            out["artifactMediaType"] = row.artifact_media_type
        return out


def _find(images: list[Image], image_id: dict) -> Image:
    """The image an ImageIdentifier names (by digest, tag, or both agreeing); _Failure as ECR reports it."""
    digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
    if not digest and not tag:
        raise _Failure("MissingDigestAndTag", msg.MISSING_DIGEST_AND_TAG_REASON)
    if digest and not is_digest(digest):
        raise _Failure("InvalidImageDigest", msg.INVALID_DIGEST_REASON)
    by_digest = next((i for i in images if i.row.image_digest == digest), None) if digest else None
    by_tag = next((i for i in images if tag in i.tags), None) if tag else None
    if digest and tag and by_digest is not None and by_tag is not by_digest:
        raise _Failure("ImageTagDoesNotMatchDigest", msg.TAG_DOES_NOT_MATCH_DIGEST_REASON)
    found = by_digest if digest else by_tag
    if found is None:
        raise _Failure("ImageNotFound", msg.IMAGE_NOT_FOUND_REASON)
    return found


def _indexes_listing(images: list[Image], digest: str) -> list[str]:
    return [i.row.image_digest for i in images if i.row.manifest_media_type in INDEX_TYPES
            and digest in manifest_facts(i.row.manifest.encode(), i.row.manifest_media_type).children]


def _with_tag_status(images: list[Image], status: str | None) -> list[Image]:
    if status == "TAGGED":
        return [i for i in images if i.tags]
    if status == "UNTAGGED":
        return [i for i in images if not i.tags]
    return images


def _id(digest: str, tag: str | None) -> dict:
    return {"imageDigest": digest, "imageTag": tag} if tag else {"imageDigest": digest}

