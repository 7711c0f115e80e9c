"""One task's life on this host, driven through the states of `task_states` (diagram there).

The runner moves the task's known status towards its desired status one legal step at a time and
records every step in the task document, the way ECS reports it. Host work is done by hooks (the
task ENI, the task cgroup, the task's files), each undoing its own work when the task stops.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fargo import clock
from fargo.agent.container_spec import TaskFacts, apply_overrides, runtime_spec
from fargo.agent.dependencies import ContainerProgress, Verdict, dependencies_verdict, stop_order
from fargo.agent.health import HealthChecker
from fargo.agent.task_hooks import TaskHook, default_hooks, task_facts
from fargo.protocol.task_states import TaskState, check_transition
from fargo.protocol.container_settings import EffectiveContainerSettings, effective_container_settings
from fargo.control.tasks import task_id_of
from fargo.platform import PLATFORM_VERSIONS, PlatformVersion
from fargo.runtime.errors import ContainerAlreadyExists, ContainerdUnavailable, ContainerRuntimeError, ImageNotFound
from fargo.runtime.oci_spec import build_oci_spec
from fargo.runtime.records import ImageConfig

if TYPE_CHECKING:
    from fargo.agent.agent import Agent

log = logging.getLogger(__name__)
ESSENTIAL_EXITED = "Essential container in task exited"
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"


class TaskCannotStart(Exception):
    """The task stops with stopCode TaskFailedToStart; `reason` starts with the Fargate error name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ContainerRun:
    name: str
    doc: dict
    definition: dict
    settings: EffectiveContainerSettings
    runtime_id: str
    progress: ContainerProgress = field(default_factory=ContainerProgress)
    created: bool = False
    watcher: asyncio.Task | None = None
    health: HealthChecker | None = None
    pid: int = 0


