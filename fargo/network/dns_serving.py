"""Serving DNS on one UDP and one TCP socket: each query answered concurrently, each reply sized for its client.

Knows nothing of names: a valid one-question query goes to the `Answerer`. Packets that are not queries are
dropped; a query's failure is logged and ends nothing else.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Awaitable, Callable

from dnslib import EDNS0, QTYPE, RCODE, DNSHeader, DNSRecord

from fargo.network.dns_replies import empty_reply
from fargo.network.dns_tcp import MAX_MESSAGE, framed, read_message

Answerer = Callable[[DNSRecord], Awaitable[DNSRecord]]

CLASSIC_UDP_LIMIT = 512  # RFC 1035: what a client without EDNS can take over UDP
_OUR_EDNS_UDP_SIZE = 4096  # advertised to EDNS clients
_MAX_QUERIES_IN_FLIGHT = 512  # past this a UDP query is dropped (the client retries), not queued
_MAX_TCP_CLIENTS = 64
_TCP_IDLE_SECONDS = 10.0  # a silent TCP client must not hold its slot (RFC 7766 idle timeout)
_TCP_WRITE_SECONDS = 5.0
# The socket itself is gone: serving cannot go on. Other errors (ENOBUFS, EMFILE, ...) pass.
_FATAL_SOCKET_ERRORS = (errno.EBADF, errno.ENOTSOCK, errno.EINVAL)
_QUERY = 0  # opcode

_log = logging.getLogger(__name__)


class DnsServer:
    """Serves `answer` on a bound UDP socket and a listening TCP socket (both non-blocking) until cancelled."""

    def __init__(self, udp: socket.socket, tcp: socket.socket, answer: Answerer, name: str) -> None:
        self._udp = udp
        self._tcp = tcp
        self._answer = answer
        self.name = name
        self._in_flight = 0
        self._tcp_clients = 0

    async def run(self) -> None:
        async with asyncio.TaskGroup() as queries:
            queries.create_task(self._receive_udp(queries))
            queries.create_task(self._accept_tcp(queries))

    async def _receive_udp(self, queries: asyncio.TaskGroup) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data, client = await loop.sock_recvfrom(self._udp, MAX_MESSAGE)
            except OSError as error:
                await self._pause_after(error, "receiving over UDP")
                continue
            if self._in_flight >= _MAX_QUERIES_IN_FLIGHT:
                continue
            self._in_flight += 1
            queries.create_task(self._answer_udp(data, client))

    async def _answer_udp(self, data: bytes, client: tuple[str, int]) -> None:
        try:
            answered = await self._reply_to(data)
            if answered is not None:
                query, reply = answered
                wire = _packed_within(reply, _udp_limit(query))
                await asyncio.get_running_loop().sock_sendto(self._udp, wire, client)
        except OSError as error:
            _log.debug("%s: no reply sent to %s: %r", self.name, client, error)
        except Exception:  # one query's bug must not end the serving
            _log.exception("%s: answering a UDP query from %s failed", self.name, client)
        finally:
            self._in_flight -= 1

    async def _accept_tcp(self, queries: asyncio.TaskGroup) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._tcp)
            except OSError as error:
                await self._pause_after(error, "accepting over TCP")
                continue
            if self._tcp_clients >= _MAX_TCP_CLIENTS:
                conn.close()
                continue
            self._tcp_clients += 1
            queries.create_task(self._answer_tcp(conn))

    async def _answer_tcp(self, conn: socket.socket) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
            while True:
                async with asyncio.timeout(_TCP_IDLE_SECONDS):
                    data = await read_message(reader)
                answered = await self._reply_to(data) if data is not None else None
                if answered is None:
                    return  # closed, or not DNS: hang up rather than guess
                writer.write(framed(_packed_within(answered[1], MAX_MESSAGE)))
                async with asyncio.timeout(_TCP_WRITE_SECONDS):
                    await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away or stalled
        except Exception:  # as in _answer_udp
            _log.exception("%s: answering a TCP client failed", self.name)
        finally:
            self._tcp_clients -= 1
            if writer is not None:
                writer.close()
            else:
                conn.close()

    async def _reply_to(self, data: bytes) -> tuple[DNSRecord, DNSRecord] | None:
        """(query, reply) for a query message; None for anything else (dropped)."""
        query = _query_of(data)
        if query is None:
            return None
        rcode = _refusal(query)
        reply = empty_reply(query, rcode) if rcode is not None else await self._answer(query)
        if _edns(query) is not None and _edns(reply) is None:
            reply.add_ar(EDNS0(udp_len=_OUR_EDNS_UDP_SIZE))
        return query, reply

    async def _pause_after(self, error: OSError, doing: str) -> None:
        if error.errno in _FATAL_SOCKET_ERRORS:
            raise error
        _log.warning("%s: %s: %r", self.name, doing, error)
        await asyncio.sleep(0.1)  # e.g. out of file descriptors: do not spin


def _query_of(data: bytes) -> DNSRecord | None:
    try:
        query = DNSRecord.parse(data)
    except Exception:  # dnslib raises more than DNSError on malformed input; any of it is a bad packet
        return None
    return None if query.header.qr else query  # a response sent to us is never answered (no loops)


def _refusal(query: DNSRecord) -> int | None:
    """The error rcode for a query we will not look up, or None."""
    if query.header.opcode != _QUERY:
        return RCODE.NOTIMP
    if len(query.questions) != 1:
        return RCODE.FORMERR
    if query.q.qtype in (QTYPE.AXFR, QTYPE.IXFR):
        return RCODE.REFUSED  # no zone transfers from a VPC resolver
    return None


def _edns(record: DNSRecord) -> EDNS0 | None:
    return next((rr for rr in record.ar if rr.rtype == QTYPE.OPT), None)


def _udp_limit(query: DNSRecord) -> int:
    opt = _edns(query)
    # An OPT record's class is the UDP payload size the client can take; below 512 means 512 (RFC 6891).
    return CLASSIC_UDP_LIMIT if opt is None else min(max(opt.rclass, CLASSIC_UDP_LIMIT), MAX_MESSAGE)


def _packed_within(reply: DNSRecord, limit: int) -> bytes:
    wire = reply.pack()
    if len(wire) <= limit:
        return wire
    # Too big for the client: an empty reply with TC set, so it asks again over TCP.
    header = DNSHeader(id=reply.header.id, bitmap=reply.header.bitmap, tc=1)
    return DNSRecord(header, questions=reply.questions, ar=[rr for rr in reply.ar if rr.rtype == QTYPE.OPT]).pack()
