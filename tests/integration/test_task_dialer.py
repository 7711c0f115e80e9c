"""TaskDialer on real namespaces: aiohttp connections born in a task's namespace, names asked of a DNS server from
there (needs root).

Two task ENIs of a test VPC (vpc_sandbox): the client's, and a server task's that runs an HTTP server and a
dnslib DNS server on its own address. No packet leaves the machine, and no name is asked of the host's resolvers.
"""
from __future__ import annotations

import asyncio
import re
import socket
import socketserver
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import aiohttp
import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

from fargo.network import ipam
from fargo.network.netns import run_in_netns, socket_in_netns
from fargo.network.names import netns_name, netns_path
from fargo.network.task_dialer import DnsLookupError, TaskDialer
from fargo.network.vpc_router import VpcRouter
from fargo.protocol.messages import EniPlan
from tests.integration.vpc_sandbox import Task, VpcSandbox, subnet

T = TypeVar("T")
MANY = 40  # A records: more than a classic 512-byte UDP reply holds


class _Names(BaseResolver):
    """web.test.internal -> the server task; many.test.internal -> MANY addresses; anything else NXDOMAIN."""

    def __init__(self, web_ip: str) -> None:
        self.web_ip = web_ip
        self.asked: list[tuple[str, str]] = []  # (protocol, name)
        self._lock = threading.Lock()

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        name = str(request.q.qname).lower()
        with self._lock:
            self.asked.append((handler.protocol, name))
        reply = request.reply()
        if name == "web.test.internal." and request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(self.web_ip), ttl=30))
        elif name == "many.test.internal." and request.q.qtype == QTYPE.A:
            for n in range(MANY):
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(f"192.0.2.{n + 1}"), ttl=30))
        elif name == "broken.test.internal.":
            reply.header.rcode = RCODE.SERVFAIL
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class _ClassicUdpHandler(DNSHandler):
    udplen = 512  # longer UDP answers go out truncated (TC): the client must ask again over TCP


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = f"hello {self.client_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _HttpServer(ThreadingHTTPServer):
    def server_bind(self) -> None:
        # Not HTTPServer's: that one asks the host's resolvers for the address's name (getfqdn).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


@dataclass
class Lab:
    router: VpcRouter
    client: Task
    server: Task
    web_port: int
    names: _Names
    _stops: list[Any] = field(default_factory=list)

    def dialer(self, **options: Any) -> TaskDialer:
        return TaskDialer(self.client.eni.netns_path, self.server.ip, **options)


@pytest.fixture
def lab(net: VpcSandbox, vpc: VpcRouter) -> Iterator[Lab]:
    client, server = net.task(vpc, subnet(vpc.cidr, 0)), net.task(vpc, subnet(vpc.cidr, 1))
    net.apply(vpc)
    names = _Names(server.ip)
    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    servers: list[Any] = []

    def make() -> None:  # born in the server task's namespace
        servers.append(_HttpServer((server.ip, 0), _Hello))
        servers.append(DNSServer(names, address=server.ip, port=53, logger=quiet, handler=_ClassicUdpHandler).server)
        servers.append(DNSServer(names, address=server.ip, port=53, tcp=True, logger=quiet).server)

    try:
        run_in_netns(server.eni.netns_path, make)
        for made in servers:
            threading.Thread(target=made.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        yield Lab(vpc, client, server, servers[0].server_address[1], names)
    finally:
        for made in servers:
            made.shutdown()
            made.server_close()


def run(scenario: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(30):
            return await scenario

    return asyncio.run(bounded())


async def get(dialer: TaskDialer, url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(connector=dialer.connector()) as session:
        async with session.get(url) as response:
            return response.status, await response.text()


def test_a_dialer_connects_from_its_namespace_and_resolves_through_its_dns_server(lab: Lab) -> None:
    reply = run(get(lab.dialer(), f"http://web.test.internal:{lab.web_port}/"))
    assert reply == (200, f"hello {lab.client.ip}")  # the server saw the client task's own address
    assert lab.names.asked == [("udp", "web.test.internal.")]


def test_ip_literals_are_not_looked_up(lab: Lab) -> None:
    dialer = lab.dialer()
    assert run(get(dialer, f"http://{lab.server.ip}:{lab.web_port}/")) == (200, f"hello {lab.client.ip}")
    assert run(dialer.resolve(lab.server.ip)) == [lab.server.ip]
    assert lab.names.asked == []


def test_a_name_that_does_not_exist_gives_gos_no_such_host(lab: Lab) -> None:
    text = f"lookup nothing.test.internal on {lab.server.ip}:53: no such host"
    with pytest.raises(DnsLookupError) as missing:
        run(lab.dialer().resolve("nothing.test.internal"))
    assert str(missing.value) == text and missing.value.not_found
    with pytest.raises(aiohttp.ClientConnectorDNSError) as through_aiohttp:
        run(get(lab.dialer(), f"http://nothing.test.internal:{lab.web_port}/"))
    assert str(through_aiohttp.value.os_error) == text
    assert through_aiohttp.value.strerror == text
    with pytest.raises(DnsLookupError, match=re.escape(f"lookup broken.test.internal on {lab.server.ip}:53: "
                                                       "server misbehaving")):
        run(lab.dialer(dns_attempts=2).resolve("broken.test.internal"))


def test_a_silent_dns_server_gives_gos_i_o_timeout(lab: Lab) -> None:
    # A bound socket nobody reads, in the server task: each question arrives and is never answered.
    with socket_in_netns(lab.server.eni.netns_path, socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((lab.server.ip, 5353))
        dialer = lab.dialer(dns_port=5353, dns_timeout=0.2, dns_attempts=2)
        with pytest.raises(DnsLookupError) as timed_out:
            run(dialer.resolve("web.test.internal"))
    pattern = (rf"lookup web\.test\.internal on {re.escape(lab.server.ip)}:5353: "
               rf"read udp {re.escape(lab.client.ip)}:\d+->{re.escape(lab.server.ip)}:5353: i/o timeout")
    assert re.fullmatch(pattern, str(timed_out.value)) and timed_out.value.timed_out


def test_a_truncated_reply_is_asked_again_over_tcp(lab: Lab) -> None:
    addresses = run(lab.dialer().resolve("many.test.internal"))
    assert addresses == [f"192.0.2.{n + 1}" for n in range(MANY)]
    assert lab.names.asked == [("udp", "many.test.internal."), ("tcp", "many.test.internal.")]


def test_the_host_dialer_is_a_plain_connector_in_the_host_namespace() -> None:
    server = _HttpServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        dialer = TaskDialer.host()
        assert (dialer.netns_path, dialer.dns_server) == (None, None)
        assert run(get(dialer, f"http://127.0.0.1:{server.server_address[1]}/")) == (200, "hello 127.0.0.1")
    finally:
        server.shutdown()
        server.server_close()


def test_for_task_dials_from_the_task_namespace_through_its_vpc_resolver() -> None:
    eni = EniPlan(attachment_id="att-1", eni_id="eni-1", subnet_id="subnet-1", subnet_cidr="10.7.16.0/20",
                  availability_zone="us-east-1a", ip="10.7.16.5", mac="0e:00:00:00:00:05",
                  private_dns_name="ip-10-7-16-5.ec2.internal", vpc_id="vpc-1", vpc_cidr="10.7.0.0/16")
    dialer = TaskDialer.for_task("abc123", eni, "fg")
    assert dialer.netns_path == netns_path(netns_name("abc123", "fg"))
    assert dialer.dns_server == ipam.resolver_ip("10.7.0.0/16") == "10.7.0.2"
