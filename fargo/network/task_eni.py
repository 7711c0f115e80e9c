"""The task ENI: a network namespace per task, routed to its VPC's router (vpc_router) by a veth pair.

In the task: lo and `eth1` up, the task's IP with its subnet's prefix, the ENI's MAC and MTU, and a default
route plus an explicit /32 route to 169.254.170.2, both via the subnet gateway (subnet base + 1). Every task
has the default route, public or private (the router's filter is what keeps a private one in), so it reaches
the resolver and the VPC endpoint (VPC base + 2 and + 3) in the router from any subnet. In the
router: the pair's other end (`router_port_name`), holding the gateway address with the task's IP as its
peer, so the kernel routes `<task ip>/32` to the port; the same gateway address sits on every port of the
subnet. The port has proxy ARP (a router default), so it answers ARP for every other address of the subnet:
there is no bridge, and even neighbours in one subnet reach each other through the router, where every
packet is seen on the sender's and the receiver's own port and filtered statefully (security_groups).

The functions block (create about 5 ms; delete 30-40 ms, which is the kernel tearing the pair down with the
namespace); from asyncio use the `*_async` versions, which run on the network package's own threads. Every
function is idempotent and cleans up half-made ENIs.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

from fargo.network import ipam, rtnl_requests
from fargo.network.blocking_pool import run_blocking
from fargo.network.names import (
    DEFAULT_PREFIX,
    netns_name,
    netns_path,
    router_port_name,
    task_id_from_netns_name,
)
from fargo.network.netns import create_netns, is_mounted_netns, link_names, list_netns_names, remove_netns
from fargo.network.netns import read_sysctl, run_in_netns, set_sysctls
from fargo.network.rtnl import IPRoute, NetlinkError, host_rtnl, is_error, netns_rtnl
from fargo.network.vpc_router import VpcRouter, router_netns_paths

__all__ = [
    "TASK_IFNAME",
    "TaskEni",
    "TaskEniError",
    "TaskEniOnHost",
    "create_task_eni",
    "create_task_eni_async",
    "delete_task_eni",
    "delete_task_eni_async",
    "list_task_enis",
    "list_task_enis_async",
    "plan_task_eni",
    "router_port_name",
]

TASK_IFNAME = "eth1"
# The peer is the first link made in a fresh namespace after lo, so we give it a fixed index and skip a lookup.
_TASK_IFINDEX = 2
_LOOPBACK_IFINDEX = 1
_IFF_UP = 1
_MAIN_TABLE = 254
_HOST_NET_DIR = "/sys/class/net"
_NETLINK_ROUTE = 0
# Deleting a namespace lets the kernel destroy its veth pair in a batch with others (30 deletes in 50 ms,
# where deleting 30 veths one by one takes about 30 ms each). We poll for the port to go, at growing intervals.
_PINNED_TIMEOUT = 2.0
_POLL_FIRST = 0.002
_POLL_MAX = 0.008


class TaskEniError(RuntimeError):
    """Setting up a task ENI failed; whatever was half-made has been removed."""


@dataclass(frozen=True)
class TaskEni:
    task_id: str
    netns_name: str
    netns_path: str
    router_ifname: str  # the veth's end in the router namespace
    router_netns: str  # that namespace's name
    ip: str
    prefix_len: int
    gateway: str
    mac: str
    mtu: int


@dataclass(frozen=True)
class TaskEniOnHost:
    """What the host holds for a task, as found by `list_task_enis`; either part may be missing."""

    task_id: str
    netns_name: str
    netns_path: str | None  # None: no /run/netns entry
    router_port: str | None  # None: no outer veth end found
    router_netns: str | None  # the router namespace holding the port; None for one in the host namespace


def plan_task_eni(
    task_id: str, router: VpcRouter, subnet_cidr: str, ip: str, mtu: int, mac: str, *, prefix: str = DEFAULT_PREFIX
) -> TaskEni:
    """The ENI `create_task_eni` would make, without touching the host."""
    network = ipam.subnet_network(subnet_cidr)
    if not network.subnet_of(ipam.vpc_network(router.cidr)):
        raise ValueError(f"subnet {subnet_cidr} is not in VPC {router.vpc_id} ({router.cidr})")
    if ipaddress.IPv4Address(ip) not in network:
        raise ValueError(f"task IP {ip} is not in subnet {subnet_cidr}")
    name = netns_name(task_id, prefix)
    return TaskEni(
        task_id=task_id,
        netns_name=name,
        netns_path=netns_path(name),
        router_ifname=router_port_name(task_id, prefix),
        router_netns=router.netns_name,
        ip=ip,
        prefix_len=network.prefixlen,
        gateway=ipam.gateway_ip(subnet_cidr),
        mac=mac.lower(),
        mtu=mtu,
    )


def create_task_eni(
    task_id: str, router: VpcRouter, subnet_cidr: str, ip: str, mtu: int, mac: str, *, prefix: str = DEFAULT_PREFIX
) -> TaskEni:
    """Make the task's namespace and its veth pair to `router` (made by `ensure_vpc_router`) and return the ENI.

    If the task already has a complete, matching ENI it is returned as is; a partial or different one is
    removed and made again.
    """
    eni = plan_task_eni(task_id, router, subnet_cidr, ip, mtu, mac, prefix=prefix)
    if os.path.lexists(eni.netns_path):
        if _is_complete(eni, router):
            return eni
        delete_task_eni(task_id, prefix=prefix)
    try:
        _build(eni, router)
    except BaseException as error:
        try:
            delete_task_eni(task_id, prefix=prefix)
        except Exception:
            pass  # the original error is the one to report
        if isinstance(error, Exception):
            raise TaskEniError(f"setting up the network interface of task {task_id} failed: {error}") from error
        raise
    return eni


def _build(eni: TaskEni, router: VpcRouter) -> None:
    ns = create_netns(eni.netns_name)
    try:
        run_in_netns(router.netns_path, lambda: _make_port(eni, ns.fd))
    except BaseException:
        ns.close()
        raise
    os.close(ns.fd)
    ns.fd = -1
    with closing(ns.netlink) as inner:
        rtnl_requests.send(inner, [
            rtnl_requests.link_up(_LOOPBACK_IFINDEX),
            rtnl_requests.add_address(_TASK_IFINDEX, eni.ip, eni.prefix_len),
            rtnl_requests.link_up(_TASK_IFINDEX),
            rtnl_requests.add_route("0.0.0.0", 0, eni.gateway, _TASK_IFINDEX),
            rtnl_requests.add_route(ipam.METADATA_IP, 32, eni.gateway, _TASK_IFINDEX),
        ])


def _make_port(eni: TaskEni, task_netns_fd: int) -> None:
    """(In the router.) The pair, with eth1 born inside the task namespace; the port's address and settings."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, _NETLINK_ROUTE) as outer:
        veth = rtnl_requests.new_veth(eni.router_ifname, eni.mtu, TASK_IFNAME, _TASK_IFINDEX, eni.mac, task_netns_fd)
        lookup = rtnl_requests.get_link(eni.router_ifname)
        try:
            (reply,) = rtnl_requests.send(outer, [veth, lookup])
        except NetlinkError as error:
            if not is_error(error, errno.EEXIST):
                raise
            # A port left from an earlier life of this task (its namespace is gone but pinned elsewhere).
            rtnl_requests.send(outer, [rtnl_requests.delete_link(eni.router_ifname)])
            (reply,) = rtnl_requests.send(outer, [veth, lookup])
        port = rtnl_requests.link_index(reply)
        rtnl_requests.send(outer, [
            # The alias maps the port back to its task (its name is only a hash), for list_task_enis.
            rtnl_requests.set_alias(port, eni.netns_name),
            # Gateway here, task IP as the peer: the kernel adds `<task ip>/32 dev <port>` with it.
            rtnl_requests.add_address(port, eni.gateway, 32, peer=eni.ip),
        ])
    set_sysctls(_port_sysctls(eni.router_ifname))


