"""Task ENIs against the real kernel: namespaces, veths, a bridge, routes, MTU and counters (needs root).

Every object carries a test-unique prefix and lives in a random 10.x.0.0/16 no host route touches; all
traffic stays between namespaces made here and the host bridge/lo.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import os
import random
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from fargo.network import ipam
from fargo.network.counters import read_eni_counters
from fargo.network.host_routes import (
    METADATA_IP,
    ensure_metadata_address,
    ensure_vpc_guard,
    has_metadata_address,
    remove_metadata_address,
    remove_vpc_guard,
    vpc_guards,
)
from fargo.network.names import bridge_name, host_veth_name, netns_name, netns_path
from fargo.network.netns import create_netns, remove_netns, socket_in_netns
from fargo.network.rtnl import NetlinkError, host_rtnl, rtnl_over
from fargo.network.subnet_bridge import delete_subnet_bridge, ensure_subnet_bridge
from fargo.network.task_eni import (
    TaskEni,
    TaskEniError,
    create_task_eni,
    create_task_eni_async,
    delete_task_eni,
    delete_task_eni_async,
    list_task_enis,
    list_task_enis_async,
)

MTU = 9001
# From <linux/in.h>; Python's socket module does not export them.
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2


@dataclass
class Sandbox:
    prefix: str
    vpc_cidr: str
    subnet_id: str
    subnet_cidr: str
    bridge: str

    def ip(self, n: int) -> str:
        return str(ipaddress.ip_network(self.subnet_cidr).network_address + 4 + n)

    def eni(self, n: int, mtu: int = MTU) -> TaskEni:
        task_id = f"task{n}"
        return create_task_eni(
            task_id, self.subnet_id, self.subnet_cidr, self.ip(n), mtu, ipam.mac_address(task_id), prefix=self.prefix
        )


def _free_vpc_cidr() -> str:
    with host_rtnl() as ipr:
        used = [
            ipaddress.ip_network(f"{r.get_attr('RTA_DST')}/{r['dst_len']}")
            for r in ipr.get_routes(family=socket.AF_INET, table=254)
            if r.get_attr("RTA_DST")
        ]
    while True:
        candidate = ipaddress.ip_network(f"10.{random.randint(200, 250)}.0.0/16")
        if candidate != ipaddress.ip_network("10.213.0.0/16") and not any(candidate.overlaps(u) for u in used):
            return str(candidate)


def _clean_up(net: Sandbox) -> None:
    for leftover in list_task_enis(net.prefix):
        delete_task_eni(leftover.task_id, prefix=net.prefix)
    delete_subnet_bridge(net.subnet_id, prefix=net.prefix)
    remove_vpc_guard(net.vpc_cidr)


@pytest.fixture
def net() -> Iterator[Sandbox]:
    prefix = "t" + secrets.token_hex(2)
    vpc = _free_vpc_cidr()
    subnet_cidr = vpc.replace(".0.0/16", ".0.0/20")
    subnet_id = f"subnet-{prefix}"
    made = Sandbox(prefix, vpc, subnet_id, subnet_cidr, bridge_name(subnet_id, prefix))
    try:
        ensure_vpc_guard(vpc)
        ensure_subnet_bridge(subnet_id, subnet_cidr, MTU, prefix=prefix)
        yield made
    finally:
        _clean_up(made)
        assert list_task_enis(prefix) == []


def _ip_json(*args: str) -> list[dict]:
    return json.loads(subprocess.run(["ip", "-j", *args], check=True, capture_output=True, text=True).stdout or "[]")


def _netns_names() -> set[str]:
    return {entry["name"] for entry in _ip_json("netns", "list")}


def _host_links() -> set[str]:
    return {entry["ifname"] for entry in _ip_json("link", "show")}


def _in_netns_socket(eni: TaskEni, kind: int) -> socket.socket:
    sock = socket_in_netns(eni.netns_path, socket.AF_INET, kind)
    sock.settimeout(5)
    return sock


def _tcp_exchange(server_eni: TaskEni, client_eni: TaskEni, payload: bytes) -> tuple[bytes, str]:
    """Send `payload` from the client's namespace to a server in the other; returns (echo, peer IP seen)."""
    with _in_netns_socket(server_eni, socket.SOCK_STREAM) as server, _in_netns_socket(
        client_eni, socket.SOCK_STREAM
    ) as client:
        server.bind((server_eni.ip, 0))
        server.listen(1)
        seen: dict[str, object] = {}

        def serve() -> None:
            conn, peer = server.accept()
            with conn:
                data = b""
                while len(data) < len(payload):
                    data += conn.recv(65536)
                conn.sendall(data)
            seen["peer"] = peer[0]

        thread = threading.Thread(target=serve)
        thread.start()
        client.connect(server.getsockname())
        client.sendall(payload)
        echo = b""
        while len(echo) < len(payload):
            echo += client.recv(65536)
        thread.join(5)
        return echo, str(seen["peer"])


