"""Fakes for the task engine's tests: a container runtime and hooks. The runtime is the one fake here, since
the real containerd is tested in tests/integration; everything above it (runner, hooks' order, reports) is
the real engine.
"""
from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fargo.agent.hooks.base import ContainerRun, ContainerSpecContribution, HookPhase, TaskCannotStart, TaskHook
from fargo.protocol.messages import EniPlan, TaskAssignment, TaskReport
from fargo.runtime.errors import ContainerAlreadyExists, ContainerdUnavailable, ContainerNotFound
from fargo.runtime.records import ExitStatus, ImageConfig, TaskInfo

TASK_ARN = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef"


@dataclass
class FakeContainer:
    spec: dict[str, Any]
    running: bool = False
    exit_code: int | None = None
    task: bool = False
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    ignores_sigterm: bool = False


class FakeRuntime:
    """containerd as the engine sees it: containers, their one task each, signals, exits, and outages."""

    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.up = asyncio.Event()
        self.up.set()
        self.calls: list[str] = []
        self.fail_start: str | None = None  # a message Tasks.Start fails with
        self.hang_create = False

    def _check(self, what: str) -> None:
        self.calls.append(what)
        if not self.up.is_set():
            raise ContainerdUnavailable("containerd is down")

    def go_down(self) -> None:
        self.up.clear()

    def come_back(self) -> None:
        self.up.set()

    async def version(self) -> str:
        self._check("version")
        return "fake"

    async def image_config(self, ref: str) -> ImageConfig:
        self._check("image_config")
        return ImageConfig(digest="sha256:" + "0" * 64, entrypoint=[], cmd=["sh"], env=[], working_dir="/", user="")

    async def image_users(self, ref: str) -> Any:
        return None

    async def create_container(self, cid: str, image: str, spec: dict, labels: dict,
                               rootfs_parent: str | None = None) -> None:
        self._check("create")
        if self.hang_create:
            await asyncio.Event().wait()
        if cid in self.containers:
            raise ContainerAlreadyExists(f"container {cid} exists")
        self.containers[cid] = FakeContainer(spec)

    async def delete_container(self, cid: str) -> None:
        self._check("delete_container")
        self.containers.pop(cid, None)

    async def start_task(self, cid: str, stdout: Path | None, stderr: Path | None,
                         writable_dir: Path | None = None) -> int:
        self._check("start")
        if self.fail_start:
            raise ContainerNotFound(self.fail_start)
        c = self.containers[cid]
        c.task, c.running = True, True
        return 4242

    def exit(self, cid: str, code: int) -> None:
        c = self.containers[cid]
        if c.running:
            c.running, c.exit_code = False, code
            c.exited.set()

    async def wait(self, cid: str) -> ExitStatus:
        self._check("wait")
        c = self.containers.get(cid)
        if c is None or not c.task:
            raise ContainerNotFound(f"no task for {cid}")
        down = asyncio.ensure_future(self._until_down())
        exited = asyncio.ensure_future(c.exited.wait())
        await asyncio.wait([down, exited], return_when=asyncio.FIRST_COMPLETED)
        down.cancel()
        exited.cancel()
        if not c.exited.is_set():
            raise ContainerdUnavailable("containerd went away")
        return ExitStatus(c.exit_code or 0, None)

    async def _until_down(self) -> None:
        while self.up.is_set():
            await asyncio.sleep(0.005)

    async def kill(self, cid: str, sig: int, all: bool = False) -> bool:
        self._check(f"kill {sig}")
        c = self.containers.get(cid)
        if c is None or not c.running:
            return False
        if sig == signal.SIGKILL:
            self.exit(cid, 137)
        elif not c.ignores_sigterm:
            self.exit(cid, 143)
        return True

    async def delete_task(self, cid: str) -> ExitStatus | None:
        self._check("delete_task")
        c = self.containers.get(cid)
        if c is None or not c.task or c.running:
            return None
        c.task = False
        return ExitStatus(c.exit_code or 0, None)

    async def task_info(self, cid: str) -> TaskInfo | None:
        self._check("task_info")
        c = self.containers.get(cid)
        if c is None or not c.task:
            return None
        if c.running:
            return TaskInfo(status="running", pid=4242, exit_status=None)
        return TaskInfo(status="stopped", pid=0, exit_status=ExitStatus(c.exit_code or 0, None))

    async def events(self) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield None


