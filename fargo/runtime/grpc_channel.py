"""The one gRPC channel to containerd: namespace (and lease) metadata on every call, a default deadline per method,
and the one translation of gRPC errors into `fargo.runtime.errors`. The service modules call containerd only
through `Channel` (only the daemon probe in containerd_daemon has its own); nothing outside runtime/ imports grpc.
"""
from __future__ import annotations

import enum
import json
from collections.abc import AsyncGenerator
from datetime import datetime, timezone
from typing import Any, Final, Generic, TypeVar

import grpc
from google.protobuf import message, timestamp_pb2

from fargo.runtime.errors import ContainerdUnavailable, ContainerRuntimeError, RuntimeCallFailed, RuntimeTimeout

M = TypeVar("M", bound=message.Message)

# Default deadlines, in seconds, by what stands behind a call.
QUICK_S: Final = 10.0  # metadata in containerd's database: records, stats, lists, signals
SLOW_S: Final = 60.0  # a shim, runc or the disk does the work: tasks made and removed, rootfs deleted, GC passes
TRANSFER_S: Final = 600.0  # image bytes: one blob written or read, one layer unpacked
VERSION_S: Final = 5.0  # the liveness probe: a containerd that cannot answer this is as good as gone

# Methods whose default is not QUICK_S. None: no deadline, for calls that last as long as what they watch.
_DEADLINES: Final[dict[str, float | None]] = {
    "version.v1.Version/Version": VERSION_S,
    "tasks.v1.Tasks/Create": SLOW_S,
    "tasks.v1.Tasks/Start": SLOW_S,
    "tasks.v1.Tasks/Delete": SLOW_S,  # waits up to 2 s for output to flush, then runc delete and unmount
    "tasks.v1.Tasks/Exec": SLOW_S,
    "tasks.v1.Tasks/DeleteProcess": SLOW_S,
    "tasks.v1.Tasks/Wait": None,  # until the process exits
    "events.v1.Events/Subscribe": None,  # a stream for the life of the agent
    "snapshots.v1.Snapshots/Remove": SLOW_S,  # overlayfs deletes the container's writable layer inline
    "images.v1.Images/Delete": SLOW_S,  # sync=True waits for a GC pass
    "content.v1.Content/Write": TRANSFER_S,
    "content.v1.Content/Read": TRANSFER_S,
    "diff.v1.Diff/Apply": TRANSFER_S,
}


class _Default(enum.Enum):
    DEADLINE = "default"


DEFAULT: Final = _Default.DEADLINE


def default_deadline(path: str) -> float | None:
    """The deadline a call of `path` ("tasks.v1.Tasks/Create") gets unless its caller says otherwise."""
    return _DEADLINES.get(path, QUICK_S)


def translate(error: grpc.aio.AioRpcError, call: str, deadline: float | None) -> ContainerRuntimeError:
    """The Fargo exception for a failed call; the one place that reads gRPC status codes."""
    code = error.code()
    detail = error.details() or (code.name if code else "UNKNOWN")
    # containerd reports a deadline that reached it (the client's, propagated) as UNKNOWN.
    if code == grpc.StatusCode.DEADLINE_EXCEEDED or (
        code == grpc.StatusCode.UNKNOWN and "context deadline exceeded" in detail
    ):
        within = f" within {deadline:g} s" if deadline is not None else ""
        return RuntimeTimeout(f"{call}: containerd did not finish{within}: {detail}", call, deadline)
    if code == grpc.StatusCode.UNAVAILABLE:
        return ContainerdUnavailable(f"{call}: containerd unavailable: {detail}")
    return RuntimeCallFailed(f"{call}: {detail}", code.name if code else "UNKNOWN")


