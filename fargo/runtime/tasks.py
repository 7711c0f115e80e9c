"""containerd's tasks: the live instance of a container, its init process under a runc shim. Starting one
(also over what a cut-off earlier start left behind), waiting for it, signalling, deleting, inspecting and
measuring it.
"""
from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from google.protobuf import empty_pb2

from fargo.runtime.errors import ContainerNotFound, RuntimeCallFailed
from fargo.runtime.grpc_channel import QUICK_S, Channel, quote, timestamp
from fargo.runtime.protos import cgroups_v1_pb2, tasks_pb2
from fargo.runtime.records import ExitStatus, TaskInfo, TaskMetrics, TaskStatus
from fargo.runtime.snapshots import Mounts
from fargo.runtime.shim_leftovers import ShimLeftovers

# How long a start waits for containerd to clean up after an earlier, cut-off Tasks.Create of the same
# container: its shim lingers 2-6 s after its client died, up to 15 s in a burst of 30 (containerd 1.6.20).
# Well below the agent's own start timeout.
STALE_PATIENCE_S = 30.0
_CREATE_ATTEMPTS = 4  # the first, and a few more while containerd's clean-up of an old bundle settles
_RETRY_S = 0.1
_STATUSES: dict[int, TaskStatus] = {0: "unknown", 1: "created", 2: "running", 3: "stopped", 4: "paused", 5: "pausing"}
_CGROUPS_V1_METRICS = "io.containerd.cgroups.v1.Metrics"


class Tasks:
    def __init__(self, channel: Channel, leftovers: ShimLeftovers) -> None:
        self._channel, self._leftovers = channel, leftovers

    async def start(self, container_id: str, rootfs: Mounts, stdout: Path, stderr: Path) -> int:
        """Create and start the container's task on `rootfs`, output appended to the given existing files; its pid.

        A task, shim or bundle that an earlier start of this container left (the agent died during Tasks.Create,
        or the call was cancelled) is cleared first, and a Create that still meets one is made again (a few times,
        within STALE_PATIENCE_S).
        """
        second_name = _second_name(stdout) if stdout == stderr else None
        request = tasks_pb2.CreateTaskRequest(container_id=container_id, rootfs=rootfs, stdout=str(stdout),
                                              stderr=str(second_name or stderr))
        try:
            await self._create_all(container_id, request)
        finally:
            if second_name is not None:
                second_name.unlink(missing_ok=True)  # the shim holds its own handle on the file by now
        try:
            reply = await self._channel.call("tasks.v1.Tasks/Start", tasks_pb2.ProcessRef(container_id=container_id), tasks_pb2.StartResponse)
        except BaseException:
            await asyncio.shield(self.delete(container_id))
            raise
        return int(reply.pid)

    async def _create_all(self, container_id: str, request: Any) -> None:  # a CreateTaskRequest
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STALE_PATIENCE_S
        if self._leftovers.suspected(container_id):  # else a new shim may be handed to an orphaned one's socket
            await self.clear_stale(container_id, patience=STALE_PATIENCE_S)
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            try:
                await self._create(request)
                break
            except RuntimeCallFailed as exc:
                if attempt == _CREATE_ATTEMPTS or loop.time() >= deadline or not _left_by_earlier_start(exc, container_id):
                    raise
            await self.clear_stale(container_id, patience=max(0.0, deadline - loop.time()))
            await asyncio.sleep(_RETRY_S)

    async def _create(self, request: Any) -> None:  # a CreateTaskRequest
        try:
            await self._channel.call("tasks.v1.Tasks/Create", request, tasks_pb2.CreateTaskResponse)
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                raise ContainerNotFound(f"container {request.container_id} not found: {exc.message}") from None
            raise

    async def clear_stale(self, container_id: str, *, patience: float) -> None:
        """Remove what an earlier life of the container left: containerd's task (killed, then deleted) or, when
        containerd lists none, the shim and bundle of a cut-off Tasks.Create (see `ShimLeftovers.clear`)."""
        info = await self.info(container_id)
        if info is None:
            if self._leftovers.suspected(container_id):
                await self._leftovers.clear(container_id, patience)
            return
        if info.status != "stopped":
            await self.kill(container_id, signal.SIGKILL, all=True)
            try:
                await self._channel.call(
                    "tasks.v1.Tasks/Wait", tasks_pb2.ProcessRef(container_id=container_id), tasks_pb2.WaitResponse,
                    deadline=QUICK_S,
                )
            except RuntimeCallFailed:
                pass  # gone meanwhile: the delete below settles it
        await self.delete(container_id)

    def remove_abandoned_bundle(self, container_id: str) -> None:
        """Remove a bundle that a failed or cut-off Tasks.Create left and that no shim serves (now, no waiting)."""
        if self._leftovers.suspected(container_id):
            self._leftovers.remove_abandoned(container_id)

    async def wait(self, container_id: str) -> ExitStatus:
        """Block until the task's init process exits (no deadline)."""
        try:
            reply = await self._channel.call("tasks.v1.Tasks/Wait", tasks_pb2.ProcessRef(container_id=container_id), tasks_pb2.WaitResponse)
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                raise ContainerNotFound(f"no task for container {container_id}") from None
            raise
        return ExitStatus(int(reply.exit_status), timestamp(reply.exited_at))

    async def kill(self, container_id: str, signal_number: int, all: bool = False) -> bool:
        """Signal the init process (or every process with `all`); False if there is no running task."""
        try:
            await self._channel.call(
                "tasks.v1.Tasks/Kill", tasks_pb2.KillRequest(container_id=container_id, signal=signal_number, all=all),
                empty_pb2.Empty,
            )
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":  # no task, or "process already finished"
                return False
            raise
        return True

    async def delete(self, container_id: str) -> ExitStatus | None:
        """Delete a stopped (or never started) task; None if there was none. Output files are complete after this."""
        try:
            reply = await self._channel.call(
                "tasks.v1.Tasks/Delete", tasks_pb2.TaskRef(container_id=container_id), tasks_pb2.DeleteTaskResponse
            )
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        return ExitStatus(int(reply.exit_status), timestamp(reply.exited_at))

    async def info(self, container_id: str) -> TaskInfo | None:
        try:
            reply = await self._channel.call(
                "tasks.v1.Tasks/Get", tasks_pb2.ProcessRef(container_id=container_id), tasks_pb2.GetTaskResponse
            )
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        process = reply.process
        status = _STATUSES.get(process.status, "unknown")
        exit_status = ExitStatus(int(process.exit_status), timestamp(process.exited_at)) if status == "stopped" else None
        return TaskInfo(status=status, pid=int(process.pid), exit_status=exit_status)

    async def pids(self, container_id: str) -> list[int]:
        try:
            reply = await self._channel.call(
                "tasks.v1.Tasks/ListPids", tasks_pb2.TaskRef(container_id=container_id), tasks_pb2.ListPidsResponse
            )
        except RuntimeCallFailed as exc:
            if exc.code == "NOT_FOUND":
                raise ContainerNotFound(f"no task for container {container_id}") from None
            raise
        return [int(p.pid) for p in reply.processes]

    async def metrics(self, container_id: str) -> TaskMetrics | None:
        """cgroup v1 counters of a running task, or None (no task, or not a cgroup v1 host)."""
        reply = await self._channel.call(
            "tasks.v1.Tasks/Metrics", tasks_pb2.MetricsRequest(filters=[f"id=={quote(container_id)}"]),
            tasks_pb2.MetricsResponse,
        )
        for metric in reply.metrics:
            if metric.id == container_id and metric.data.type_url.endswith(_CGROUPS_V1_METRICS):
                data = cgroups_v1_pb2.CgroupMetrics.FromString(metric.data.value)
                return TaskMetrics(
                    memory_usage=data.memory.usage.usage, memory_max_usage=data.memory.usage.max,
                    memory_limit=data.memory.usage.limit, cpu_total_ns=data.cpu.usage.total,
                    pids=data.pids.current, oom_kills=data.memory_oom_control.oom_kill,
                )
        return None


