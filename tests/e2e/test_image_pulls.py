"""Image pulls as Fargate 1.4.0 makes them, on real tasks through boto3, the AWS CLI and skopeo: from Fargo's own
ECR (reached from a private subnet through the VPC endpoint), from a private registry with htpasswd auth
through repositoryCredentials and NAT, with Fargate's exact CannotPullContainerError texts, one download
shared by tasks, the digest that ran in DescribeTasks, and a stop that ends a pull at once.

The private registry is Debian's docker-registry in a network namespace of the test's (tests/registry_sandbox):
it stands for a registry on the internet, so only a task with a public IP reaches it on 1.4.0.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fargo.network.netns import socket_in_netns
from fargo.runtime.test_image import write_layered_archive, write_multi_platform_archive
from tests.e2e.conftest import SHARED_PREFIX, FargoProcess, wait_for_task
from tests.e2e.test_tasks import NETWORK, REPO, host_leftovers, logs, register
from tests.registry_sandbox import RegistrySandbox, sandbox_address

ROLE = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"
IMAGE_TAR = REPO / "build" / "busybox.tar"
PUBLIC = {"awsvpcConfiguration": {**NETWORK["awsvpcConfiguration"], "assignPublicIp": "ENABLED"}}
USER, PASSWORD = "puller", "pull-" + uuid.uuid4().hex[:10]
# Where the shared Fargo is told (conftest: FARGO_INSECURE_REGISTRIES) that plain HTTP is fine.
SANDBOX_TAG = f"{SHARED_PREFIX}1"
SLOW_PORT = 5001  # in the sandbox: accepts connections and never answers


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistrySandbox]:
    """The sandbox registry with private/busybox:v1 (content of its own: one extra layer no other image has,
    so what a pull fetches can be counted), a multi-platform index, and an index with arm64 only."""
    assert sandbox_address(SANDBOX_TAG)[1] in os.environ["FARGO_INSECURE_REGISTRIES"]
    layouts = tmp_path_factory.mktemp("layouts")
    with RegistrySandbox(SANDBOX_TAG, {USER: PASSWORD}) as sandbox:
        write_layered_archive(layouts / "own", "private/busybox:v1", [65536], seed=uuid.uuid4().int % 2**32)
        sandbox.digest = sandbox.push(f"oci-archive:{layouts / 'own'}", "private/busybox", "v1")
        multi, _ = write_multi_platform_archive(layouts / "multi", "private/multi:v1")
        sandbox.push(f"oci-archive:{layouts / 'multi'}", "private/multi", "v1", all_platforms=True)
        sandbox.multi_digest = multi.manifest_digest
        write_multi_platform_archive(layouts / "arm", "private/arm:v1", architectures=("arm64",))
        sandbox.push(f"oci-archive:{layouts / 'arm'}", "private/arm", "v1", all_platforms=True)
        yield sandbox


@pytest.fixture(scope="module")
def credentials(runner_fargo: FargoProcess) -> str:
    secret = runner_fargo.client("secretsmanager").create_secret(
        Name=f"registry-{uuid.uuid4().hex[:6]}", SecretString=json.dumps({"username": USER, "password": PASSWORD}))
    return secret["ARN"]


def _run(ecs, td: str, network: dict = NETWORK, **extra) -> dict:  # noqa: ANN001, ANN003
    out = ecs.run_task(taskDefinition=td, launchType="FARGATE", networkConfiguration=network, **extra)
    assert out["failures"] == []
    return out["tasks"][0]


def _stopped(f: FargoProcess, td: str, timeout: float = 90, **extra) -> tuple[dict, str]:  # noqa: ANN003
    ecs = f.client("ecs")
    task = wait_for_task(ecs, _run(ecs, td, **extra)["taskArn"], "STOPPED", timeout)
    return task, logs(f, task["taskArn"])


def _blob_gets(sandbox: RegistrySandbox) -> int:
    return (sandbox.dir / "registry.log").read_text(errors="replace").count("/blobs/sha256:")


def test_push_to_fargos_ecr_with_skopeo_and_run_from_a_private_subnet(runner_fargo: FargoProcess,
                                                                       tmp_path: Path) -> None:
    name = f"team/app-{uuid.uuid4().hex[:6]}"
    repo = runner_fargo.aws_json("ecr", "create-repository", "--repository-name", name)["repository"]
    uri = repo["repositoryUri"]
    password = runner_fargo.aws_cli("ecr", "get-login-password").stdout.strip()
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "REGISTRY_AUTH_FILE": str(tmp_path / "a.json")}
    subprocess.run(["skopeo", "login", "--tls-verify=false", "-u", "AWS", "--password-stdin", uri.split("/")[0]],
                   input=password, text=True, check=True, capture_output=True, env=env)
    digest_file = tmp_path / "digest"
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--digestfile", str(digest_file),
                    f"oci-archive:{IMAGE_TAR}", f"docker://{uri}:v1"], check=True, capture_output=True, env=env)
    digest = digest_file.read_text().strip()
    ecs = runner_fargo.client("ecs")
    # By repositoryUri, and by the ECR host name a task definition written for AWS would use.
    for image in (f"{uri}:v1", f"000000000000.dkr.ecr.us-east-1.amazonaws.com/{name}:v1"):
        td = register(ecs, "from-ecr", {"name": "app", "image": image, "command": ["echo", "pulled"]},
                      executionRoleArn=ROLE)
        task, output = _stopped(runner_fargo, td)
        assert task["containers"][0].get("exitCode") == 0, task.get("stoppedReason")
        assert output.strip() == "pulled"
        assert task["containers"][0]["imageDigest"] == digest
        assert task["pullStartedAt"] <= task["pullStoppedAt"]
        assert host_leftovers(task["taskArn"].rsplit("/", 1)[-1]) == []


def test_an_anonymous_push_to_fargos_ecr_is_refused(runner_fargo: FargoProcess, tmp_path: Path) -> None:
    name = f"anon-{uuid.uuid4().hex[:6]}"
    uri = runner_fargo.client("ecr").create_repository(repositoryName=name)["repository"]["repositoryUri"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "REGISTRY_AUTH_FILE": str(tmp_path / "a.json")}
    proc = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci-archive:{IMAGE_TAR}",
                           f"docker://{uri}:v1"], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "unauthorized" in proc.stderr.lower()


def test_a_private_registry_through_repository_credentials_and_nat(runner_fargo: FargoProcess,
                                                                    registry: RegistrySandbox, credentials: str) -> None:
    ecs = runner_fargo.client("ecs")
    image = f"{registry.address}/private/busybox:v1"
    td = register(ecs, "private-registry", {"name": "app", "image": image, "command": ["echo", "private"],
                                            "repositoryCredentials": {"credentialsParameter": credentials}},
                  executionRoleArn=ROLE)
    before = _blob_gets(registry)
    task, output = _stopped(runner_fargo, td, network=PUBLIC)
    assert task["containers"][0].get("exitCode") == 0, task.get("stoppedReason")
    assert output.strip() == "private" and task["containers"][0]["imageDigest"] == registry.digest
    fetched = _blob_gets(registry) - before
    assert fetched > 0
    # The second task of the image finds it in the cache: the tag is resolved again, no blob is fetched.
    task, output = _stopped(runner_fargo, td, network=PUBLIC)
    assert output.strip() == "private" and _blob_gets(registry) - before == fetched
    # By digest: the same image; its content is cached, so again no blob is fetched.
    td = register(ecs, "private-by-digest", {"name": "app", "image": f"{registry.address}/private/busybox@"
                                             f"{registry.digest}", "command": ["echo", "pinned"],
                                             "repositoryCredentials": {"credentialsParameter": credentials}},
                  executionRoleArn=ROLE)
    task, output = _stopped(runner_fargo, td, network=PUBLIC)
    assert output.strip() == "pinned" and task["containers"][0]["imageDigest"] == registry.digest
    assert _blob_gets(registry) - before == fetched


def test_an_image_index_is_resolved_to_linux_amd64(runner_fargo: FargoProcess, registry: RegistrySandbox,
                                                   credentials: str) -> None:
    ecs = runner_fargo.client("ecs")
    auth = {"repositoryCredentials": {"credentialsParameter": credentials}}
    image = f"{registry.address}/private/multi:v1"
    td = register(ecs, "multi-platform", {"name": "app", "image": image, "command": ["echo", "multi"], **auth},
                  executionRoleArn=ROLE)
    task, output = _stopped(runner_fargo, td, network=PUBLIC)
    assert output.strip() == "multi" and task["containers"][0]["imageDigest"] == registry.multi_digest
    image = f"{registry.address}/private/arm:v1"
    td = register(ecs, "arm-only", {"name": "app", "image": image, "command": ["true"], **auth}, executionRoleArn=ROLE)
    task, _ = _stopped(runner_fargo, td, network=PUBLIC)
    assert task["stoppedReason"] == ("CannotPullContainerError: pull image manifest has been retried 1 time(s): "
                                     "image Manifest does not contain descriptor matching platform 'linux/amd64'.")


def test_concurrent_tasks_of_one_image_share_one_download(runner_fargo: FargoProcess, registry: RegistrySandbox,
                                                          credentials: str, tmp_path: Path) -> None:
    write_layered_archive(tmp_path / "shared", "private/shared:v1", [65536], seed=uuid.uuid4().int % 2**32)
    digest = registry.push(f"oci-archive:{tmp_path / 'shared'}", "private/shared", "v1")
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "shared-pull", {"name": "app", "image": f"{registry.address}/private/shared:v1",
                                       "command": ["true"],
                                       "repositoryCredentials": {"credentialsParameter": credentials}},
                  executionRoleArn=ROLE)
    before = _blob_gets(registry)
    out = ecs.run_task(taskDefinition=td, launchType="FARGATE", networkConfiguration=PUBLIC, count=3)
    tasks = [wait_for_task(ecs, t["taskArn"], "STOPPED", 90) for t in out["tasks"]]
    assert {t["containers"][0].get("exitCode") for t in tasks} == {0}
    assert {t["containers"][0]["imageDigest"] for t in tasks} == {digest}
    # Its config and two layers (busybox's may be cached already) were fetched once for the three tasks.
    assert 2 <= _blob_gets(registry) - before <= 3


def test_a_subnet_with_no_way_out_cannot_reach_an_internet_registry(runner_fargo: FargoProcess,
                                                                     registry: RegistrySandbox, credentials: str) -> None:
    ecs = runner_fargo.client("ecs")
    image = f"{registry.address}/private/busybox:v1"
    td = register(ecs, "no-way-out", {"name": "app", "image": image, "command": ["true"],
                                      "repositoryCredentials": {"credentialsParameter": credentials}},
                  executionRoleArn=ROLE)
    task, _ = _stopped(runner_fargo, td)  # assignPublicIp DISABLED, no NAT gateway
    attempts = int(os.environ["FARGO_PULL_ATTEMPTS"])
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"] == (
        f"CannotPullContainerError: pull image manifest has been retried {attempts} time(s): failed to resolve ref "
        f"{image}: failed to do request: Head \"http://{registry.address}/v2/private/busybox/manifests/v1\": "
        f"dial tcp {registry.address}: i/o timeout")
    assert host_leftovers(task["taskArn"].rsplit("/", 1)[-1]) == []
    # 1.3.0 pulled from the host, not the task ENI: the same subnet reaches the registry.
    task, output = _stopped(runner_fargo, td, platformVersion="1.3.0")
    assert output.strip() == "" and task["containers"][0].get("exitCode") == 0, task.get("stoppedReason")


def test_pull_failures_give_fargates_texts(runner_fargo: FargoProcess, registry: RegistrySandbox,
                                           credentials: str) -> None:
    ecs = runner_fargo.client("ecs")
    missing = f"{registry.address}/private/busybox:nope"
    td = register(ecs, "pull-missing", {"name": "app", "image": missing, "command": ["true"],
                                        "repositoryCredentials": {"credentialsParameter": credentials}},
                  executionRoleArn=ROLE)
    task, _ = _stopped(runner_fargo, td, network=PUBLIC)
    assert task["stoppedReason"] == (f"CannotPullContainerError: pull image manifest has been retried 1 time(s): "
                                     f"failed to resolve ref {missing}: {missing}: not found")
    # 1.3.0 pulled with Docker, and says what Docker's daemon says.
    task, _ = _stopped(runner_fargo, td, platformVersion="1.3.0")
    assert task["stoppedReason"] == (f"CannotPullContainerError: Error response from daemon: manifest for {missing} "
                                     "not found: manifest unknown: manifest unknown")
    wrong = runner_fargo.client("secretsmanager").create_secret(
        Name=f"wrong-{uuid.uuid4().hex[:6]}", SecretString=json.dumps({"username": USER, "password": "wrong"}))
    image = f"{registry.address}/private/busybox:v1"
    td = register(ecs, "pull-refused", {"name": "app", "image": image, "command": ["true"],
                                        "repositoryCredentials": {"credentialsParameter": wrong["ARN"]}},
                  executionRoleArn=ROLE)
    task, _ = _stopped(runner_fargo, td, network=PUBLIC)
    assert task["stoppedReason"].startswith(
        f"CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {image}: "
        "pull access denied, repository does not exist or may require authorization: server message: ")
    # Registry credentials that are not a {"username", "password"} document.
    bad = runner_fargo.client("secretsmanager").create_secret(Name=f"bad-{uuid.uuid4().hex[:6]}", SecretString="x")
    td = register(ecs, "pull-bad-creds", {"name": "app", "image": image, "command": ["true"],
                                          "repositoryCredentials": {"credentialsParameter": bad["ARN"]}},
                  executionRoleArn=ROLE)
    task, _ = _stopped(runner_fargo, td, network=PUBLIC)
    assert task["stoppedReason"] == (
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "
        "unable to get registry auth from asm: service call has been retried 1 time(s): asm fetching authorization "
        "data: unable to unmarshal secret value, invalid schema")


def test_a_task_stopped_during_a_pull_stops_at_once(runner_fargo: FargoProcess, registry: RegistrySandbox) -> None:
    listener = socket_in_netns(f"/run/netns/{registry.netns}", socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((registry.ip, SLOW_PORT))
    listener.listen(16)
    held: list[socket.socket] = []

    def hold() -> None:  # accept, and never answer
        with contextlib.suppress(OSError):  # the listener is closed when the test ends
            while True:
                held.append(listener.accept()[0])

    threading.Thread(target=hold, daemon=True).start()
    try:
        ecs = runner_fargo.client("ecs")
        td = register(ecs, "pull-stopped", {"name": "app", "image": f"{registry.ip}:{SLOW_PORT}/slow/image:1",
                                            "command": ["true"]})
        arn = _run(ecs, td, network=PUBLIC)["taskArn"]
        wait_for_task(ecs, arn, "PENDING", 30)
        time.sleep(0.5)
        asked = time.monotonic()
        ecs.stop_task(task=arn, reason="changed my mind")
        task = wait_for_task(ecs, arn, "STOPPED", 30)
        assert time.monotonic() - asked < 5
        assert task["stopCode"] == "UserInitiated" and task["stoppedReason"] == "changed my mind"
        assert host_leftovers(arn.rsplit("/", 1)[-1]) == []
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept of `hold`
        listener.close()
        for conn in held:
            conn.close()


def test_fargo_image_pull_shows_progress_and_the_cache_is_managed(runner_fargo: FargoProcess,
                                                                  registry: RegistrySandbox) -> None:
    fargo = [str(REPO / ".venv" / "bin" / "fargo")]
    ref = f"{registry.address}/private/busybox:v1"
    auth = ["--username", USER, "--password-stdin"]
    pulled = subprocess.run([*fargo, "image", "pull", ref, *auth, "--endpoint", runner_fargo.endpoint],
                            input=PASSWORD, capture_output=True, text=True, cwd=REPO)
    assert pulled.returncode == 0, pulled.stderr
    assert registry.digest in pulled.stdout
    listed = subprocess.run([*fargo, "image", "ls", "--endpoint", runner_fargo.endpoint], capture_output=True,
                            text=True, check=True).stdout
    assert ref in listed
    removed = subprocess.run([*fargo, "image", "rm", ref, "--endpoint", runner_fargo.endpoint], capture_output=True,
                             text=True)
    assert removed.returncode == 0, removed.stderr
    listed = subprocess.run([*fargo, "image", "ls", "--endpoint", runner_fargo.endpoint], capture_output=True,
                            text=True, check=True).stdout
    assert ref not in listed
