"""Security groups enforced by a VPC router's nftables against the real kernel: allow by CIDR and by source
group, deny without a rule, restricted egress, icmp and udp, a revoked rule, stateful replies, and the only
router endpoints tasks may reach (the resolver, 169.254.170.2 and the VPC endpoint) (needs root).

Each test builds its own router with a unique prefix in a random 10.x.0.0/16; traffic stays between the
namespaces made here and their router.
"""
from __future__ import annotations

import socket
import statistics
import time

import pytest

from fargo.network.security_groups import VpcFilterError, apply_vpc_filter, render_vpc_filter
from fargo.network.vpc_router import VpcRouter
from fargo.protocol.messages import GroupPolicy, RulePolicy, VpcPolicy
from tests.integration.vpc_sandbox import (
    OPEN,
    VpcSandbox,
    pings,
    server_in,
    subnet,
    tcp_server,
    tcp_talks,
    udp_arrives,
)

ANY_OUT = RulePolicy("-1", cidr="0.0.0.0/0")


def group(group_id: str, ingress: list[RulePolicy] | None = None,
          egress: list[RulePolicy] | None = None) -> GroupPolicy:
    return GroupPolicy(group_id, ingress or [], [ANY_OUT] if egress is None else egress)


def test_ingress_allowed_by_cidr_admits_that_subnet_only(net: VpcSandbox, vpc: VpcRouter) -> None:
    near, far = subnet(vpc.cidr, 0), subnet(vpc.cidr, 1)
    server = net.task(vpc, near, groups=("sg-server",))
    inside, outside = net.task(vpc, near, groups=("sg-client",)), net.task(vpc, far, groups=("sg-client",))
    net.apply(vpc, [group("sg-server", [RulePolicy("tcp", 8080, 8080, cidr=near)]), group("sg-client")])
    with tcp_server(server, 8080) as (_, peers):
        assert tcp_talks(inside, server.ip, 8080) == b"ping"
        assert tcp_talks(outside, server.ip, 8080) is None
    assert peers == [inside.ip]


def test_ingress_allowed_from_a_source_group_admits_its_members_only(net: VpcSandbox, vpc: VpcRouter) -> None:
    server = net.task(vpc, subnet(vpc.cidr, 0), groups=("sg-server",))
    member = net.task(vpc, subnet(vpc.cidr, 1), groups=("sg-client",))
    stranger = net.task(vpc, subnet(vpc.cidr, 1), groups=("sg-other",))
    net.apply(vpc, [group("sg-server", [RulePolicy("tcp", 8080, 8080, peer_group="sg-client")]),
                    group("sg-client"), group("sg-other")])
    with tcp_server(server, 8080):
        assert tcp_talks(member, server.ip, 8080) == b"ping"
        assert tcp_talks(stranger, server.ip, 8080) is None
        # A membership change is a new set of members: the stranger joins and gets in.
        stranger.groups = ("sg-other", "sg-client")
        net.apply(vpc, [group("sg-server", [RulePolicy("tcp", 8080, 8080, peer_group="sg-client")]),
                        group("sg-client"), group("sg-other")])
        assert tcp_talks(stranger, server.ip, 8080) == b"ping"


def test_without_a_matching_rule_a_connection_is_dropped(net: VpcSandbox, vpc: VpcRouter) -> None:
    server = net.task(vpc, subnet(vpc.cidr, 0), groups=("sg-closed",))
    client = net.task(vpc, subnet(vpc.cidr, 0), groups=("sg-client",))
    net.apply(vpc, [group("sg-closed", [RulePolicy("tcp", 9000, 9000, cidr=vpc.cidr)]), group("sg-client")])
    with tcp_server(server, 8080):
        assert tcp_talks(client, server.ip, 8080) is None  # another port
    assert not pings(client, server.ip)
    assert not udp_arrives(client, server, 9000)  # another protocol


def test_restricted_egress_lets_out_only_what_it_names(net: VpcSandbox, vpc: VpcRouter) -> None:
    server = net.task(vpc, subnet(vpc.cidr, 0), groups=("sg-server",))
    client = net.task(vpc, subnet(vpc.cidr, 1), groups=("sg-client",))
    net.apply(vpc, [group("sg-server", [RulePolicy("tcp", 8080, 8081, cidr=vpc.cidr)]),
                    group("sg-client", egress=[RulePolicy("tcp", 8080, 8080, peer_group="sg-server")])])
    with tcp_server(server, 8080), tcp_server(server, 8081):
        assert tcp_talks(client, server.ip, 8080) == b"ping"
        assert tcp_talks(client, server.ip, 8081) is None  # the server would take it; the client may not send


def test_icmp_and_udp_rules_allow_exactly_their_type_and_port(net: VpcSandbox, vpc: VpcRouter) -> None:
    server = net.task(vpc, subnet(vpc.cidr, 0), groups=("sg-server",))
    client = net.task(vpc, subnet(vpc.cidr, 1), groups=("sg-client",))
    net.apply(vpc, [group("sg-server", [RulePolicy("icmp", 8, -1, cidr=vpc.cidr),
                                        RulePolicy("udp", 5353, 5353, peer_group="sg-client")]),
                    group("sg-client")])
    assert pings(client, server.ip, timeout=3)  # echo request allowed; its reply is a reply
    assert udp_arrives(client, server, 5353)
    assert not udp_arrives(client, server, 5354)
    assert not pings(server, client.ip)  # the client's group admits nothing


def test_a_revoked_rule_blocks_new_connections_at_once_while_established_ones_live_on(net: VpcSandbox,
                                                                                       vpc: VpcRouter) -> None:
    server = net.task(vpc, subnet(vpc.cidr, 0), groups=("sg-server",))
    client = net.task(vpc, subnet(vpc.cidr, 1), groups=("sg-client",))
    allowing = [group("sg-server", [RulePolicy("tcp", 8080, 8080, cidr=vpc.cidr)]), group("sg-client")]
    net.apply(vpc, allowing)
    with tcp_server(server, 8080) as (_, peers):
        kept = client.socket(socket.SOCK_STREAM)
        kept.connect((server.ip, 8080))
        started = time.monotonic()
        net.apply(vpc, [group("sg-server"), group("sg-client")])
        assert tcp_talks(client, server.ip, 8080) is None
        assert time.monotonic() - started < 1.0
        # As on AWS, a tracked connection is not cut by a revoke.
        kept.sendall(b"still here")
        kept.shutdown(socket.SHUT_WR)
        assert kept.recv(100) == b"still here"
        kept.close()
        net.apply(vpc, allowing)
        assert tcp_talks(client, server.ip, 8080) == b"ping"
    assert len(peers) == 2


def test_replies_of_an_allowed_connection_pass_though_the_server_may_send_nothing_new(net: VpcSandbox,
                                                                                     vpc: VpcRouter) -> None:
    server = net.task(vpc, subnet(vpc.cidr, 0), groups=("sg-server",))
    client = net.task(vpc, subnet(vpc.cidr, 1), groups=("sg-client",))
    net.apply(vpc, [group("sg-server", [RulePolicy("tcp", 8080, 8080, cidr=vpc.cidr)], egress=[]),
                    group("sg-client", [RulePolicy("-1", cidr=vpc.cidr)],
                          egress=[RulePolicy("tcp", 8080, 8080, cidr=vpc.cidr)])])
    with tcp_server(server, 8080):
        assert tcp_talks(client, server.ip, 8080, b"x" * 100_000) == b"x" * 100_000  # stateful
    with tcp_server(client, 8080):
        assert tcp_talks(server, client.ip, 8080) is None  # no egress rule: nothing new leaves the server