def _second_name(output: Path) -> Path | None:
    """A symlink beside `output` to hand the shim as stderr, so that it opens the file twice; None if none
    can be made there (the shim then reports the missing file or directory itself).

    containerd 1.6's shim, given one path for both streams, gives stdout's copier the file itself and only
    stderr's copier the shared, counted handle: when stdout's pipe ended first it closed the file, and what
    stderr still had to copy was lost (8 runs in 200 with a line on each stream, 8 at a time). With two
    names each copier has its own O_APPEND handle, and the streams interleave as before.
    """
    link = output.with_name(f".{output.name}.stderr")
    try:
        link.unlink(missing_ok=True)  # left by a start cut off before it removed it
        link.symlink_to(output.name)
    except OSError:
        return None
    return link


def _left_by_earlier_start(error: RuntimeCallFailed, container_id: str) -> bool:
    """Whether Tasks.Create failed on what an earlier start of the container left: its task, its bundle directory,
    or containerd's clean-up of that bundle still under way."""
    if error.code == "ALREADY_EXISTS":  # "task <id>: already exists"
        return True
    message = error.message  # host paths are already cut to their last component here
    # containerd's NewBundle: "failed to start shim: mkdir <state>/io.containerd.runtime.v2.task/<ns>/<id>: file exists"
    if f"mkdir {container_id}: file exists" in message:
        return True
    # The old bundle's last clean-up deleted the new one under this Create ("symlink <id> work", "open config.json",
    # "getwd": no such file or directory): seen only under load, after the old shim had exited.
    return "failed to start shim" in message and "no such file or directory" in message
