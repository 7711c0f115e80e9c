"""Fargo's ECR against a real `fargo up`: the ECR API through boto3 and the AWS CLI, images pushed and pulled by
skopeo through the edge port's `/v2/` with the token of `aws ecr get-login-password`, anonymous and forged
access refused, pushes to repositories never created refused, every error, and the registry with its data across
a restart (and a registry that dies is started again)."""
from __future__ import annotations

import base64
import datetime
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import FargoProcess
from tests.fargo_process import REPO, free_port

ACCOUNT = "000000000000"
BUSYBOX = REPO / "build" / "busybox.tar"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _error(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def _name(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def busybox() -> dict:
    """The test image's OCI archive, and the manifest skopeo will push from it (digest and sizes)."""
    if not BUSYBOX.exists():
        BUSYBOX.parent.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "fargo.runtime.test_image", str(BUSYBOX)], check=True, cwd=REPO)
    with tarfile.open(BUSYBOX) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        digest = index["manifests"][0]["digest"]
        manifest = tar.extractfile(f"blobs/sha256/{digest.split(':')[1]}").read()  # type: ignore[union-attr]
    doc = json.loads(manifest)
    size = doc["config"]["size"] + sum(layer["size"] for layer in doc["layers"])
    return {"digest": digest, "manifest": manifest.decode(), "size": size}


class Skopeo:
    """skopeo with an auth file of the test's own (nothing is written to root's home)."""

    def __init__(self, fargo: FargoProcess, directory: Path) -> None:
        self.fargo, self.authfile = fargo, directory / "auth.json"
        self.host = fargo.endpoint.removeprefix("http://")
        self.env = dict(os.environ, REGISTRY_AUTH_FILE=str(self.authfile), TMPDIR=str(directory))

    def login(self) -> None:
        password = self.fargo.aws_cli("ecr", "get-login-password").stdout.strip()
        proc = subprocess.run(["skopeo", "login", "--password-stdin", "--tls-verify=false", "-u", "AWS", self.host],
                              input=password, capture_output=True, text=True, env=self.env)
        assert proc.returncode == 0, proc.stderr

    def push(self, reference: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("copy", "--dest-tls-verify=false", f"oci-archive:{BUSYBOX}", f"docker://{reference}",
                        check=check)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, env=self.env, timeout=120)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc


@pytest.fixture
def skopeo(fargo: FargoProcess, tmp_path: Path) -> Skopeo:
    s = Skopeo(fargo, tmp_path)
    s.login()
    return s


@pytest.fixture
def ecr(fargo: FargoProcess):  # noqa: ANN201
    return fargo.client("ecr")


@pytest.fixture
def repository(ecr) -> Iterator[dict]:  # noqa: ANN001
    repo = ecr.create_repository(repositoryName=_name("team/app"))["repository"]
    yield repo
    try:
        ecr.delete_repository(repositoryName=repo["repositoryName"], force=True)
    except ClientError:
        pass


def _v2(fargo: FargoProcess, path: str, authorization: str | None = None,
        method: str = "GET") -> tuple[int, dict, dict]:
    request = urllib.request.Request(fargo.endpoint + path, method=method)
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


def _basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()


# --- pushes, pulls and the image APIs ---------------------------------------------------------------