def test_two_task_enis_on_one_bridge_reach_each_other_over_tcp(net: Sandbox) -> None:
    a, b = net.eni(1), net.eni(2)
    echo, peer = _tcp_exchange(a, b, b"hello from b")
    assert echo == b"hello from b"
    assert peer == b.ip  # no NAT between tasks of one subnet


def test_task_eni_and_bridge_have_jumbo_mtu_and_a_8973_byte_df_datagram_passes(net: Sandbox) -> None:
    a, b = net.eni(1), net.eni(2)
    (eth1,) = _ip_json("-n", a.netns_name, "link", "show", "eth1")
    (bridge,) = _ip_json("link", "show", net.bridge)
    assert eth1["mtu"] == MTU and eth1["address"] == a.mac
    assert bridge["mtu"] == MTU
    # `ip netns exec` works on our namespaces too.
    mtu = subprocess.run(
        ["ip", "netns", "exec", a.netns_name, "cat", "/sys/class/net/eth1/mtu"], check=True, capture_output=True
    )
    assert mtu.stdout.strip() == b"9001"

    with _in_netns_socket(b, socket.SOCK_DGRAM) as receiver, _in_netns_socket(a, socket.SOCK_DGRAM) as sender:
        receiver.bind((b.ip, 0))
        sender.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)  # DF set
        sender.connect(receiver.getsockname())
        sender.send(b"x" * 8973)  # 9001 - 20 (IP) - 8 (UDP)
        assert len(receiver.recv(65536)) == 8973
        with pytest.raises(OSError) as too_big:
            sender.send(b"x" * 8974)
        assert too_big.value.errno == errno.EMSGSIZE


def test_vpc_guard_makes_the_rest_of_the_vpc_unreachable_but_the_subnet_stays_local(net: Sandbox) -> None:
    ensure_vpc_guard(net.vpc_cidr)  # idempotent
    assert vpc_guards().count(net.vpc_cidr) == 1
    outside_subnet = str(ipaddress.ip_network(net.vpc_cidr).network_address + 3 * 4096 + 5)
    with host_rtnl() as ipr:
        with pytest.raises(NetlinkError) as refused:
            ipr.route("get", dst=outside_subnet)
        assert refused.value.code in (errno.EHOSTUNREACH, errno.ENETUNREACH)
        (local,) = ipr.route("get", dst=net.ip(1))
        assert local.get_attr("RTA_OIF") == ipr.link_lookup(ifname=net.bridge)[0]


def test_task_netns_has_the_metadata_route_via_the_gateway_and_no_default_route(net: Sandbox) -> None:
    eni = net.eni(1)
    routes = _ip_json("-n", eni.netns_name, "route", "show")
    assert {"dst": METADATA_IP, "gateway": eni.gateway, "dev": "eth1"}.items() <= next(
        r for r in routes if r["dst"] == METADATA_IP
    ).items()
    assert not [r for r in routes if r["dst"] == "default"]
    (addr,) = [a for a in _ip_json("-n", eni.netns_name, "-4", "addr", "show", "eth1")[0]["addr_info"]]
    assert (addr["local"], addr["prefixlen"]) == (eni.ip, 20)
    (lo,) = _ip_json("-n", eni.netns_name, "link", "show", "lo")
    assert "UP" in lo["flags"]


def test_metadata_address_on_lo_is_reached_from_the_task_with_the_task_ip_as_source(net: Sandbox) -> None:
    had_address = has_metadata_address()
    try:
        ensure_metadata_address()
        ensure_metadata_address()  # idempotent
        assert has_metadata_address()
        eni = net.eni(1)
        with socket.socket() as server, _in_netns_socket(eni, socket.SOCK_STREAM) as client:
            server.settimeout(5)
            server.bind((METADATA_IP, 0))
            server.listen(1)
            client.connect(server.getsockname())
            conn, peer = server.accept()
            conn.close()
        assert peer[0] == eni.ip
    finally:
        if not had_address:
            remove_metadata_address()


def test_delete_removes_the_veth_and_the_netns(net: Sandbox) -> None:
    eni = net.eni(1)
    assert eni.host_veth in _host_links() and eni.netns_name in _netns_names()
    delete_task_eni(eni.task_id, prefix=net.prefix)
    assert eni.host_veth not in _host_links()
    assert eni.netns_name not in _netns_names()
    assert not os.path.lexists(eni.netns_path)
    assert list_task_enis(net.prefix) == []
    delete_task_eni(eni.task_id, prefix=net.prefix)  # idempotent


