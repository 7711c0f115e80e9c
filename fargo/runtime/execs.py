"""Extra processes in a running task (containerd's Tasks.Exec): health checks and the like. Each runs with a
copy of its container's OCI `process`, has /dev/null for stdio, and is deleted whatever happens to it.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from google.protobuf import any_pb2, empty_pb2

from fargo.runtime.containers import Containers
from fargo.runtime.errors import ContainerNotFound, ExecTimedOut, RuntimeCallFailed
from fargo.runtime.grpc_channel import Channel
from fargo.runtime.protos import tasks_pb2

PROCESS_SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process"
_CLEANUP_DEADLINE_S = 10.0  # for each kill/wait/delete of an exec process being discarded


@dataclass
class _ExecState:
    """How far an exec got, so its cleanup knows whether to kill and delete it."""

    added: bool = False
    exited: bool = False


class Execs:
    def __init__(self, channel: Channel, containers: Containers) -> None:
        self._channel, self._containers = channel, containers

    async def run(
        self, container_id: str, exec_id: str, args: list[str], *, timeout: float,
        env: list[str] | None, cwd: str | None, user: tuple[int, int] | None,
    ) -> int:
        """Run `args` in the container's task and return its exit code (see `Containerd.exec_process`)."""
        if not exec_id or exec_id == container_id:
            raise ValueError("exec_id must be non-empty and differ from the container id")  # else its exit looks like the task's
        process = _exec_process_spec(await self._containers.process_spec(container_id), args, env, cwd, user)
        # All stdio empty: the shim hands runc /dev/null and makes no FIFOs, files or copy goroutines.
        request = tasks_pb2.ExecProcessRequest(
            container_id=container_id, exec_id=exec_id,
            spec=any_pb2.Any(type_url=PROCESS_SPEC_TYPE_URL, value=json.dumps(process, separators=(",", ":")).encode()),
        )
        ref = tasks_pb2.ProcessRef(container_id=container_id, exec_id=exec_id)
        state = _ExecState()
        try:
            # An asyncio timeout, not a gRPC deadline: containerd reports a propagated deadline as UNKNOWN.
            return await asyncio.wait_for(self._run(request, ref, state), timeout)
        except asyncio.TimeoutError:
            raise ExecTimedOut(f"exec {exec_id} in {container_id}: still running after {timeout} s, killed") from None
        finally:
            if state.added:  # shielded: a cancelled health check must not leave the exec process behind
                await asyncio.shield(self._discard(ref, kill=not state.exited))

    async def _run(self, request: Any, ref: Any, state: _ExecState) -> int:  # ExecProcessRequest, ProcessRef
        state.added = True  # until Exec definitely fails: a cancel mid-call may still have added it
        try:
            await self._channel.call("tasks.v1.Tasks/Exec", request, empty_pb2.Empty)
        except RuntimeCallFailed as exc:
            state.added = False  # nothing was added (ALREADY_EXISTS: that id is another exec's, leave it)
            if exc.code == "NOT_FOUND":
                raise ContainerNotFound(f"no task for container {ref.container_id}: {exc.message}") from None
            raise
        await self._channel.call("tasks.v1.Tasks/Start", ref, tasks_pb2.StartResponse)
        reply = await self._channel.call("tasks.v1.Tasks/Wait", ref, tasks_pb2.WaitResponse)
        state.exited = True
        return int(reply.exit_status)

    async def _discard(self, ref: Any, *, kill: bool) -> None:
        """Delete an exec process, first SIGKILLing and reaping it if it may still run; gone already is fine."""
        if kill:
            kill_request = tasks_pb2.KillRequest(container_id=ref.container_id, exec_id=ref.exec_id, signal=9)
            for path, request, response in (
                ("tasks.v1.Tasks/Kill", kill_request, empty_pb2.Empty),
                ("tasks.v1.Tasks/Wait", ref, tasks_pb2.WaitResponse),
            ):
                try:
                    await self._channel.call(path, request, response, deadline=_CLEANUP_DEADLINE_S)
                except RuntimeCallFailed:
                    pass  # never started, already exited, or gone: the delete below settles it
        try:
            await self._channel.call("tasks.v1.Tasks/DeleteProcess", ref, tasks_pb2.DeleteTaskResponse, deadline=_CLEANUP_DEADLINE_S)
        except RuntimeCallFailed as exc:
            if exc.code != "NOT_FOUND":
                raise


def _exec_process_spec(
    base: dict[str, Any], args: list[str], env: list[str] | None, cwd: str | None, user: tuple[int, int] | None
) -> dict[str, Any]:
    """An exec's OCI process: the container's, with new args, no terminal and the given overrides."""
    process = {key: value for key, value in base.items() if key != "consoleSize"}  # shallow: base stays untouched
    process["args"] = list(args)
    process["terminal"] = False
    if env:
        merged = {item.partition("=")[0]: item for item in base.get("env") or []}
        merged.update({item.partition("=")[0]: item for item in env})
        process["env"] = list(merged.values())
    if cwd is not None:
        process["cwd"] = cwd
    if user is not None:
        process["user"] = {"uid": user[0], "gid": user[1]}  # the container user's extra groups do not carry over
    return process