class Channel:
    """One grpc.aio channel to containerd for one namespace; every call goes through `call`, `stream` or `duplex`."""

    def __init__(self, address: str, namespace: str) -> None:
        self.address = address if address.startswith("unix:") else f"unix://{address}"
        self.namespace = namespace
        self._metadata = (("containerd-namespace", namespace),)
        self._channel = grpc.aio.insecure_channel(
            self.address,
            options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
        )
        self._methods: dict[str, Any] = {}

    async def close(self) -> None:
        await self._channel.close()

    async def call(
        self, path: str, request: message.Message, response: type[M], *, lease: str | None = None,
        deadline: float | None | _Default = DEFAULT,
    ) -> M:
        """A unary call of `path` (e.g. "tasks.v1.Tasks/Create"), by default with the method's deadline."""
        seconds = default_deadline(path) if deadline is DEFAULT else deadline
        try:
            result: M = await self._method("unary_unary", path, response)(
                request, metadata=self._call_metadata(lease), timeout=seconds
            )
        except grpc.aio.AioRpcError as error:
            raise translate(error, _short(path), seconds) from None
        return result

    async def stream(self, path: str, request: message.Message, response: type[M]) -> AsyncGenerator[M, None]:
        """The replies of a server-streaming call; a cancel from our side just ends the stream."""
        seconds = default_deadline(path)
        call = self._method("unary_stream", path, response)(request, metadata=self._metadata, timeout=seconds)
        try:
            async for reply in call:
                yield reply
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise translate(error, _short(path), seconds) from None
        finally:
            call.cancel()

    def duplex(self, path: str, response: type[M], *, lease: str | None = None) -> Duplex[M]:
        """A bidirectional stream (Content.Write): one reply for each request written."""
        seconds = default_deadline(path)
        call = self._method("stream_stream", path, response)(metadata=self._call_metadata(lease), timeout=seconds)
        return Duplex(call, _short(path), seconds)

    def _call_metadata(self, lease: str | None) -> tuple[tuple[str, str], ...]:
        return self._metadata + ((("containerd-lease", lease),) if lease else ())

    def _method(self, kind: str, path: str, response: type[message.Message]) -> Any:
        method = self._methods.get(path)
        if method is None:
            method = getattr(self._channel, kind)(
                f"/containerd.services.{path}",
                request_serializer=_serialize,
                response_deserializer=response.FromString,
            )
            self._methods[path] = method
        return method


class Duplex(Generic[M]):
    """A bidirectional call: in lock-step (`exchange`), or requests sent ahead of their replies (`send`, then
    `receive` once per request, in order); errors arrive translated, like every other call's."""

    def __init__(self, call: Any, name: str, seconds: float | None) -> None:
        self._call, self._name, self._seconds = call, name, seconds

    async def exchange(self, request: message.Message) -> M | None:
        """Write one request and read its reply (None if the server ended the stream)."""
        await self.send(request)
        return await self.receive()

    async def send(self, request: message.Message | bytes) -> None:
        try:
            await self._call.write(request)
        except grpc.aio.AioRpcError as error:
            raise translate(error, self._name, self._seconds) from None

    async def receive(self) -> M | None:
        """The next reply (None if the server ended the stream)."""
        try:
            reply = await self._call.read()
        except grpc.aio.AioRpcError as error:
            raise translate(error, self._name, self._seconds) from None
        return None if reply is grpc.aio.EOF else reply

    async def finish(self) -> None:
        try:
            await self._call.done_writing()
        except grpc.aio.AioRpcError as error:
            raise translate(error, self._name, self._seconds) from None

    def cancel(self) -> None:
        self._call.cancel()


def _serialize(request: message.Message | bytes) -> bytes:
    """A request's wire form; bytes are one encoded already (a Content.Write of a download's chunk)."""
    return request if isinstance(request, bytes) else request.SerializeToString()


def _short(path: str) -> str:
    """The name error messages give a call: "Tasks/Create" for "tasks.v1.Tasks/Create"."""
    return path.rpartition(".")[2]


def timestamp(ts: timestamp_pb2.Timestamp) -> datetime | None:
    """A protobuf Timestamp as an aware datetime; containerd's zero value means "not set"."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    moment: datetime = ts.ToDatetime(tzinfo=timezone.utc)
    return moment


def quote(value: str) -> str:
    """A quoted string for containerd's filter syntax."""
    return json.dumps(value)
