"""One task's life on this host: the runner walks the lifecycle and calls hooks; it names no feature.

    PROVISIONING   prestart of the PROVISIONING hooks (ENI, cgroup, files, logs), side by side
    PENDING        prestart of the PENDING hooks in order (images, later secrets); containers created
    ACTIVATING     containers started as their dependsOn conditions allow; container_started hooks
    RUNNING        poststart hooks; the runner waits for an exit or for desired status STOPPED
    DEACTIVATING / STOPPING   SIGTERM in reverse dependency order, SIGKILL after stopTimeout
    DEPROVISIONING containers removed from containerd, then every hook's stop in reverse order, retried
                   with backoff until all of it is undone
    STOPPED        nothing of the task is left on the host

Known status moves one legal step at a time (`fargo.protocol.task_states`); every change of what the agent
knows is handed to `report` as a whole `TaskReport` with the next seq. Desired status comes from the
control plane's assignments (`update`) or from the runner itself (an essential container exited).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from fargo import clock
from fargo.agent.backoff import Backoff
from fargo.agent.engine.container_spec import apply_overrides, runtime_id_for, runtime_spec
from fargo.agent.engine.dependencies import ContainerProgress, Verdict, dependencies_verdict, stop_order
from fargo.agent.hooks.base import (AttachmentState, ContainerRun, ContainerSpecContribution, HookPhase,
                                    HostFacilities, TaskCannotStart, TaskHook)
from fargo.platform import PLATFORM_VERSIONS, PlatformVersion
from fargo.protocol import stop_reasons as reasons
from fargo.protocol.container_settings import effective_container_settings
from fargo.protocol.messages import (DESIRED_STOPPED, AttachmentReport, ContainerReport, TaskAssignment,
                                     TaskReport)
from fargo.protocol.task_states import TaskState, check_transition
from fargo.runtime.errors import (ContainerAlreadyExists, ContainerdUnavailable, ContainerRuntimeError,
                                  scrub_host_paths)
from fargo.runtime.image_users import needs_user_database
from fargo.runtime.oci_spec import build_oci_spec

log = logging.getLogger(__name__)
T = TypeVar("T")
S = TaskState
REASON_LIMIT = 1024
# Every containerd call on the stop path has a deadline: a hung containerd must not hang the stop.
STOP_CALL_DEADLINE = 15.0
HOOK_STOP_DEADLINE = 60.0
DEPROVISION_BACKOFF = (0.2, 10.0)


@dataclass(frozen=True)
class EngineTimeouts:
    # How long containerd may take to create / start a container before the task fails with the platform's
    # runtime timeout error (the Fargate agent's figures: 4 and 3 minutes).
    create: float = 240.0
    start: float = 180.0


class TaskRunner:
    def __init__(self, host: HostFacilities, assignment: TaskAssignment, hooks: list[TaskHook],
                 report: Callable[[TaskReport], None], timeouts: EngineTimeouts,
                 last_report: TaskReport | None = None) -> None:
        self.host = host
        self._assignment = assignment
        self.hooks = hooks
        self._report = report
        self.timeouts = timeouts
        self._platform = PLATFORM_VERSIONS[assignment.platform_version]
        self._changed = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None
        self._owned: set[asyncio.Task[Any]] = set()
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._containers: dict[str, ContainerRun] = {}
        overrides = {o["name"]: o for o in (assignment.overrides.get("containerOverrides") or []) if "name" in o}
        for index, definition in enumerate(assignment.task_definition["containerDefinitions"]):
            merged = apply_overrides(definition, overrides.get(definition["name"], {}))
            self._containers[definition["name"]] = ContainerRun(
                definition["name"], merged, effective_container_settings(merged),
                runtime_id_for(assignment.task_id, index, definition["name"]))
        self._attachment = AttachmentState(assignment.eni.attachment_id)
        self.status = S.PROVISIONING
        self.seq = 0
        self.desired_status = assignment.desired_status
        self.stop_code: str | None = None
        self.stopped_reason: str | None = None
        self.health_status = "UNKNOWN"
        self._times: dict[str, float | None] = {}
        self.connectivity: str | None = None
        if last_report is not None:
            self._restore(last_report)

    # --- what hooks see (TaskContext) -----------------------------------------------------------

    @property
    def task_id(self) -> str:
        return self._assignment.task_id

    @property
    def assignment(self) -> TaskAssignment:
        return self._assignment

    @property
    def platform(self) -> PlatformVersion:
        return self._platform

    @property
    def containers(self) -> dict[str, ContainerRun]:
        return self._containers

    @property
    def attachment(self) -> AttachmentState:
        return self._attachment

    def set_connectivity(self, at: float) -> None:
        self.connectivity, self._times["connectivity_at"] = "CONNECTED", at

    def set_pull_times(self, started: float | None, stopped: float | None) -> None:
        self._times["pull_started_at"], self._times["pull_stopped_at"] = started, stopped

    def set_health(self, container: ContainerRun, status: str) -> None:
        container.health_status = status
        container.progress = dataclasses.replace(container.progress, health=status)
        self.health_status = task_health(self._containers.values())
        self._emit()
        self._changed.set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._group is not None, "hooks spawn work only while the task runs"
        task = self._group.create_task(_quietly(work, self.task_id))
        self._owned.add(task)
        task.add_done_callback(self._owned.discard)
        return task

    # --- desired state --------------------------------------------------------------------------

    def update(self, assignment: TaskAssignment) -> None:
        """A newer assignment of this task: only its desired status (and stop reason) may change."""
        if assignment.generation <= self._assignment.generation:
            return
        self._assignment = assignment
        if assignment.desired_status == DESIRED_STOPPED:
            self._want_stop(assignment.stop_code or reasons.USER_INITIATED, assignment.stopped_reason or reasons.STOPPED_BY_USER)
        self._changed.set()

    @property
    def stop_wanted(self) -> bool:
        return self.desired_status == DESIRED_STOPPED

    def _want_stop(self, stop_code: str, reason: str) -> None:
        if self.desired_status != DESIRED_STOPPED:
            self.desired_status = DESIRED_STOPPED
            self.stop_code = self.stop_code or stop_code
            self.stopped_reason = self.stopped_reason or scrub_host_paths(reason)[:REASON_LIMIT]
            self._emit()
        self._changed.set()

    # --- reports --------------------------------------------------------------------------------

    def _move(self, target: TaskState, **times: float) -> None:
        if self.status is target:
            return  # resumed after a restart at or past this step
        check_transition(self.status, target)
        self.status = target
        for key, value in times.items():
            self._times.setdefault(key, value)
        self._emit()

    def _emit(self) -> None:
        self.seq += 1
        self._report(self.report())

    def report(self) -> TaskReport:
        t = self._times
        return TaskReport(
            task_arn=self._assignment.task_arn, seq=self.seq, known_status=self.status.value,
            containers=[ContainerReport(c.name, c.runtime_id, c.last_status, c.exit_code, c.reason, c.health_status,
                                        c.image_digest) for c in self._containers.values()],
            attachment=AttachmentReport(self._attachment.attachment_id, self._attachment.status,
                                        list(self._attachment.details)),
            health_status=self.health_status, desired_status=self.desired_status, stop_code=self.stop_code,
            stopped_reason=self.stopped_reason, connectivity=self.connectivity,
            connectivity_at=t.get("connectivity_at"), pull_started_at=t.get("pull_started_at"),
            pull_stopped_at=t.get("pull_stopped_at"), started_at=t.get("started_at"),
            stopping_at=t.get("stopping_at"), execution_stopped_at=t.get("execution_stopped_at"),
            stopped_at=t.get("stopped_at"))

    def _restore(self, r: TaskReport) -> None:
        """Known state as the last report before a restart had it."""
        self.status, self.seq = S(r.known_status), r.seq
        self.stop_code, self.stopped_reason, self.health_status = r.stop_code, r.stopped_reason, r.health_status
        self.connectivity = r.connectivity
        self._times = {k: getattr(r, k) for k in ("connectivity_at", "pull_started_at", "pull_stopped_at",
                                                  "started_at", "stopping_at", "execution_stopped_at",
                                                  "stopped_at") if getattr(r, k) is not None}
        if r.attachment is not None:
            self._attachment = AttachmentState(r.attachment.attachment_id, r.attachment.status,
                                               list(r.attachment.details))
        for c in r.containers:
            run = self._containers.get(c.name)
            if run is not None:
                run.last_status, run.exit_code, run.reason = c.last_status, c.exit_code, c.reason
                run.health_status, run.image_digest = c.health_status, c.image_digest
        if r.desired_status == DESIRED_STOPPED or self._assignment.desired_status == DESIRED_STOPPED:
            self.desired_status = DESIRED_STOPPED

    # --- the whole life -------------------------------------------------------------------------

    async def run(self, resume: bool = False) -> None:
        """Drive the task to STOPPED. Cancelled (the agent shuts down), the task keeps running in containerd."""
        if self.seq == 0:
            self._emit()  # the agent has the task: PROVISIONING, with its containers' runtime ids
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                await self._live(resume)
                await self._stop()
            finally:
                for task in list(self._owned):
                    task.cancel()
                self._group = None

    async def _live(self, resume: bool) -> None:
        try:
            if resume:
                await self._resume()
            elif not self.stop_wanted:
                await self._start()
            while not self.stop_wanted:
                self._changed.clear()
                await self._changed.wait()
        except TaskCannotStart as e:
            log.info("task %s cannot start: %s", self.task_id, e.reason)
            self._want_stop(reasons.TASK_FAILED_TO_START, e.reason)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as e:  # a bug must stop the task cleanly, not leave it half made
            log.exception("task %s failed", self.task_id)
            self._want_stop(reasons.TASK_FAILED_TO_START, reasons.cannot_start(str(e)))

    async def _start(self) -> None:
        await self._prestart(HookPhase.PROVISIONING)
        if self.stop_wanted:
            return
        self._move(S.PENDING)
        await self._prestart(HookPhase.PENDING)
        if self.stop_wanted:
            return
        if self._assignment.task_definition.get("pidMode") != "task":
            # (with pidMode task, specs name the first container's pid namespace: each is made as it starts)
            for run in self._containers.values():
                if not run.progress.started:
                    await self._create_container(run)
        if self.stop_wanted:
            return
        self._move(S.ACTIVATING)
        await self._activate()
        if self.stop_wanted:
            return
        self._move(S.RUNNING, started_at=clock.now())
        for hook in self.hooks:
            await hook.poststart(self)

    async def _prestart(self, phase: HookPhase) -> None:
        hooks = [h for h in self.hooks if h.phase is phase]
        if phase is HookPhase.PROVISIONING:
            # host resources do not depend on each other: made side by side, the first failure is the task's.
            # They take milliseconds and work in threads, so they are not cancelled: they finish, then stop.
            await self._gather_prestart(hooks)
            return
        for hook in hooks:  # in order: what travels over the ENI may depend on what came before
            await self._unless_stopped(hook.prestart(self))
            if self.stop_wanted:
                return

    async def _gather_prestart(self, hooks: list[TaskHook]) -> None:
        results = await asyncio.gather(*(h.prestart(self) for h in hooks), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _unless_stopped(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a prestart, cancelled as soon as the task's stop is wanted (a pull or a mount that waits must
        not hold the stop up); what it made so far is undone by the hooks' stop, which tolerates half-done work."""
        job = asyncio.ensure_future(work)
        while not job.done():
            if self.stop_wanted:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
                return
            self._changed.clear()
            waiter = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({job, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
        job.result()

    async def _activate(self) -> None:
        """Create and start containers as their dependsOn conditions allow, until all have started."""
        waiting_since = time.monotonic()
        while True:
            pending = [r for r in self._containers.values() if not r.progress.started and not r.progress.exited]
            if not pending:
                return
            progress = {r.name: r.progress for r in self._containers.values()}
            started_any = False
            for run in pending:
                verdict, why = dependencies_verdict(run.settings.depends_on, progress)
                if verdict is Verdict.NEVER:
                    raise TaskCannotStart(reasons.dependency_never(run.name, why))
                if verdict is Verdict.READY:
                    await self._start_container(run)
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
                raise TaskCannotStart(reasons.dependencies_timed_out(names, timeout))
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass
            if self.stop_wanted:
                return

    def _contribution(self, run: ContainerRun) -> ContainerSpecContribution:
        spec = ContainerSpecContribution()
        for hook in self.hooks:
            hook.contribute(self, run, spec)
        return spec

    async def _create_container(self, run: ContainerRun) -> None:
        """The container's record and rootfs snapshot in containerd, from its spec (nothing runs yet)."""
        runtime = self.host.runtime
        assert run.image is not None, "the image hook resolves every image in PENDING"
        pidns = None
        if self._assignment.task_definition.get("pidMode") == "task":
            first = next((r for r in self._containers.values() if r.pid), None)
            pidns = f"/proc/{first.pid}/ns/pid" if first else None
        spec = runtime_spec(run.definition, run.settings, run.image, self._contribution(run),
                            self._assignment.memory_mib, pidns)
        try:
            users = await runtime.image_users(run.definition["image"]) if needs_user_database(spec.user) else None
            built = build_oci_spec(spec, users)
        except ContainerRuntimeError as e:
            raise TaskCannotStart(reasons.cannot_create(scrub_host_paths(e.message))) from None
        labels = {"fargo.task-id": self.task_id, "fargo.container-name": run.name}

        def create() -> Awaitable[None]:
            return runtime.create_container(run.runtime_id, run.definition["image"], built.spec, labels,
                                            rootfs_parent=run.rootfs_parent)

        try:
            try:
                await self._runtime_step("created", self.timeouts.create, create())
            except ContainerAlreadyExists:  # made before an agent restart: make it again from this spec
                await runtime.delete_task(run.runtime_id)
                await runtime.delete_container(run.runtime_id)
                await self._runtime_step("created", self.timeouts.create, create())
        except ContainerRuntimeError as e:
            self._container_failed(run, reasons.cannot_create(e.message))
        run.created = True
        run.created_at = clock.now()

    def _container_failed(self, run: ContainerRun, reason: str) -> None:
        run.progress = ContainerProgress(failed_to_start=True)
        run.reason = scrub_host_paths(reason)[:REASON_LIMIT]
        raise TaskCannotStart(run.reason)

    async def _start_container(self, run: ContainerRun) -> None:
        if not run.created:
            await self._create_container(run)
        spec = self._contribution(run)
        try:
            run.pid = await self._runtime_step("running", self.timeouts.start,
                                               self.host.runtime.start_task(run.runtime_id, spec.stdout_path,
                                                                            spec.stderr_path,
                                                                            spec.writable_layer_dir))
        except ContainerRuntimeError as e:
            self._container_failed(run, reasons.cannot_start(e.message))
        run.last_status = "RUNNING"
        run.started_at = clock.now()
        await self._watch_running(run)
        self._emit()

    async def _watch_running(self, run: ContainerRun) -> None:
        """A running container gets a watcher for its exit; hooks hear that it started."""
        run.progress = ContainerProgress(started=True, health=run.progress.health)
        run.last_status = "RUNNING"
        self._watchers[run.name] = self.spawn(self._watch(run))
        for hook in self.hooks:
            await hook.container_started(self, run)

    async def _runtime_step(self, transition: str, timeout: float, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, timeout)
        except TimeoutError:
            raise TaskCannotStart(reasons.runtime_timeout(self._platform, transition, _duration(timeout))) from None

    async def _watch(self, run: ContainerRun) -> None:
        """Wait for the container's exit and record it as ECS does."""
        while True:
            try:
                status = await self.host.runtime.wait(run.runtime_id)
                break
            except ContainerdUnavailable:
                await self.host.containerd_back()  # the container lives on in its shim: wait again
            except ContainerRuntimeError as e:
                log.warning("lost container %s of task %s: %s", run.name, self.task_id, e)
                await self._container_exited(run, None, reasons.cannot_inspect(e.message))
                return
        await self._container_exited(run, status.code, None)

    async def _container_exited(self, run: ContainerRun, code: int | None, reason: str | None) -> None:
        if run.progress.exited:
            return
        run.progress = ContainerProgress(started=True, exited=True, exit_code=code, health=run.progress.health)
        run.last_status = "STOPPED"
        run.finished_at = clock.now()
        if code is not None:
            run.exit_code = code
        if reason:
            run.reason = scrub_host_paths(reason)[:REASON_LIMIT]
        for hook in self.hooks:
            try:
                await hook.container_exited(self, run)
            except Exception:  # noqa: BLE001 - one hook must not keep the exit from being recorded
                log.exception("hook %s failed on the exit of %s", hook.name, run.name)
        if run.settings.essential and not self.stop_wanted:
            self._want_stop(reasons.ESSENTIAL_CONTAINER_EXITED, reasons.ESSENTIAL_EXITED)
        self._emit()
        self._changed.set()

    # --- resuming after an agent restart --------------------------------------------------------

    async def _resume(self) -> None:
        """Pick the task up where the previous agent left it, from the agent's own state and containerd."""
        if self.status in (S.PROVISIONING, S.PENDING) and not self.stop_wanted:
            for run in self._containers.values():  # nothing ran yet: start over; hooks' prestart is idempotent
                await self._discard_container(run)
            await self._start()
            return
        if self.status in (S.ACTIVATING, S.RUNNING) and not self.stop_wanted:
            await self._prestart(HookPhase.PROVISIONING)  # idempotent: finds its work done
            await self._prestart(HookPhase.PENDING)
        await self._adopt_containers()
        if self.status is S.ACTIVATING and not self.stop_wanted:
            await self._activate()
            if not self.stop_wanted:
                self._move(S.RUNNING, started_at=clock.now())
        if self.status is S.RUNNING and not self.stop_wanted:
            for hook in self.hooks:  # what a hook runs beside a running task ended with the previous runner
                await hook.poststart(self)

    async def _adopt_containers(self) -> None:
        for run in self._containers.values():
            info = await self._through_outages(lambda r=run: self.host.runtime.task_info(r.runtime_id))
            if run.last_status == "STOPPED":
                run.progress = ContainerProgress(started=True, exited=True, exit_code=run.exit_code)
                run.created = True
            elif info is not None and info.status == "running":
                run.created, run.pid = True, info.pid
                await self._watch_running(run)
            elif info is not None and info.exit_status is not None and run.last_status == "RUNNING":
                run.created = True
                await self._container_exited(run, info.exit_status.code, None)
            elif run.last_status == "RUNNING":
                run.created = True
                await self._container_exited(run, None, reasons.cannot_inspect("the container is gone"))
            else:  # created (or half made) but never started: made again when it starts
                await self._discard_container(run)

    async def _discard_container(self, run: ContainerRun) -> None:
        await self._through_outages(lambda: self._remove_container(run))
        run.created = False

    # --- stopping -------------------------------------------------------------------------------

    async def _stop(self) -> None:
        if self.status is S.STOPPED:
            return
        if self.status is S.RUNNING:
            self._move(S.DEACTIVATING)
        if self.status in (S.PROVISIONING, S.PENDING, S.ACTIVATING, S.DEACTIVATING):
            self._move(S.STOPPING, stopping_at=clock.now())
        if self.status is S.STOPPING:
            await self._stop_containers()
            self._times.setdefault("execution_stopped_at", clock.now())
            self._move(S.DEPROVISIONING)
        if self.status is S.DEPROVISIONING:
            await self._deprovision()
            for run in self._containers.values():
                run.last_status = "STOPPED"
            self._move(S.STOPPED, stopped_at=clock.now())

    async def _stop_containers(self) -> None:
        """SIGTERM in reverse dependency order, SIGKILL after each container's stopTimeout."""
        deps = {name: run.settings.depends_on for name, run in self._containers.items()}
        for wave in stop_order(deps):
            runs = [self._containers[n] for n in wave if self._containers[n].progress.started
                    and not self._containers[n].progress.exited]
            if not runs:
                continue
            for run in runs:
                await self._signal(run, signal.SIGTERM)
            timeout = max(r.settings.stop_timeout for r in runs)
            watchers = [self._watchers[r.name] for r in runs if r.name in self._watchers]
            if watchers:
                _done, still = await asyncio.wait(watchers, timeout=timeout)
                for run in runs:
                    if self._watchers.get(run.name) in still:
                        await self._signal(run, signal.SIGKILL)
                await asyncio.wait(watchers, timeout=10)

    async def _signal(self, run: ContainerRun, sig: int) -> None:
        """SIGTERM to the container's main process; SIGKILL to all of its processes."""
        try:
            await self._through_outages(lambda: self.host.runtime.kill(run.runtime_id, sig,
                                                                       all=sig == signal.SIGKILL))
        except ContainerRuntimeError as e:
            log.warning("cannot signal container %s of task %s: %s", run.name, self.task_id, e)

    async def _through_outages(self, call: Callable[[], Awaitable[T]], tries: int = 3) -> T:
        """A containerd call with a deadline; a containerd restart is waited out (a few times), then raised."""
        for attempt in range(tries):
            try:
                return await asyncio.wait_for(call(), STOP_CALL_DEADLINE)
            except (ContainerdUnavailable, TimeoutError):
                if attempt == tries - 1:
                    raise ContainerdUnavailable("containerd did not answer") from None
                try:
                    await asyncio.wait_for(self.host.containerd_back(), STOP_CALL_DEADLINE)
                except TimeoutError:
                    pass
        raise AssertionError("unreachable")

    async def _remove_container(self, run: ContainerRun) -> None:
        runtime = self.host.runtime
        await runtime.kill(run.runtime_id, signal.SIGKILL, all=True)
        status = await runtime.delete_task(run.runtime_id)
        if status is not None and run.exit_code is None and run.progress.started:
            await self._container_exited(run, status.code, None)
        await runtime.delete_container(run.runtime_id)

    async def _deprovision(self) -> None:
        """Undo everything, retrying with backoff until nothing is left: only then is the task STOPPED."""
        backoff = Backoff(*DEPROVISION_BACKOFF)
        while True:
            problems: list[str] = []
            for run in self._containers.values():
                try:
                    await self._through_outages(lambda r=run: self._remove_container(r))
                except (ContainerRuntimeError, TimeoutError) as e:
                    problems.append(f"container {run.name}: {e}")
            for hook in reversed(self.hooks):
                try:
                    await asyncio.wait_for(hook.stop(self), HOOK_STOP_DEADLINE)
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except BaseException as e:  # noqa: BLE001 - reported and retried, never swallowed
                    problems.append(f"{hook.name}: {e!r}")
            if not problems:
                return
            log.warning("task %s is not clean yet (retrying in %.1fs): %s", self.task_id, backoff.delay,
                        "; ".join(problems))
            await backoff.sleep()


async def _quietly(work: Coroutine[Any, Any, None], task_id: str) -> None:
    """A watcher's or health check's failure is logged; it never cancels its task's other work."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001
        log.exception("background work of task %s failed", task_id)


def task_health(runs: Any) -> str:
    """UNHEALTHY if an essential container is, else UNKNOWN if any essential one is unknown, else HEALTHY."""
    statuses = [r.progress.health for r in runs if r.settings.essential and r.settings.health_check is not None]
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
