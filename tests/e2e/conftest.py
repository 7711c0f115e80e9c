"""Start `fargo up` as a subprocess on a free port with a throw-away data dir, and hand out AWS clients."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
FARGO = [sys.executable, "-m", "fargo.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FargoProcess:
    data_dir: Path
    port: int
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "FargoProcess":
        log = open(self.data_dir / "fargo-test.log", "ab")
        self.proc = subprocess.Popen(
            FARGO + ["up", "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fargo up exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/_fargo/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"fargo up did not become healthy:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log_tail(self, n: int = 60) -> str:
        path = self.data_dir / "fargo-test.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""

    def client(self, service: str):  # noqa: ANN201 - a boto3 client
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

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


def cleanup_data_dir(data_dir: Path) -> None:
    """Stop the private containerd a test Fargo started, then remove its data dir."""
    try:
        from fargo.runtime.containerd_daemon import stop_containerd
        stop_containerd(data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def fargo() -> Iterator[FargoProcess]:
    """One Fargo shared by the tests that do not restart it."""
    data_dir = Path(tempfile.mkdtemp(prefix="fargo-e2e-"))
    proc = FargoProcess(data_dir, free_port())
    try:
        yield proc.start()
    finally:
        proc.stop()
        cleanup_data_dir(data_dir)


@pytest.fixture
def fresh_fargo_dir() -> Iterator[Path]:
    data_dir = Path(tempfile.mkdtemp(prefix="fargo-e2e-"))
    try:
        yield data_dir
    finally:
        cleanup_data_dir(data_dir)


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
