"""The agent's metadata endpoint at 169.254.170.2:80: one listener per VPC, born in the VPC router's namespace.

Every listener serves the same registry of tasks; the listener a request came in on says its VPC, and its
source address says which task is asking.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass

from aiohttp import web

from fargo.agent.metadata.credentials import TaskCredentials
from fargo.agent.metadata.handlers import build_app
from fargo.agent.metadata.rate_limit import RequestLimiter
from fargo.agent.metadata.registry import MetadataTask, TaskRegistry
from fargo.network.netns import run_in_netns

__all__ = ["METADATA_ADDRESS", "METADATA_PORT", "MetadataServer", "MetadataTask"]

METADATA_ADDRESS = "169.254.170.2"
METADATA_PORT = 80
# The agent's tollbooth limits (DefaultTaskMetadataSteadyStateRate, DefaultTaskMetadataBurstRate).
DEFAULT_RATE = 40.0
DEFAULT_BURST = 60
# On close a listener waits this long for requests under way; metadata answers take about a millisecond.
_SHUTDOWN_GRACE = 1.0
# The agent's http.Server has 5 s read and write timeouts, which also end idle keep-alive connections.
_IDLE_TIMEOUT = 5.0
_log = logging.getLogger(__name__)


@dataclass
class _Listener:
    where: tuple[int, int, str, int]  # the namespace (device, inode), address and port
    sock: socket.socket
    runner: web.AppRunner


class MetadataServer:
    """`serve` each VPC, `register` each task; `close_vpc` before the VPC's namespace goes."""

    def __init__(self, credentials: TaskCredentials, rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST) -> None:
        self._credentials = credentials
        self._limiter = RequestLimiter(rate, burst)
        self._registry = TaskRegistry()
        self._listeners: dict[str, _Listener] = {}
        self._changing = asyncio.Lock()  # serve/close calls do not interleave

    async def serve(
        self, vpc_id: str, netns_path: str, address: str = METADATA_ADDRESS, port: int = METADATA_PORT
    ) -> None:
        """Serve `vpc_id` on TCP address:port inside the namespace at `netns_path`.

        Again with the same namespace, address and port: nothing changes; with another (a router made again),
        the listener moves. Raises OSError if binding fails (e.g. the address is not in that namespace).
        """
        async with self._changing:
            where = (*_netns_identity(netns_path), address, port)
            listener = self._listeners.get(vpc_id)
            if listener is not None and listener.where == where:
                return
            await self._stop(vpc_id)
            sock = await asyncio.to_thread(_listening_socket, netns_path, address, port)
            runner = web.AppRunner(
                build_app(vpc_id, self._registry, self._credentials, self._limiter),
                access_log=None,  # a credentials path is a bearer secret of its task: never log it
                shutdown_timeout=_SHUTDOWN_GRACE,
                keepalive_timeout=_IDLE_TIMEOUT,
            )
            try:
                await runner.setup()
                await web.SockSite(runner, sock).start()
            except BaseException:
                await runner.cleanup()
                sock.close()
                raise
            self._listeners[vpc_id] = _Listener(where, sock, runner)
            _log.info("metadata endpoint of %s on %s:%d", vpc_id, address, port)

    async def close_vpc(self, vpc_id: str) -> None:
        """Stop serving the VPC and close its listening socket; nothing to do if it was not served."""
        async with self._changing:
            await self._stop(vpc_id)

    @property
    def credentials(self) -> TaskCredentials:
        """The credentials it serves: the metadata hook issues and revokes each task's here."""
        return self._credentials

    def register(self, task: MetadataTask) -> None:
        """Answer for the task from now on (again with the same task id: replaces it)."""
        self._registry.register(task)

    def unregister(self, task_id: str) -> None:
        task = self._registry.unregister(task_id)
        if task is not None:
            self._limiter.forget((task.vpc_id, task.ip))

    def serves(self, vpc_id: str) -> bool:
        return vpc_id in self._listeners

    async def close(self) -> None:
        """Stop every listener (the agent's shutdown); registered tasks are kept."""
        async with self._changing:
            for vpc_id in list(self._listeners):
                await self._stop(vpc_id)

    async def _stop(self, vpc_id: str) -> None:
        listener = self._listeners.pop(vpc_id, None)
        if listener is None:
            return
        try:
            await listener.runner.cleanup()
        finally:
            listener.sock.close()  # the site closed it too; this makes sure before the namespace is deleted


def _netns_identity(netns_path: str) -> tuple[int, int]:
    status = os.stat(netns_path)
    return status.st_dev, status.st_ino


def _listening_socket(netns_path: str, address: str, port: int) -> socket.socket:
    """A listening TCP socket on address:port, born in the namespace at `netns_path`."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebind despite connections in TIME_WAIT
            sock.bind((address, port))
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    return run_in_netns(netns_path, make)
