"""The task ENI: a network namespace per task, with `eth1` as one end of a veth whose host end is a port of
the subnet bridge. Inside: lo and eth1 up, the task IP, a /32 route to the metadata address via the gateway,
and deliberately no default route.

The functions block (create about 5 ms; delete 30-40 ms, which is the kernel tearing the veth down); from
asyncio use the `*_async` versions, which run them on a small thread pool of this module. Every function is
idempotent and cleans up half-made ENIs.
"""
from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fargo.network import ipam
from fargo.network.host_routes import METADATA_IP
from fargo.network.names import DEFAULT_PREFIX, bridge_name, host_veth_name, netns_name, netns_path
from fargo.network.names import task_id_from_netns_name
from fargo.network.netns import create_netns, is_mounted_netns, list_netns_names, remove_netns
from fargo.network.netns import socket_in_netns
from fargo.network.rtnl import IPRoute, NetlinkError, host_rtnl, is_error, rtnl_over
from fargo.network.subnet_bridge import ensure_subnet_bridge

TASK_IFNAME = "eth1"
# The peer is the first link made in a fresh namespace after lo, so we give it a fixed index and skip a lookup.
_TASK_IFINDEX = 2
_LOOPBACK_IFINDEX = 1
_IFF_UP = 1
_POOL_WORKERS = 4
# Deleting a namespace lets the kernel destroy its veth in a batch with others (30 deletes in 50 ms, where
# deleting 30 veths one by one takes about 30 ms each). We poll for the veth to go, at growing intervals.
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
    host_veth: str
    bridge: str
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
    host_veth: str | None  # None: no host veth


def plan_task_eni(
    task_id: str, subnet_id: str, subnet_cidr: str, ip: str, mtu: int, mac: str, *, prefix: str = DEFAULT_PREFIX
) -> TaskEni:
    """The ENI `create_task_eni` would make, without touching the host."""
    network = ipam.subnet_network(subnet_cidr)
    if ipaddress.IPv4Address(ip) not in network:
        raise ValueError(f"task IP {ip} is not in subnet {subnet_cidr}")
    name = netns_name(task_id, prefix)
    return TaskEni(
        task_id=task_id,
        netns_name=name,
        netns_path=netns_path(name),
        host_veth=host_veth_name(task_id, prefix),
        bridge=bridge_name(subnet_id, prefix),
        ip=ip,
        prefix_len=network.prefixlen,
        gateway=ipam.gateway_ip(subnet_cidr),
        mac=mac.lower(),
        mtu=mtu,
    )


def create_task_eni(
    task_id: str, subnet_id: str, subnet_cidr: str, ip: str, mtu: int, mac: str, *, prefix: str = DEFAULT_PREFIX
) -> TaskEni:
    """Make the task's namespace and veth (creating the subnet bridge if missing) and return the ENI.

    If the task already has a complete, matching ENI it is returned as is; a partial or different one is
    removed and made again.
    """
    eni = plan_task_eni(task_id, subnet_id, subnet_cidr, ip, mtu, mac, prefix=prefix)
    if os.path.lexists(eni.netns_path):
        if _is_complete(eni):
            return eni
        delete_task_eni(task_id, prefix=prefix)
    with host_rtnl() as ipr:
        indexes = ipr.link_lookup(ifname=eni.bridge)
    bridge = int(indexes[0]) if indexes else None
    if bridge is None:
        ensure_subnet_bridge(subnet_id, subnet_cidr, mtu, prefix=prefix)
        with host_rtnl() as ipr:
            bridge = int(ipr.link_lookup(ifname=eni.bridge)[0])
    try:
        _build(eni, bridge)
    except BaseException as error:
        try:
            delete_task_eni(task_id, prefix=prefix)
        except Exception:
            pass  # the original error is the one to report
        if isinstance(error, Exception):
            raise TaskEniError(f"setting up the network interface of task {task_id} failed: {error}") from error
        raise
    return eni


def _build(eni: TaskEni, bridge: int) -> None:
    ns = create_netns(eni.netns_name)
    try:
        with host_rtnl() as ipr:
            _add_veth(ipr, eni, bridge, ns.fd)
            # The alias maps the host veth back to its task (its name is only a hash), for list_task_enis.
            ipr.link("set", ifname=eni.host_veth, ifalias=eni.netns_name)
    except BaseException:
        ns.close()
        raise
    os.close(ns.fd)
    ns.fd = -1
    with rtnl_over(ns.netlink) as inner:
        inner.link("set", index=_LOOPBACK_IFINDEX, state="up")
        inner.addr("add", index=_TASK_IFINDEX, address=eni.ip, prefixlen=eni.prefix_len)
        inner.link("set", index=_TASK_IFINDEX, state="up")
        inner.route("add", dst=METADATA_IP, dst_len=32, gateway=eni.gateway, oif=_TASK_IFINDEX)


def _add_veth(ipr: IPRoute, eni: TaskEni, bridge: int, netns_fd: int) -> None:
    # The peer is born inside the namespace as eth1: no rename, no window where it sits in the host.
    request = dict(
        ifname=eni.host_veth,
        kind="veth",
        mtu=eni.mtu,
        master=bridge,
        state="up",
        peer={
            "ifname": TASK_IFNAME,
            "index": _TASK_IFINDEX,
            "mtu": eni.mtu,
            "address": eni.mac,
            "net_ns_fd": netns_fd,
        },
    )
    try:
        ipr.link("add", **request)
    except NetlinkError as error:
        if not is_error(error, errno.EEXIST):
            raise
        # A host veth left from an earlier life of this task (its namespace is gone but pinned elsewhere).
        _delete_link(ipr, eni.host_veth)
        ipr.link("add", **request)


