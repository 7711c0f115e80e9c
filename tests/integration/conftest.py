"""Shared integration fixtures: a private containerd for the session, a connected client, the busybox test image.

The client lives on an event loop in a background thread, so sync tests share it: `rt.run(coro)`.
Everything carries a test-unique namespace / cgroup prefix and is removed at the end of the session.
"""
from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from fargo.runtime.client import Containerd
from fargo.runtime.containerd_daemon import (
    ContainerdPaths,
    ensure_containerd,
    stop_containerd,
)
from fargo.network.vpc_router import VpcRouter
from fargo.runtime.test_image import write_oci_archive
from tests.integration.vpc_sandbox import VpcSandbox, free_vpc_cidr, leftovers

T = TypeVar("T")


class EventLoopThread:
    """An asyncio loop in a daemon thread; `run` executes a coroutine on it and returns its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-runtime-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class ContainerdRuntime:
    """A private containerd, a client on its own namespace, and where tests may put cgroups and files."""

    data_dir: Path
    paths: ContainerdPaths
    address: str
    namespace: str
    cgroup_parent: str  # e.g. /fargo-test-1a2b3c; use f"{cgroup_parent}/{container_id}"
    client: Containerd
    loop: EventLoopThread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return self.loop.run(coro, timeout)

    def unique_id(self, prefix: str = "c") -> str:
        return f"{prefix}-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class ImageUnderTest:
    name: str
    digest: str
    tar_path: Path


async def _remove_all_containers(client: Containerd) -> None:
    for container in await client.list_containers():
        info = await client.task_info(container.id)
        if info is not None and info.status != "stopped":
            await client.kill(container.id, 9, all=True)
            await client.wait(container.id)
        await client.delete_task(container.id)
        await client.delete_container(container.id)


def _remove_cgroup_parent(parent: str) -> None:
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        directory = hierarchy / parent.lstrip("/")
        if directory.is_dir():
            for child in sorted(directory.glob("**/"), key=lambda p: len(p.parts), reverse=True):
                try:
                    child.rmdir()
                except OSError:
                    pass


def _unmount_under(directory: Path) -> None:
    """Lazily unmount anything (overlay rootfs, snapshot views) left mounted below `directory`."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount_point in sorted((m for m in mounts if m.startswith(str(directory) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount_point], check=False, capture_output=True)


@pytest.fixture(scope="session")
def containerd_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerdRuntime]:
    """A containerd started for this session under a temp dir, with a connected client (namespace fargo-test-*)."""
    data_dir = tmp_path_factory.mktemp("ctrd")
    suffix = secrets.token_hex(4)
    namespace = f"fargo-test-{suffix}"
    paths = ContainerdPaths.for_data_dir(data_dir)
    loop = EventLoopThread()
    address = ensure_containerd(data_dir, None)
    client: Containerd | None = None
    try:
        client = loop.run(Containerd.connect(address, namespace, runc_root=paths.runc_root, state_dir=paths.state))
        yield ContainerdRuntime(data_dir, paths, address, namespace, f"/fargo-test-{suffix}", client, loop)
    finally:
        if client is not None:
            try:
                loop.run(_remove_all_containers(client), timeout=60)
            finally:
                loop.run(client.close())
        loop.close()
        stop_containerd(data_dir)
        _unmount_under(data_dir)
        _remove_cgroup_parent(f"/fargo-test-{suffix}")
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def test_image(containerd_runtime: ContainerdRuntime, tmp_path_factory: pytest.TempPathFactory) -> ImageUnderTest:
    """The project's busybox image (OCI layout), built and imported once per session."""
    tar_path = tmp_path_factory.mktemp("image") / "busybox-oci.tar"
    built = write_oci_archive(tar_path)
    images = containerd_runtime.run(containerd_runtime.client.import_image(tar_path))
    assert [image.digest for image in images] == [built.manifest_digest]
    return ImageUnderTest(built.name, built.manifest_digest, tar_path)


# --- VPC sandboxes (test_network.py, test_security_groups.py) -----------------------------------------

@pytest.fixture
def net() -> Iterator[VpcSandbox]:
    """Routers, ENIs and test hosts under a test-unique prefix; the test fails if any of it is left."""
    sandbox = VpcSandbox()
    try:
        yield sandbox
    finally:
        sandbox.close()
        assert leftovers(sandbox.prefix) == []


@pytest.fixture
def vpc(net: VpcSandbox) -> VpcRouter:
    return net.router(f"vpc-{net.prefix}", free_vpc_cidr())
