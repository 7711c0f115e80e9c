"""DNS over TCP framing (RFC 1035 4.2.2): each message, as dnslib packs it, goes after its two-byte length.

This is only the stream's framing; the messages themselves are parsed and built by dnslib.
"""
from __future__ import annotations

import asyncio
import struct

MAX_MESSAGE = 0xFFFF
_LENGTH = struct.Struct("!H")


def framed(message: bytes) -> bytes:
    if len(message) > MAX_MESSAGE:
        raise ValueError(f"a DNS message of {len(message)} bytes does not fit a TCP frame")
    return _LENGTH.pack(len(message)) + message


async def read_message(reader: asyncio.StreamReader) -> bytes | None:
    """The next message on the stream, or None if the peer closed it between messages."""
    try:
        head = await reader.readexactly(_LENGTH.size)
    except asyncio.IncompleteReadError as closed:
        if closed.partial:
            raise
        return None
    (length,) = _LENGTH.unpack(head)
    return await reader.readexactly(length)