def _is_complete(eni: TaskEni) -> bool:
    """True if the host veth and the namespace exist and match `eni` in every setting we make."""
    if not is_mounted_netns(eni.netns_path):
        return False
    with host_rtnl() as ipr:
        veths = ipr.link_lookup(ifname=eni.host_veth)
        bridges = ipr.link_lookup(ifname=eni.bridge)
        if not veths or not bridges:
            return False
        host = ipr.get_links(veths[0])[0]
    if host.get_attr("IFLA_MASTER") != bridges[0] or host.get_attr("IFLA_MTU") != eni.mtu:
        return False
    if not host["flags"] & _IFF_UP:
        return False
    try:
        sock = socket_in_netns(eni.netns_path, socket.AF_NETLINK, socket.SOCK_DGRAM)
    except OSError:
        return False
    with rtnl_over(sock) as inner:
        links = inner.link_lookup(ifname=TASK_IFNAME)
        if not links:
            return False
        task = inner.get_links(links[0])[0]
        addresses = {
            (a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in inner.get_addr(index=links[0], family=socket.AF_INET)
        }
        try:
            routes = inner.get_routes(family=socket.AF_INET, dst=METADATA_IP, table=254)
        except NetlinkError:  # a route lookup with no route at all (a build cut off half way): ENETUNREACH
            return False
    return (
        bool(task["flags"] & _IFF_UP)
        and task.get_attr("IFLA_MTU") == eni.mtu
        and task.get_attr("IFLA_ADDRESS") == eni.mac
        and addresses == {(eni.ip, eni.prefix_len)}
        and any(r["dst_len"] == 32 and r.get_attr("RTA_GATEWAY") == eni.gateway for r in routes)
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
    """Remove the task's namespace and veth (both ends); works on half-made ENIs and is a no-op when gone.

    Returns once the host veth is gone. If something still holds the namespace after `pinned_timeout`
    seconds (a live process, an open fd), the veth is deleted explicitly.
    """
    veth = host_veth_name(task_id, prefix)
    delay = _POLL_FIRST
    deadline = time.monotonic() + pinned_timeout
    if _unmount_netns(task_id, prefix):
        while _link_exists(veth) and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, _POLL_MAX)
    _delete_veth(veth)


def _unmount_netns(task_id: str, prefix: str) -> bool:
    """Drop the namespace's name; True if it was a live namespace, whose end the kernel will now batch."""
    name = netns_name(task_id, prefix)
    was_live = is_mounted_netns(netns_path(name))
    remove_netns(name)
    return was_live


def _link_exists(name: str) -> bool:
    with host_rtnl() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def _delete_veth(name: str) -> None:
    with host_rtnl() as ipr:
        _delete_link(ipr, name)


def list_task_enis(prefix: str = DEFAULT_PREFIX) -> list[TaskEniOnHost]:
    """Every task namespace and host veth with this prefix, so an agent can reconcile after a restart."""
    namespaces = {
        task_id: name
        for name in list_netns_names()
        if (task_id := task_id_from_netns_name(name, prefix)) is not None
    }
    veths: dict[str, str] = {}
    with host_rtnl() as ipr:
        for link in ipr.get_links():
            alias = link.get_attr("IFLA_IFALIAS")
            task_id = task_id_from_netns_name(alias, prefix) if alias else None
            if task_id is not None:
                veths[task_id] = link.get_attr("IFLA_IFNAME")
    return [
        TaskEniOnHost(
            task_id=task_id,
            netns_name=netns_name(task_id, prefix),
            netns_path=netns_path(namespaces[task_id]) if task_id in namespaces else None,
            host_veth=veths.get(task_id),
        )
        for task_id in sorted(namespaces.keys() | veths.keys())
    ]


_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    # Our own pool: netlink work is short and must not queue behind slow storage work in the default pool.
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_POOL_WORKERS, thread_name_prefix="fargo-net")
    return _pool


async def create_task_eni_async(
    task_id: str, subnet_id: str, subnet_cidr: str, ip: str, mtu: int, mac: str, *, prefix: str = DEFAULT_PREFIX
) -> TaskEni:
    call = functools.partial(create_task_eni, task_id, subnet_id, subnet_cidr, ip, mtu, mac, prefix=prefix)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)


async def delete_task_eni_async(
    task_id: str, *, prefix: str = DEFAULT_PREFIX, pinned_timeout: float = _PINNED_TIMEOUT
) -> None:
    """As `delete_task_eni`, but waits for the kernel on the event loop instead of holding a pool thread."""
    loop = asyncio.get_running_loop()
    veth = host_veth_name(task_id, prefix)
    delay = _POLL_FIRST
    deadline = time.monotonic() + pinned_timeout
    if await loop.run_in_executor(_executor(), _unmount_netns, task_id, prefix):
        while await loop.run_in_executor(_executor(), _link_exists, veth) and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, _POLL_MAX)
    await loop.run_in_executor(_executor(), _delete_veth, veth)


async def list_task_enis_async(prefix: str = DEFAULT_PREFIX) -> list[TaskEniOnHost]:
    return await asyncio.get_running_loop().run_in_executor(_executor(), list_task_enis, prefix)
