"""The VPC endpoint on a real router: tasks of private subnets reach the edge port at VPC base + 3, by address
and by the AWS names the VPC resolver gives it (needs root).

The VPC's router and ENIs are made by `VpcNetworks` under the sandbox's test-unique prefix; the "edge" is an
aiohttp server the test runs on 127.0.0.1 in the host namespace. No packet leaves the machine.
"""
from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import os
import ipaddress
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from dnslib import QTYPE, RCODE, DNSRecord

from fargo.agent.endpoint_relay import EndpointRelay
from fargo.agent.vpc_networks import RouterService, VpcNetworks
from fargo.network import ipam
from fargo.network.dns_endpoint_names import endpoint_names
from fargo.network.names import netns_name, netns_path, router_netns_name
from fargo.network.netns import is_mounted_netns, run_in_netns, socket_in_netns
from fargo.network.vpc_resolver import VpcResolver
from fargo.protocol.messages import EniPlan, GroupPolicy, VpcPolicy
from tests.integration.conftest import EventLoopThread
from tests.integration.vpc_sandbox import (
    BLOCKED_TIMEOUT,
    VpcSandbox,
    free_vpc_cidr,
    outside_host,
    server_in,
    subnet,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
MTU = 9001
BIG = 50 * 1024 * 1024
NO_RULES = GroupPolicy("sg-none")  # no egress at all: the endpoint is reached whatever the groups say


def pattern(size: int) -> bytes:
    block = hashlib.sha256(b"fargo").digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


@dataclass
class Edge:
    """The test's stand-in for Fargo's edge port: who asked, and what it was sent."""

    port: int
    peers: list[str]
    hosts: list[str]


def edge_app(edge: Edge) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        edge.peers.append(request.remote or "")
        edge.hosts.append(request.host)
        return web.Response(text=f"edge saw {request.method} {request.path_qs}")

    async def upload(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_chunked(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    async def download(request: web.Request) -> web.Response:
        return web.Response(body=pattern(int(request.query["size"])), content_type="application/octet-stream")

    app = web.Application(client_max_size=BIG * 2)
    app.router.add_get("/hello", hello)
    app.router.add_post("/upload", upload)
    app.router.add_get("/download", download)
    return app


@dataclass
class Vpc:
    loop: EventLoopThread
    networks: VpcNetworks
    relay: EndpointRelay
    edge: Edge
    vpc_id: str
    cidr: str
    prefix: str
    enis: dict[str, EniPlan]

    @property
    def endpoint(self) -> str:
        return ipam.endpoint_ip(self.cidr)

    @property
    def resolver(self) -> str:
        return ipam.resolver_ip(self.cidr)

    def attach(self, task_id: str, subnet_index: int, host: int = 5) -> str:
        """A private task ENI in the VPC's subnet `subnet_index`: the path of its namespace."""
        subnet_cidr = subnet(self.cidr, subnet_index)
        ip = str(ipaddress.ip_network(subnet_cidr).network_address + host)
        eni = EniPlan(attachment_id=f"att-{task_id}", eni_id=f"eni-{task_id}", subnet_id=f"subnet-{subnet_index}",
                      subnet_cidr=subnet_cidr, availability_zone="us-east-1a", ip=ip,
                      mac=ipam.mac_address(f"{self.prefix}/{task_id}"),
                      private_dns_name=ipam.private_dns_name(ip, REGION), security_groups=[NO_RULES.group_id],
                      assign_public_ip=False, vpc_id=self.vpc_id, vpc_cidr=self.cidr)
        self.loop.run(self.networks.attach(task_id, eni, MTU))
        self.enis[task_id] = eni
        return netns_path(netns_name(task_id, self.prefix))

    def detach(self, task_id: str) -> None:
        self.loop.run(self.networks.detach(task_id, self.enis.pop(task_id)))


@pytest.fixture
def vpc(net: VpcSandbox) -> Iterator[Vpc]:
    loop = EventLoopThread()
    edge = Edge(0, [], [])
    runner = web.AppRunner(edge_app(edge), access_log=None)

    async def start_edge() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    edge.port = loop.run(start_edge())
    relay = EndpointRelay(("127.0.0.1", edge.port))
    # No upstream answers: the endpoint's names must be answered in the VPC.
    resolver = VpcResolver(REGION, [("127.0.0.1", 9)], 0.5, endpoint_names=endpoint_names(REGION, ACCOUNT))
    networks = VpcNetworks(REGION, resolver, net.prefix, linger_seconds=0.05,
                           servers=[RouterService(relay, lambda router: router.endpoint_ip)])
    made = Vpc(loop, networks, relay, edge, f"vpc-{net.prefix}", free_vpc_cidr(), net.prefix, {})
    loop.run(networks.set_policies([VpcPolicy(made.vpc_id, made.cidr, [NO_RULES])]))
    try:
        yield made
    finally:
        for task_id in list(made.enis):
            made.detach(task_id)
        loop.run(networks.close())
        loop.run(runner.cleanup())
        loop.close()


def http_get(netns: str, address: str, path: str, host: str | None = None, timeout: float = 5) -> tuple[int, bytes]:
    def exchange() -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(address, 80, timeout=timeout)
        try:
            connection.request("GET", path, headers={"Host": host} if host else {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    return run_in_netns(netns, exchange)


def test_a_private_task_reaches_the_edge_at_vpc_base_plus_3_from_every_subnet(vpc: Vpc) -> None:
    first, second = vpc.attach("task-a", 0), vpc.attach("task-b", 1)
    for netns in (first, second):
        assert http_get(netns, vpc.endpoint, "/hello?x=1") == (200, b"edge saw GET /hello?x=1")
    assert vpc.edge.peers == ["127.0.0.1", "127.0.0.1"]  # relayed from the host namespace to the edge
    assert vpc.endpoint == str(ipaddress.ip_network(vpc.cidr).network_address + 3)


def test_the_endpoint_is_reached_where_nothing_else_outside_is(vpc: Vpc, net: VpcSandbox) -> None:
    task = vpc.attach("task-a", 1)
    with outside_host(net.prefix) as outside, server_in(outside.path, socket.SOCK_STREAM, (outside.ip, 80)) as (
            _, peers):
        with socket_in_netns(task, socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(BLOCKED_TIMEOUT)
            with pytest.raises(OSError):
                sock.connect((outside.ip, 80))  # a private subnet has no way out
        assert http_get(task, vpc.endpoint, "/hello")[0] == 200
    assert peers == []


def ask(netns: str, server: str, name: str, qtype: str) -> DNSRecord:
    query = DNSRecord.question(name, qtype)
    return DNSRecord.parse(run_in_netns(netns, lambda: query.send(server, 53, timeout=3)))


def test_the_endpoint_names_resolve_to_base_plus_3_through_the_vpc_resolver(vpc: Vpc) -> None:
    task = vpc.attach("task-a", 2)
    names = [f"api.ecr.{REGION}.amazonaws.com", f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
             f"secretsmanager.{REGION}.amazonaws.com", f"ssm.{REGION}.amazonaws.com", f"ecs.{REGION}.amazonaws.com"]
    for name in names:
        reply = ask(task, vpc.resolver, name, "A")
        assert reply.header.rcode == RCODE.NOERROR
        assert [(str(rr.rname), QTYPE[rr.rtype], str(rr.rdata)) for rr in reply.rr] == [(name + ".", "A",
                                                                                          vpc.endpoint)]
        empty = ask(task, vpc.resolver, name, "AAAA")
        assert (empty.header.rcode, empty.rr) == (RCODE.NOERROR, [])
    # Other regions' and accounts' names are not the endpoint's: they go upstream (here: no answer).
    assert ask(task, vpc.resolver, "ssm.eu-west-1.amazonaws.com", "A").rr == []
    assert ask(task, vpc.resolver, f"999999999999.dkr.ecr.{REGION}.amazonaws.com", "A").rr == []
    registry = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
    assert http_get(task, vpc.endpoint, "/hello", host=registry)[0] == 200
    assert vpc.edge.hosts[-1] == registry  # the Host header passes as sent


def test_the_relay_streams_50_mb_each_way_intact(vpc: Vpc, capsys: pytest.CaptureFixture) -> None:
    task = vpc.attach("task-a", 0)
    body = pattern(BIG)

    def transfer(address: str, port: int) -> tuple[float, float, dict, bytes]:
        connection = http.client.HTTPConnection(address, port, timeout=30)
        try:
            started = time.perf_counter()
            connection.request("POST", "/upload", body=body)
            uploaded = connection.getresponse()
            answer = json.loads(uploaded.read())
            up = time.perf_counter() - started
            started = time.perf_counter()
            connection.request("GET", f"/download?size={BIG}")  # the same connection: keep-alive passes too
            downloaded = connection.getresponse()
            data = downloaded.read()
            return up, time.perf_counter() - started, answer, data
        finally:
            connection.close()

    up, down, answer, data = run_in_netns(task, lambda: transfer(vpc.endpoint, 80))
    assert answer == {"size": BIG, "sha256": hashlib.sha256(body).hexdigest()}
    assert len(data) == BIG and hashlib.sha256(data).digest() == hashlib.sha256(body).digest()
    direct_up, direct_down, _, _ = transfer("127.0.0.1", vpc.edge.port)
    with capsys.disabled():
        print(f"\n50 MB through the VPC endpoint: up {BIG / up / 1e6:.0f} MB/s, down {BIG / down / 1e6:.0f} MB/s; "
              f"straight to the edge: up {BIG / direct_up / 1e6:.0f} MB/s, down {BIG / direct_down / 1e6:.0f} MB/s")


def test_the_filter_still_blocks_other_ports_of_the_router(vpc: Vpc) -> None:
    task = vpc.attach("task-a", 1)
    router = netns_path(router_netns_name(vpc.vpc_id, vpc.prefix))
    with server_in(router, socket.SOCK_STREAM, (vpc.endpoint, 8080)) as (_, peers):
        for port in (8080, 22, 443):
            with socket_in_netns(task, socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(BLOCKED_TIMEOUT)
                with pytest.raises(OSError):
                    sock.connect((vpc.endpoint, port))
    assert peers == []
    assert http_get(task, vpc.endpoint, "/hello")[0] == 200


def test_a_relay_whose_edge_is_down_closes_the_client_at_once(vpc: Vpc) -> None:
    task = vpc.attach("task-a", 0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = probe.getsockname()[1]  # a port nothing listens on once the probe is closed
    vpc.loop.run(vpc.relay.close_vpc(vpc.vpc_id))
    down = EndpointRelay(("127.0.0.1", nobody))
    router = netns_path(router_netns_name(vpc.vpc_id, vpc.prefix))
    vpc.loop.run(down.serve(vpc.vpc_id, router, vpc.endpoint))
    try:
        with socket_in_netns(task, socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect((vpc.endpoint, 80))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            started = time.monotonic()
            try:
                assert sock.recv(100) == b""
            except ConnectionResetError:
                pass  # closed with our request unread: a reset, at once all the same
            assert time.monotonic() - started < 0.5
    finally:
        vpc.loop.run(down.close())


def test_closing_a_vpc_ends_the_connections_it_relays(vpc: Vpc) -> None:
    task = vpc.attach("task-a", 0)
    with socket_in_netns(task, socket.AF_INET, socket.SOCK_STREAM) as client:
        client.settimeout(3)
        client.connect((vpc.endpoint, 80))
        client.sendall(b"GET /hello HTTP/1.1\r\n")  # half a request: the edge waits for the rest
        time.sleep(0.1)
        vpc.loop.run(vpc.relay.close_vpc(vpc.vpc_id))
        assert client.recv(100) == b""


_SIOCGSKNS = 0x894C  # <linux/sockios.h>: an fd of the network namespace a socket lives in


def sockets_in(namespace_inode: int) -> list[int]:
    """This process's socket fds that live in the namespace with that inode."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            ns = fcntl.ioctl(fd, _SIOCGSKNS)
        except OSError:
            continue
        try:
            if os.fstat(ns).st_ino == namespace_inode:
                found.append(fd)
        finally:
            os.close(ns)
    return found


def test_removing_the_router_closes_the_relay_listener_and_its_connections(vpc: Vpc) -> None:
    task = vpc.attach("task-a", 0)
    router = netns_path(router_netns_name(vpc.vpc_id, vpc.prefix))
    inode = os.stat(router).st_ino
    assert http_get(task, vpc.endpoint, "/hello")[0] == 200
    assert vpc.relay.serves(vpc.vpc_id) and sockets_in(inode)  # the listener (at least)
    vpc.detach("task-a")
    deadline = time.monotonic() + 5
    while is_mounted_netns(router) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_mounted_netns(router)
    assert not vpc.relay.serves(vpc.vpc_id)
    assert sockets_in(inode) == []  # nothing of ours keeps the router's namespace alive
