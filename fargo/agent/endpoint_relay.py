"""The VPC endpoint: in each VPC router, TCP port 80 of the endpoint address (base + 3) relayed to the edge port.

Fargo serves ECR, Secrets Manager, SSM and ECS on its one edge port in the host namespace; a task reaches them
here from any subnet, even one with no way out, as it would reach interface VPC endpoints on AWS (the VPC
resolver gives their names this address). Each connection is copied byte for byte both ways, half-closes
passed on; an edge that cannot be reached closes the client at once.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass

from fargo.network.netns import tcp_listener_in_netns

__all__ = ["ENDPOINT_PORT", "EndpointRelay"]

ENDPOINT_PORT = 80
# Image layers of 100 MB pass through here: large reads keep the copying to a few hundred loop turns.
_CHUNK = 256 * 1024
_CONNECT_TIMEOUT = 5.0
# The listening socket is gone: accepting cannot go on. Other errors (EMFILE, ENOBUFS, ...) pass.
_FATAL_ACCEPT_ERRORS = (errno.EBADF, errno.ENOTSOCK, errno.EINVAL)
_log = logging.getLogger(__name__)


@dataclass
class _Listener:
    where: tuple[int, int, str, int]  # the namespace (device, inode), address and port
    sock: socket.socket
    task: asyncio.Task[None]  # accepts, and owns every relayed connection of the VPC


class EndpointRelay:
    """A RouterServer (fargo.agent.vpc_networks): `serve` each VPC; `close_vpc` before its namespace goes."""

    def __init__(self, edge: tuple[str, int], port: int = ENDPOINT_PORT,
                 connect_timeout: float = _CONNECT_TIMEOUT) -> None:
        """`edge`: the (host, port) the edge listens on in the host namespace; a wildcard host means loopback."""
        host, edge_port = edge
        self._edge = (_dialable(host), edge_port)
        self._edge_family = _family(self._edge[0])
        self._port = port
        self._connect_timeout = connect_timeout
        self._listeners: dict[str, _Listener] = {}
        self._changing = asyncio.Lock()  # serve/close calls do not interleave

    @property
    def edge(self) -> tuple[str, int]:
        return self._edge

    async def serve(self, vpc_id: str, netns_path: str, address: str) -> None:
        """Relay TCP `address`:port inside the namespace at `netns_path` to the edge.

        Again with the same namespace and address: nothing changes; with another (a router made again), the
        listener moves. Raises OSError if binding fails (e.g. the address is not in that namespace).
        """
        async with self._changing:
            status = os.stat(netns_path)
            where = (status.st_dev, status.st_ino, address, self._port)
            listener = self._listeners.get(vpc_id)
            if listener is not None and listener.where == where and not listener.task.done():
                return
            await self._stop(vpc_id)
            sock = await asyncio.to_thread(tcp_listener_in_netns, netns_path, address, self._port)
            task = asyncio.create_task(self._accept(vpc_id, sock), name=f"vpc-endpoint-{vpc_id}")
            self._listeners[vpc_id] = _Listener(where, sock, task)
            _log.info("VPC endpoint of %s on %s:%d, relayed to %s:%d", vpc_id, address, self._port, *self._edge)

    def serves(self, vpc_id: str) -> bool:
        listener = self._listeners.get(vpc_id)
        return listener is not None and not listener.task.done()

    async def close_vpc(self, vpc_id: str) -> None:
        """Stop serving the VPC: its listener and every connection it relays are closed."""
        async with self._changing:
            await self._stop(vpc_id)

    async def close(self) -> None:
        async with self._changing:
            for vpc_id in list(self._listeners):
                await self._stop(vpc_id)

    async def _stop(self, vpc_id: str) -> None:
        listener = self._listeners.pop(vpc_id, None)
        if listener is None:
            return
        listener.task.cancel()
        await asyncio.wait([listener.task])
        listener.sock.close()  # accepted sockets were closed by their relays: nothing pins the namespace

    async def _accept(self, vpc_id: str, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as relays:
            while True:
                try:
                    client, _ = await loop.sock_accept(listening)
                except OSError as error:
                    if error.errno in _FATAL_ACCEPT_ERRORS:
                        _log.error("VPC endpoint of %s stopped: %r", vpc_id, error)
                        return
                    _log.warning("VPC endpoint of %s: accepting: %r", vpc_id, error)
                    await asyncio.sleep(0.1)  # e.g. out of file descriptors: do not spin
                    continue
                relays.create_task(self._relay(client))

    async def _relay(self, client: socket.socket) -> None:
        """One connection, to its end; never raises (a relay's failure ends only itself)."""
        loop = asyncio.get_running_loop()
        edge = socket.socket(self._edge_family, socket.SOCK_STREAM)
        try:
            client.setblocking(False)
            edge.setblocking(False)
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await loop.sock_connect(edge, self._edge)
            except (OSError, TimeoutError) as error:
                _log.warning("VPC endpoint: the edge at %s:%d cannot be reached: %r", *self._edge, error)
                return  # the client is closed below at once: it sees the endpoint refuse, not hang
            for sock in (client, edge):
                # Requests and replies are written as they come: no wait for more to fill a segment.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            async with asyncio.TaskGroup() as both_ways:
                both_ways.create_task(_copy(client, edge))
                both_ways.create_task(_copy(edge, client))
        except* OSError:
            pass  # a side reset or went away: both are closed below
        except* Exception:  # a bug here must not end the VPC's other connections
            _log.exception("VPC endpoint: relaying a connection failed")
        finally:
            client.close()
            edge.close()


async def _copy(source: socket.socket, sink: socket.socket) -> None:
    """Everything `source` sends, to `sink`; its end of data becomes `sink`'s (a half-close)."""
    loop = asyncio.get_running_loop()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    while True:
        count = await loop.sock_recv_into(source, buffer)
        if count == 0:
            sink.shutdown(socket.SHUT_WR)
            return
        await loop.sock_sendall(sink, view[:count])


def _dialable(host: str) -> str:
    """The address to connect to for an edge listening on `host` (0.0.0.0 or :: listen on loopback too)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host  # a name: looked up in the host namespace on each connect
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "::1"
    return str(address)


def _family(host: str) -> int:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET
