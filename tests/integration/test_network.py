"""VPC routers and routed task ENIs against the real kernel: routing between subnets, isolation of VPCs with the
same CIDR, MTU, proxy ARP, anti-spoofing, NAT for assignPublicIp, healing, listing and clean-up (needs root).

Every object carries a test-unique prefix and lives in random 10.x.0.0/16 CIDRs no host route uses; traffic
only flows between the namespaces made here, their routers, and a test host namespace on a TEST-NET address.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from fargo.agent.reconcile import remove_orphan_networks
from fargo.network import ipam, names
from fargo.network.counters import read_eni_counters
from fargo.network.host_nat import host_table_name
from fargo.network.host_routes import vpc_guards
from fargo.network.netns import create_netns, remove_netns, socket_in_netns
from fargo.network.nft import run_nft
from fargo.network.rtnl import host_rtnl, netns_rtnl
from fargo.network.task_eni import (
    TaskEniError,
    create_task_eni,
    create_task_eni_async,
    delete_task_eni,
    delete_task_eni_async,
    list_task_enis,
    list_task_enis_async,
)
from fargo.network.vpc_router import (
    VpcRouter,
    delete_vpc_router,
    ensure_vpc_router_async,
    list_vpc_routers,
)
from tests.integration.vpc_sandbox import (
    IP_MTU_DISCOVER,
    IP_PMTUDISC_DO,
    MTU,
    OPEN,
    Task,
    VpcSandbox,
    address,
    free_vpc_cidr,
    ip_json,
    leftovers,
    outside_host,
    pings,
    server_in,
    subnet,
    tcp_server,
    tcp_talks,
)


# --- names and addresses (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["fg", "t1a2b", "x"])
def test_a_router_namespace_never_reads_as_a_task_namespace_of_any_prefix(prefix: str) -> None:
    router = names.router_netns_name("vpc-0abc", prefix)
    assert names.vpc_id_from_router_netns_name(router, prefix) == "vpc-0abc"
    assert names.task_id_from_netns_name(router, prefix) is None
    with pytest.raises(ValueError):
        names.check_prefix(prefix + "r")  # the only prefix that would read it as its task `vpc-0abc`
    assert names.vpc_id_from_router_netns_name(names.netns_name("task1", prefix), prefix) is None


def test_uplink_and_port_names_fit_ifnamsiz_and_differ_by_kind() -> None:
    uplink, port = names.uplink_name("vpc-0abc", "abcdef"), names.router_port_name("vpc-0abc", "abcdef")
    assert len(uplink) == len(port) == 15 and uplink != port
    assert names.is_uplink_name(uplink, "abcdef") and not names.is_uplink_name(port, "abcdef")
    assert names.parse_uplink_alias(names.uplink_alias("fgr-vpc-1", "10.1.0.0/16")) == ("fgr-vpc-1", "10.1.0.0/16")
    assert names.parse_uplink_alias("fg-task1") is None


def test_transit_networks_are_the_lowest_free_30s_of_the_range() -> None:
    first = ipam.allocate_transit(set())
    assert str(first) == "169.254.240.0/30"
    taken = {first, ipaddress.IPv4Network("169.254.240.8/30")}
    assert str(ipam.allocate_transit(taken)) == "169.254.240.4/30"
    assert str(ipam.allocate_transit(taken | {ipaddress.IPv4Network("169.254.240.4/30")})) == "169.254.240.12/30"
    assert ipam.resolver_ip("10.77.0.0/16") == "10.77.0.2"


# --- routing -------------------------------------------------------------------------------------------------


def test_tasks_in_two_subnets_of_one_vpc_reach_each_other_over_tcp(net: VpcSandbox, vpc: VpcRouter) -> None:
    a, b = net.task(vpc, subnet(vpc.cidr, 0)), net.task(vpc, subnet(vpc.cidr, 1))
    net.apply(vpc)
    with tcp_server(b) as (port, peers):
        assert tcp_talks(a, b.ip, port, b"across subnets") == b"across subnets"
    assert peers == [a.ip]  # routed, never NATed, inside the VPC
    with tcp_server(a) as (port, _):
        assert tcp_talks(b, a.ip, port, b"and back") == b"and back"


def test_two_vpcs_with_the_same_cidr_never_reach_each_other_and_each_reaches_its_own(net: VpcSandbox) -> None:
    cidr = free_vpc_cidr()
    first, second = net.router(f"vpc-{net.prefix}-1", cidr), net.router(f"vpc-{net.prefix}-2", cidr)
    same_ip = address(subnet(cidr, 0), 1)
    servers = [net.task(r, subnet(cidr, 0), ip=same_ip) for r in (first, second)]
    clients = [net.task(r, subnet(cidr, 1), ip=address(subnet(cidr, 1), 2)) for r in (first, second)]
    for router in (first, second):
        net.apply(router)
    with tcp_server(servers[0], 8080, b"first") as (_, seen_first), \
            tcp_server(servers[1], 8080, b"second") as (_, seen_second):
        assert tcp_talks(clients[0], same_ip, 8080) == b"first"
        assert tcp_talks(clients[1], same_ip, 8080) == b"second"
    assert seen_first == [clients[0].ip] and seen_second == [clients[1].ip]
    assert first.transit_host_ip != second.transit_host_ip
    # A neighbour that exists only in the other VPC is unreachable here.
    other = net.task(second, subnet(cidr, 2))
    net.apply(second)
    with tcp_server(other) as (port, _):
        assert tcp_talks(clients[1], other.ip, port) is not None
        assert tcp_talks(clients[0], other.ip, port) is None


def test_jumbo_mtu_9001_end_to_end_a_8973_byte_df_datagram_passes_task_to_task(net: VpcSandbox,
                                                                                vpc: VpcRouter) -> None:
    a, b = net.task(vpc, subnet(vpc.cidr, 0)), net.task(vpc, subnet(vpc.cidr, 1))
    net.apply(vpc)
    (eth1,) = ip_json("-n", a.eni.netns_name, "link", "show", "eth1")
    (port,) = ip_json("-n", vpc.netns_name, "link", "show", a.eni.router_ifname)
    assert eth1["mtu"] == port["mtu"] == MTU and eth1["address"] == a.eni.mac
    _df_datagram_passes(a, b, MTU - 28)


def test_platform_1_3_0_mtu_of_1500_is_a_parameter(net: VpcSandbox, vpc: VpcRouter) -> None:
    a, b = net.task(vpc, subnet(vpc.cidr, 0), mtu=1500), net.task(vpc, subnet(vpc.cidr, 0), mtu=1500)
    net.apply(vpc)
    (eth1,) = ip_json("-n", a.eni.netns_name, "link", "show", "eth1")
    (port,) = ip_json("-n", vpc.netns_name, "link", "show", a.eni.router_ifname)
    assert eth1["mtu"] == port["mtu"] == 1500
    _df_datagram_passes(a, b, 1500 - 28)


def _df_datagram_passes(a, b, size: int) -> None:  # noqa: ANN001
    with b.socket(socket.SOCK_DGRAM) as receiver, a.socket(socket.SOCK_DGRAM) as sender:
        receiver.bind((b.ip, 0))
        sender.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)  # DF set
        sender.connect(receiver.getsockname())
        sender.send(b"x" * size)
        assert len(receiver.recv(65536)) == size
        with pytest.raises(OSError) as too_big:
            sender.send(b"x" * (size + 1))
        assert too_big.value.errno == errno.EMSGSIZE


def test_task_has_its_address_a_default_route_and_the_metadata_route_via_the_gateway(net: VpcSandbox,
                                                                                     vpc: VpcRouter) -> None:
    cidr = subnet(vpc.cidr, 1)
    eni = net.task(vpc, cidr).eni
    gateway = ipam.gateway_ip(cidr)
    routes = {r["dst"]: r for r in ip_json("-n", eni.netns_name, "route", "show")}
    assert routes["default"]["gateway"] == gateway and routes["default"]["dev"] == "eth1"
    assert routes[ipam.METADATA_IP]["gateway"] == gateway and routes[ipam.METADATA_IP]["dev"] == "eth1"
    (addr,) = ip_json("-n", eni.netns_name, "-4", "addr", "show", "eth1")[0]["addr_info"]
    assert (addr["local"], addr["prefixlen"]) == (eni.ip, 20)
    (lo,) = ip_json("-n", eni.netns_name, "link", "show", "lo")
    assert "UP" in lo["flags"]
    # In the router: the gateway with the task as its peer, so the task's /32 goes to its port.
    (port,) = ip_json("-n", vpc.netns_name, "-4", "addr", "show", eni.router_ifname)
    assert [(a["local"], a["address"], a["prefixlen"]) for a in port["addr_info"]] == [(gateway, eni.ip, 32)]
    assert ip_json("-n", vpc.netns_name, "link", "show", eni.router_ifname)[0]["ifalias"] == eni.netns_name


def test_neighbours_in_one_subnet_are_answered_by_the_router_port_and_unassigned_addresses_by_nobody(
        net: VpcSandbox, vpc: VpcRouter) -> None:
    cidr = subnet(vpc.cidr, 0)
    a, b = net.task(vpc, cidr), net.task(vpc, cidr)
    net.apply(vpc)
    with tcp_server(b) as (port, _):
        started = time.monotonic()
        assert tcp_talks(a, b.ip, port) == b"ping"
        assert time.monotonic() - started < 0.5  # proxy ARP answers at once (no proxy_delay)
    (router_port,) = ip_json("-n", vpc.netns_name, "link", "show", a.eni.router_ifname)
    neighbours = {n["dst"]: n for n in ip_json("-n", a.eni.netns_name, "neigh", "show", "dev", "eth1")}
    assert neighbours[b.ip]["lladdr"] == router_port["address"]  # b sits behind the router, not on a's wire
    assert tcp_talks(a, address(cidr, 200), 80, timeout=4) is None  # nobody holds it
    unassigned = {n["dst"]: n for n in ip_json("-n", a.eni.netns_name, "neigh", "show", "dev", "eth1")}
    assert "lladdr" not in unassigned.get(address(cidr, 200), {})


def test_a_task_sending_from_another_ip_is_dropped(net: VpcSandbox, vpc: VpcRouter) -> None:
    cidr = subnet(vpc.cidr, 0)
    a, b, c = net.task(vpc, cidr), net.task(vpc, cidr), net.task(vpc, cidr)
    net.apply(vpc)
    subprocess.run(["ip", "-n", a.eni.netns_name, "addr", "add", f"{b.ip}/32", "dev", "eth1"], check=True)
    subprocess.run(["ip", "-n", a.eni.netns_name, "addr", "add", f"{address(cidr, 300)}/32", "dev", "eth1"],
                   check=True)
    with tcp_server(c) as (port, peers):
        assert tcp_talks(a, c.ip, port, source=a.ip) == b"ping"
        assert tcp_talks(a, c.ip, port, source=b.ip) is None  # another task's address
        assert tcp_talks(a, c.ip, port, source=address(cidr, 300)) is None  # an address nobody holds
    assert peers == [a.ip]


# --- outside the VPC: NAT for assignPublicIp -------------------------------------------------------------


def test_only_a_task_with_a_public_ip_reaches_a_test_host_and_it_sees_the_host_address(net: VpcSandbox,
                                                                                       vpc: VpcRouter) -> None:
    public = net.task(vpc, subnet(vpc.cidr, 0), public=True)
    private = net.task(vpc, subnet(vpc.cidr, 0), public=False)
    net.apply(vpc)
    with outside_host(net.prefix) as outside, \
            server_in(outside.path, socket.SOCK_STREAM, (outside.ip, 8080)) as (_, peers):
        assert tcp_talks(public, outside.ip, 8080, b"out") == b"out"
        assert peers == [outside.host_ip]  # masqueraded by the router and then by the host
        assert tcp_talks(private, outside.ip, 8080) is None
        assert peers == [outside.host_ip]


def test_nothing_from_outside_opens_a_connection_to_a_task(net: VpcSandbox, vpc: VpcRouter) -> None:
    task = net.task(vpc, subnet(vpc.cidr, 0), public=True)
    net.apply(vpc)
    with outside_host(net.prefix) as outside, tcp_server(task) as (port, peers):
        outside_sock = socket_in_netns(outside.path, socket.AF_INET, socket.SOCK_STREAM)
        # By its default route to the host: the VPC guard route there sends it nowhere.
        assert _connects(outside_sock, task.ip, port) is False
        # Even along a route straight to the router's uplink (made here, for this test only): dropped.
        with host_rtnl() as ipr:
            ipr.route("add", dst=task.ip, dst_len=32, gateway=vpc.transit_router_ip)
        try:
            from_outside = socket_in_netns(outside.path, socket.AF_INET, socket.SOCK_STREAM)
            assert _connects(from_outside, task.ip, port) is False
            assert _connects(socket.socket(), task.ip, port) is False  # from the host itself
            assert _connects(socket_in_netns(outside.path, socket.AF_INET, socket.SOCK_STREAM),
                             vpc.transit_router_ip, 22) is False
        finally:
            with host_rtnl() as ipr:
                ipr.route("del", dst=task.ip, dst_len=32, gateway=vpc.transit_router_ip)
    assert peers == []


def _connects(sock: socket.socket, ip: str, port: int) -> bool:
    with sock:
        sock.settimeout(0.6)
        try:
            sock.connect((ip, port))
            return True
        except OSError:
            return False


# --- routers: made, healed, listed, removed ----------------------------------------------------------------


def test_ensure_vpc_router_is_idempotent(net: VpcSandbox, vpc: VpcRouter) -> None:
    (uplink,) = ip_json("link", "show", vpc.uplink)
    assert net.router(vpc.vpc_id, vpc.cidr) == vpc
    (again,) = ip_json("link", "show", vpc.uplink)
    assert again["ifindex"] == uplink["ifindex"]  # kept, not made again
    assert list_vpc_routers(net.prefix) == [vpc.vpc_id]
    assert vpc.cidr in vpc_guards()
    assert vpc.resolver_ip == str(ipaddress.ip_network(vpc.cidr).network_address + 2)


def test_ensure_vpc_router_heals_what_was_broken_inside_and_outside(net: VpcSandbox, vpc: VpcRouter) -> None:
    a, b = net.task(vpc, subnet(vpc.cidr, 0), public=True), net.task(vpc, subnet(vpc.cidr, 1))
    net.apply(vpc)
    inside = ["ip", "-n", vpc.netns_name]
    for command in (inside + ["route", "del", "default"], inside + ["addr", "flush", "dev", "lo"],
                    inside + ["link", "set", "uplink", "down"], ["ip", "link", "set", vpc.uplink, "down"],
                    ["ip", "netns", "exec", vpc.netns_name, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"],
                    ["nft", "delete", "table", "ip", host_table_name(net.prefix)]):
        subprocess.run(command, check=True)
    run_nft("delete table inet fargo", vpc.netns_path)
    assert net.router(vpc.vpc_id, vpc.cidr) == vpc
    routes = {r["dst"]: r for r in ip_json("-n", vpc.netns_name, "route", "show")}
    assert routes["default"]["gateway"] == vpc.transit_host_ip
    lo = {a["local"] for a in ip_json("-n", vpc.netns_name, "addr", "show", "lo")[0]["addr_info"]}
    assert {ipam.METADATA_IP, vpc.resolver_ip, vpc.endpoint_ip} <= lo
    # The filter came back closed: the agent's next apply opens it again.
    with tcp_server(b) as (port, _):
        assert tcp_talks(a, b.ip, port) is None
        net.apply(vpc)
        assert tcp_talks(a, b.ip, port) == b"ping"
    with outside_host(net.prefix) as outside, server_in(outside.path, socket.SOCK_STREAM, (outside.ip, 80)):
        assert tcp_talks(a, outside.ip, 80) == b"ping"
    # An uplink whose host end is gone is made again.
    subprocess.run(["ip", "link", "del", vpc.uplink], check=True)
    healed = net.router(vpc.vpc_id, vpc.cidr)
    assert ip_json("link", "show", healed.uplink) and ip_json("-n", vpc.netns_name, "link", "show", "uplink")


def test_routers_get_distinct_transit_networks_and_a_removed_one_is_reused(net: VpcSandbox) -> None:
    routers = [net.router(f"vpc-{net.prefix}-{n}", free_vpc_cidr()) for n in range(3)]
    transits = {ipaddress.ip_interface(f"{r.transit_host_ip}/30").network for r in routers}
    assert len(transits) == 3 and all(t.subnet_of(ipam.TRANSIT_RANGE) for t in transits)
    for r in routers:
        (host_end,) = ip_json("-4", "addr", "show", r.uplink)
        assert [(a["local"], a["prefixlen"]) for a in host_end["addr_info"]] == [(r.transit_host_ip, 30)]
    delete_vpc_router(routers[1].vpc_id, prefix=net.prefix)
    again = net.router(f"vpc-{net.prefix}-new", free_vpc_cidr())
    assert again.transit_host_ip == routers[1].transit_host_ip  # the lowest free one


def test_routers_made_concurrently_each_get_their_own_transit(net: VpcSandbox) -> None:
    cidrs = [free_vpc_cidr() for _ in range(4)]

    async def make() -> list[VpcRouter]:
        return await asyncio.gather(*[
            ensure_vpc_router_async(f"vpc-{net.prefix}-{n}", cidr, prefix=net.prefix) for n, cidr in enumerate(cidrs)
        ])

    routers = asyncio.run(make())
    assert len({r.transit_host_ip for r in routers}) == 4
    assert len(list_vpc_routers(net.prefix)) == 4


def test_the_guard_route_of_a_shared_cidr_goes_with_its_last_router(net: VpcSandbox) -> None:
    cidr = free_vpc_cidr()
    first, second = net.router(f"vpc-{net.prefix}-1", cidr), net.router(f"vpc-{net.prefix}-2", cidr)
    assert vpc_guards().count(cidr) == 1
    delete_vpc_router(first.vpc_id, prefix=net.prefix)
    assert cidr in vpc_guards()
    delete_vpc_router(second.vpc_id, prefix=net.prefix)
    assert cidr not in vpc_guards()
    delete_vpc_router(second.vpc_id, prefix=net.prefix)  # idempotent


def test_deleting_tasks_and_routers_leaves_no_namespace_link_table_route_or_address(net: VpcSandbox,
                                                                                    vpc: VpcRouter) -> None:
    tasks = [net.task(vpc, subnet(vpc.cidr, n % 2), public=True) for n in range(3)]
    net.apply(vpc)
    assert f"table ip {host_table_name(net.prefix)}" in run_nft("list tables").splitlines()
    for task in tasks:
        delete_task_eni(task.eni.task_id, prefix=net.prefix)
        assert not os.path.lexists(task.eni.netns_path)
        assert task.eni.router_ifname not in {e["ifname"] for e in ip_json("-n", vpc.netns_name, "link", "show")}
    delete_task_eni(tasks[0].eni.task_id, prefix=net.prefix)  # idempotent
    delete_vpc_router(vpc.vpc_id, prefix=net.prefix)
    assert leftovers(net.prefix) == []
    assert vpc.cidr not in vpc_guards()
    host_addresses = {a["local"] for link in ip_json("-4", "addr", "show") for a in link["addr_info"]}
    assert vpc.transit_host_ip not in host_addresses
    assert not os.path.lexists(vpc.netns_path)


def test_a_router_still_holding_task_ports_is_kept_when_asked_to_go_only_if_unused(net: VpcSandbox,
                                                                                   vpc: VpcRouter) -> None:
    task = net.task(vpc, subnet(vpc.cidr, 0))
    assert delete_vpc_router(vpc.vpc_id, prefix=net.prefix, if_unused=True) is False
    assert list_vpc_routers(net.prefix) == [vpc.vpc_id]
    delete_task_eni(task.eni.task_id, prefix=net.prefix)
    assert delete_vpc_router(vpc.vpc_id, prefix=net.prefix, if_unused=True) is True
    assert list_vpc_routers(net.prefix) == []


# --- task ENIs: made, healed, listed, removed -------------------------------------------------------------


def test_create_is_idempotent_on_a_complete_eni(net: VpcSandbox, vpc: VpcRouter) -> None:
    task = net.task(vpc, subnet(vpc.cidr, 0))
    (first,) = ip_json("-n", vpc.netns_name, "link", "show", task.eni.router_ifname)
    again = create_task_eni(task.eni.task_id, vpc, subnet(vpc.cidr, 0), task.ip, MTU, task.eni.mac, prefix=net.prefix)
    assert again == task.eni
    (second,) = ip_json("-n", vpc.netns_name, "link", "show", task.eni.router_ifname)
    assert second["ifindex"] == first["ifindex"]  # kept, not made again
    (entry,) = list_task_enis(net.prefix)
    assert (entry.netns_path, entry.router_port, entry.router_netns) == (
        task.eni.netns_path, task.eni.router_ifname, vpc.netns_name)


@pytest.mark.parametrize("breakage", ["bare netns file", "netns without veth", "no addresses inside",
                                      "no routes inside", "port without its address"])
def test_create_heals_a_half_made_eni(net: VpcSandbox, vpc: VpcRouter, breakage: str) -> None:
    cidr = subnet(vpc.cidr, 0)
    task_id, ip, mac = "healme", address(cidr, 50), ipam.mac_address("healed")
    ns = names.netns_name(task_id, net.prefix)
    if breakage == "bare netns file":
        open(names.netns_path(ns), "x").close()
    elif breakage == "netns without veth":
        create_netns(ns).close()
    else:
        create_task_eni(task_id, vpc, cidr, ip, MTU, mac, prefix=net.prefix)
        port = names.router_port_name(task_id, net.prefix)
        command = {
            "no addresses inside": ["ip", "-n", ns, "addr", "flush", "dev", "eth1"],
            "no routes inside": ["ip", "-n", ns, "route", "del", "default"],
            "port without its address": ["ip", "-n", vpc.netns_name, "addr", "flush", "dev", port],
        }[breakage]
        subprocess.run(command, check=True)
    healed = create_task_eni(task_id, vpc, cidr, ip, MTU, mac, prefix=net.prefix)
    net.tasks.append(Task(healed, vpc, ("sg-open",), False))
    other = net.task(vpc, cidr)
    net.apply(vpc)
    with tcp_server(other) as (port, _):
        assert tcp_talks(net.tasks[0], other.ip, port, b"healed") == b"healed"


def test_a_failed_create_leaves_nothing_behind(net: VpcSandbox, vpc: VpcRouter) -> None:
    with pytest.raises(TaskEniError, match="task1"):
        # above the veth maximum: refused after the namespace was made
        create_task_eni("task1", vpc, subnet(vpc.cidr, 0), address(subnet(vpc.cidr, 0), 1), 70000,
                        ipam.mac_address("x"), prefix=net.prefix)
    assert list_task_enis(net.prefix) == []
    assert not os.path.lexists(names.netns_path(names.netns_name("task1", net.prefix)))


def test_a_subnet_outside_the_vpc_is_refused(net: VpcSandbox, vpc: VpcRouter) -> None:
    with pytest.raises(ValueError, match="not in VPC"):
        create_task_eni("task1", vpc, "192.168.0.0/24", "192.168.0.5", MTU, ipam.mac_address("x"), prefix=net.prefix)


def test_orphans_are_listed_and_removed_by_reconciliation(net: VpcSandbox, vpc: VpcRouter) -> None:
    kept = net.task(vpc, subnet(vpc.cidr, 0))
    orphan = net.task(vpc, subnet(vpc.cidr, 0))
    pinned = net.task(vpc, subnet(vpc.cidr, 0))
    create_netns(names.netns_name("bare", net.prefix)).close()  # a namespace without veth
    unused = net.router(f"vpc-{net.prefix}-unused", free_vpc_cidr())
    pin = os.open(pinned.eni.netns_path, os.O_RDONLY)  # keeps the namespace (and its veth) alive
    try:
        remove_netns(pinned.eni.netns_name)
        listed = {e.task_id: e for e in list_task_enis(net.prefix)}
        assert set(listed) == {kept.eni.task_id, orphan.eni.task_id, pinned.eni.task_id, "bare"}
        assert listed[pinned.eni.task_id].netns_path is None
        assert listed[pinned.eni.task_id].router_port == pinned.eni.router_ifname
        assert listed["bare"].router_port is None
        assert sorted(list_vpc_routers(net.prefix)) == sorted([vpc.vpc_id, unused.vpc_id])

        asyncio.run(remove_orphan_networks(net.prefix, is_orphan=lambda task_id: task_id != kept.eni.task_id,
                                           live_vpc_ids=lambda: {vpc.vpc_id}))
        assert [e.task_id for e in list_task_enis(net.prefix)] == [kept.eni.task_id]
        assert list_vpc_routers(net.prefix) == [vpc.vpc_id]
        ports = {e["ifname"] for e in ip_json("-n", vpc.netns_name, "link", "show")}
        assert pinned.eni.router_ifname not in ports and orphan.eni.router_ifname not in ports
    finally:
        os.close(pin)


def test_reconciliation_removes_an_unused_bridge_of_the_bridge_design_and_keeps_one_with_ports(
        net: VpcSandbox) -> None:
    unused, busy = names.bridge_name("subnet-a", net.prefix), names.bridge_name("subnet-b", net.prefix)
    port = f"{net.prefix}xp"
    try:
        for bridge in (unused, busy):
            subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "link", "add", port, "master", busy, "type", "veth", "peer", "name", f"{port}p"],
                       check=True)
        asyncio.run(remove_orphan_networks(net.prefix, is_orphan=lambda _: True, live_vpc_ids=set))
        links = {e["ifname"] for e in ip_json("link", "show")}
        assert unused not in links and busy in links
    finally:
        for link in (port, unused, busy):
            subprocess.run(["ip", "link", "del", link], capture_output=True)


def test_a_router_with_ports_of_tasks_this_agent_does_not_know_is_kept_by_reconciliation(net: VpcSandbox,
                                                                                        vpc: VpcRouter) -> None:
    task = net.task(vpc, subnet(vpc.cidr, 0))  # another Fargo's, say: not an orphan of ours

    asyncio.run(remove_orphan_networks(net.prefix, is_orphan=lambda _: False, live_vpc_ids=set))
    assert list_vpc_routers(net.prefix) == [vpc.vpc_id]
    assert [e.task_id for e in list_task_enis(net.prefix)] == [task.eni.task_id]


def test_a_pinned_task_namespace_loses_its_port_after_the_timeout(net: VpcSandbox, vpc: VpcRouter) -> None:
    task = net.task(vpc, subnet(vpc.cidr, 0))
    pin = os.open(task.eni.netns_path, os.O_RDONLY)
    try:
        started = time.monotonic()
        delete_task_eni(task.eni.task_id, prefix=net.prefix, pinned_timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 2
        assert task.eni.router_ifname not in {e["ifname"] for e in ip_json("-n", vpc.netns_name, "link", "show")}
    finally:
        os.close(pin)


def test_a_veth_left_in_the_host_by_the_bridge_design_is_listed_and_deleted(net: VpcSandbox) -> None:
    task_id = "old"
    ns, veth = names.netns_name(task_id, net.prefix), names.router_port_name(task_id, net.prefix)
    netns = create_netns(ns)
    try:
        with host_rtnl() as ipr:
            ipr.link("add", ifname=veth, kind="veth", peer={"ifname": "eth1", "net_ns_fd": netns.fd})
            ipr.link("set", ifname=veth, ifalias=ns)
    finally:
        netns.close()
    (entry,) = list_task_enis(net.prefix)
    assert (entry.router_port, entry.router_netns) == (veth, None)
    delete_task_eni(task_id, prefix=net.prefix)
    assert list_task_enis(net.prefix) == []


def test_counters_move_after_traffic(net: VpcSandbox, vpc: VpcRouter) -> None:
    a, b = net.task(vpc, subnet(vpc.cidr, 0)), net.task(vpc, subnet(vpc.cidr, 1))
    net.apply(vpc)
    before = read_eni_counters(a.eni.netns_path)
    with tcp_server(b) as (port, _):
        assert tcp_talks(a, b.ip, port, b"y" * 60_000) == b"y" * 60_000
    after = read_eni_counters(a.eni.netns_path)
    assert after.tx_bytes >= before.tx_bytes + 60_000 and after.rx_bytes >= before.rx_bytes + 60_000
    assert after.rx_errors == after.tx_errors == 0


def test_thirty_enis_made_and_deleted_concurrently_all_work_and_leave_nothing(net: VpcSandbox,
                                                                               vpc: VpcRouter) -> None:
    cidr = subnet(vpc.cidr, 0)

    async def create_all() -> list:
        return await asyncio.gather(*[
            create_task_eni_async(f"task{n}", vpc, cidr, address(cidr, n), MTU, ipam.mac_address(f"task{n}"),
                                  prefix=net.prefix)
            for n in range(30)
        ])

    enis = asyncio.run(create_all())
    for eni in enis:
        net.tasks.append(Task(eni, vpc, ("sg-open",), False))
    listed = asyncio.run(list_task_enis_async(net.prefix))
    assert len(listed) == 30 and all(e.netns_path and e.router_netns == vpc.netns_name for e in listed)
    net.apply(vpc)
    with tcp_server(net.tasks[29]) as (port, _):
        assert tcp_talks(net.tasks[0], net.tasks[29].ip, port, b"first to last") == b"first to last"

    async def delete_all() -> None:
        await asyncio.gather(*[delete_task_eni_async(e.task_id, prefix=net.prefix) for e in enis])

    asyncio.run(delete_all())
    assert list_task_enis(net.prefix) == []
    assert {e["ifname"] for e in ip_json("-n", vpc.netns_name, "link", "show")} == {"lo", "uplink"}


def test_blocking_calls_from_the_event_loop_thread_are_refused_with_a_clear_error(net: VpcSandbox,
                                                                                  vpc: VpcRouter) -> None:
    async def misuse() -> None:
        with netns_rtnl(vpc.netns_path):
            pass

    with pytest.raises(RuntimeError, match="_async"):
        asyncio.run(misuse())


def test_timings_of_eni_create_and_delete(net: VpcSandbox, vpc: VpcRouter, capsys: pytest.CaptureFixture) -> None:
    # Measured, not asserted (bench/network.py holds the targets): printed with -s.
    cidr = subnet(vpc.cidr, 0)
    creates, deletes = [], []
    for n in range(15):
        started = time.perf_counter()
        create_task_eni(f"t{n}", vpc, cidr, address(cidr, n), MTU, ipam.mac_address(f"t{n}"), prefix=net.prefix)
        creates.append(time.perf_counter() - started)
    for n in range(15):
        started = time.perf_counter()
        delete_task_eni(f"t{n}", prefix=net.prefix)
        deletes.append(time.perf_counter() - started)
    with capsys.disabled():
        print(f"\nENI create median {statistics.median(creates) * 1e3:.1f} ms, "
              f"delete median {statistics.median(deletes) * 1e3:.1f} ms")


def test_ping_between_tasks_is_answered_when_the_filter_allows_icmp(net: VpcSandbox, vpc: VpcRouter) -> None:
    a, b = net.task(vpc, subnet(vpc.cidr, 0)), net.task(vpc, subnet(vpc.cidr, 1))
    net.apply(vpc, [OPEN])
    assert pings(a, b.ip, timeout=3)


def test_a_namespace_that_does_not_exist_is_a_clear_os_error() -> None:
    with pytest.raises(FileNotFoundError):
        with netns_rtnl(str(Path("/run/netns/does-not-exist"))):
            pass
