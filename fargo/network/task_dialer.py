"""Dialing out as a task does: aiohttp connectors whose sockets live in the task's network namespace and whose
names are looked up by asking the VPC resolver from inside that namespace.

On platform 1.4.0 the agent pulls images and fetches secrets over the task ENI (as Fargate does), so a task in a
subnet with no way out reaches only what its VPC reaches. `TaskDialer(None, None)` is the host's own path
(1.3.0). A name that does not resolve raises `DnsLookupError`, whose text is Go's, as containerd and the
Fargate agent report it.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import struct
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from dnslib import QTYPE, RCODE, DNSRecord

from fargo.network import ipam
from fargo.network.dns_tcp import framed
from fargo.network.names import DEFAULT_PREFIX, netns_name, netns_path
from fargo.network.netns import socket_in_netns
from fargo.protocol.messages import EniPlan

__all__ = ["DnsLookupError", "TaskDialer"]

DNS_PORT = 53
# The task's /etc/resolv.conf says `timeout:2 attempts:5` (vpc_resolver.resolv_conf_text), as EC2's does.
DNS_TIMEOUT = 2.0
DNS_ATTEMPTS = 5
_MAX_UDP_REPLY = 4096
_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
# Go's texts (net/dnsclient_unix.go, net/net.go).
_NO_SUCH_HOST = "no such host"
_MISBEHAVING = "server misbehaving"
_TIMEOUT = "i/o timeout"


class DnsLookupError(OSError):
    """A name that did not resolve. str() is Go's text: `lookup <name> on <server>:53: no such host` (or
    `...: server misbehaving`, `...: read udp <local>-><server>:53: i/o timeout`)."""

    def __init__(self, text: str, *, not_found: bool = False, timed_out: bool = False) -> None:
        # An errno, so aiohttp reports it as a DNS failure (ClientConnectorDNSError, strerror = the text)
        # rather than letting it pass as a bare timeout.
        super().__init__(errno.EHOSTUNREACH if not_found else errno.EAGAIN, text)
        self.text = text
        self.not_found = not_found
        self.timed_out = timed_out

    def __str__(self) -> str:
        return self.text


class TaskDialer:
    """Connections from a network namespace (None: the host's), names looked up by `dns_server` (None: the
    host's resolver; given, it is asked over UDP, TCP when a reply is truncated, from a socket in there)."""

    def __init__(self, netns_path: str | None, dns_server: str | None, *, dns_port: int = DNS_PORT,
                 dns_timeout: float = DNS_TIMEOUT, dns_attempts: int = DNS_ATTEMPTS) -> None:
        self.netns_path = netns_path
        self.dns_server = dns_server
        self._resolver = (_NamespaceResolver(netns_path, dns_server, dns_port, dns_timeout, dns_attempts)
                          if dns_server is not None else None)

    @classmethod
    def for_task(cls, task_id: str, eni: EniPlan, prefix: str = DEFAULT_PREFIX) -> TaskDialer:
        """The task ENI's path: the task's namespace, and its VPC's resolver (base + 2)."""
        return cls(netns_path(netns_name(task_id, prefix)), ipam.resolver_ip(eni.vpc_cidr))

    @classmethod
    def host(cls) -> TaskDialer:
        return cls(None, None)

    def connector(self, **kwargs: Any) -> aiohttp.TCPConnector:
        """A new TCPConnector (the caller closes it); `kwargs` go to it (limit, ssl, ttl_dns_cache, ...)."""
        if self._resolver is not None:
            kwargs.setdefault("resolver", self._resolver)
            kwargs.setdefault("family", socket.AF_INET)  # the resolver gives IPv4 only: Fargo's VPCs are IPv4
        if self.netns_path is not None:
            kwargs.setdefault("socket_factory", self._socket)
        return aiohttp.TCPConnector(**kwargs)

    async def resolve(self, host: str) -> list[str]:
        """The IPv4 addresses of `host` as this dialer sees them (an IP literal is itself)."""
        if self._resolver is None:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, family=socket.AF_INET,
                                                                 type=socket.SOCK_STREAM)
            return list(dict.fromkeys(str(info[4][0]) for info in infos))
        return await self._resolver.addresses(host)

    def _socket(self, addr_info: tuple[Any, ...]) -> socket.socket:
        family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
        assert self.netns_path is not None
        return socket_in_netns(self.netns_path, family, kind, proto)


