"""The ECR API of the control plane against a real store (SQLite, and PostgreSQL once) and a registry storage
tree on disk: repositories, recorded pushes as images, tags, deletes, with AWS's error codes and texts."""
from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from fargo.config import Config
from fargo.control.context import ControlContext
from fargo.control.ecr.ecr import Ecr
from fargo.control.ecr.pushes import RegistryRefusal
from fargo.errors import AwsError
from fargo.store.database import Store
from tests.e2e.test_persistence import postgres_url  # noqa: F401 - the fixture: a fresh PostgreSQL database

ACCOUNT = "000000000000"
OCI = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def _manifest(layer_sizes: tuple[int, ...], salt: str = "") -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 100,
                                  "digest": "sha256:" + hashlib.sha256(salt.encode()).hexdigest()},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": s,
                                   "digest": "sha256:" + "0" * 64} for s in layer_sizes]}).encode()


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class Fargo:
    def __init__(self, tmp_path: Path, url: str | None = None) -> None:
        self.store = Store(url or f"sqlite:///{tmp_path / 'fargo.db'}")
        self.store.migrate()
        self.ecr = Ecr(ControlContext(Config(data_dir=tmp_path), self.store))
        self._handlers = self.ecr.handlers()

    def __call__(self, operation: str, **params: Any) -> dict:
        return asyncio.run(self._handlers[operation](params))

    def error(self, operation: str, **params: Any) -> AwsError:
        with pytest.raises(AwsError) as e:
            self(operation, **params)
        return e.value

    def push(self, repository: str, body: bytes, tag: str | None, media_type: str = OCI) -> str:
        """What the proxy does for a manifest PUT the registry accepted (the registry's files included)."""
        digest = _digest(body)
        revision = self.ecr.paths.repository_dir(repository) / "_manifests" / "revisions" / "sha256" / digest[7:]
        revision.mkdir(parents=True, exist_ok=True)
        if tag:
            (self.ecr.paths.repository_dir(repository) / "_manifests" / "tags" / tag).mkdir(parents=True,
                                                                                          exist_ok=True)
        self.ecr.pushes.record_push(repository, digest, tag, body, media_type)
        return digest


@pytest.fixture
def fargo(tmp_path: Path) -> Fargo:
    return Fargo(tmp_path)