def _port_sysctls(port: str) -> dict[str, str]:
    # Proxy ARP answers at once, not after up to 0.8 s. Neighbour defaults are host-wide, not per namespace,
    # so each port gets it on its own (proxy_arp itself comes from the router's conf/default).
    return {f"net/ipv4/neigh/{port}/proxy_delay": "0", f"net/ipv4/conf/{port}/proxy_arp": "1"}


def _port_sysctls_hold(port: str) -> bool:
    return all(read_sysctl(key) == value for key, value in _port_sysctls(port).items())


def _is_complete(eni: TaskEni, router: VpcRouter) -> bool:
    """True if the namespace and both ends of the pair exist and match `eni` in every setting we make."""
    if not is_mounted_netns(eni.netns_path) or not is_mounted_netns(router.netns_path):
        return False
    with netns_rtnl(router.netns_path) as outer:
        ports = outer.link_lookup(ifname=eni.router_ifname)
        if not ports:
            return False
        port = outer.get_links(ports[0])[0]
        peers = {
            (a.get_attr("IFA_LOCAL"), a.get_attr("IFA_ADDRESS"), a["prefixlen"])
            for a in outer.get_addr(index=ports[0], family=socket.AF_INET)
        }
    if not (
        port["flags"] & _IFF_UP
        and port.get_attr("IFLA_MTU") == eni.mtu
        and port.get_attr("IFLA_IFALIAS") == eni.netns_name
        and peers == {(eni.gateway, eni.ip, 32)}
        and run_in_netns(router.netns_path, lambda: _port_sysctls_hold(eni.router_ifname))
    ):
        return False
    try:
        with netns_rtnl(eni.netns_path) as inner:
            links = inner.link_lookup(ifname=TASK_IFNAME)
            if not links:
                return False
            task = inner.get_links(links[0])[0]
            addresses = {
                (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                for a in inner.get_addr(index=links[0], family=socket.AF_INET)
            }
            routes = {
                (r.get_attr("RTA_DST") or "0.0.0.0", r["dst_len"], r.get_attr("RTA_GATEWAY"))
                for r in inner.get_routes(family=socket.AF_INET, table=_MAIN_TABLE)
            }
    except OSError:  # the namespace cannot be entered
        return False
    return (
        bool(task["flags"] & _IFF_UP)
        and task.get_attr("IFLA_MTU") == eni.mtu
        and task.get_attr("IFLA_ADDRESS") == eni.mac
        and addresses == {(eni.ip, eni.prefix_len)}
        and ("0.0.0.0", 0, eni.gateway) in routes
        and (ipam.METADATA_IP, 32, eni.gateway) in routes
    )


def _delete_link(ipr: IPRoute, name: str) -> None:
    indexes = ipr.link_lookup(ifname=name)
    if not indexes:
        return
    try:
        ipr.link("del", index=indexes[0])
    except NetlinkError as error:
        if not is_error(error, errno.ENODEV):  # gone meanwhile, e.g. with its namespace
            raise


def delete_task_eni(task_id: str, *, prefix: str = DEFAULT_PREFIX, pinned_timeout: float = _PINNED_TIMEOUT) -> None:
    """Remove the task's namespace and its veth pair; works on half-made ENIs and is a no-op when gone.

    Returns once the router's end is gone. If something still holds the task namespace after
    `pinned_timeout` seconds (a live process, an open fd), the pair is deleted explicitly, so a stopped
    task is never left connected to its VPC.
    """
    port = router_port_name(task_id, prefix)
    holders = _routers_holding(port, prefix)
    delay = _POLL_FIRST
    deadline = time.monotonic() + pinned_timeout
    if _unmount_netns(task_id, prefix):
        while any(_port_in(path, port) for path in holders) and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, _POLL_MAX)
    _delete_ports(port, holders)


