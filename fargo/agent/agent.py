"""The agent: runs every task assigned to this host, one TaskRunner each, inside one TaskGroup.

On start it reconciles: tasks the store says are not STOPPED are resumed from what containerd still
has, and anything of Fargo's on the host that no task owns (containers, ENIs, cgroups) is removed.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from fargo.agent.task_cgroup import list_task_cgroups, oom_kills, remove_task_cgroup
from fargo.agent.task_runner import TaskRunner
from fargo.control.tasks import Tasks, task_id_of
from fargo.network.host_routes import ensure_vpc_guard
from fargo.network.subnet_bridge import ensure_subnet_bridge
from fargo.network.task_eni import delete_task_eni_async, list_task_enis_async
from fargo.runtime.client import Containerd
from fargo.runtime.containerd_daemon import ensure_containerd
from fargo.runtime.errors import ContainerRuntimeError
from fargo.runtime.records import TaskOomKilled

log = logging.getLogger(__name__)
PURGE_EVERY_SECONDS = 60


@dataclass(frozen=True)
class AgentSettings:
    data_dir: Path
    region: str
    vpc_cidr: str
    network_prefix: str = "fg"
    containerd_address: str | None = None  # None: Fargo's own containerd under data_dir, restarted if it dies
    # How long containerd may take to create / start a container before the task fails with the
    # platform's runtime timeout error (the Fargate agent's figures: 4 and 3 minutes).
    create_timeout: float = float(os.environ.get("FARGO_CONTAINER_CREATE_TIMEOUT", 240))
    start_timeout: float = float(os.environ.get("FARGO_CONTAINER_START_TIMEOUT", 180))


class Agent:
    def __init__(self, tasks: Tasks, runtime: Containerd, settings: AgentSettings) -> None:
        self.tasks = tasks
        self.runtime = runtime
        self.settings = settings
        self.region = settings.region
        self.runners: dict[str, TaskRunner] = {}
        self.ready = False
        self._oom: set[str] = set()
        self._subnets_ready: set[str] = set()
        self._group: asyncio.TaskGroup | None = None
        self._main: asyncio.Task | None = None
        self._started = asyncio.Event()
        self._backlog: list[tuple[dict, bool]] = []
        self._recovering: asyncio.Lock = asyncio.Lock()

    # --- the link the control plane uses ----------------------------------------------------------

    def launch(self, task: dict) -> None:
        self._spawn(task, resume=False)

    def request_stop(self, task: dict) -> None:
        runner = self.runners.get(task_id_of(task))
        if runner is not None:
            runner.notify()

    # --- life of the agent ------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(ensure_vpc_guard, self.settings.vpc_cidr)
        self._main = asyncio.ensure_future(self._run())
        await self._started.wait()
        await self._reconcile()
        self.ready = True

    async def close(self) -> None:
        """Stop driving tasks; they keep running in containerd and are resumed by the next agent."""
        if self._main is not None:
            self._main.cancel()
            try:
                await self._main
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            group.create_task(self._watch_events())
            group.create_task(self._purge_stopped())
            for task, resume in self._backlog:
                self._spawn(task, resume)
            self._started.set()
            await asyncio.Event().wait()  # runs until close() cancels it

    def _spawn(self, task: dict, resume: bool) -> None:
        if self._group is None:
            self._backlog.append((task, resume))
            return
        runner = TaskRunner(self, task)
        self.runners[runner.task_id] = runner
        self._group.create_task(self._drive(runner, resume))

    async def _drive(self, runner: TaskRunner, resume: bool) -> None:
        try:
            await runner.run(resume)
        except asyncio.CancelledError:
            raise
        except Exception:  # one task's failure must never cancel its siblings
            log.exception("runner of task %s crashed", runner.task_id)
        finally:
            self.runners.pop(runner.task_id, None)

    def track(self, work: asyncio.Future) -> None:
        """Helper coroutines (container watchers, health checks) are owned by the agent's group."""
        if self._group is not None:
            async def owned() -> None:
                try:
                    await work
                except asyncio.CancelledError:
                    if not work.cancelled():
                        work.cancel()
                    raise
                except Exception:  # noqa: BLE001 - logged by the owner
                    log.debug("tracked work ended with an error", exc_info=True)
            self._group.create_task(owned())

    # --- host facts -------------------------------------------------------------------------------

    async def ensure_subnet(self, subnet_id: str, cidr: str) -> None:
        if subnet_id not in self._subnets_ready:
            await asyncio.to_thread(ensure_subnet_bridge, subnet_id, cidr, 9001, prefix=self.settings.network_prefix)
            self._subnets_ready.add(subnet_id)

    def task_dir(self, task_id: str) -> Path:
        return self.settings.data_dir / "tasks" / task_id

    def log_path(self, task_id: str, container_name: str) -> Path:
        return self.task_dir(task_id) / "logs" / f"{container_name}.log"

    def oom_seen(self, container_id: str) -> bool:
        return container_id in self._oom

    def oom_kills(self, task_id: str, container_id: str) -> int:
        return oom_kills(task_id, container_id)

    # --- background work --------------------------------------------------------------------------

    async def _watch_events(self) -> None:
        while True:
            try:
                async for event in self.runtime.events():
                    if isinstance(event, TaskOomKilled):
                        self._oom.add(event.container_id)
            except ContainerRuntimeError as e:
                log.warning("containerd event stream ended (%s); resubscribing", e)
            await self.containerd_back()
            await asyncio.sleep(0.2)

    async def containerd_back(self) -> None:
        """Return once containerd answers again; Fargo's own containerd is started anew if it died.

        Its tasks live on in their shims meanwhile, and a new containerd finds them again.
        """
        async with self._recovering:
            delay = 0.1
            while True:
                try:
                    await self.runtime.version()
                    return
                except ContainerRuntimeError:
                    pass
                if self.settings.containerd_address is None:
                    try:
                        await asyncio.to_thread(ensure_containerd, self.settings.data_dir, None)
                        log.warning("containerd was gone: started it again")
                    except ContainerRuntimeError as e:
                        log.error("cannot restart containerd: %s", e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)

    async def _purge_stopped(self) -> None:
        while True:
            await asyncio.sleep(PURGE_EVERY_SECONDS)
            try:
                for task_id in self.tasks.purge_old():
                    await asyncio.to_thread(shutil.rmtree, self.task_dir(task_id), True)
            except Exception:  # noqa: BLE001 - retried next round
                log.exception("purging stopped tasks failed")

    async def _reconcile(self) -> None:
        unfinished = self.tasks.load_unfinished()
        owned = {task_id_of(t) for t in unfinished}
        for task in unfinished:
            self._spawn(task, resume=True)
        # Left over from a crash: what belongs to a task of ours that has stopped (the host's cgroups
        # and ENIs may also hold another Fargo's tasks, which are not ours to touch).
        def stale(task_ids: list[str]) -> set[str]:
            known = self.tasks.ctx.store.get_tasks([t for t in task_ids if t not in owned])
            return set(known)

        records = await self.runtime.list_containers({})
        stale_ids = stale([r.labels.get("fargo.task-id", "") for r in records])
        for record in records:
            task_id = record.labels.get("fargo.task-id")
            if task_id and (task_id in stale_ids or task_id not in owned):
                log.info("removing orphaned container %s", record.id)
                try:
                    await self.runtime.kill(record.id, signal.SIGKILL, all=True)
                    await self.runtime.delete_task(record.id)
                    await self.runtime.delete_container(record.id)
                except ContainerRuntimeError as e:
                    log.warning("could not remove orphaned container %s: %s", record.id, e)
        enis = await list_task_enis_async(self.settings.network_prefix)
        stale_ids = stale([e.task_id for e in enis])
        for eni in enis:
            if eni.task_id in stale_ids:
                log.info("removing orphaned ENI of task %s", eni.task_id)
                await delete_task_eni_async(eni.task_id, prefix=self.settings.network_prefix)
        for task_id in stale(await asyncio.to_thread(list_task_cgroups)):
            await asyncio.to_thread(remove_task_cgroup, task_id)
