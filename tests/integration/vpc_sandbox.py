"""A test's own VPC routers and task ENIs, and the traffic helpers the network tests share (needs root).

Every object carries a test-unique prefix and lives in random 10.x.0.0/16 CIDRs no host route touches; traffic
only flows between namespaces made here, the routers, and a "test host" namespace on a TEST-NET address that
the host reaches by a veth of its own. `VpcSandbox.close` removes everything, even after a failure.
"""
from __future__ import annotations

import errno
import ipaddress
import json
import random
import secrets
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fargo.network import ipam
from fargo.network.host_nat import host_table_name
from fargo.network.names import netns_path
from fargo.network.netns import create_netns, remove_netns, socket_in_netns
from fargo.network.nft import run_nft
from fargo.network.rtnl import host_rtnl
from fargo.network.security_groups import LocalEni, apply_vpc_filter, render_vpc_filter
from fargo.network.task_eni import TaskEni, create_task_eni, delete_task_eni, list_task_enis
from fargo.network.vpc_router import VpcRouter, delete_vpc_router, ensure_vpc_router, list_vpc_routers
from fargo.protocol.messages import GroupPolicy, RulePolicy, VpcPolicy

MTU = 9001
OPEN = GroupPolicy("sg-open", ingress=[RulePolicy("-1", cidr="0.0.0.0/0")], egress=[RulePolicy("-1", cidr="0.0.0.0/0")])
# From <linux/in.h>; Python's socket module does not export them.
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2
BLOCKED_TIMEOUT = 0.6  # a dropped SYN is retried after 1 s: a connect that has not made it by then was dropped


def ip_json(*args: str) -> list[dict]:
    return json.loads(subprocess.run(["ip", "-j", *args], check=True, capture_output=True, text=True).stdout or "[]")


def host_routes() -> list[ipaddress.IPv4Network]:
    with host_rtnl() as ipr:
        return [
            ipaddress.ip_network(f"{r.get_attr('RTA_DST')}/{r['dst_len']}")
            for r in ipr.get_routes(family=socket.AF_INET, table=254)
            if r.get_attr("RTA_DST")
        ]


def free_vpc_cidr() -> str:
    used = host_routes()
    while True:
        candidate = ipaddress.ip_network(f"10.{random.randint(100, 250)}.0.0/16")
        if candidate != ipaddress.ip_network("10.213.0.0/16") and not any(candidate.overlaps(u) for u in used):
            return str(candidate)


def subnet(vpc_cidr: str, index: int) -> str:
    """The index-th /20 of a /16."""
    return str(list(ipaddress.ip_network(vpc_cidr).subnets(new_prefix=20))[index])


def address(subnet_cidr: str, n: int) -> str:
    return str(ipaddress.ip_network(subnet_cidr).network_address + 4 + n)


@dataclass
class Task:
    """A task ENI and what the filter knows of it."""

    eni: TaskEni
    router: VpcRouter
    groups: tuple[str, ...]
    public: bool

    @property
    def ip(self) -> str:
        return self.eni.ip

    def local(self) -> LocalEni:
        return LocalEni(self.eni.task_id, self.eni.router_ifname, self.eni.ip, self.groups, self.public)

    def socket(self, kind: int, proto: int = 0) -> socket.socket:
        sock = socket_in_netns(self.eni.netns_path, socket.AF_INET, kind, proto)
        sock.settimeout(5)
        return sock