class FakeNetworks:
    """The engine tests use recording hooks, never the ENI hook: nothing here is called."""

    async def attach(self, task_id: str, eni: Any, mtu: int) -> None:
        raise AssertionError("the engine tests do not make ENIs")

    async def detach(self, task_id: str, eni: Any) -> None:
        raise AssertionError("the engine tests do not make ENIs")


class FakeHost:
    def __init__(self, runtime: FakeRuntime, root: Path) -> None:
        self.runtime = runtime
        self.region = "us-east-1"
        self.network_prefix = "fgtest"
        self.networks = FakeNetworks()
        self.root = root
        self.data_dir = root
        self.efs_root = root / "efs"

    def task_dir(self, task_id: str) -> Path:
        return self.root / task_id

    def log_path(self, task_id: str, container_name: str) -> Path:
        return self.root / task_id / f"{container_name}.log"

    async def containerd_back(self) -> None:
        await self.runtime.up.wait()

    def oom_seen(self, runtime_id: str) -> bool:
        return False


class RecordingHook(TaskHook):
    """Records every call in a shared journal; can refuse to start or fail to stop a number of times."""

    def __init__(self, host: Any, name: str, journal: list[str], phase: HookPhase = HookPhase.PROVISIONING,
                 refuse: str | None = None, stop_failures: int = 0, prestart_error: Exception | None = None) -> None:
        super().__init__(host)
        self.name, self.phase, self.journal = name, phase, journal
        self.refuse, self.stop_failures, self.prestart_error = refuse, stop_failures, prestart_error
        self.made = False
        self.gate: asyncio.Event | None = None  # prestart waits for it when set

    async def prestart(self, task: Any) -> None:
        self.journal.append(f"{self.name}.prestart")
        if self.gate is not None:
            await self.gate.wait()
        if self.prestart_error is not None:
            raise self.prestart_error
        if self.refuse:
            raise TaskCannotStart(self.refuse)
        self.made = True

    def contribute(self, task: Any, container: ContainerRun, spec: ContainerSpecContribution) -> None:
        spec.environment[f"FROM_{self.name.upper()}"] = "1"

    async def poststart(self, task: Any) -> None:
        self.journal.append(f"{self.name}.poststart")

    async def stop(self, task: Any) -> None:
        self.journal.append(f"{self.name}.stop")
        if self.stop_failures > 0:
            self.stop_failures -= 1
            raise OSError(f"{self.name} could not undo its work")
        self.made = False


class ImageFake(TaskHook):
    """The image hook's job (an image config per container), without containerd's image store."""

    name = "image"
    phase = HookPhase.PENDING

    async def prestart(self, task: Any) -> None:
        for c in task.containers.values():
            c.image = await self.host.runtime.image_config(c.definition["image"])
            c.image_digest = c.image.digest


def assignment(containers: list[dict] | None = None, generation: int = 1, desired: str = "RUNNING",
               platform: str = "1.4.0") -> TaskAssignment:
    defs = containers or [{"name": "app", "image": "busybox", "essential": True}]
    return TaskAssignment(
        task_arn=TASK_ARN, cluster_arn="arn:aws:ecs:us-east-1:000000000000:cluster/default", generation=generation,
        desired_status=desired, platform_version=platform,
        task_definition={"family": "f", "containerDefinitions": defs, "cpu": "256", "memory": "512"},
        overrides={}, cpu_units=256, memory_mib=512,
        eni=EniPlan("att-1", "eni-1", "subnet-1", "10.213.0.0/20", "us-east-1a", "10.213.0.4", "02:00:00:00:00:01",
                    "ip-10-213-0-4.ec2.internal"),
        created_at=1.0)


class Reports:
    """What the runner reported, in order."""

    def __init__(self) -> None:
        self.all: list[TaskReport] = []

    def __call__(self, report: TaskReport) -> None:
        self.all.append(report)

    @property
    def statuses(self) -> list[str]:
        out: list[str] = []
        for r in self.all:
            if not out or out[-1] != r.known_status:
                out.append(r.known_status)
        return out

    @property
    def last(self) -> TaskReport:
        return self.all[-1]

    async def until(self, status: str, timeout: float = 5) -> TaskReport:
        async def poll() -> TaskReport:
            while True:
                for r in self.all:
                    if r.known_status == status:
                        return r
                await asyncio.sleep(0.002)
        return await asyncio.wait_for(poll(), timeout)