def _routers_holding(port: str, prefix: str) -> list[str]:
    """The router namespaces of this prefix in which `port` exists (usually one, or none)."""
    return [path for path in router_netns_paths(prefix) if _port_in(path, port)]


def _port_in(router_path: str, port: str) -> bool:
    try:
        return port in run_in_netns(router_path, link_names)
    except OSError:  # the router itself is gone
        return False


def _unmount_netns(task_id: str, prefix: str) -> bool:
    """Drop the namespace's name; True if it was a live namespace, whose end the kernel will now batch."""
    name = netns_name(task_id, prefix)
    was_live = is_mounted_netns(netns_path(name))
    remove_netns(name)
    return was_live


def _delete_ports(port: str, holders: list[str]) -> None:
    """Delete what is left of the pair: in the routers, and a host-namespace veth of the bridge design."""
    for path in holders:
        if _port_in(path, port):
            with netns_rtnl(path) as outer:
                _delete_link(outer, port)
    if os.path.exists(f"{_HOST_NET_DIR}/{port}"):
        with host_rtnl() as ipr:
            _delete_link(ipr, port)


def list_task_enis(prefix: str = DEFAULT_PREFIX) -> list[TaskEniOnHost]:
    """Every task namespace and task port (in every router, and in the host) with this prefix, so that an agent
    can reconcile after a restart."""
    namespaces = {
        task_id: name for name in list_netns_names() if (task_id := task_id_from_netns_name(name, prefix)) is not None
    }
    ports: dict[str, tuple[str, str | None]] = {}
    for path in router_netns_paths(prefix):
        try:
            with netns_rtnl(path) as outer:
                found = list(_aliased_links(outer, prefix))
        except OSError:
            continue  # removed meanwhile
        for task_id, port in found:
            ports[task_id] = (port, os.path.basename(path))
    with host_rtnl() as ipr:
        for task_id, port in _aliased_links(ipr, prefix):
            ports.setdefault(task_id, (port, None))
    return [
        TaskEniOnHost(
            task_id=task_id,
            netns_name=netns_name(task_id, prefix),
            netns_path=netns_path(namespaces[task_id]) if task_id in namespaces else None,
            router_port=ports[task_id][0] if task_id in ports else None,
            router_netns=ports[task_id][1] if task_id in ports else None,
        )
        for task_id in sorted(namespaces.keys() | ports.keys())
    ]


def _aliased_links(ipr: IPRoute, prefix: str) -> Iterator[tuple[str, str]]:
    """(task id, link name) of each link whose alias is a task namespace name of this prefix."""
    for link in ipr.get_links():
        alias = link.get_attr("IFLA_IFALIAS")
        task_id = task_id_from_netns_name(alias, prefix) if alias else None
        if task_id is not None:
            yield task_id, link.get_attr("IFLA_IFNAME")


async def create_task_eni_async(
    task_id: str, router: VpcRouter, subnet_cidr: str, ip: str, mtu: int, mac: str, *, prefix: str = DEFAULT_PREFIX
) -> TaskEni:
    return await run_blocking(create_task_eni, task_id, router, subnet_cidr, ip, mtu, mac, prefix=prefix)


async def delete_task_eni_async(
    task_id: str, *, prefix: str = DEFAULT_PREFIX, pinned_timeout: float = _PINNED_TIMEOUT
) -> None:
    """As `delete_task_eni`, but waits for the kernel on the event loop instead of holding a pool thread."""
    port = router_port_name(task_id, prefix)
    holders = await run_blocking(_routers_holding, port, prefix)
    delay = _POLL_FIRST
    deadline = time.monotonic() + pinned_timeout
    if await run_blocking(_unmount_netns, task_id, prefix):
        while time.monotonic() < deadline and await run_blocking(_any_port_in, holders, port):
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, _POLL_MAX)
    await run_blocking(_delete_ports, port, holders)


def _any_port_in(holders: list[str], port: str) -> bool:
    return any(_port_in(path, port) for path in holders)


async def list_task_enis_async(prefix: str = DEFAULT_PREFIX) -> list[TaskEniOnHost]:
    return await run_blocking(list_task_enis, prefix)
