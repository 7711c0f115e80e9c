"""Each VPC's resolver (AmazonProvidedDNS at VPC base + 2), and the /etc/resolv.conf that points tasks at it.

The agent serves every VPC from the host namespace, on sockets born in the VPC's router namespace: the VPC's
own names come from its ENIs (dns_private_zone), the VPC endpoint's names give its address
(dns_endpoint_names), the rest are forwarded upstream (dns_forwarding).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dnslib import RCODE, DNSRecord

from fargo.network.dns_endpoint_names import EndpointNames
from fargo.network.dns_forwarding import Upstream, UpstreamForwarder
from fargo.network.dns_names import normalized, private_zone
from fargo.network.dns_private_zone import PrivateZone
from fargo.network.dns_replies import empty_reply
from fargo.network.dns_serving import DnsServer
from fargo.network.netns import run_in_netns

DNS_PORT = 53
# What glibc does with resolv.conf: at most three nameservers (MAXNS), and the local host when none is listed.
_MAX_NAMESERVERS = 3
_NO_NAMESERVER_LISTED = ("127.0.0.1", DNS_PORT)
# EC2's DHCP-written resolv.conf (Amazon Linux's dhclient-script) has these options.
_RESOLV_OPTIONS = "timeout:2 attempts:5"

_log = logging.getLogger(__name__)


@dataclass
class _ServedVpc:
    where: tuple[int, int, str, int]  # the namespace (device, inode), address and port
    udp: socket.socket
    tcp: socket.socket
    task: asyncio.Task[None]
    endpoint_ip: str | None  # where the endpoint names point in this VPC


class VpcResolver:
    """Route 53 Resolver for every VPC on this host: `serve` each VPC router, `set_records` as its ENIs change."""

    def __init__(self, region: str, upstreams: Sequence[Upstream], timeout: float = 2.0,
                 endpoint_names: Collection[str] = ()) -> None:
        """`endpoint_names` (dns_endpoint_names.endpoint_names): answered in each VPC with its endpoint_ip."""
        self.region = region
        self._endpoints = EndpointNames(frozenset(normalized(name) for name in endpoint_names))
        self._forwarder = UpstreamForwarder(upstreams, timeout)
        self._zones: dict[str, PrivateZone] = {}
        self._no_records = PrivateZone.of(region, {})
        self._served: dict[str, _ServedVpc] = {}
        self._changing = asyncio.Lock()  # serve/close calls do not interleave

    async def serve(self, vpc_id: str, netns_path: str, address: str, port: int = DNS_PORT,
                    endpoint_ip: str | None = None) -> None:
        """Answer DNS for `vpc_id` on UDP and TCP `address:port` inside the namespace at `netns_path`; the
        endpoint names with `endpoint_ip` (None: they are forwarded like any other name).

        Again with the same namespace, address and port: nothing changes. With a new namespace at that path (a
        router made again) or another address, the VPC's sockets move there. Raises OSError if binding fails.
        """
        async with self._changing:
            where = (*_netns_identity(netns_path), address, port)
            served = self._served.get(vpc_id)
            if served is not None and served.where == where and not served.task.done():
                served.endpoint_ip = endpoint_ip
                return
            await self._stop(vpc_id)
            udp, tcp = await asyncio.to_thread(_bound_sockets, netns_path, address, port)
            server = DnsServer(udp, tcp, lambda query: self._answer(vpc_id, query), name=f"DNS of {vpc_id}")
            task = asyncio.create_task(server.run(), name=f"vpc-resolver-{vpc_id}")
            task.add_done_callback(lambda done: _log_end(vpc_id, done))
            self._served[vpc_id] = _ServedVpc(where, udp, tcp, task, endpoint_ip)

    def set_records(self, vpc_id: str, records: Mapping[str, str]) -> None:
        """The VPC's ENIs now: private DNS name -> IPv4, the whole set (names not given no longer resolve)."""
        self._zones[vpc_id] = PrivateZone.of(self.region, records)

    async def close_vpc(self, vpc_id: str) -> None:
        """Stop serving the VPC and forget its records; nothing to do if it was not served."""
        async with self._changing:
            await self._stop(vpc_id)
            self._zones.pop(vpc_id, None)

    async def close(self) -> None:
        """Stop serving every VPC (the agent's shutdown)."""
        for vpc_id in list(self._served):
            await self.close_vpc(vpc_id)
        self._zones.clear()

    def serves(self, vpc_id: str) -> bool:
        """True while the VPC's sockets are being served (False after close_vpc, or if its serving failed)."""
        served = self._served.get(vpc_id)
        return served is not None and not served.task.done()

    async def _answer(self, vpc_id: str, query: DNSRecord) -> DNSRecord:
        served = self._served.get(vpc_id)
        if served is not None and served.endpoint_ip is not None:
            endpoint = self._endpoints.answer(query, served.endpoint_ip)
            if endpoint is not None:
                return endpoint
        zone = self._zones.get(vpc_id, self._no_records)
        local = zone.answer(query)
        if local is not None:
            return local
        forwarded = await self._forwarder.forward(query)
        return forwarded if forwarded is not None else empty_reply(query, RCODE.SERVFAIL)

    async def _stop(self, vpc_id: str) -> None:
        served = self._served.pop(vpc_id, None)
        if served is None:
            return
        served.task.cancel()
        await asyncio.wait([served.task])
        served.udp.close()
        served.tcp.close()