@dataclass
class VpcSandbox:
    prefix: str = field(default_factory=lambda: "t" + secrets.token_hex(2))
    tasks: list[Task] = field(default_factory=list)
    _count: int = 0

    def router(self, vpc_id: str, cidr: str) -> VpcRouter:
        return ensure_vpc_router(vpc_id, cidr, prefix=self.prefix)

    def task(self, router: VpcRouter, subnet_cidr: str, *, groups: tuple[str, ...] = ("sg-open",),
             public: bool = False, mtu: int = MTU, ip: str | None = None) -> Task:
        self._count += 1
        task_id = f"task{self._count}"
        eni = create_task_eni(task_id, router, subnet_cidr, ip or address(subnet_cidr, self._count), mtu,
                              ipam.mac_address(f"{self.prefix}/{task_id}"), prefix=self.prefix)
        made = Task(eni, router, groups, public)
        self.tasks.append(made)
        return made

    def apply(self, router: VpcRouter, groups: list[GroupPolicy] | None = None) -> str:
        """The filter of `router`'s VPC for its tasks here, with these groups (default: one open group)."""
        groups = [OPEN] if groups is None else groups
        members = {
            g.group_id: [t.ip for t in self.tasks if t.router == router and g.group_id in t.groups] for g in groups
        }
        policy = VpcPolicy(router.vpc_id, router.cidr, [
            GroupPolicy(g.group_id, g.ingress, g.egress, g.member_ips or members[g.group_id]) for g in groups
        ])
        script = render_vpc_filter(policy, [t.local() for t in self.tasks if t.router == router], router)
        apply_vpc_filter(router, script)
        return script

    def close(self) -> None:
        for eni in list_task_enis(self.prefix):
            delete_task_eni(eni.task_id, prefix=self.prefix)
        for vpc_id in list_vpc_routers(self.prefix):
            delete_vpc_router(vpc_id, prefix=self.prefix)


def leftovers(prefix: str) -> list[str]:
    """Whatever of this prefix is still on the host: namespaces, links, the host table, task ENIs."""
    left = [f"netns {e['name']}" for e in ip_json("netns", "list") if e["name"].startswith(prefix)]
    left += [f"link {e['ifname']}" for e in ip_json("link", "show") if e["ifname"].startswith(prefix)]
    if f"table ip {host_table_name(prefix)}" in run_nft("list tables").splitlines():
        left.append("host nft table")
    left += [f"eni of {e.task_id}" for e in list_task_enis(prefix)]
    left += [f"router of {v}" for v in list_vpc_routers(prefix)]
    return left


# --- traffic ----------------------------------------------------------------------------------------


def serve_tcp(sock: socket.socket, reply: bytes | None = None) -> tuple[threading.Thread, list[str]]:
    """Accept connections on a listening socket until it is closed; read until the client's end of data, then
    echo it (or send `reply`); record peers."""
    peers: list[str] = []

    def loop() -> None:
        while True:
            try:
                conn, peer = sock.accept()
            except OSError:
                return
            with conn:
                peers.append(peer[0])
                try:
                    conn.settimeout(5)
                    data = b""
                    while chunk := conn.recv(65536):
                        data += chunk
                    conn.sendall(reply if reply is not None else data)
                except OSError:
                    pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread, peers


