"""The agent: follows the control plane's assignments, runs each task with a TaskRunner, and reports what it
knows through its outbox. Everything it runs lives in one TaskGroup; one runner's failure ends only that
runner. It knows the control plane only through `fargo.protocol` (`ControlPlane`).

On start it resumes the tasks of its own state (DATA_DIR/agent/), takes the control plane's whole desired
set, and then removes from the host what belongs to no task it knows (`reconcile`).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from fargo.agent import host_claims, host_scan
from fargo.agent.agent_state import AgentState
from fargo.agent.backoff import Backoff
from fargo.agent.engine.runner import EngineTimeouts, TaskRunner
from fargo.agent.execution.registry_hosts import edge_host_names
from fargo.agent.hooks import build_hooks
from fargo.agent.hooks.base import HostFacilities, TaskHook
from fargo.agent.outbox import Outbox
from fargo.agent.reconcile import remove_orphans
from fargo.network.host_routes import ensure_vpc_guard
from fargo.agent.metadata.credentials import TaskCredentials
from fargo.agent.endpoint_relay import EndpointRelay
from fargo.agent.metadata.server import MetadataServer
from fargo.agent.vpc_networks import RouterService, VpcNetworks
from fargo.config import DEFAULT_ACCOUNT_ID
from fargo.network.dns_endpoint_names import endpoint_names
from fargo.network.vpc_resolver import VpcResolver, host_upstreams
from fargo.platform import PLATFORM_VERSIONS, PlatformVersion
from fargo.protocol.control_plane import ControlPlane
from fargo.protocol.messages import DESIRED_STOPPED, AgentHello, ReportAck, TaskAssignment, TaskReport, task_id_of
from fargo.runtime.client import Containerd
from fargo.runtime.containerd_daemon import ensure_containerd
from fargo.runtime.errors import ContainerRuntimeError
from fargo.runtime.records import TaskOomKilled
from fargo.runtime.seccomp_profile import kernel_serves_x32

log = logging.getLogger(__name__)
AGENT_VERSION = "fargo-agent/2"
ASSIGNMENT_WAIT_SECONDS = 30.0
LOGS_KEPT_SECONDS = 3600  # a stopped task's output stays readable as long as ECS keeps the task describable
PURGE_EVERY_SECONDS = 60
RETRY_BACKOFF = (0.1, 5.0)
RUNNER_RESTART_BACKOFF = (0.5, 60.0)
HookFactory = Callable[[PlatformVersion, HostFacilities], list[TaskHook]]
DEFAULT_EDGE_ADDRESS = ("127.0.0.1", 8400)


@dataclass(frozen=True)
class AgentSettings:
    data_dir: Path
    region: str
    vpc_cidr: str
    availability_zones: list[str] = field(default_factory=list)
    network_prefix: str = "fg"
    agent_id: str | None = None  # None: an id of its own, made once and kept under DATA_DIR/agent/
    containerd_address: str | None = None  # None: Fargo's own containerd under data_dir, restarted if it dies
    dns_upstreams: tuple[tuple[str, int], ...] = ()  # the VPC resolvers forward here; () = the host's resolvers
    efs_root: Path | None = None  # None: DATA_DIR/efs
    # Where Fargo's AWS APIs listen in the host namespace; tasks reach it at each VPC's endpoint (base + 3).
    # None: no VPC endpoint.
    edge_address: tuple[str, int] | None = None
    account_id: str = DEFAULT_ACCOUNT_ID  # names its registry: <account>.dkr.ecr.<region>.amazonaws.com
    insecure_registries: frozenset[str] = frozenset()  # `fargo up --insecure-registry`: pulled over plain HTTP
    timeouts: EngineTimeouts = field(default_factory=lambda: EngineTimeouts(
        create=float(os.environ.get("FARGO_CONTAINER_CREATE_TIMEOUT", 240)),
        start=float(os.environ.get("FARGO_CONTAINER_START_TIMEOUT", 180))))


class Agent:
    def __init__(self, runtime: Containerd, settings: AgentSettings, control_plane: ControlPlane,
                 hooks_for: HookFactory = build_hooks,
                 reconcile: Callable[[Agent], Awaitable[None]] = remove_orphans) -> None:
        self.runtime = runtime
        self.settings = settings
        self.region = settings.region
        self.network_prefix = settings.network_prefix
        self.data_dir = settings.data_dir
        self.efs_root = settings.efs_root or settings.data_dir / "efs"
        self.control_plane = control_plane
        self.state = AgentState(settings.data_dir / "agent")
        self.agent_id = settings.agent_id or self.state.agent_id()
        self.runners: dict[str, TaskRunner] = {}
        self._hooks = {v: hooks_for(p, self) for v, p in PLATFORM_VERSIONS.items()}
        self._reconcile = reconcile
        self._outbox = Outbox()
        self._stopped: set[str] = set()  # ran to STOPPED here; their report may not be acked yet
        self._oom: set[str] = set()
        upstreams = list(settings.dns_upstreams) or host_upstreams()
        rate, burst = _metadata_rate_limit(os.environ.get("FARGO_TASK_METADATA_RPS_LIMIT", ""))
        self.metadata = MetadataServer(TaskCredentials(), rate=rate, burst=burst)
        self.credentials_key = self.state.credentials_key()
        servers = [RouterService(self.metadata, lambda router: router.metadata_ip)]
        names: frozenset[str] = frozenset()
        self.endpoint: EndpointRelay | None = None
        if settings.edge_address is not None:
            self.endpoint = EndpointRelay(settings.edge_address)
            servers.append(RouterService(self.endpoint, lambda router: router.endpoint_ip))
            names = endpoint_names(settings.region, settings.account_id)
        self.networks = VpcNetworks(settings.region, VpcResolver(settings.region, upstreams, endpoint_names=names),
                                    self.network_prefix, servers=servers)
        self._recovering = asyncio.Lock()
        self._ready = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None

    @property
    def ready(self) -> bool:
        """Ready once reconciled, and for as long as the agent's loop lives."""
        return self._ready.is_set() and self._main is not None and not self._main.done()

    # --- life of the agent ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings.vpc_cidr:
            await asyncio.to_thread(ensure_vpc_guard, self.settings.vpc_cidr)
        await asyncio.to_thread(kernel_serves_x32)  # asked once, here, not on the loop at the first container
        self._main = asyncio.create_task(self._run())
        ready = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait([ready, self._main], return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self._main.done():
            self._main.result()  # the loop died before it was ready: say why

    async def close(self) -> None:
        """Stop driving tasks; they keep running in containerd and are resumed by the next agent."""
        if self._main is not None:
            self._main.cancel()
            try:
                await self._main
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        await self.networks.close()

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                for assignment, report in self.state.load():
                    if report is not None and report.known_status == "STOPPED":
                        self._stopped.add(assignment.task_id)
                        self._outbox.put(report)  # maybe never acked before the restart
                    else:
                        self._spawn(assignment, report, resume=True)
                        if report is not None:
                            self._outbox.put(report)
                group.create_task(self._outbox.run(self._send_reports, self._acked))
                group.create_task(self._watch_events())
                group.create_task(self._purge_old_logs())
                group.create_task(self._follow_assignments())
        finally:
            self._group = None
            self.state.write_reports()  # what the runners knew last, for the next agent

    async def _send_reports(self, reports: list[TaskReport]) -> ReportAck:
        self.state.write_reports()  # written ahead: a restart resends them, and never reuses a seq sent
        return await self.control_plane.report(self.agent_id, reports)

    async def _follow_assignments(self) -> None:
        """Say hello, take the whole desired set, reconcile the host, then follow changes (long-poll)."""
        await self._retrying(lambda: self.control_plane.hello(AgentHello(
            self.agent_id, list(self.settings.availability_zones), AGENT_VERSION)))
        since: int | None = None  # None: the whole desired set first
        while True:
            batch = await self._retrying(lambda: self.control_plane.assignments(self.agent_id, since,
                                                                                ASSIGNMENT_WAIT_SECONDS))
            await self.networks.set_policies(batch.networks)  # kept before new tasks attach to their VPC
            for assignment in batch.assignments:
                self._assign(assignment)
            if batch.full:
                wanted = {a.task_id for a in batch.assignments}
                for task_id, runner in list(self.runners.items()):
                    if task_id not in wanted and runner.status.value != "STOPPED":
                        log.info("task %s is no longer assigned here: stopping it", task_id)
                        runner.update(_stop_assignment(runner.assignment))
                if not self._ready.is_set():
                    await self._reconcile(self)
                    self._ready.set()
            since = batch.generation

    async def _retrying(self, call):  # noqa: ANN001, ANN202 - any ControlPlane call
        backoff = Backoff(*RETRY_BACKOFF)
        while True:
            try:
                return await call()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the control plane is away: keep running tasks, retry
                log.warning("control plane call failed (%s); retrying in %.1fs", e, backoff.delay)
                await backoff.sleep()

    # --- tasks ------------------------------------------------------------------------------------

    def _assign(self, assignment: TaskAssignment) -> None:
        task_id = assignment.task_id
        runner = self.runners.get(task_id)
        if runner is not None:
            if assignment.generation > runner.assignment.generation:
                self.state.save_assignment(assignment)
                runner.update(assignment)
            return
        if task_id in self._stopped:
            return  # done here; the control plane has not applied our STOPPED report yet
        host_claims.claim(task_id, self.settings.data_dir)
        self.state.save_assignment(assignment)  # before any host work: a restart finds the task
        self._spawn(assignment, None, resume=False)

    def _spawn(self, assignment: TaskAssignment, report: TaskReport | None, resume: bool) -> None:
        assert self._group is not None
        hooks: list[TaskHook] = self._hooks[assignment.platform_version]
        runner = TaskRunner(self, assignment, hooks, self._on_report, self.settings.timeouts, report)
        self.runners[assignment.task_id] = runner
        self._group.create_task(self._drive(runner, resume))

    async def _drive(self, runner: TaskRunner, resume: bool) -> None:
        """Run the task to STOPPED. A runner that crashes (a bug) is made again from what it knew and resumes,
        after a backoff: a task is never left half made, holding its address, out of StopTask's reach."""
        backoff = Backoff(*RUNNER_RESTART_BACKOFF)
        try:
            while True:
                try:
                    await runner.run(resume)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:  # one task's failure must never cancel its siblings
                    log.exception("runner of task %s crashed; resuming it in %.1fs", runner.task_id, backoff.delay)
                await backoff.sleep()
                last = runner.report()
                runner = TaskRunner(self, runner.assignment, runner.hooks, self._on_report, self.settings.timeouts,
                                    last)
                self.runners[runner.task_id] = runner
                resume = True
        finally:
            self.runners.pop(runner.task_id, None)

    def _on_report(self, report: TaskReport) -> None:
        task_id = task_id_of(report.task_arn)
        self.state.save_report(task_id, report)  # written before it is sent (_send_reports)
        if report.known_status == "STOPPED":
            self._stopped.add(task_id)
            host_claims.release(task_id)
        self._outbox.put(report)

    def _acked(self, task_arn: str, seq: int) -> None:
        task_id = task_id_of(task_arn)
        if task_id in self._stopped:
            self.state.forget(task_id)  # STOPPED and the control plane has it: nothing left to resend

    # --- host facilities (hooks.base.HostFacilities) ----------------------------------------------

    @property
    def account_id(self) -> str:
        return self.settings.account_id

    @property
    def edge_address(self) -> tuple[str, int]:
        return self.settings.edge_address or DEFAULT_EDGE_ADDRESS

    @property
    def insecure_registries(self) -> frozenset[str]:
        return self.settings.insecure_registries

    @property
    def edge_hosts(self) -> frozenset[str]:
        return edge_host_names(*self.edge_address)

    def live_vpc_ids(self) -> set[str]:
        """The VPCs of every task this agent knows: reconcile keeps their routers, even before a resumed
        task has attached again."""
        return {runner.assignment.eni.vpc_id for runner in self.runners.values()}

    def task_dir(self, task_id: str) -> Path:
        return self.settings.data_dir / "tasks" / task_id

    def log_path(self, task_id: str, container_name: str) -> Path:
        return self.task_dir(task_id) / "logs" / f"{container_name}.log"

    def oom_seen(self, runtime_id: str) -> bool:
        return runtime_id in self._oom

    async def containerd_back(self) -> None:
        """Return once containerd answers again; Fargo's own containerd is started anew if it died.

        Its tasks live on in their shims meanwhile, and a new containerd finds them again.
        """
        async with self._recovering:
            backoff = Backoff(*RETRY_BACKOFF)
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
                await backoff.sleep()

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

    async def _purge_old_logs(self) -> None:
        """A stopped task's files (its container output) go an hour after the task stopped."""
        root = self.settings.data_dir / "tasks"
        while True:
            await asyncio.sleep(PURGE_EVERY_SECONDS)
            cutoff = time.time() - LOGS_KEPT_SECONDS
            try:
                for task_dir in (root.iterdir() if root.exists() else []):
                    if task_dir.name in self.runners or task_dir.name in self.state.known_task_ids():
                        continue
                    if _newest_mtime(task_dir) < cutoff:
                        await asyncio.to_thread(_remove_unless_mounted, task_dir)
            except OSError:
                log.exception("purging old task files failed; retried next round")


def _remove_unless_mounted(task_dir: Path) -> None:
    """rmtree crosses mount points: a task dir that still holds a mount (an EFS file system, a volume that
    reconcile could not undo) is left for the next round rather than have what is mounted there deleted."""
    if host_scan.mounts_under(task_dir):
        log.warning("task dir %s still holds mounts; not removed", task_dir.name)
        return
    shutil.rmtree(task_dir, True)


def _stop_assignment(a: TaskAssignment) -> TaskAssignment:
    return dataclasses.replace(a, generation=a.generation + 1, desired_status=DESIRED_STOPPED)


def _newest_mtime(path: Path) -> float:
    newest = path.stat().st_mtime
    for p in path.rglob("*"):
        try:
            newest = max(newest, p.stat().st_mtime)
        except OSError:
            pass
    return newest


def _metadata_rate_limit(text: str) -> tuple[float, int]:
    """`steady,burst` requests per second per task, as the ECS agent's ECS_TASK_METADATA_RPS_LIMIT; 40,60 unless
    set (benchmarks raise it to measure the endpoint itself)."""
    try:
        steady, burst = (int(part) for part in text.split(","))
        if steady > 0 and burst > 0:
            return float(steady), burst
    except ValueError:
        pass
    return 40.0, 60
