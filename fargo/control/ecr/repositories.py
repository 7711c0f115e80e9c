"""Repositories: CreateRepository, DescribeRepositories, DeleteRepository (force removes its images from the
registry's storage too), PutImageTagMutability."""
from __future__ import annotations

from fargo import clock
from fargo.control.ecr import messages as msg
from fargo.errors import (RepositoryAlreadyExistsException, RepositoryNotEmptyException,
                                      RepositoryNotFoundException)
from fargo.control.ecr.names import RegistryNames, check_repository_name
from fargo.control.ecr.resource_tags import tags_of_request
from fargo.control.pagination import next_token, page_bounds
from fargo.errors import InvalidParameterException
from fargo.registry.storage import RegistryPaths, remove_repository
from fargo.store.ecr_store import EcrReads, EcrStore, RepositoryRow

_EXCLUSION_MODES = frozenset({"IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"})


class Repositories:
    def __init__(self, store: EcrStore, names: RegistryNames, paths: RegistryPaths) -> None:
        self.store, self.names, self.paths = store, names, paths

    def handlers(self) -> dict:
        return {"CreateRepository": self.create_repository, "DescribeRepositories": self.describe_repositories,
                "DeleteRepository": self.delete_repository, "PutImageTagMutability": self.put_image_tag_mutability}

    def existing(self, r: EcrReads, name: str, lock: bool = False) -> RepositoryRow:
        row = r.repository(name, lock=lock)
        if row is None:
            raise RepositoryNotFoundException(msg.repository_not_found(name, self.names.account_id))
        return row

    # --- API -----------------------------------------------------------------------------------

    def create_repository(self, p: dict) -> dict:
        self.names.check_registry_id(p.get("registryId"))
        name = check_repository_name(p["repositoryName"])
        mutability = p.get("imageTagMutability") or "MUTABLE"
        exclusions = _exclusions(mutability, p.get("imageTagMutabilityExclusionFilters"))
        encryption = p.get("encryptionConfiguration") or {"encryptionType": "AES256"}
        encryption_type = encryption.get("encryptionType") or "AES256"
        kms_key = encryption.get("kmsKey")
        if encryption_type == "AES256" and kms_key:
            raise InvalidParameterException(msg.KMS_KEY_WITH_AES256)
        if encryption_type != "AES256" and not kms_key:  # ECR's AWS managed key
            kms_key = f"arn:aws:kms:{self.names.region}:{self.names.account_id}:alias/aws/ecr"
        tags = tags_of_request(p.get("tags"))
        row = RepositoryRow(name=name, created_at=clock.now(), image_tag_mutability=mutability,
                            mutability_exclusions=exclusions,
                            scan_on_push=bool((p.get("imageScanningConfiguration") or {}).get("scanOnPush", False)),
                            encryption_type=encryption_type, kms_key=kms_key)
        with self.store.writing() as w:
            if not w.insert_repository(row):
                raise RepositoryAlreadyExistsException(msg.repository_already_exists(name, self.names.account_id))
            w.put_resource_tags(name, tags)
        # Left over from a repository of this name deleted while a push was under way: not this one's.
        remove_repository(self.paths, name)
        return {"repository": self.render(row)}

    def describe_repositories(self, p: dict) -> dict:
        self.names.check_registry_id(p.get("registryId"))
        wanted = p.get("repositoryNames")
        if wanted is not None:
            if p.get("nextToken") or p.get("maxResults") is not None:
                raise InvalidParameterException(msg.NAMES_AND_NEXT_TOKEN)
            with self.store.reading() as r:
                rows = [self.existing(r, check_repository_name(n, "repositoryNames")) for n in wanted]
            return {"repositories": [self.render(row) for row in rows]}
        offset, limit = page_bounds(p, default_limit=100, max_limit=1000)
        with self.store.reading() as r:
            rows = r.repositories(offset, limit + 1)
        out: dict = {"repositories": [self.render(row) for row in rows[:limit]]}
        token = next_token(offset, limit, len(rows))
        if token:
            out["nextToken"] = token
        return out

    def delete_repository(self, p: dict) -> dict:
        self.names.check_registry_id(p.get("registryId"))
        name = p["repositoryName"]
        with self.store.writing() as w:
            row = self.existing(w, name, lock=True)
            if w.image_count(name) and not p.get("force"):
                raise RepositoryNotEmptyException(msg.repository_not_empty(name, self.names.account_id))
            w.delete_repository(name)
        remove_repository(self.paths, name)
        return {"repository": self.render(row)}

    def put_image_tag_mutability(self, p: dict) -> dict:
        self.names.check_registry_id(p.get("registryId"))
        name, mutability = p["repositoryName"], p["imageTagMutability"]
        exclusions = _exclusions(mutability, p.get("imageTagMutabilityExclusionFilters"))
        with self.store.writing() as w:
            self.existing(w, name, lock=True)
            w.set_mutability(name, mutability, exclusions)
        out = {"registryId": self.names.account_id, "repositoryName": name, "imageTagMutability": mutability}
        if exclusions:
            out["imageTagMutabilityExclusionFilters"] = exclusions
        return out

    # --- rendering -----------------------------------------------------------------------------

    def render(self, row: RepositoryRow) -> dict:
        encryption: dict = {"encryptionType": row.encryption_type}
        if row.kms_key:
            encryption["kmsKey"] = row.kms_key
        out = {
            "repositoryArn": self.names.repository_arn(row.name), "registryId": self.names.account_id,
            "repositoryName": row.name, "repositoryUri": self.names.repository_uri(row.name),
            "createdAt": row.created_at, "imageTagMutability": row.image_tag_mutability,
            "imageScanningConfiguration": {"scanOnPush": row.scan_on_push},
            "encryptionConfiguration": encryption,
        }
        if row.mutability_exclusions:
            out["imageTagMutabilityExclusionFilters"] = row.mutability_exclusions
        return out


def _exclusions(mutability: str, filters: list | None) -> list | None:
    if filters and mutability not in _EXCLUSION_MODES:
        raise InvalidParameterException(msg.EXCLUSION_FILTERS_NEED_EXCLUSION_MODE)
    if mutability in _EXCLUSION_MODES and not filters:
        raise InvalidParameterException(msg.EXCLUSION_FILTERS_REQUIRED)
    return [{"filterType": f["filterType"], "filter": f["filter"]} for f in filters] if filters else None