def test_an_image_pushed_with_the_cli_token_is_described_listed_fetched_and_pulled(
        fargo: FargoProcess, ecr, skopeo: Skopeo, repository: dict, busybox: dict, tmp_path: Path) -> None:  # noqa: ANN001
    name, uri = repository["repositoryName"], repository["repositoryUri"]
    assert uri == f"{skopeo.host}/{name}"
    before = datetime.datetime.now(datetime.timezone.utc)
    skopeo.push(f"{uri}:v1")
    skopeo.push(f"{uri}:latest")
    detail = ecr.describe_images(repositoryName=name)["imageDetails"]
    assert len(detail) == 1
    image = detail[0]
    assert (image["imageDigest"], image["imageTags"], image["imageSizeInBytes"]) == (
        busybox["digest"], ["v1", "latest"], busybox["size"])
    assert (image["registryId"], image["repositoryName"], image["imageManifestMediaType"]) == (
        ACCOUNT, name, OCI_MANIFEST)
    assert image["artifactMediaType"] == "application/vnd.oci.image.config.v1+json"
    assert before - datetime.timedelta(seconds=2) <= image["imagePushedAt"] <= datetime.datetime.now(
        datetime.timezone.utc)
    assert ecr.list_images(repositoryName=name)["imageIds"] == [
        {"imageDigest": busybox["digest"], "imageTag": "v1"}, {"imageDigest": busybox["digest"], "imageTag": "latest"}]
    got = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}, {"imageTag": "v2"}])
    assert got["images"][0]["imageManifest"] == busybox["manifest"]
    assert got["images"][0]["imageManifestMediaType"] == OCI_MANIFEST
    assert got["failures"] == [{"imageId": {"imageTag": "v2"}, "failureCode": "ImageNotFound",
                                "failureReason": "Requested image not found"}]
    # and back out of the registry, by tag and by digest
    skopeo.run("copy", "--src-tls-verify=false", f"docker://{uri}:v1", f"oci:{tmp_path / 'pulled'}:v1")
    pulled = json.loads((tmp_path / "pulled" / "index.json").read_text())
    assert pulled["manifests"][0]["digest"] == busybox["digest"]
    inspected = json.loads(skopeo.run("inspect", "--tls-verify=false", f"docker://{uri}@{busybox['digest']}").stdout)
    assert inspected["Digest"] == busybox["digest"]
    # the AWS CLI shows the same image
    cli = fargo.aws_json("ecr", "describe-images", "--repository-name", name, "--image-ids", "imageTag=latest")
    assert cli["imageDetails"][0]["imageDigest"] == busybox["digest"]


def test_batch_delete_image_by_tag_then_by_digest(ecr, skopeo: Skopeo, repository: dict, busybox: dict) -> None:  # noqa: ANN001
    name, uri = repository["repositoryName"], repository["repositoryUri"]
    skopeo.push(f"{uri}:v1")
    skopeo.push(f"{uri}:v2")
    out = ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "v1"}, {"imageTag": "gone"}])
    assert out["imageIds"] == [{"imageDigest": busybox["digest"], "imageTag": "v1"}]
    assert out["failures"] == [{"imageId": {"imageTag": "gone"}, "failureCode": "ImageNotFound",
                                "failureReason": "Requested image not found"}]
    assert skopeo.run("inspect", "--tls-verify=false", f"docker://{uri}:v1", check=False).returncode != 0
    skopeo.run("inspect", "--tls-verify=false", f"docker://{uri}:v2")
    out = ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": busybox["digest"]}])
    assert out["imageIds"] == [{"imageDigest": busybox["digest"], "imageTag": "v2"}]
    assert ecr.describe_images(repositoryName=name)["imageDetails"] == []
    failed = skopeo.run("inspect", "--tls-verify=false", f"docker://{uri}@{busybox['digest']}", check=False)
    assert failed.returncode != 0 and "manifest unknown" in failed.stderr


def test_an_immutable_repository_refuses_a_moved_tag_as_ecr_does(ecr, skopeo: Skopeo, busybox: dict) -> None:  # noqa: ANN001
    name = _name()
    uri = ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")["repository"]["repositoryUri"]
    try:
        skopeo.push(f"{uri}:v1")
        skopeo.push(f"{uri}:v1")  # the same manifest again is no change
        moved = skopeo.run("copy", "--format", "v2s2", "--dest-tls-verify=false", f"oci-archive:{BUSYBOX}",
                           f"docker://{uri}:v1", check=False)
        assert moved.returncode != 0
        assert (f"tag invalid: The image tag 'v1' already exists in the '{name}' repository and cannot be "
                "overwritten because the repository is immutable.") in moved.stderr
    finally:
        ecr.delete_repository(repositoryName=name, force=True)