def test_half_created_enis_are_deleted(net: Sandbox) -> None:
    # 1: crashed between creating the namespace file and mounting it.
    bare = netns_path(netns_name("bare", net.prefix))
    open(bare, "x").close()
    # 2: namespace made, no veth yet.
    create_netns(netns_name("noveth", net.prefix)).close()
    # 3: namespace and veth made, nothing configured inside.
    subprocess.run(["ip", "netns", "add", netns_name("raw", net.prefix)], check=True)
    raw_veth = host_veth_name("raw", net.prefix)
    subprocess.run(
        ["ip", "link", "add", raw_veth, "type", "veth", "peer", "name", "eth1", "netns", netns_name("raw", net.prefix)],
        check=True,
    )
    subprocess.run(["ip", "link", "set", raw_veth, "alias", netns_name("raw", net.prefix)], check=True)
    assert {e.task_id for e in list_task_enis(net.prefix)} == {"bare", "noveth", "raw"}
    for task_id in ("bare", "noveth", "raw"):
        delete_task_eni(task_id, prefix=net.prefix)
    assert list_task_enis(net.prefix) == []
    assert raw_veth not in _host_links()
    assert not os.path.lexists(bare)


def test_create_heals_a_half_created_eni_and_is_idempotent_on_a_complete_one(net: Sandbox) -> None:
    subprocess.run(["ip", "netns", "add", netns_name("task1", net.prefix)], check=True)
    eni = net.eni(1)
    (first,) = _ip_json("link", "show", eni.host_veth)
    again = net.eni(1)
    assert again == eni
    (second,) = _ip_json("link", "show", eni.host_veth)
    assert second["ifindex"] == first["ifindex"]  # kept, not made again
    (entry,) = list_task_enis(net.prefix)
    assert entry.netns_path == eni.netns_path and entry.host_veth == eni.host_veth
    echo, _ = _tcp_exchange(eni, net.eni(2), b"healed")
    assert echo == b"healed"


def test_create_heals_an_eni_cut_off_before_its_metadata_route(net: Sandbox) -> None:
    eni = net.eni(1)
    # what a kill -9 between the address and the route leaves (a route lookup there fails: ENETUNREACH)
    subprocess.run(["ip", "-n", eni.netns_name, "route", "del", "169.254.170.2/32"], check=True)
    subprocess.run(["ip", "-n", eni.netns_name, "addr", "flush", "dev", "eth1"], check=True)
    healed = net.eni(1)
    routes = _ip_json("-n", eni.netns_name, "route", "show", "169.254.170.2")
    assert healed == eni and routes and routes[0]["gateway"] == eni.gateway


def test_a_failed_create_leaves_nothing_behind(net: Sandbox) -> None:
    with pytest.raises(TaskEniError, match="task1"):
        net.eni(1, mtu=70000)  # above the veth maximum: refused after the namespace was made
    assert list_task_enis(net.prefix) == []
    assert netns_name("task1", net.prefix) not in _netns_names()


def test_platform_1_3_0_mtu_of_1500_is_a_parameter(net: Sandbox) -> None:
    eni = net.eni(1, mtu=1500)
    (eth1,) = _ip_json("-n", eni.netns_name, "link", "show", "eth1")
    (host,) = _ip_json("link", "show", eni.host_veth)
    assert eth1["mtu"] == host["mtu"] == 1500
    (bridge,) = _ip_json("link", "show", net.bridge)
    assert bridge["mtu"] == MTU  # chosen explicitly, so a smaller port does not lower it


def test_ensure_subnet_bridge_heals_mtu_address_and_link_state(net: Sandbox) -> None:
    subprocess.run(["ip", "link", "set", net.bridge, "down", "mtu", "1500"], check=True)
    subprocess.run(["ip", "addr", "flush", "dev", net.bridge], check=True)
    assert ensure_subnet_bridge(net.subnet_id, net.subnet_cidr, MTU, prefix=net.prefix) == net.bridge
    (bridge,) = _ip_json("addr", "show", net.bridge)
    assert bridge["mtu"] == MTU and "UP" in bridge["flags"]
    assert [(a["local"], a["prefixlen"]) for a in bridge["addr_info"] if a["family"] == "inet"] == [
        (ipam.gateway_ip(net.subnet_cidr), 20)
    ]


def test_an_orphan_veth_whose_netns_lost_its_name_is_listed_and_deleted(net: Sandbox) -> None:
    eni = net.eni(1)
    pin = os.open(eni.netns_path, os.O_RDONLY)  # keeps the namespace (and so the veth) alive
    try:
        remove_netns(eni.netns_name)
        (orphan,) = list_task_enis(net.prefix)
        assert orphan.netns_path is None and orphan.host_veth == eni.host_veth
        delete_task_eni(eni.task_id, prefix=net.prefix)
        assert eni.host_veth not in _host_links()
    finally:
        os.close(pin)