class TaskRunner:
    def __init__(self, agent: Agent, task: dict) -> None:
        self.agent = agent
        self.task = task
        self.task_id = task_id_of(task)
        self.private = task["_fargo"]
        self.td = self.private["taskDefinition"]
        self.platform: PlatformVersion = PLATFORM_VERSIONS[task["platformVersion"]]
        self.changed = asyncio.Event()
        self.hooks: list[TaskHook] = default_hooks(agent, self)
        overrides = self.private.get("containerOverrides") or {}
        self.containers: dict[str, ContainerRun] = {}
        for doc, definition in zip(task["containers"], self.td["containerDefinitions"]):
            merged = apply_overrides(definition, overrides.get(definition["name"], {}))
            doc.setdefault("runtimeId", f"{self.task_id}-{random.randrange(10**9, 10**10)}")
            self.containers[doc["name"]] = ContainerRun(doc["name"], doc, merged, effective_container_settings(merged),
                                                        doc["runtimeId"])
        self.facts: TaskFacts = task_facts(agent, self)

    # --- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> TaskState:
        return TaskState(self.task["lastStatus"])

    def _move(self, target: TaskState, **fields: object) -> None:
        check_transition(self.state, target)
        self.task["lastStatus"] = target.value
        self.task.update({k: v for k, v in fields.items() if v is not None})
        self._save()

    def _save(self) -> None:
        self.agent.tasks.changed(self.task)

    def notify(self) -> None:
        self.changed.set()

    @property
    def stop_wanted(self) -> bool:
        return self.task["desiredStatus"] == "STOPPED"

    def _want_stop(self, stop_code: str, reason: str) -> None:
        if self.task["desiredStatus"] != "STOPPED":
            self.task["desiredStatus"] = "STOPPED"
            self.task.setdefault("stopCode", stop_code)
            self.task.setdefault("stoppedReason", reason[:1024])
            self._save()
        self.notify()

    # --- the whole life -------------------------------------------------------------------------

    async def run(self, resume: bool = False) -> None:
        try:
            if resume:
                await self._resume()
            else:
                await self._start()
            await self._until_stop_wanted()
        except TaskCannotStart as e:
            log.info("task %s cannot start: %s", self.task_id, e.reason)
            self._want_stop("TaskFailedToStart", e.reason)
        except asyncio.CancelledError:
            raise  # the agent is shutting down: the task keeps running and is resumed next time
        except Exception as e:  # a bug must stop the task cleanly, not leave it half made
            log.exception("task %s failed", self.task_id)
            self._want_stop("TaskFailedToStart", f"CannotStartContainerError: {e}")
        for attempt in range(3):  # each step of stopping resumes from the state it reached
            try:
                await self._stop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stopping task %s failed (attempt %d); the next agent start retries", self.task_id,
                              attempt + 1)
                await asyncio.sleep(1)

    async def _start(self) -> None:
        # The host work (ENI, cgroup, files) and the containerd work that does not need it (images,
        # container records and snapshots) run side by side: runc needs the netns only at start.
        provisioning = asyncio.ensure_future(self._provision())
        pull_started = clock.now()
        images: dict[str, ImageConfig] = {}
        try:
            prepare_error = None
            await self._prepare(images)
        except TaskCannotStart as e:
            prepare_error = e
        except BaseException:
            await asyncio.gather(provisioning, return_exceptions=True)  # let host work finish: stop undoes it
            raise
        await provisioning  # its failure is the task's first problem
        if self.stop_wanted:
            return
        self._move(TaskState.PENDING, pullStartedAt=pull_started)
        if prepare_error is not None:
            raise prepare_error
        if self.stop_wanted:
            return
        self._move(TaskState.ACTIVATING)
        await self._activate(images)
        if self.stop_wanted:
            return
        self._move(TaskState.RUNNING, startedAt=clock.now())

    async def _provision(self) -> None:
        for hook in self.hooks:
            await hook.provision()
            if self.stop_wanted:
                return

    async def _prepare(self, images: dict[str, ImageConfig]) -> None:
        images.update(await self._resolve_images())
        self.task["pullStoppedAt"] = clock.now()
        if self.td.get("pidMode") == "task":
            return  # specs name the first container's pid namespace: create each as it starts
        for run in self.containers.values():
            await self._create_container(run, images[run.name])

    async def _resolve_images(self) -> dict[str, ImageConfig]:
        images: dict[str, ImageConfig] = {}
        for run in self.containers.values():
            try:
                config = await self.agent.runtime.image_config(run.definition["image"])
            except ImageNotFound:
                ref = run.definition["image"]
                raise TaskCannotStart(
                    f"CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve "
                    f"ref {ref}: {ref}: not found") from None
            except ContainerRuntimeError as e:
                raise TaskCannotStart(f"CannotPullContainerError: {e}") from None
            run.doc["imageDigest"] = config.digest
            images[run.name] = config
        return images

    async def _activate(self, images: dict[str, ImageConfig]) -> None:
        """Create and start containers as their dependsOn conditions allow, until all have started."""
        waiting_since = time.monotonic()
        while True:
            pending = [r for r in self.containers.values() if not r.progress.started and not r.progress.exited]
            if not pending:
                return
            progress = {r.name: r.progress for r in self.containers.values()}
            started_any = False
            for run in pending:
                verdict, why = dependencies_verdict(run.settings.depends_on, progress)
                if verdict is Verdict.NEVER:
                    raise TaskCannotStart(f"CannotStartContainerError: container {run.name} cannot start: {why}")
                if verdict is Verdict.READY:
                    await self._start_container(run, images[run.name])
                    started_any = True
                if self.stop_wanted:
                    return
            if started_any:
                waiting_since = time.monotonic()
                continue
            timeout = min((r.settings.start_timeout for r in pending if r.settings.start_timeout), default=None)
            remaining = None if timeout is None else timeout - (time.monotonic() - waiting_since)
            if remaining is not None and remaining <= 0:
                names = ", ".join(r.name for r in pending)
                raise TaskCannotStart(f"CannotStartContainerError: dependencies of {names} were not met within "
                                      f"startTimeout ({timeout}s)")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                pass
            if self.stop_wanted:
                return

    async def _create_container(self, run: ContainerRun, image: ImageConfig) -> None:
        """The container's record and rootfs snapshot in containerd, from its spec (nothing runs yet)."""
        runtime = self.agent.runtime
        pidns = None
        if self.td.get("pidMode") == "task":
            first = next((r for r in self.containers.values() if r.pid), None)
            pidns = f"/proc/{first.pid}/ns/pid" if first else None
        spec = runtime_spec(run.definition, run.settings, image, self.facts, run.runtime_id, pidns)
        try:
            users = await runtime.image_users(run.definition["image"]) if spec.user and not spec.user.isdigit() \
                and not spec.user.split(":")[0].isdigit() else None
            built = build_oci_spec(spec, users)
        except ContainerRuntimeError as e:
            raise TaskCannotStart(f"CannotCreateContainerError: {e}") from None
        labels = {"fargo.task-id": self.task_id, "fargo.container-name": run.name}
        create = functools.partial(runtime.create_container, run.runtime_id, run.definition["image"], built.spec,
                                   labels)
        try:
            try:
                await self._runtime_step("created", self.agent.settings.create_timeout, create())
            except ContainerAlreadyExists:  # made before an agent restart: make it again from this spec
                await runtime.delete_container(run.runtime_id)
                await self._runtime_step("created", self.agent.settings.create_timeout, create())
        except ContainerRuntimeError as e:
            run.progress = ContainerProgress(failed_to_start=True)
            run.doc["reason"] = f"CannotCreateContainerError: {e}"[:1024]
            raise TaskCannotStart(run.doc["reason"]) from None
        run.created = True

    async def _start_container(self, run: ContainerRun, image: ImageConfig) -> None:
        if not run.created:
            await self._create_container(run, image)
        log_file = self.agent.log_path(self.task_id, run.name)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.touch()
        try:
            run.pid = await self._runtime_step("running", self.agent.settings.start_timeout,
                                               self.agent.runtime.start_task(run.runtime_id, log_file, log_file))
        except ContainerRuntimeError as e:
            run.progress = ContainerProgress(failed_to_start=True)
            run.doc["reason"] = f"CannotStartContainerError: {e}"[:1024]
            raise TaskCannotStart(run.doc["reason"]) from None
        run.doc["lastStatus"] = "RUNNING"
        self._watch_running(run)
        self._save()

    def _watch_running(self, run: ContainerRun) -> None:
        """A running container gets a watcher for its exit and, if it has one, its health check."""
        run.progress = ContainerProgress(started=True)
        run.watcher = asyncio.ensure_future(self._watch(run))
        self.agent.track(run.watcher)
        if run.settings.health_check is not None:
            run.health = HealthChecker(self.agent.runtime, run.runtime_id, run.settings.health_check,
                                       functools.partial(self._health_changed, run))
            self.agent.track(run.health.start())

    async def _runtime_step(self, transition: str, timeout: float, call):  # noqa: ANN001, ANN202
        try:
            return await asyncio.wait_for(call, timeout)
        except TimeoutError:
            raise TaskCannotStart(f"{self.platform.runtime_timeout_error}: Could not transition to {transition}; "
                                  f"timed out after waiting {_duration(timeout)}") from None

    async def _watch(self, run: ContainerRun) -> None:
        """Wait for the container's exit and record it as ECS does."""
        while True:
            try:
                status = await self.agent.runtime.wait(run.runtime_id)
                break
            except ContainerdUnavailable:
                await self.agent.containerd_back()  # the container lives on in its shim: wait again
            except ContainerRuntimeError as e:
                log.warning("lost container %s of task %s: %s", run.name, self.task_id, e)
                self._container_exited(run, None, f"CannotInspectContainerError: {e}")
                return
        self._container_exited(run, status.code, None)

    def _container_exited(self, run: ContainerRun, code: int | None, reason: str | None) -> None:
        if run.progress.exited:
            return
        if code == 137 and (self.agent.oom_seen(run.runtime_id) or self.agent.oom_kills(self.task_id, run.runtime_id)):
            reason = OOM_REASON
        run.progress = ContainerProgress(started=True, exited=True, exit_code=code, health=run.progress.health)
        run.doc["lastStatus"] = "STOPPED"
        if code is not None:
            run.doc["exitCode"] = code
        if reason:
            run.doc["reason"] = reason[:1024]
        if run.health is not None:
            run.health.stop()
        if run.settings.essential and not self.stop_wanted:
            self._want_stop("EssentialContainerExited", ESSENTIAL_EXITED)
        self._save()
        self.notify()

    def _health_changed(self, run: ContainerRun, status: str) -> None:
        run.progress = ContainerProgress(started=run.progress.started, exited=run.progress.exited,
                                         exit_code=run.progress.exit_code, health=status)
        run.doc["healthStatus"] = status
        self.task["healthStatus"] = task_health(self.containers.values())
        self._save()
        self.notify()

    async def _until_stop_wanted(self) -> None:
        while not self.stop_wanted:
            self.changed.clear()
            await self.changed.wait()

    # --- resuming after an agent restart --------------------------------------------------------

    async def _resume(self) -> None:
        """Pick the task up where the previous agent left it, from the store and containerd."""
        state = self.state
        for hook in self.hooks:
            await hook.resume()
        if state in (TaskState.PROVISIONING, TaskState.PENDING):
            # nothing ran yet: start over (the hooks' provisioning is idempotent)
            self.task["lastStatus"] = TaskState.PROVISIONING.value
            await self._start()
            return
        for run in self.containers.values():
            info = await self.agent.runtime.task_info(run.runtime_id)
            if run.doc.get("lastStatus") == "STOPPED":
                run.progress = ContainerProgress(started=True, exited=True, exit_code=run.doc.get("exitCode"))
                run.created = True
            elif info is not None and info.status == "running":
                run.created, run.pid = True, info.pid
                self._watch_running(run)
            elif info is not None and info.exit_status is not None:
                run.created = True
                self._container_exited(run, info.exit_status.code, None)
            elif run.doc.get("lastStatus") == "RUNNING":
                run.created = True
                self._container_exited(run, None, "CannotInspectContainerError: the container is gone")
        if state is TaskState.ACTIVATING and not self.stop_wanted:
            await self._activate(await self._resolve_images())
            if not self.stop_wanted:
                self._move(TaskState.RUNNING, startedAt=clock.now())

    # --- stopping -------------------------------------------------------------------------------

    async def _stop(self) -> None:
        if self.state is TaskState.STOPPED:
            return
        if self.state is TaskState.RUNNING:
            self._move(TaskState.DEACTIVATING)
        if self.state in (TaskState.PROVISIONING, TaskState.PENDING, TaskState.ACTIVATING, TaskState.DEACTIVATING):
            self._move(TaskState.STOPPING, stoppingAt=self.task.get("stoppingAt") or clock.now())
        if self.state is TaskState.STOPPING:
            await self._stop_containers()
            self.task["executionStoppedAt"] = clock.now()
            self._move(TaskState.DEPROVISIONING)
        if self.state is TaskState.DEPROVISIONING:
            await self._deprovision()
            for run in self.containers.values():
                if run.doc.get("lastStatus") != "STOPPED":
                    run.doc["lastStatus"] = "STOPPED"
            self._move(TaskState.STOPPED, stoppedAt=clock.now())

    async def _stop_containers(self) -> None:
        """SIGTERM in reverse dependency order, SIGKILL after each container's stopTimeout."""
        deps = {name: run.settings.depends_on for name, run in self.containers.items()}
        for wave in stop_order(deps):
            runs = [self.containers[n] for n in wave if self.containers[n].progress.started
                    and not self.containers[n].progress.exited]
            if not runs:
                continue
            for run in runs:
                if run.health is not None:
                    run.health.stop()
                await self._signal(run, signal.SIGTERM)
            timeout = max(r.settings.stop_timeout for r in runs)
            watchers = [r.watcher for r in runs if r.watcher is not None]
            if watchers:
                _done, still = await asyncio.wait(watchers, timeout=timeout)
                for run in runs:
                    if run.watcher in still:
                        await self._signal(run, signal.SIGKILL)
                await asyncio.wait(watchers, timeout=10)

    async def _signal(self, run: ContainerRun, sig: int) -> None:
        """SIGTERM to the container's main process; SIGKILL to all of its processes."""
        await self._through_outages(f"signal container {run.name}",
                                    lambda: self.agent.runtime.kill(run.runtime_id, sig, all=sig == signal.SIGKILL))

    async def _through_outages(self, what: str, call: Callable[[], Awaitable[object]]) -> None:
        """Stopping must finish: a containerd restart is waited out (three tries), other errors are logged."""
        for _attempt in range(3):
            try:
                await call()
                return
            except ContainerdUnavailable:
                await self.agent.containerd_back()
            except ContainerRuntimeError as e:
                log.warning("cannot %s of task %s: %s", what, self.task_id, e)
                return

    async def _remove_container(self, run: ContainerRun) -> None:
        runtime = self.agent.runtime
        await runtime.kill(run.runtime_id, signal.SIGKILL, all=True)
        status = await runtime.delete_task(run.runtime_id)
        if status is not None and run.doc.get("exitCode") is None and run.progress.started:
            self._container_exited(run, status.code, None)
        await runtime.delete_container(run.runtime_id)

    async def _deprovision(self) -> None:
        for run in self.containers.values():
            await self._through_outages(f"remove container {run.name}", functools.partial(self._remove_container, run))
        for hook in reversed(self.hooks):
            try:
                await hook.deprovision()
            except Exception:
                log.exception("cleanup hook %s of task %s failed", hook.name, self.task_id)


def task_health(runs: object) -> str:
    """UNHEALTHY if an essential container is, else UNKNOWN if any essential one is unknown, else HEALTHY."""
    essential = [r for r in runs if r.settings.essential and r.settings.health_check is not None]  # type: ignore[attr-defined]
    statuses = [r.progress.health for r in essential]
    if not statuses:
        return "UNKNOWN"
    if "UNHEALTHY" in statuses:
        return "UNHEALTHY"
    if "UNKNOWN" in statuses:
        return "UNKNOWN"
    return "HEALTHY"


def _duration(seconds: float) -> str:
    """Go's duration format, as the Fargate agent prints it (4m0s, 1.5s, 10ms)."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}m{secs:g}s" if minutes else f"{secs:g}s"