def _netns_identity(netns_path: str) -> tuple[int, int]:
    status = os.stat(netns_path)
    return status.st_dev, status.st_ino


def _bound_sockets(netns_path: str, address: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on address:port, both born in the namespace at `netns_path`."""

    def make() -> tuple[socket.socket, socket.socket]:
        made: list[socket.socket] = []
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                made.append(socket.socket(socket.AF_INET, kind))
            udp, tcp = made
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebind despite connections in TIME_WAIT
            udp.bind((address, port))
            tcp.bind((address, port))
            tcp.listen(128)
            for sock in made:
                sock.setblocking(False)
        except BaseException:
            for sock in made:
                sock.close()
            raise
        return udp, tcp

    return run_in_netns(netns_path, make)


def _log_end(vpc_id: str, task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("DNS of %s stopped: %r", vpc_id, task.exception())


def resolver_address(vpc_cidr: str) -> str:
    """AmazonProvidedDNS of the VPC: its base address + 2, e.g. 10.213.0.2 for 10.213.0.0/16."""
    network = ipaddress.ip_network(vpc_cidr, strict=True)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"VPC CIDR block {vpc_cidr!r} is not IPv4")
    return str(network.network_address + 2)


def resolv_conf_text(vpc_cidr: str, region: str) -> str:
    """The task's /etc/resolv.conf, as EC2's DHCP writes it: the region's search domain and the VPC resolver."""
    return f"search {private_zone(region)}\noptions {_RESOLV_OPTIONS}\nnameserver {resolver_address(vpc_cidr)}\n"


def parse_upstream(text: str) -> Upstream:
    """`IP` or `IP:PORT` (IPv6 as `[IP]:PORT`), as `fargo up --dns-upstream` takes it."""
    value = text.strip()
    host, port = value, str(DNS_PORT)
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(_bad_upstream(text))
        port = rest[1:] if rest else port
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    try:
        ip = ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(_bad_upstream(text)) from None
    if not 1 <= number <= 65535:
        raise ValueError(_bad_upstream(text))
    return str(ip), number


def _bad_upstream(text: str) -> str:
    return f"DNS upstream {text!r} is not IP or IP:PORT (e.g. 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53)"


def host_upstreams(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[Upstream]:
    """The host's nameservers, as glibc reads them: the first three; the local host if none is listed."""
    try:
        lines = resolv_conf.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    found: list[Upstream] = []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                found.append((str(ipaddress.ip_address(words[1])), DNS_PORT))
            except ValueError:
                continue  # glibc skips what it cannot read, too
    return found[:_MAX_NAMESERVERS] or [_NO_NAMESERVER_LISTED]