# --- refusals ----------------------------------------------------------------------------------------


def test_an_anonymous_push_is_refused_with_ecrs_challenge(fargo: FargoProcess, repository: dict,
                                                          tmp_path: Path) -> None:
    anonymous = Skopeo(fargo, tmp_path)  # never logged in
    failed = anonymous.push(f"{repository['repositoryUri']}:v1", check=False)
    assert failed.returncode != 0 and "unauthorized" in failed.stderr.lower()
    status, headers, body = _v2(fargo, "/v2/")
    assert status == 401
    assert headers["WWW-Authenticate"] == (
        f'Basic realm="https://{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"')
    assert body == {"errors": [{"code": "UNAUTHORIZED", "message": "Not Authorized"}]}
    status, _, _ = _v2(fargo, f"/v2/{repository['repositoryName']}/blobs/uploads/", method="POST")
    assert status == 401


def test_forged_and_expired_tokens_are_refused(fargo: FargoProcess, ecr) -> None:  # noqa: ANN001
    from fargo.control.ecr.tokens import EcrTokens

    status, _, body = _v2(fargo, "/v2/", _basic("forged"))
    assert (status, body["errors"][0]["code"]) == (401, "UNAUTHORIZED")
    good = base64.b64decode(ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]).decode()
    assert _v2(fargo, "/v2/", "Basic " + base64.b64encode(good.encode()).decode())[0] == 200
    payload, _, signature = good.removeprefix("AWS:").partition(".")
    assert _v2(fargo, "/v2/", _basic(f"{payload}.{signature[::-1]}"))[0] == 401  # signature tampered with
    # a token the Fargo's own key signed 13 hours ago: expired an hour ago
    key = fargo.data_dir / "ecr" / "token.key"
    old = EcrTokens(key, now=lambda: time.time() - 13 * 3600).issue()
    status, headers, body = _v2(fargo, "/v2/", _basic(old.password))
    assert status == 401 and "WWW-Authenticate" in headers
    assert body["errors"][0]["message"] == "Your authorization token has expired. Reauthenticate and try again."


def test_a_push_to_a_repository_never_created_is_refused_as_ecr_does(skopeo: Skopeo) -> None:
    name = _name()
    failed = skopeo.push(f"{skopeo.host}/{name}:v1", check=False)
    assert failed.returncode != 0
    assert (f"name unknown: The repository with name '{name}' does not exist in the registry with id "
            f"'{ACCOUNT}'") in failed.stderr


# --- repositories and the API's errors ----------------------------------------------------------------


def test_create_and_describe_repositories_as_aws_shapes_them(fargo: FargoProcess, ecr) -> None:  # noqa: ANN001
    name = _name()
    made = fargo.aws_json("ecr", "create-repository", "--repository-name", name, "--tags", "Key=team,Value=web",
                          "--image-scanning-configuration", "scanOnPush=true")["repository"]
    try:
        assert made["repositoryArn"] == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}"
        assert (made["registryId"], made["imageTagMutability"]) == (ACCOUNT, "MUTABLE")
        assert made["imageScanningConfiguration"] == {"scanOnPush": True}
        assert made["encryptionConfiguration"] == {"encryptionType": "AES256"}
        described = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        assert described["repositoryUri"] == made["repositoryUri"] == f"127.0.0.1:{fargo.port}/{name}"
        assert ecr.list_tags_for_resource(resourceArn=made["repositoryArn"])["tags"] == [
            {"Key": "team", "Value": "web"}]
        ecr.untag_resource(resourceArn=made["repositoryArn"], tagKeys=["team"])
        ecr.tag_resource(resourceArn=made["repositoryArn"], tags=[{"Key": "tier", "Value": "1"}])
        assert ecr.list_tags_for_resource(resourceArn=made["repositoryArn"])["tags"] == [{"Key": "tier", "Value": "1"}]
        names = [r["repositoryName"] for page in ecr.get_paginator("describe_repositories").paginate(
            PaginationConfig={"PageSize": 1}) for r in page["repositories"]]
        assert name in names and len(names) == len(set(names))
        changed = ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
        assert changed["imageTagMutability"] == "IMMUTABLE"
    finally:
        ecr.delete_repository(repositoryName=name)


