"""The VPC resolver on real sockets: served inside test network namespaces and queried from inside them.

Each test VPC is a namespace with the resolver address (VPC base + 2) on its lo. Upstream resolvers are dnslib
servers the test runs on 127.0.0.1 in the host namespace, so no query leaves this machine. Namespaces carry a
test-unique name and are removed at the end, even on failure.
"""
from __future__ import annotations

import asyncio
import random
import secrets
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from dnslib import EDNS0, QTYPE, RCODE, RR, TXT, A, DNSBuffer, DNSHeader, DNSQuestion, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

from fargo.network.ipam import private_dns_name
from fargo.network.netns import create_netns, remove_netns, run_in_netns, socket_in_netns
from fargo.network.rtnl import rtnl_over
from fargo.network.vpc_resolver import VpcResolver, resolver_address

T = TypeVar("T")
REGION = "us-east-1"
_LOOPBACK_IFINDEX = 1


@dataclass(frozen=True)
class VpcUnderTest:
    vpc_id: str
    cidr: str
    netns_path: str

    @property
    def resolver(self) -> str:
        return resolver_address(self.cidr)

    def ip(self, host: int) -> str:
        return self.cidr.replace(".0.0/16", f".0.{host}")

    def name(self, host: int) -> str:
        return private_dns_name(self.ip(host), REGION)


def make_vpc_netns(netns_name: str, vpc_id: str, cidr: str) -> VpcUnderTest:
    """A fresh namespace whose lo is up and holds the VPC's resolver address (the caller removes it)."""
    ns = create_netns(netns_name)
    vpc = VpcUnderTest(vpc_id, cidr, ns.path)
    try:
        with rtnl_over(ns.netlink) as ipr:
            ipr.link("set", index=_LOOPBACK_IFINDEX, state="up")
            ipr.addr("add", index=_LOOPBACK_IFINDEX, address=vpc.resolver, prefixlen=32)
    finally:
        ns.close()
    return vpc


@pytest.fixture(scope="module")
def vpcs() -> Iterator[tuple[VpcUnderTest, VpcUnderTest]]:
    """Two VPCs, each in a namespace of its own."""
    suffix = secrets.token_hex(3)
    names = [f"fgdns-{suffix}-{n}" for n in range(2)]
    try:
        a, b = (
            make_vpc_netns(name, f"vpc-dnstest{suffix}{n}", f"10.{octet}.0.0/16")
            for n, (name, octet) in enumerate(zip(names, random.sample(range(100, 200), 2)))
        )
        yield a, b
    finally:
        for name in names:
            remove_netns(name)  # nothing to do for one never made