def test_tasks_reach_the_resolver_and_the_metadata_and_vpc_endpoints_in_the_router_and_nothing_else_there(
        net: VpcSandbox, vpc: VpcRouter) -> None:
    task = net.task(vpc, subnet(vpc.cidr, 1), groups=("sg-none",))
    net.apply(vpc, [group("sg-none", egress=[])])  # security groups do not apply to these endpoints
    with server_in(vpc.netns_path, socket.SOCK_DGRAM, (vpc.resolver_ip, 53), b"dns answer") as (_, udp_peers), \
            server_in(vpc.netns_path, socket.SOCK_STREAM, (vpc.resolver_ip, 53)) as (_, tcp_peers), \
            server_in(vpc.netns_path, socket.SOCK_STREAM, (vpc.metadata_ip, 80)) as (_, metadata_peers), \
            server_in(vpc.netns_path, socket.SOCK_STREAM, (vpc.endpoint_ip, 80)) as (_, endpoint_peers), \
            server_in(vpc.netns_path, socket.SOCK_STREAM, (vpc.metadata_ip, 8080)) as (_, other_peers):
        with task.socket(socket.SOCK_DGRAM) as query:
            query.sendto(b"question", (vpc.resolver_ip, 53))
            assert query.recv(100) == b"dns answer"
        assert tcp_talks(task, vpc.resolver_ip, 53, b"dns over tcp") == b"dns over tcp"
        assert tcp_talks(task, vpc.metadata_ip, 80, b"GET /v4") == b"GET /v4"
        assert tcp_talks(task, vpc.endpoint_ip, 80, b"GET /v2/") == b"GET /v2/"
        assert tcp_talks(task, vpc.metadata_ip, 8080) is None
        assert tcp_talks(task, vpc.endpoint_ip, 443) is None
        assert tcp_talks(task, vpc.transit_router_ip, 22) is None
        assert not pings(task, vpc.resolver_ip)
    assert udp_peers == tcp_peers == metadata_peers == endpoint_peers == [task.ip]  # no NAT: the servers see the task
    assert other_peers == []


def test_an_eni_the_filter_does_not_know_yet_can_neither_send_nor_receive(net: VpcSandbox, vpc: VpcRouter) -> None:
    known = net.task(vpc, subnet(vpc.cidr, 0))
    net.apply(vpc, [OPEN])
    newcomer = net.task(vpc, subnet(vpc.cidr, 0))  # made after the last apply
    with tcp_server(known) as (port, _):
        assert tcp_talks(newcomer, known.ip, port) is None
    with tcp_server(newcomer) as (port, _):
        assert tcp_talks(known, newcomer.ip, port) is None
        net.apply(vpc, [OPEN])
        assert tcp_talks(known, newcomer.ip, port) == b"ping"


def test_a_new_router_is_closed_until_its_first_filter(net: VpcSandbox, vpc: VpcRouter) -> None:
    a, b = net.task(vpc, subnet(vpc.cidr, 0)), net.task(vpc, subnet(vpc.cidr, 1))
    with tcp_server(b) as (port, _):
        assert tcp_talks(a, b.ip, port) is None


def test_a_script_nft_refuses_raises_a_clear_error_and_leaves_the_filter_as_it_was(net: VpcSandbox,
                                                                                   vpc: VpcRouter) -> None:
    a, b = net.task(vpc, subnet(vpc.cidr, 0)), net.task(vpc, subnet(vpc.cidr, 1))
    net.apply(vpc, [OPEN])
    good = render_vpc_filter(VpcPolicy(vpc.vpc_id, vpc.cidr, [OPEN]), [a.local(), b.local()], vpc)
    with pytest.raises(VpcFilterError, match=vpc.vpc_id) as refused:
        apply_vpc_filter(vpc, good.replace("masquerade", "masquerade bogus"))
    assert "Error" in str(refused.value)
    with tcp_server(b) as (port, _):
        assert tcp_talks(a, b.ip, port) == b"ping"  # one transaction: nothing of the bad script took effect


def test_timing_of_a_filter_apply(net: VpcSandbox, vpc: VpcRouter, capsys: pytest.CaptureFixture) -> None:
    # Measured, not asserted: printed with -s. Twenty ENIs, three groups.
    for n in range(20):
        net.task(vpc, subnet(vpc.cidr, n % 3), groups=(f"sg-{n % 3}",))
    groups = [group(f"sg-{g}", [RulePolicy("tcp", 80, 80, peer_group=f"sg-{(g + 1) % 3}"),
                                RulePolicy("icmp", -1, -1, cidr=vpc.cidr)]) for g in range(3)]
    durations = []
    for _ in range(10):
        started = time.perf_counter()
        net.apply(vpc, groups)
        durations.append(time.perf_counter() - started)
    with capsys.disabled():
        print(f"\nfilter render + apply (20 ENIs) median {statistics.median(durations) * 1e3:.1f} ms")