def test_delete_repository_needs_force_for_images_and_force_removes_them(fargo: FargoProcess, ecr,  # noqa: ANN001
                                                                          skopeo: Skopeo) -> None:
    name = _name("team/gone")
    uri = ecr.create_repository(repositoryName=name)["repository"]["repositoryUri"]
    skopeo.push(f"{uri}:v1")
    with pytest.raises(ClientError) as e:
        ecr.delete_repository(repositoryName=name)
    assert _error(e) == ("RepositoryNotEmptyException", f"The repository with name '{name}' in registry with id "
                         f"'{ACCOUNT}' cannot be deleted because it still contains images")
    deleted = ecr.delete_repository(repositoryName=name, force=True)["repository"]
    assert deleted["repositoryName"] == name
    storage = fargo.data_dir / "registry" / "data" / "docker" / "registry" / "v2" / "repositories" / name
    assert not storage.exists()
    # a repository of the same name starts empty, and the old tag is gone from the registry
    ecr.create_repository(repositoryName=name)
    try:
        assert ecr.describe_images(repositoryName=name)["imageDetails"] == []
        assert skopeo.run("inspect", "--tls-verify=false", f"docker://{uri}:v1", check=False).returncode != 0
    finally:
        ecr.delete_repository(repositoryName=name, force=True)
    empty = _name()
    ecr.create_repository(repositoryName=empty)
    assert ecr.delete_repository(repositoryName=empty)["repository"]["repositoryName"] == empty