class _NamespaceResolver(AbstractResolver):
    """A stub resolver asking one DNS server from inside a namespace, as Go's resolver would from a task."""

    def __init__(self, netns_path: str | None, server: str, port: int, timeout: float, attempts: int) -> None:
        self._netns_path = netns_path
        self._server = (str(ipaddress.IPv4Address(server)), port)
        self._timeout = timeout
        self._attempts = max(1, attempts)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=_NUMERIC)
            for address in await self.addresses(host)
        ]

    async def close(self) -> None:
        pass  # a socket lives for one question only

    async def addresses(self, host: str) -> list[str]:
        name = host.rstrip(".")
        try:
            return [str(ipaddress.IPv4Address(name))]
        except ValueError:
            pass
        if name.lower() == "localhost":
            return ["127.0.0.1"]  # from /etc/hosts, for Go too
        failure = ""
        for _ in range(self._attempts):
            try:
                reply = await self._ask(name)
            except TimeoutError as timeout:
                failure = str(timeout)
                continue
            except OSError as error:
                raise self._error(name, str(error)) from None
            if reply.header.rcode == RCODE.NXDOMAIN:
                raise self._error(name, _NO_SUCH_HOST, not_found=True)
            if reply.header.rcode != RCODE.NOERROR:
                failure = _MISBEHAVING
                continue  # Go tries again, then says so
            found = [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]
            if not found:
                raise self._error(name, _NO_SUCH_HOST, not_found=True)
            return list(dict.fromkeys(found))
        raise self._error(name, failure, timed_out=failure.endswith(_TIMEOUT))

    def _error(self, name: str, cause: str, **kind: bool) -> DnsLookupError:
        return DnsLookupError(f"lookup {name} on {self._server[0]}:{self._server[1]}: {cause}", **kind)

    async def _ask(self, name: str) -> DNSRecord:
        """One A question over UDP; again over TCP if the reply is truncated. TimeoutError carries Go's text."""
        query = DNSRecord.question(name, "A")
        reply = await self._ask_udp(query)
        if reply.header.tc:
            reply = await self._ask_tcp(query)
        return reply

    def _new_socket(self, kind: int) -> socket.socket:
        # Made on the loop's thread: a namespace's socket costs a short-lived thread (about 0.1 ms).
        if self._netns_path is None:
            sock = socket.socket(socket.AF_INET, kind)
        else:
            sock = socket_in_netns(self._netns_path, socket.AF_INET, kind)
        sock.setblocking(False)
        return sock

    async def _ask_udp(self, query: DNSRecord) -> DNSRecord:
        loop = asyncio.get_running_loop()
        with self._new_socket(socket.SOCK_DGRAM) as sock:
            sock.connect(self._server)  # UDP: no packet; the kernel then hands us only the server's datagrams
            local = _address(sock.getsockname())
            try:
                await loop.sock_sendall(sock, query.pack())
                async with asyncio.timeout(self._timeout):
                    while True:
                        reply = _reply_to(query, await loop.sock_recv(sock, _MAX_UDP_REPLY))
                        if reply is not None:
                            return reply
            except TimeoutError:
                raise TimeoutError(f"read udp {local}->{_address(self._server)}: {_TIMEOUT}") from None
            except OSError as error:
                raise OSError(error.errno, f"read udp {local}->{_address(self._server)}: read: "
                                           f"{_go_errno_text(error)}") from None

    async def _ask_tcp(self, query: DNSRecord) -> DNSRecord:
        loop = asyncio.get_running_loop()
        server = _address(self._server)
        with self._new_socket(socket.SOCK_STREAM) as sock:
            try:
                async with asyncio.timeout(self._timeout):
                    await loop.sock_connect(sock, self._server)
            except TimeoutError:
                raise TimeoutError(f"dial tcp {server}: {_TIMEOUT}") from None
            except OSError as error:
                raise OSError(error.errno, f"dial tcp {server}: connect: {_go_errno_text(error)}") from None
            local = _address(sock.getsockname())
            try:
                async with asyncio.timeout(self._timeout):
                    await loop.sock_sendall(sock, framed(query.pack()))
                    while True:
                        (length,) = struct.unpack("!H", await _recv_exactly(sock, 2))
                        reply = _reply_to(query, await _recv_exactly(sock, length))
                        if reply is not None:
                            return reply
            except TimeoutError:
                raise TimeoutError(f"read tcp {local}->{server}: {_TIMEOUT}") from None
            except OSError as error:
                raise OSError(error.errno, f"read tcp {local}->{server}: read: {_go_errno_text(error)}") from None


async def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = bytearray()
    while len(data) < count:
        chunk = await loop.sock_recv(sock, count - len(data))
        if not chunk:
            raise OSError(errno.ECONNRESET, "unexpected EOF")
        data += chunk
    return bytes(data)


def _reply_to(query: DNSRecord, data: bytes) -> DNSRecord | None:
    """The reply to `query` in `data`, or None for anything else (a stray or malformed packet is ignored)."""
    try:
        reply = DNSRecord.parse(data)
    except Exception:  # dnslib raises more than DNSError on malformed input
        return None
    if not reply.header.qr or reply.header.id != query.header.id:
        return None
    if not reply.questions and reply.header.tc:
        return reply  # some servers truncate down to the header: it still says "ask over TCP"
    if len(reply.questions) != 1:
        return None
    if str(reply.q.qname).lower() != str(query.q.qname).lower() or reply.q.qtype != query.q.qtype:
        return None
    return reply


def _address(sockname: tuple[Any, ...]) -> str:
    return f"{sockname[0]}:{sockname[1]}"


def _go_errno_text(error: OSError) -> str:
    # Go prints syscall errors in lower case, as strerror gives them ("connection refused").
    text = error.strerror or (errno.errorcode.get(error.errno or 0, "") if error.errno else str(error))
    return text[:1].lower() + text[1:]