def test_create_repository_echoes_awss_defaults_and_refuses_a_duplicate(fargo: Fargo) -> None:
    repo = fargo("CreateRepository", repositoryName="team/app", tags=[{"Key": "env", "Value": "dev"}])["repository"]
    assert repo["repositoryArn"] == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/app"
    assert (repo["registryId"], repo["repositoryUri"]) == (ACCOUNT, "127.0.0.1:8400/team/app")
    assert repo["imageTagMutability"] == "MUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": False}
    assert repo["encryptionConfiguration"] == {"encryptionType": "AES256"}
    e = fargo.error("CreateRepository", repositoryName="team/app")
    assert (e.code, e.message) == ("RepositoryAlreadyExistsException",
                                   f"The repository with name 'team/app' already exists in the registry with id '{ACCOUNT}'")
    kms = fargo("CreateRepository", repositoryName="sealed", encryptionConfiguration={"encryptionType": "KMS"},
                imageTagMutability="IMMUTABLE", imageScanningConfiguration={"scanOnPush": True})["repository"]
    assert kms["encryptionConfiguration"] == {"encryptionType": "KMS",
                                              "kmsKey": f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/ecr"}
    assert (kms["imageTagMutability"], kms["imageScanningConfiguration"]) == ("IMMUTABLE", {"scanOnPush": True})
    tags = fargo("ListTagsForResource", resourceArn=repo["repositoryArn"])["tags"]
    assert tags == [{"Key": "env", "Value": "dev"}]


def test_describe_repositories_pages_and_names_missing_ones(fargo: Fargo) -> None:
    for i in range(5):
        fargo("CreateRepository", repositoryName=f"repo{i}")
    first = fargo("DescribeRepositories", maxResults=2)
    second = fargo("DescribeRepositories", maxResults=2, nextToken=first["nextToken"])
    third = fargo("DescribeRepositories", maxResults=2, nextToken=second["nextToken"])
    names = [r["repositoryName"] for page in (first, second, third) for r in page["repositories"]]
    assert names == [f"repo{i}" for i in range(5)] and "nextToken" not in third
    e = fargo.error("DescribeRepositories", repositoryNames=["repo1", "ghost"])
    assert (e.code, e.message) == ("RepositoryNotFoundException",
                                   f"The repository with name 'ghost' does not exist in the registry with id '{ACCOUNT}'")


def test_pushes_become_images_with_size_tags_and_push_time(fargo: Fargo) -> None:
    fargo("CreateRepository", repositoryName="app")
    one = fargo.push("app", _manifest((1000, 2000)), "v1")
    fargo.push("app", _manifest((1000, 2000)), "latest")  # the same manifest, a second tag
    two = fargo.push("app", _manifest((5,), "b"), None)
    details = {d["imageDigest"]: d for d in fargo("DescribeImages", repositoryName="app")["imageDetails"]}
    assert details[one]["imageTags"] == ["v1", "latest"] and details[one]["imageSizeInBytes"] == 3100
    assert details[one]["imageManifestMediaType"] == OCI
    assert details[one]["artifactMediaType"] == "application/vnd.oci.image.config.v1+json"
    assert "imageTags" not in details[two] and details[two]["imagePushedAt"] > 0
    untagged = fargo("ListImages", repositoryName="app", filter={"tagStatus": "UNTAGGED"})["imageIds"]
    assert untagged == [{"imageDigest": two}]
    tagged = fargo("ListImages", repositoryName="app", filter={"tagStatus": "TAGGED"})["imageIds"]
    assert tagged == [{"imageDigest": one, "imageTag": "v1"}, {"imageDigest": one, "imageTag": "latest"}]
    e = fargo.error("DescribeImages", repositoryName="app", imageIds=[{"imageTag": "v9"}])
    assert (e.code, e.message) == ("ImageNotFoundException", "The image with imageId {imageDigest:'null', "
                                   f"imageTag:'v9'}} does not exist within the repository with name 'app' in the "
                                   f"registry with id '{ACCOUNT}'")


def test_a_tag_pushed_again_moves_to_the_new_manifest(fargo: Fargo) -> None:
    fargo("CreateRepository", repositoryName="app")
    old = fargo.push("app", _manifest((1,)), "v1")
    new = fargo.push("app", _manifest((2,)), "v1")
    images = {d["imageDigest"]: d.get("imageTags") for d in fargo("DescribeImages", repositoryName="app")["imageDetails"]}
    assert images == {old: None, new: ["v1"]}


def test_an_immutable_repository_refuses_moving_a_tag_but_not_pushing_it_again(fargo: Fargo) -> None:
    fargo("CreateRepository", repositoryName="app", imageTagMutability="IMMUTABLE")
    body = _manifest((1,))
    fargo.push("app", body, "v1")
    repository = fargo.ecr.pushes.repository("app")
    fargo.ecr.pushes.check_tag_push(repository, "v1", body)
    fargo.ecr.pushes.check_tag_push(repository, "v2", _manifest((2,)))
    with pytest.raises(RegistryRefusal) as e:
        fargo.ecr.pushes.check_tag_push(repository, "v1", _manifest((2,)))
    assert (e.value.status, e.value.code) == (400, "TAG_INVALID")
    assert e.value.message == ("The image tag 'v1' already exists in the 'app' repository and cannot be "
                               "overwritten because the repository is immutable.")
    fargo("PutImageTagMutability", repositoryName="app", imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
          imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "v*"}])
    fargo.ecr.pushes.check_tag_push(fargo.ecr.pushes.repository("app"), "v1", _manifest((2,)))


def test_a_push_to_a_repository_never_created_is_name_unknown(fargo: Fargo) -> None:
    with pytest.raises(RegistryRefusal) as e:
        fargo.ecr.pushes.repository("ghost")
    assert (e.value.status, e.value.code, e.value.message) == (
        404, "NAME_UNKNOWN", f"The repository with name 'ghost' does not exist in the registry with id '{ACCOUNT}'")


def test_batch_get_image_returns_manifests_and_awss_failures(fargo: Fargo) -> None:
    fargo("CreateRepository", repositoryName="app")
    body = _manifest((7,))
    digest = fargo.push("app", body, "v1")
    out = fargo("BatchGetImage", repositoryName="app", imageIds=[
        {"imageTag": "v1"}, {"imageTag": "nope"}, {"imageDigest": "bad"}, {"imageDigest": digest, "imageTag": "v2"}])
    assert out["images"] == [{"registryId": ACCOUNT, "repositoryName": "app",
                              "imageId": {"imageDigest": digest, "imageTag": "v1"},
                              "imageManifest": body.decode(), "imageManifestMediaType": OCI}]
    assert [(f["imageId"], f["failureCode"]) for f in out["failures"]] == [
        ({"imageTag": "nope"}, "ImageNotFound"), ({"imageDigest": "bad"}, "InvalidImageDigest"),
        ({"imageDigest": digest, "imageTag": "v2"}, "ImageTagDoesNotMatchDigest")]
    assert out["failures"][0]["failureReason"] == "Requested image not found"


def test_batch_delete_by_tag_untags_and_the_last_tag_deletes_the_image(fargo: Fargo) -> None:
    fargo("CreateRepository", repositoryName="app")
    digest = fargo.push("app", _manifest((7,)), "v1")
    fargo.push("app", _manifest((7,)), "v2")
    manifests = fargo.ecr.paths.repository_dir("app") / "_manifests"
    out = fargo("BatchDeleteImage", repositoryName="app", imageIds=[{"imageTag": "v1"}, {"imageTag": "v9"}])
    assert out["imageIds"] == [{"imageDigest": digest, "imageTag": "v1"}]
    assert out["failures"] == [{"imageId": {"imageTag": "v9"}, "failureCode": "ImageNotFound",
                                "failureReason": "Requested image not found"}]
    assert not (manifests / "tags" / "v1").exists() and (manifests / "revisions" / "sha256" / digest[7:]).exists()
    out = fargo("BatchDeleteImage", repositoryName="app", imageIds=[{"imageTag": "v2"}])
    assert out["imageIds"] == [{"imageDigest": digest, "imageTag": "v2"}]
    assert not (manifests / "revisions" / "sha256" / digest[7:]).exists()
    assert fargo("DescribeImages", repositoryName="app")["imageDetails"] == []


def test_a_manifest_an_index_lists_is_not_deleted_and_an_index_reports_its_largest(fargo: Fargo) -> None:
    fargo("CreateRepository", repositoryName="multi")
    small, big = fargo.push("multi", _manifest((10,)), None), fargo.push("multi", _manifest((90,), "x"), None)
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": OCI, "digest": d, "size": 1} for d in (small, big)]}).encode()
    index_digest = fargo.push("multi", index, "v1", INDEX)
    out = fargo("BatchDeleteImage", repositoryName="multi", imageIds=[{"imageDigest": small}])
    assert out["imageIds"] == [] and out["failures"][0]["failureCode"] == "ImageReferencedByManifestList"
    detail = fargo("DescribeImages", repositoryName="multi", imageIds=[{"imageTag": "v1"}])["imageDetails"][0]
    assert (detail["imageDigest"], detail["imageSizeInBytes"]) == (index_digest, 190)
    assert "artifactMediaType" not in detail


def test_delete_repository_needs_force_when_it_has_images_and_force_removes_its_storage(fargo: Fargo) -> None:
    fargo("CreateRepository", repositoryName="team/app")
    fargo("CreateRepository", repositoryName="team/app/worker")
    fargo.push("team/app", _manifest((1,)), "v1")
    fargo.push("team/app/worker", _manifest((2,)), "v1")
    e = fargo.error("DeleteRepository", repositoryName="team/app")
    assert (e.code, e.message) == ("RepositoryNotEmptyException", f"The repository with name 'team/app' in registry "
                                   f"with id '{ACCOUNT}' cannot be deleted because it still contains images")
    deleted = fargo("DeleteRepository", repositoryName="team/app", force=True)["repository"]
    assert deleted["repositoryName"] == "team/app"
    assert not (fargo.ecr.paths.repository_dir("team/app") / "_manifests").exists()
    assert (fargo.ecr.paths.repository_dir("team/app/worker") / "_manifests").exists()  # the one below stays
    e = fargo.error("DeleteRepository", repositoryName="team/app")
    assert e.code == "RepositoryNotFoundException"
    fargo("CreateRepository", repositoryName="team/app")  # the name is free again, and empty
    assert fargo("DescribeImages", repositoryName="team/app")["imageDetails"] == []


def test_resource_tags_by_arn(fargo: Fargo) -> None:
    arn = fargo("CreateRepository", repositoryName="app")["repository"]["repositoryArn"]
    fargo("TagResource", resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    fargo("TagResource", resourceArn=arn, tags=[{"Key": "a", "Value": "3"}])
    fargo("UntagResource", resourceArn=arn, tagKeys=["b"])
    assert fargo("ListTagsForResource", resourceArn=arn)["tags"] == [{"Key": "a", "Value": "3"}]
    assert fargo.error("TagResource", resourceArn=arn, tags=[{"Key": "aws:x", "Value": ""}]).code == \
        "InvalidTagParameterException"
    assert fargo.error("ListTagsForResource", resourceArn=arn + "x").code == "RepositoryNotFoundException"
    assert fargo.error("ListTagsForResource", resourceArn="arn:aws:ecr:us-east-1:1:x").code == \
        "InvalidParameterException"


def test_the_authorization_token_is_base64_aws_password_for_twelve_hours(fargo: Fargo) -> None:
    import base64
    import time

    data = fargo("GetAuthorizationToken")["authorizationData"]
    assert len(data) == 1 and data[0]["proxyEndpoint"] == "http://127.0.0.1:8400"
    assert base64.b64decode(data[0]["authorizationToken"]).startswith(b"AWS:")
    assert abs(data[0]["expiresAt"] - (time.time() + 12 * 3600)) < 5


def test_the_same_flow_on_postgresql(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    fargo = Fargo(tmp_path, postgres_url)
    fargo("CreateRepository", repositoryName="app")
    digest = fargo.push("app", _manifest((3,)), "v1")
    fargo.push("app", _manifest((3,)), "v1")
    assert fargo("ListImages", repositoryName="app")["imageIds"] == [{"imageDigest": digest, "imageTag": "v1"}]
    assert fargo.error("DeleteRepository", repositoryName="app").code == "RepositoryNotEmptyException"
    fargo("DeleteRepository", repositoryName="app", force=True)
    assert fargo("DescribeRepositories")["repositories"] == []
    fargo.store.close()