def test_counters_move_after_traffic(net: Sandbox) -> None:
    a, b = net.eni(1), net.eni(2)
    before = read_eni_counters(a.netns_path)
    _tcp_exchange(a, b, b"y" * 200_000)
    after = read_eni_counters(a.netns_path)
    assert after.rx_bytes >= before.rx_bytes + 200_000
    assert after.tx_bytes >= before.tx_bytes + 200_000
    assert after.rx_packets > before.rx_packets and after.tx_packets > before.tx_packets
    assert after.rx_errors == after.tx_errors == 0
    # The one-shot read holds nothing open: the namespace goes away at once on delete.
    delete_task_eni(a.task_id, prefix=net.prefix, pinned_timeout=5)
    assert a.host_veth not in _host_links()


def _check_eni_in_netns(eni: TaskEni) -> None:
    with rtnl_over(socket_in_netns(eni.netns_path, socket.AF_NETLINK, socket.SOCK_DGRAM)) as inner:
        (link,) = inner.get_links(inner.link_lookup(ifname="eth1")[0])
        assert link.get_attr("IFLA_MTU") == eni.mtu and link["flags"] & 1
        (addr,) = inner.get_addr(index=link["index"], family=socket.AF_INET)
        assert (addr.get_attr("IFA_ADDRESS"), addr["prefixlen"]) == (eni.ip, eni.prefix_len)
        assert inner.get_routes(family=socket.AF_INET, dst=METADATA_IP, table=254)


def test_thirty_enis_created_concurrently_are_all_set_up_and_torn_down(net: Sandbox) -> None:
    delete_subnet_bridge(net.subnet_id, prefix=net.prefix)  # the creates race to make it

    async def create_all() -> list[TaskEni]:
        return await asyncio.gather(
            *[
                create_task_eni_async(
                    f"task{n}", net.subnet_id, net.subnet_cidr, net.ip(n), MTU, ipam.mac_address(f"task{n}"),
                    prefix=net.prefix,
                )
                for n in range(30)
            ]
        )

    enis = asyncio.run(create_all())
    listed = list_task_enis(net.prefix)
    assert len(listed) == 30 and all(e.netns_path and e.host_veth for e in listed)
    with host_rtnl() as ipr:
        bridge = ipr.link_lookup(ifname=net.bridge)[0]
        ports = {link.get_attr("IFLA_IFNAME") for link in ipr.get_links() if link.get_attr("IFLA_MASTER") == bridge}
    assert ports == {eni.host_veth for eni in enis}
    for eni in enis:
        _check_eni_in_netns(eni)
    echo, _ = _tcp_exchange(enis[0], enis[29], b"first to last")
    assert echo == b"first to last"

    async def delete_all() -> None:
        await asyncio.gather(*[delete_task_eni_async(eni.task_id, prefix=net.prefix) for eni in enis])

    asyncio.run(delete_all())
    assert list_task_enis(net.prefix) == []
    assert not {eni.host_veth for eni in enis} & _host_links()


def test_blocking_calls_from_the_event_loop_thread_are_refused_with_a_clear_error(net: Sandbox) -> None:
    async def misuse() -> None:
        delete_task_eni("task1", prefix=net.prefix)

    with pytest.raises(RuntimeError, match="_async"):
        asyncio.run(misuse())


def test_twenty_enis_one_by_one_then_a_hundred_at_once_are_made_and_deleted_leaving_nothing(net: Sandbox) -> None:
    # How fast this goes is measured in bench/network.py; here only that it all happens.
    for n in range(20):
        net.eni(n)
    assert len(list_task_enis(net.prefix)) == 20
    for n in range(20):
        delete_task_eni(f"task{n}", prefix=net.prefix)
    assert list_task_enis(net.prefix) == []

    async def hundred() -> list[TaskEni]:
        made = await asyncio.gather(
            *[
                create_task_eni_async(
                    f"task{n}", net.subnet_id, net.subnet_cidr, net.ip(n), MTU, ipam.mac_address(f"task{n}"),
                    prefix=net.prefix,
                )
                for n in range(100)
            ]
        )
        listed = await list_task_enis_async(net.prefix)
        assert len(listed) == 100 and all(e.netns_path and e.host_veth for e in listed)
        await asyncio.gather(*[delete_task_eni_async(f"task{n}", prefix=net.prefix) for n in range(100)])
        return made

    enis = asyncio.run(asyncio.wait_for(hundred(), timeout=120))  # a hang guard, far above the bench's ~1 s
    assert len({eni.ip for eni in enis}) == 100
    assert list_task_enis(net.prefix) == []
    assert not {eni.host_veth for eni in enis} & _host_links()
