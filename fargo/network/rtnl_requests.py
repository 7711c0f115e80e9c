"""The few route-netlink requests of a task ENI's creation, packed by hand and sent in batches.

pyroute2 spends about 0.5 ms of Python on each request (it runs its asyncio loop once per call), which was
most of an ENI's creation time and kept 100 creations at once from overlapping. These requests are packed
with struct, several to one send, each with its own acknowledgement, so a failure still names its step.
Everything else (listing, healing checks, routers) uses pyroute2 (rtnl.py); errors are its NetlinkError.
"""
from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import struct
from dataclasses import dataclass

from fargo.network.rtnl import NetlinkError

_RTM_NEWLINK, _RTM_DELLINK, _RTM_GETLINK, _RTM_SETLINK, _RTM_NEWADDR, _RTM_NEWROUTE = 16, 17, 18, 19, 20, 24
_NLMSG_ERROR = 2
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_IFLA_ADDRESS, _IFLA_IFNAME, _IFLA_MTU, _IFLA_LINKINFO, _IFLA_IFALIAS, _IFLA_NET_NS_FD = 1, 3, 4, 18, 20, 28
_IFLA_INFO_KIND, _IFLA_INFO_DATA, _VETH_INFO_PEER = 1, 2, 1
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_RTA_DST, _RTA_OIF, _RTA_GATEWAY = 1, 4, 5
_IFF_UP = 0x1
_RT_TABLE_MAIN, _RTPROT_STATIC, _RT_SCOPE_UNIVERSE, _RTN_UNICAST = 254, 4, 0, 1
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBi")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
_ERROR = struct.Struct("=i")
_sequence = itertools.count(1)


@dataclass(frozen=True)
class Request:
    """One packed message, and what it does (for the error message)."""

    what: str
    kind: int
    flags: int
    body: bytes


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, _IFF_UP if up else 0, _IFF_UP if up else 0)


def _ip(address: str) -> bytes:
    return ipaddress.IPv4Address(address).packed


def new_veth(name: str, mtu: int, peer_name: str, peer_index: int, peer_mac: str, peer_netns_fd: int) -> Request:
    """A veth pair, up on this side; its peer born with a fixed index and MAC in the namespace of the fd."""
    peer = _ifinfo(peer_index) + b"".join([
        _attr(_IFLA_IFNAME, peer_name.encode() + b"\0"),
        _attr(_IFLA_MTU, struct.pack("=I", mtu)),
        _attr(_IFLA_ADDRESS, bytes.fromhex(peer_mac.replace(":", ""))),
        _attr(_IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd)),
    ])
    info = _attr(_IFLA_INFO_KIND, b"veth\0") + _attr(_IFLA_INFO_DATA, _attr(_VETH_INFO_PEER, peer))
    body = _ifinfo(up=True) + _attr(_IFLA_IFNAME, name.encode() + b"\0") + _attr(
        _IFLA_MTU, struct.pack("=I", mtu)) + _attr(_IFLA_LINKINFO, info)
    return Request(f"make veth {name}", _RTM_NEWLINK, _NLM_F_CREATE | _NLM_F_EXCL, body)


def delete_link(name: str) -> Request:
    return Request(f"delete {name}", _RTM_DELLINK, 0, _ifinfo() + _attr(_IFLA_IFNAME, name.encode() + b"\0"))


def get_link(name: str) -> Request:
    return Request(f"look up {name}", _RTM_GETLINK, 0, _ifinfo() + _attr(_IFLA_IFNAME, name.encode() + b"\0"))


def set_alias(index: int, alias: str) -> Request:
    return Request(f"alias link {index}", _RTM_SETLINK, 0, _ifinfo(index) + _attr(_IFLA_IFALIAS, alias.encode()))


def link_up(index: int) -> Request:
    return Request(f"set link {index} up", _RTM_SETLINK, 0, _ifinfo(index, up=True))


def add_address(index: int, local: str, prefix_len: int, peer: str | None = None) -> Request:
    """`local/prefix_len` on the link; with `peer`, a point-to-point address (the kernel routes the peer)."""
    body = _IFADDR.pack(socket.AF_INET, prefix_len, 0, _RT_SCOPE_UNIVERSE, index) + _attr(
        _IFA_LOCAL, _ip(local)) + _attr(_IFA_ADDRESS, _ip(peer or local))
    return Request(f"add address {local} to link {index}", _RTM_NEWADDR, _NLM_F_CREATE | _NLM_F_EXCL, body)


def add_route(destination: str, length: int, gateway: str, oif: int) -> Request:
    body = _RTMSG.pack(socket.AF_INET, length, 0, 0, _RT_TABLE_MAIN, _RTPROT_STATIC, _RT_SCOPE_UNIVERSE,
                       _RTN_UNICAST, 0) + _attr(_RTA_DST, _ip(destination)) + _attr(
        _RTA_GATEWAY, _ip(gateway)) + _attr(_RTA_OIF, struct.pack("=i", oif))
    return Request(f"add route {destination}/{length}", _RTM_NEWROUTE, _NLM_F_CREATE | _NLM_F_EXCL, body)


def send(sock: socket.socket, requests: list[Request]) -> list[bytes]:
    """Send the requests in one batch and wait for every answer; the bodies of non-ack answers, in order.

    Raises NetlinkError for the first request the kernel refused (the others of the batch still ran).
    """
    batch, order = [], {}
    for request in requests:
        seq = next(_sequence) & 0xFFFFFFFF
        order[seq] = request
        flags = _NLM_F_REQUEST | _NLM_F_ACK | request.flags
        batch.append(_HEADER.pack(_HEADER.size + len(request.body), request.kind, flags, seq, 0) + request.body)
    sock.sendall(b"".join(batch))
    replies: dict[int, bytes] = {}
    failures: dict[int, int] = {}
    pending = set(order)
    while pending:
        data = sock.recv(1 << 16)
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, kind, _, seq, _ = _HEADER.unpack_from(data, offset)
            payload = data[offset + _HEADER.size: offset + length]
            offset += (length + 3) & ~3
            if seq not in pending:
                continue
            if kind == _NLMSG_ERROR:
                (code,) = _ERROR.unpack_from(payload)
                if code:
                    failures[seq] = -code
                pending.discard(seq)  # an ack (code 0) or a refusal ends the request
            else:
                replies[seq] = payload  # a GET answers with its object, then its ack
    for seq, request in order.items():
        if seq in failures:
            raise NetlinkError(failures[seq], f"{request.what}: {_strerror(failures[seq])}")
    return [replies[seq] for seq in order if seq in replies]


def link_index(reply: bytes) -> int:
    """The index in an RTM_NEWLINK answer (to `get_link`)."""
    return int(_IFINFO.unpack_from(reply)[2])


def _strerror(code: int) -> str:
    return os.strerror(code)