class _Upstream(BaseResolver):
    """Answers every name with `answer`, `missing.example.test` with NXDOMAIN, `big.example.test` with 30 TXT."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []  # (protocol, name)
        self._lock = threading.Lock()

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        name = str(request.q.qname)
        with self._lock:
            self.asked.append((handler.protocol, name))
        reply = request.reply()
        if name.lower() == "missing.example.test.":
            reply.header.rcode = RCODE.NXDOMAIN
        elif name.lower() == "big.example.test.":
            for n in range(30):
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(f"{n:02d}" + "x" * 98), ttl=30))
        else:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(self.answer), ttl=30))
        return reply


class _ClassicUdpHandler(DNSHandler):
    udplen = 512  # no EDNS here: longer UDP answers go out truncated (TC), as from a classic server


@dataclass
class Upstreams:
    """Test upstreams on 127.0.0.1: answering ones (UDP and TCP on one port), silent ones, refusing ports."""

    _servers: list[DNSServer] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)

    def answering(self, answer: str) -> tuple[tuple[str, int], _Upstream]:
        resolver = _Upstream(answer)
        quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        while True:
            udp = DNSServer(resolver, address="127.0.0.1", port=0, logger=quiet, handler=_ClassicUdpHandler)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(resolver, address="127.0.0.1", port=port, tcp=True, logger=quiet)
            except OSError:  # that port is taken for TCP: try another
                udp.server.server_close()
                continue
            break
        for server in (udp, tcp):
            # A short poll interval: stopping a dnslib server waits for its serve_forever loop to look up.
            threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            self._servers.append(server)
        return ("127.0.0.1", port), resolver

    def silent(self) -> tuple[tuple[str, int], socket.socket]:
        """A bound UDP socket nobody reads: queries to it are never answered (read them with MSG_DONTWAIT)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        self._sockets.append(sock)
        return sock.getsockname(), sock

    def refusing(self) -> tuple[str, int]:
        """A port nothing listens on (the kernel answers with ICMP port unreachable)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()

    def close(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    made = Upstreams()
    try:
        yield made
    finally:
        made.close()


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(30):
            return await scenario()

    return asyncio.run(bounded())


@asynccontextmanager
async def serving(
    vpcs: Sequence[VpcUnderTest], upstreams: Sequence[tuple[str, int]], timeout: float = 1.0
) -> AsyncIterator[VpcResolver]:
    resolver = VpcResolver(REGION, upstreams, timeout)
    try:
        for vpc in vpcs:
            await resolver.serve(vpc.vpc_id, vpc.netns_path, vpc.resolver)
            resolver.set_records(vpc.vpc_id, {vpc.name(5): vpc.ip(5), vpc.name(6): vpc.ip(6)})
        yield resolver
    finally:
        await resolver.close()


def query(name: str, qtype: str = "A", edns: int | None = None) -> DNSRecord:
    record = DNSRecord.question(name, qtype)
    if edns is not None:
        record.add_ar(EDNS0(udp_len=edns))
    return record


async def ask(vpc: VpcUnderTest, record: DNSRecord, tcp: bool = False, timeout: float = 5.0) -> DNSRecord:
    """Send `record` from inside the VPC's namespace (dnslib's own client) and check the id and question."""

    def exchange() -> bytes:
        return record.send(vpc.resolver, 53, tcp=tcp, timeout=timeout)  # type: ignore[no-any-return]

    reply = DNSRecord.parse(await asyncio.to_thread(run_in_netns, vpc.netns_path, exchange))
    assert reply.header.id == record.header.id and reply.header.qr == 1
    assert [(str(q.qname), q.qtype) for q in reply.questions] == [(str(record.q.qname), record.q.qtype)]
    return reply


def answers(reply: DNSRecord) -> list[tuple[str, str, int, str]]:
    return [(str(rr.rname), QTYPE[rr.rtype], rr.ttl, str(rr.rdata)) for rr in reply.rr]


async def udp_datagrams(vpc: VpcUnderTest, datagrams: Sequence[bytes], quiet_for: float = 0.5) -> list[DNSRecord]:
    """Send raw datagrams from one socket in the namespace; every reply that came back, until `quiet_for` of quiet."""

    def exchange() -> list[bytes]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(quiet_for)
            for datagram in datagrams:
                sock.sendto(datagram, (vpc.resolver, 53))
            replies = []
            try:
                while True:
                    replies.append(sock.recv(65535))
            except TimeoutError:
                return replies

    return [DNSRecord.parse(data) for data in await asyncio.to_thread(run_in_netns, vpc.netns_path, exchange)]


def _frame(message: bytes) -> bytes:
    return struct.pack("!H", len(message)) + message  # RFC 1035 4.2.2 TCP framing, written independently here


def _read_frame(sock: socket.socket) -> bytes:
    with sock.makefile("rb") as stream:
        (length,) = struct.unpack("!H", stream.read(2))
        return stream.read(length)


async def tcp_session(
    vpc: VpcUnderTest, data: bytes, replies: int, hang_up_within: float = 0.0
) -> tuple[list[DNSRecord], bool]:
    """Write `data` on one TCP connection; read `replies` framed replies; did the server hang up (if asked)?"""

    def exchange() -> tuple[list[bytes], bool]:
        with socket.create_connection((vpc.resolver, 53), timeout=5) as sock:
            sock.sendall(data)
            got = [_read_frame(sock) for _ in range(replies)]
            if not hang_up_within:
                return got, False
            sock.settimeout(hang_up_within)
            try:
                hung_up = sock.recv(1) == b""
            except TimeoutError:
                hung_up = False
            return got, hung_up

    got, hung_up = await asyncio.to_thread(run_in_netns, vpc.netns_path, exchange)
    return [DNSRecord.parse(message) for message in got], hung_up


def test_eni_private_name_resolves_to_its_ip_with_ttl_60_in_any_case(vpcs: tuple[VpcUnderTest, VpcUnderTest]) -> None:
    a, _ = vpcs

    async def scenario() -> None:
        async with serving([a], []):
            for spelling in (a.name(5), a.name(5).upper() + "."):
                reply = await ask(a, query(spelling))
                assert reply.header.rcode == RCODE.NOERROR and reply.header.ra == 1
                assert answers(reply) == [(spelling.rstrip(".") + ".", "A", 60, a.ip(5))]

    run(scenario)


def test_ptr_of_an_eni_address_is_its_private_name(vpcs: tuple[VpcUnderTest, VpcUnderTest]) -> None:
    a, _ = vpcs
    reverse = ".".join(reversed(a.ip(6).split("."))) + ".in-addr.arpa"

    async def scenario() -> None:
        async with serving([a], []):
            reply = await ask(a, query(reverse, "PTR"))
            assert answers(reply) == [(reverse + ".", "PTR", 60, a.name(6) + ".")]

    run(scenario)


def test_unknown_name_of_the_private_zone_is_nxdomain_with_the_zone_soa(vpcs: tuple[VpcUnderTest, VpcUnderTest]) -> None:
    a, _ = vpcs
    unknown_reverse = ".".join(reversed(a.ip(7).split("."))) + ".in-addr.arpa"

    async def scenario() -> None:
        async with serving([a], []):
            for name, qtype, zone in (
                (a.name(7), "A", "ec2.internal."),
                ("anything.ec2.internal", "A", "ec2.internal."),
                (unknown_reverse, "PTR", "10.in-addr.arpa."),
            ):
                reply = await ask(a, query(name, qtype))
                assert reply.header.rcode == RCODE.NXDOMAIN and reply.rr == []
                assert [(str(rr.rname), QTYPE[rr.rtype]) for rr in reply.auth] == [(zone, "SOA")]

    run(scenario)


def test_aaaa_and_other_types_of_an_eni_name_are_noerror_without_answer(vpcs: tuple[VpcUnderTest, VpcUnderTest]) -> None:
    a, _ = vpcs

    async def scenario() -> None:
        async with serving([a], []):
            for qtype in ("AAAA", "MX", "TXT"):
                reply = await ask(a, query(a.name(5), qtype))
                assert reply.header.rcode == RCODE.NOERROR and reply.rr == []

    run(scenario)


def test_a_vpc_never_answers_the_names_of_another_vpc(vpcs: tuple[VpcUnderTest, VpcUnderTest], upstreams: Upstreams) -> None:
    a, b = vpcs
    upstream, asked = upstreams.answering("192.0.2.1")
    b_reverse = ".".join(reversed(b.ip(5).split("."))) + ".in-addr.arpa"

    async def scenario() -> None:
        async with serving([a, b], [upstream]):
            assert answers(await ask(b, query(b.name(5))))[0][3] == b.ip(5)
            assert (await ask(a, query(b.name(5)))).header.rcode == RCODE.NXDOMAIN
            assert (await ask(a, query(b_reverse, "PTR"))).header.rcode == RCODE.NXDOMAIN
            assert answers(await ask(a, query(a.name(5))))[0][3] == a.ip(5)

    run(scenario)
    assert asked.asked == []  # private names and private reverse names never leave the VPC


def test_set_records_replaces_the_whole_set(vpcs: tuple[VpcUnderTest, VpcUnderTest]) -> None:
    a, _ = vpcs

    async def scenario() -> None:
        async with serving([a], []) as resolver:
            resolver.set_records(a.vpc_id, {a.name(9): a.ip(9)})
            assert answers(await ask(a, query(a.name(9))))[0][3] == a.ip(9)
            assert (await ask(a, query(a.name(5)))).header.rcode == RCODE.NXDOMAIN
            resolver.set_records(a.vpc_id, {})
            assert (await ask(a, query(a.name(9)))).header.rcode == RCODE.NXDOMAIN

    run(scenario)


def test_other_names_are_forwarded_from_the_host_namespace_with_the_client_id_and_question(
    vpcs: tuple[VpcUnderTest, VpcUnderTest], upstreams: Upstreams
) -> None:
    a, _ = vpcs
    upstream, asked = upstreams.answering("192.0.2.10")

    async def scenario() -> None:
        # The upstream listens on the host's 127.0.0.1; the VPC namespace's own lo has nothing there.
        async with serving([a], [upstream]):
            reply = await ask(a, query("WWW.Example.Test"))
            assert answers(reply) == [("WWW.Example.Test.", "A", 30, "192.0.2.10")]
            missing = await ask(a, query("missing.example.test"))
            assert missing.header.rcode == RCODE.NXDOMAIN

    run(scenario)
    assert asked.asked == [("udp", "WWW.Example.Test."), ("udp", "missing.example.test.")]


def test_truncated_upstream_answer_is_fetched_over_tcp_and_sized_for_each_client(
    vpcs: tuple[VpcUnderTest, VpcUnderTest], upstreams: Upstreams
) -> None:
    a, _ = vpcs
    upstream, asked = upstreams.answering("192.0.2.10")

    async def scenario() -> None:
        async with serving([a], [upstream]):
            # An EDNS client takes the whole 3 kB answer over UDP.
            big = await ask(a, query("big.example.test", "TXT", edns=4096))
            assert big.header.tc == 0 and len(big.rr) == 30
            assert any(rr.rtype == QTYPE.OPT for rr in big.ar)
            # A classic client gets TC over UDP, and the whole answer when it asks again over TCP.
            classic = await ask(a, query("big.example.test", "TXT"))
            assert classic.header.tc == 1 and classic.rr == []
            over_tcp = await ask(a, query("big.example.test", "TXT"), tcp=True)
            assert over_tcp.header.tc == 0 and len(over_tcp.rr) == 30

    run(scenario)
    assert [protocol for protocol, _ in asked.asked] == ["udp", "tcp"] * 3


def test_silent_and_refusing_upstreams_are_skipped_for_the_next(
    vpcs: tuple[VpcUnderTest, VpcUnderTest], upstreams: Upstreams
) -> None:
    a, _ = vpcs
    silent, silent_socket = upstreams.silent()
    refusing = upstreams.refusing()
    good, asked = upstreams.answering("192.0.2.20")
    timeout = 0.5

    async def scenario() -> float:
        async with serving([a], [refusing, silent, good], timeout=timeout):
            started = time.monotonic()
            reply = await ask(a, query("next.example.test"))
            elapsed = time.monotonic() - started
            assert answers(reply) == [("next.example.test.", "A", 30, "192.0.2.20")]
            return elapsed

    elapsed = run(scenario)
    assert timeout <= elapsed < timeout + 1.0  # the refusing one cost nothing, the silent one its timeout
    assert DNSRecord.parse(silent_socket.recv(65535, socket.MSG_DONTWAIT)).q.qname == "next.example.test"
    assert asked.asked == [("udp", "next.example.test.")]


def test_no_upstream_answering_is_servfail_within_the_timeouts(
    vpcs: tuple[VpcUnderTest, VpcUnderTest], upstreams: Upstreams
) -> None:
    a, _ = vpcs
    first, _ = upstreams.silent()
    second, _ = upstreams.silent()
    timeout = 0.3

    async def scenario() -> float:
        async with serving([a], [first, second], timeout=timeout):
            started = time.monotonic()
            reply = await ask(a, query("nobody.example.test"))
            assert reply.header.rcode == RCODE.SERVFAIL and reply.rr == []
            return time.monotonic() - started

    assert 2 * timeout <= run(scenario) < 2 * timeout + 1.0


def test_a_slow_upstream_holds_up_no_other_query(vpcs: tuple[VpcUnderTest, VpcUnderTest], upstreams: Upstreams) -> None:
    a, b = vpcs
    silent, _ = upstreams.silent()

    async def scenario() -> None:
        async with serving([a, b], [silent], timeout=1.0):
            pending = asyncio.create_task(ask(a, query("slow.example.test")))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            assert answers(await ask(a, query(a.name(5))))[0][3] == a.ip(5)
            assert answers(await ask(b, query(b.name(5))))[0][3] == b.ip(5)
            assert time.monotonic() - started < 0.5
            assert (await pending).header.rcode == RCODE.SERVFAIL

    run(scenario)


def test_tcp_clients_get_answers_over_tcp_even_pipelined(vpcs: tuple[VpcUnderTest, VpcUnderTest], upstreams: Upstreams) -> None:
    a, _ = vpcs
    upstream, _ = upstreams.answering("192.0.2.30")

    async def scenario() -> None:
        async with serving([a], [upstream]):
            private = await ask(a, query(a.name(6)), tcp=True)
            assert answers(private) == [(a.name(6) + ".", "A", 60, a.ip(6))]
            first, second = query(a.name(5)), query("pipelined.example.test")
            replies, _ = await tcp_session(a, _frame(first.pack()) + _frame(second.pack()), replies=2)
            assert [r.header.id for r in replies] == [first.header.id, second.header.id]
            assert [answers(r)[0][3] for r in replies] == [a.ip(5), "192.0.2.30"]

    run(scenario)


def test_bad_packets_are_dropped_and_the_resolver_keeps_answering(vpcs: tuple[VpcUnderTest, VpcUnderTest]) -> None:
    a, _ = vpcs
    response = query(a.name(5)).reply()  # a response sent to the resolver: never answered (no loops)
    header_only = DNSBuffer()
    DNSHeader(id=7, q=1).pack(header_only)  # claims a question it does not carry
    two_questions = DNSRecord(DNSHeader(id=8), questions=[DNSQuestion(a.name(5)), DNSQuestion(a.name(6))])
    notify = DNSRecord(DNSHeader(id=9, opcode=4), q=DNSQuestion(a.name(5)))
    valid = query(a.name(5))

    async def scenario() -> None:
        async with serving([a], []):
            garbage = [b"", b"\x00", random.Random(7).randbytes(300), bytes(header_only.data), response.pack()]
            replies = await udp_datagrams(a, [*garbage, two_questions.pack(), notify.pack(), valid.pack()])
            by_id = {reply.header.id: reply for reply in replies}
            assert sorted(by_id) == sorted([8, 9, valid.header.id]) and len(replies) == 3
            assert by_id[8].header.rcode == RCODE.FORMERR
            assert by_id[9].header.rcode == RCODE.NOTIMP
            assert answers(by_id[valid.header.id])[0][3] == a.ip(5)
            # Over TCP, a frame that is not DNS ends the connection; the next connection is served.
            _, hung_up = await tcp_session(a, _frame(random.Random(8).randbytes(40)), replies=0, hang_up_within=2.0)
            assert hung_up
            assert answers(await ask(a, query(a.name(6)), tcp=True))[0][3] == a.ip(6)

    run(scenario)


def test_serve_again_changes_nothing_and_close_vpc_stops_only_that_vpc(vpcs: tuple[VpcUnderTest, VpcUnderTest]) -> None:
    a, b = vpcs

    async def scenario() -> None:
        async with serving([a, b], []) as resolver:
            with await asyncio.to_thread(socket_in_netns, a.netns_path, socket.AF_INET, socket.SOCK_STREAM) as conn:
                conn.settimeout(5)
                await asyncio.to_thread(conn.connect, (a.resolver, 53))
                await resolver.serve(a.vpc_id, a.netns_path, a.resolver)
                # The connection made before still works: the sockets were kept (and the records too).
                probe = query(a.name(5))
                await asyncio.to_thread(conn.sendall, _frame(probe.pack()))
                reply = DNSRecord.parse(await asyncio.to_thread(_read_frame, conn))
                assert reply.header.id == probe.header.id and answers(reply)[0][3] == a.ip(5)
            await resolver.close_vpc(a.vpc_id)
            assert not resolver.serves(a.vpc_id)
            with pytest.raises(ConnectionRefusedError):
                await ask(a, query(a.name(5)), tcp=True)
            assert answers(await ask(b, query(b.name(5))))[0][3] == b.ip(5)

    run(scenario)


def test_a_vpc_that_cannot_be_served_does_not_stop_the_others(vpcs: tuple[VpcUnderTest, VpcUnderTest]) -> None:
    a, b = vpcs

    async def scenario() -> None:
        async with serving([a], []) as resolver:
            with pytest.raises(FileNotFoundError):
                await resolver.serve("vpc-gone", a.netns_path + "-missing", a.resolver)
            with pytest.raises(OSError):  # that address is not in this namespace
                await resolver.serve(b.vpc_id, b.netns_path, a.resolver)
            assert answers(await ask(a, query(a.name(5))))[0][3] == a.ip(5)

    run(scenario)


def test_a_router_namespace_made_again_at_the_same_path_is_served_anew(vpcs: tuple[VpcUnderTest, VpcUnderTest]) -> None:
    a, _ = vpcs
    netns_name = f"fgdns-{secrets.token_hex(3)}-r"

    async def scenario() -> None:
        async with serving([], []) as resolver:
            for _ in range(2):
                vpc = await asyncio.to_thread(make_vpc_netns, netns_name, a.vpc_id, a.cidr)
                resolver.set_records(vpc.vpc_id, {vpc.name(5): vpc.ip(5)})
                await resolver.serve(vpc.vpc_id, vpc.netns_path, vpc.resolver)
                assert answers(await ask(vpc, query(vpc.name(5))))[0][3] == vpc.ip(5)
                await asyncio.to_thread(remove_netns, netns_name)  # the old sockets keep the old namespace alive

    try:
        run(scenario)
    finally:
        remove_netns(netns_name)
