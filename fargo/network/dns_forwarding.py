"""Forwarding the names a VPC does not serve itself to upstream resolvers, from the host namespace.

Upstreams are tried in order: UDP first, the same upstream over TCP when its UDP answer is truncated; one that
stays silent past the timeout, refuses, fails or answers nonsense is skipped for the next.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
from collections.abc import Sequence

from dnslib import QTYPE, RCODE, DNSBuffer, DNSHeader, DNSRecord

from fargo.network.dns_names import normalized
from fargo.network.dns_tcp import MAX_MESSAGE, framed, read_message

Upstream = tuple[str, int]

_log = logging.getLogger(__name__)


class _NoAnswer(Exception):
    """The upstream closed, or sent nothing that answers our query."""


class UpstreamForwarder:
    def __init__(self, upstreams: Sequence[Upstream], timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"DNS upstream timeout must be positive, not {timeout}")
        self.upstreams = tuple(upstreams)
        self.timeout = timeout

    async def forward(self, query: DNSRecord) -> DNSRecord | None:
        """The first upstream's answer, with the client's id and question; None if no upstream answered."""
        for upstream in self.upstreams:
            try:
                reply = await self._ask(upstream, query)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, _NoAnswer) as error:
                _log.debug("DNS upstream %s port %d gave no answer: %r", *upstream, error)
                continue
            if reply.header.rcode in (RCODE.SERVFAIL, RCODE.REFUSED):
                continue  # another upstream may do better
            reply.header.id = query.header.id
            reply.questions = list(query.questions)  # the client's spelling of the name
            return reply
        return None

    async def _ask(self, upstream: Upstream, query: DNSRecord) -> DNSRecord:
        # Our own unpredictable id: clients' ids may collide, and an off-path spoofer has to guess this one.
        outgoing = DNSRecord(
            DNSHeader(id=secrets.randbelow(0x10000), bitmap=query.header.bitmap),
            questions=list(query.questions),
            ar=[rr for rr in query.ar if rr.rtype == QTYPE.OPT],
        )
        wire = outgoing.pack()
        async with asyncio.timeout(self.timeout):
            reply = await _over_udp(upstream, wire, outgoing)
        if reply.header.tc:
            async with asyncio.timeout(self.timeout):
                reply = await _over_tcp(upstream, wire, outgoing)
        return reply


async def _over_udp(upstream: Upstream, wire: bytes, sent: DNSRecord) -> DNSRecord:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ipaddress.ip_address(upstream[0]).version == 6 else socket.AF_INET
    # A fresh socket per query: a random source port, and connect() makes the kernel drop other senders.
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, upstream)
        await loop.sock_sendall(sock, wire)
        while True:
            data = await loop.sock_recv(sock, MAX_MESSAGE)
            reply = _parsed(data)
            if reply is not None and _answers(reply, sent):
                return reply
            if _is_truncated_reply(data, sent):
                # Some servers truncate to the bare header, or cut a record in half: ask over TCP.
                return DNSRecord(DNSHeader(id=sent.header.id, qr=1, tc=1))


async def _over_tcp(upstream: Upstream, wire: bytes, sent: DNSRecord) -> DNSRecord:
    reader, writer = await asyncio.open_connection(*upstream)
    try:
        writer.write(framed(wire))
        await writer.drain()
        data = await read_message(reader)
    finally:
        writer.close()
    reply = _parsed(data) if data is not None else None
    if reply is None or not _answers(reply, sent):
        raise _NoAnswer("no answer over TCP")
    return reply


def _parsed(data: bytes) -> DNSRecord | None:
    """The message, if dnslib can both read it and write it again (it is re-packed for the client)."""
    try:
        record = DNSRecord.parse(data)
        record.pack()
    except Exception:  # dnslib raises more than DNSError on malformed input; any of it means "not an answer"
        return None
    return record


def _is_truncated_reply(data: bytes, sent: DNSRecord) -> bool:
    try:
        header = DNSHeader.parse(DNSBuffer(data))
    except Exception:  # as in _parsed
        return False
    return bool(header.qr and header.tc and header.id == sent.header.id)


def _answers(reply: DNSRecord, sent: DNSRecord) -> bool:
    if not reply.header.qr or reply.header.id != sent.header.id or len(reply.questions) != 1:
        return False
    got, asked = reply.q, sent.q
    return (normalized(got.qname), got.qtype, got.qclass) == (normalized(asked.qname), asked.qtype, asked.qclass)
