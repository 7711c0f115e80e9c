"""Start `fargo up` as a subprocess on a free port with a throw-away data dir, and hand out AWS clients."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fargo_process import FARGO, REPO, discard_data_dir, free_port
from tests.fargo_process import FargoProcess as BaseFargoProcess
from tests.registry_sandbox import sandbox_address


# The shared Fargo keeps the default network prefix; every other Fargo a test starts runs beside it, and two
# Fargos on one host need their own prefixes (their VPC routers, resolvers and filters are named by it).
# FARGO_TEST_NETWORK_PREFIX lets two test runs share a host (each with its own prefix).
SHARED_PREFIX = os.environ.get("FARGO_TEST_NETWORK_PREFIX", "fg")
OWN_PREFIX = SHARED_PREFIX + "x"
# An EFS mount that security groups block fails after efs-utils' 3 attempts; 0.2 s each instead of 15 s
# keeps those tests short (every `fargo up` the tests start inherits this).
os.environ.setdefault("FARGO_EFS_MOUNT_ATTEMPT_SECONDS", "0.2")
# A pull or a secrets call that cannot get through gives up after 2 attempts of 1 s (Fargate: 5 of longer).
os.environ.setdefault("FARGO_PULL_ATTEMPTS", "2")
os.environ.setdefault("FARGO_PULL_TIMEOUT_SECONDS", "1")
# Services settle fast: a task with no health check counts as healthy 1 s after RUNNING (Fargate: 40 s), and
# the scheduler looks every 0.5 s besides being woken by stops and API calls.
os.environ.setdefault("FARGO_SERVICE_HEALTHY_AFTER_SECONDS", "1")
os.environ.setdefault("FARGO_SCHEDULER_INTERVAL_SECONDS", "0.5")
# The test registry (tests/registry_sandbox.py) speaks plain HTTP: the operator's list says so, as it must.
os.environ.setdefault("FARGO_INSECURE_REGISTRIES", sandbox_address(f"{SHARED_PREFIX}1")[1])


class FargoProcess(BaseFargoProcess):
    """A test's `fargo up`, with the AWS CLI beside boto3."""

    def __init__(self, data_dir: Path, port: int | None = None, extra_args: list[str] | None = None,
                 network_prefix: str = OWN_PREFIX, **kwargs: object) -> None:
        args = list(extra_args or [])
        if "--network-prefix" not in args:
            args += ["--network-prefix", network_prefix]
        super().__init__(data_dir, port, args, **kwargs)  # type: ignore[arg-type]
        self.network_prefix = network_prefix

    def aws_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, AWS_ENDPOINT_URL=self.endpoint, AWS_ACCESS_KEY_ID="test",
                   AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
        proc = subprocess.run([str(Path(sys.executable).parent / "aws"), *args, "--output", "json"],
                              capture_output=True, text=True, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {proc.stderr}")
        return proc

    def aws_json(self, *args: str) -> dict:
        return json.loads(self.aws_cli(*args).stdout or "{}")


@pytest.fixture(scope="session")
def fargo() -> Iterator[FargoProcess]:
    """One Fargo shared by the tests that do not restart it."""
    data_dir = Path(tempfile.mkdtemp(prefix="fargo-e2e-"))
    proc = FargoProcess(data_dir, free_port(), network_prefix=SHARED_PREFIX)
    try:
        yield proc.start()
    finally:
        proc.stop(signal.SIGKILL)  # the clean-up below kills whatever a failed test left running
        discard_data_dir(data_dir)


@pytest.fixture
def fresh_fargo_dir() -> Iterator[Path]:
    data_dir = Path(tempfile.mkdtemp(prefix="fargo-e2e-"))
    try:
        yield data_dir
    finally:
        discard_data_dir(data_dir)


@pytest.fixture
def ecs(fargo: FargoProcess):  # noqa: ANN201
    return fargo.client("ecs")


@pytest.fixture
def ec2(fargo: FargoProcess):  # noqa: ANN201
    return fargo.client("ec2")


TEST_IMAGE = "fargo.local/busybox:latest"


def import_test_image(f: FargoProcess) -> None:
    """Build the busybox test image (from Debian's busybox-static) and load it with `fargo image import`."""
    tar = REPO / "build" / "busybox.tar"
    if not tar.exists():
        tar.parent.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "fargo.runtime.test_image", str(tar)], check=True, cwd=REPO)
    subprocess.run(FARGO + ["image", "import", str(tar), "--endpoint", f.endpoint], check=True, cwd=REPO,
                   capture_output=True)


@pytest.fixture(scope="session")
def runner_fargo(fargo: FargoProcess) -> FargoProcess:
    """The shared Fargo, with the test image imported and the default cluster created."""
    import_test_image(fargo)
    fargo.client("ecs").create_cluster()
    return fargo


def wait_for_task(ecs, task_arn: str, status: str, timeout: float = 60, cluster: str = "default") -> dict:  # noqa: ANN001
    """Poll DescribeTasks until lastStatus is `status` (or STOPPED, which is final)."""
    deadline = time.monotonic() + timeout
    task: dict = {}
    while time.monotonic() < deadline:
        task = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
        if task["lastStatus"] == status or task["lastStatus"] == "STOPPED":
            return task
        time.sleep(0.05)
    raise AssertionError(f"task did not reach {status} in {timeout}s; last seen: {task.get('lastStatus')}")