@contextmanager
def tcp_server(task: Task, port: int = 0, reply: bytes | None = None) -> Iterator[tuple[int, list[str]]]:
    """A TCP server in the task's namespace: (port, peers seen)."""
    sock = task.socket(socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((task.ip, port))
    sock.listen(16)
    sock.settimeout(None)
    _, peers = serve_tcp(sock, reply)
    try:
        yield sock.getsockname()[1], peers
    finally:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def tcp_talks(client: Task, ip: str, port: int, payload: bytes = b"ping", timeout: float = BLOCKED_TIMEOUT,
              source: str | None = None) -> bytes | None:
    """What the server answered, or None if the connection could not be made (dropped or refused)."""
    with client.socket(socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        if source is not None:
            sock.bind((source, 0))
        try:
            sock.connect((ip, port))
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            return answer
        except OSError as error:
            if isinstance(error, TimeoutError) or error.errno in (errno.EHOSTUNREACH, errno.ECONNREFUSED,
                                                                   errno.ENETUNREACH, errno.ECONNRESET):
                return None
            raise


def udp_arrives(sender: Task, receiver: Task, port: int, payload: bytes = b"dgram", timeout: float = 0.5) -> bool:
    with receiver.socket(socket.SOCK_DGRAM) as inbox, sender.socket(socket.SOCK_DGRAM) as outbox:
        inbox.bind((receiver.ip, port))
        inbox.settimeout(timeout)
        outbox.sendto(payload, (receiver.ip, port))
        try:
            return inbox.recv(65536) == payload
        except TimeoutError:
            return False


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def pings(sender: Task, ip: str, timeout: float = 0.5) -> bool:
    """ICMP echo requests from the task (raw socket: there is no ping binary), one every 0.5 s until
    `timeout`; True once a reply came. Where a reply is expected, give a few seconds: on a loaded host one
    request's reply may take longer than 0.5 s."""
    ident = random.randint(1, 0xFFFF)
    with sender.socket(socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        for seq in range(1, max(1, round(timeout / 0.5)) + 1):
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            sock.sendto(struct.pack("!BBHHH", 8, 0, _checksum(header + b"fargo"), ident, seq) + b"fargo", (ip, 0))
            deadline = time.monotonic() + 0.5
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data, peer = sock.recvfrom(65536)
                except TimeoutError:
                    break
                icmp = data[(data[0] & 0x0F) * 4:]
                if peer[0] == ip and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
                    return True
    return False


# --- a test host outside the VPCs ---------------------------------------------------------------------


@dataclass
class OutsideHost:
    """A namespace on a TEST-NET /29, reached from the host by a veth: only the host routes to it."""

    netns: str
    veth: str
    ip: str
    host_ip: str

    @property
    def path(self) -> str:
        return netns_path(self.netns)


def _free_test_net() -> ipaddress.IPv4Network:
    used = host_routes()
    while True:
        base = random.choice(["198.51.100.0/24", "203.0.113.0/24"])
        candidate = random.choice(list(ipaddress.ip_network(base).subnets(new_prefix=29)))
        if not any(candidate.overlaps(u) for u in used):
            return candidate


@contextmanager
def outside_host(prefix: str) -> Iterator[OutsideHost]:
    network = _free_test_net()
    host_ip, ip = str(network.network_address + 1), str(network.network_address + 2)
    made = OutsideHost(f"{prefix}x-testhost", f"{prefix}xh", ip, host_ip)
    try:
        create_netns(made.netns).close()
        for command in (
            ["ip", "link", "add", made.veth, "type", "veth", "peer", "name", "eth0", "netns", made.netns],
            ["ip", "addr", "add", f"{host_ip}/29", "dev", made.veth],
            ["ip", "link", "set", made.veth, "up"],
            ["ip", "-n", made.netns, "link", "set", "lo", "up"],
            ["ip", "-n", made.netns, "addr", "add", f"{ip}/29", "dev", "eth0"],
            ["ip", "-n", made.netns, "link", "set", "eth0", "up"],
            # Its only way anywhere is the host: it tries to reach tasks through it.
            ["ip", "-n", made.netns, "route", "add", "default", "via", host_ip],
        ):
            subprocess.run(command, check=True, capture_output=True)
        yield made
    finally:
        subprocess.run(["ip", "link", "del", made.veth], capture_output=True)
        remove_netns(made.netns)


@contextmanager
def server_in(netns_file: str, family_kind: int, bind: tuple[str, int],
              reply: bytes | None = None) -> Iterator[tuple[socket.socket, list[str]]]:
    """A TCP or UDP server on a socket made in any namespace (router, test host): (socket, peers seen)."""
    sock = socket_in_netns(netns_file, socket.AF_INET, family_kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(bind)
    peers: list[str] = []
    if family_kind == socket.SOCK_STREAM:
        sock.listen(16)
        _, peers = serve_tcp(sock, reply)
    else:
        def answer() -> None:
            while True:
                try:
                    data, peer = sock.recvfrom(65536)
                except OSError:
                    return
                if peer is None:  # shut down
                    return
                peers.append(peer[0])
                sock.sendto(reply if reply is not None else data, peer)

        threading.Thread(target=answer, daemon=True).start()
    try:
        yield sock, peers
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