def test_every_error_has_awss_code_and_text(fargo: FargoProcess, ecr, repository: dict) -> None:  # noqa: ANN001
    name, ghost = repository["repositoryName"], _name("ghost")
    missing = f"The repository with name '{ghost}' does not exist in the registry with id '{ACCOUNT}'"
    for call in (lambda: ecr.describe_repositories(repositoryNames=[ghost]),
                 lambda: ecr.delete_repository(repositoryName=ghost),
                 lambda: ecr.describe_images(repositoryName=ghost),
                 lambda: ecr.list_images(repositoryName=ghost),
                 lambda: ecr.batch_get_image(repositoryName=ghost, imageIds=[{"imageTag": "v1"}]),
                 lambda: ecr.batch_delete_image(repositoryName=ghost, imageIds=[{"imageTag": "v1"}]),
                 lambda: ecr.put_image_tag_mutability(repositoryName=ghost, imageTagMutability="MUTABLE"),
                 lambda: ecr.list_tags_for_resource(resourceArn=f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{ghost}")):
        with pytest.raises(ClientError) as e:
            call()
        assert _error(e) == ("RepositoryNotFoundException", missing)
    with pytest.raises(ClientError) as e:
        ecr.create_repository(repositoryName=name)
    assert _error(e) == ("RepositoryAlreadyExistsException",
                         f"The repository with name '{name}' already exists in the registry with id '{ACCOUNT}'")
    with pytest.raises(ClientError) as e:
        ecr.create_repository(repositoryName="Upper/Case")
    assert _error(e) == ("InvalidParameterException",
                         "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular "
                         "expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''")
    with pytest.raises(ClientError) as e:
        ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "nope"}])
    assert _error(e) == ("ImageNotFoundException", "The image with imageId {imageDigest:'null', imageTag:'nope'} "
                         f"does not exist within the repository with name '{name}' in the registry with id '{ACCOUNT}'")
    with pytest.raises(ClientError) as e:
        ecr.describe_repositories(registryId="123456789012")
    assert _error(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.tag_resource(resourceArn="not-an-arn", tags=[{"Key": "a", "Value": "b"}])
    assert _error(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.tag_resource(resourceArn=repository["repositoryArn"], tags=[{"Key": "aws:x", "Value": "b"}])
    assert _error(e)[0] == "InvalidTagParameterException"
    failed = fargo.aws_cli("ecr", "describe-repositories", "--repository-names", ghost, check=False)
    assert failed.returncode != 0 and "RepositoryNotFoundException" in failed.stderr and missing in failed.stderr


def test_get_authorization_token_has_ecrs_shape(fargo: FargoProcess, ecr) -> None:  # noqa: ANN001
    data = ecr.get_authorization_token()["authorizationData"]
    assert len(data) == 1
    user, _, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
    assert user == "AWS" and password
    assert data[0]["proxyEndpoint"] == fargo.endpoint
    left = data[0]["expiresAt"] - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(hours=11, minutes=59) < left <= datetime.timedelta(hours=12)
    cli = fargo.aws_json("ecr", "get-authorization-token")["authorizationData"][0]
    assert base64.b64decode(cli["authorizationToken"]).startswith(b"AWS:")
    assert fargo.aws_cli("ecr", "get-login-password").stdout.strip() != password  # each token is new


# --- the registry process -----------------------------------------------------------------------------


def _registry_pid(data_dir: Path) -> int | None:
    config = str(data_dir / "registry" / "config.yml").encode()
    for proc_dir in Path("/proc").iterdir():
        if proc_dir.name.isdigit():
            try:
                cmdline = (proc_dir / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if config in cmdline and cmdline[0].endswith(b"docker-registry"):
                return int(proc_dir.name)
    return None


def _wait_for(predicate, timeout: float = 20) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_registry_and_its_data_survive_a_restart_and_a_registry_that_dies_comes_back(
        fresh_fargo_dir: Path, busybox: dict) -> None:
    port = free_port()
    f = FargoProcess(fresh_fargo_dir, port).start()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            ecr = f.client("ecr")
            uri = ecr.create_repository(repositoryName="kept/app")["repository"]["repositoryUri"]
            skopeo = Skopeo(f, Path(tmp))
            skopeo.login()
            skopeo.push(f"{uri}:v1")
            first_pid = _registry_pid(fresh_fargo_dir)
            assert first_pid is not None
            os.kill(first_pid, signal.SIGKILL)  # supervised: started again
            _wait_for(lambda: _registry_pid(fresh_fargo_dir) not in (None, first_pid))
            _wait_for(lambda: skopeo.run("inspect", "--tls-verify=false", f"docker://{uri}:v1",
                                         check=False).returncode == 0)
        finally:
            assert f.stop() == 0, f.log_tail()
        assert _registry_pid(fresh_fargo_dir) is None  # it stopped with `fargo up`
        f = FargoProcess(fresh_fargo_dir, port).start()
        try:
            ecr = f.client("ecr")
            detail = ecr.describe_images(repositoryName="kept/app")["imageDetails"]
            assert [(d["imageDigest"], d["imageTags"]) for d in detail] == [(busybox["digest"], ["v1"])]
            # the token from before the restart still works (the key is kept), and the image is still there
            inspected = json.loads(skopeo.run("inspect", "--tls-verify=false", f"docker://{uri}:v1").stdout)
            assert inspected["Digest"] == busybox["digest"]
            skopeo.push(f"{uri}:v2")
            assert len(ecr.list_images(repositoryName="kept/app")["imageIds"]) == 2
        finally:
            f.stop(signal.SIGKILL)
        _wait_for(lambda: _registry_pid(fresh_fargo_dir) is None, timeout=10)  # it dies with Fargo, however it dies
