"""One router network namespace per VPC (`<prefix>r-<vpc id>`): the hop between a VPC's task ENIs, and between
them and the host.

Why a namespace per VPC: VPCs are isolated from each other and two may use the same CIDR, as on AWS. Each
VPC's routes, conntrack and filter live in its own namespace, so overlapping CIDRs never meet in one routing
table. Inside: lo up with 169.254.170.2/32, the VPC resolver (base + 2) and the VPC endpoint (base + 3) as
/32s, for the metadata, DNS and endpoint servers that bind sockets made in here; forwarding on; strict rp_filter (a task sends only from its own IP);
proxy ARP for every task port to come (task_eni); `unreachable <vpc cidr>`, so an address
of the VPC that no ENI holds goes nowhere; and a default route up the uplink, a veth pair to the host on a
/30 of 169.254.240.0/20 that is unique per VPC (host end .1, router end .2). The filter (security_groups)
exists from the router's first moment, closed until the agent applies its policy.

The host keeps an `unreachable` guard route for every VPC CIDR with a router and one nft table per prefix
for the uplinks (host_nat). All changes run under one host-wide lock (a file lock, so several Fargos on a
host may share it): choosing the lowest free /30 looks at every uplink on the host.
"""
from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fargo.network import host_nat, ipam
from fargo.network.blocking_pool import run_blocking
from fargo.network.host_routes import ensure_vpc_guard, remove_vpc_guard
from fargo.network.names import (
    DEFAULT_PREFIX,
    ROUTER_UPLINK_IFNAME,
    netns_path,
    parse_uplink_alias,
    router_netns_name,
    uplink_alias,
    uplink_name,
    vpc_id_from_router_netns_name,
)
from fargo.network.netns import (
    create_netns,
    is_mounted_netns,
    link_names,
    list_netns_names,
    remove_netns,
    run_in_netns,
    set_sysctls,
)
from fargo.network.nft import NftError, release_netns
from fargo.network.rtnl import IPRoute, NetlinkError, host_rtnl, is_error, netns_rtnl
from fargo.network.security_groups import VpcFilterError, apply_vpc_filter, filter_table_exists, render_vpc_filter
from fargo.protocol.messages import VpcPolicy

# The largest task MTU (platform 1.4.0): a task's jumbo packets leave as they are, the host fragments or
# answers "fragmentation needed" where its own way out is narrower.
UPLINK_MTU = 9001
_LOCK_PATH = "/run/fargo/vpc-routers.lock"
_LOOPBACK = "lo"
_HOST_NET_DIR = "/sys/class/net"
_RTN_UNREACHABLE = 7
_MAIN_TABLE = 254
_IFF_UP = 1
# Set before any task port exists: ports inherit the `default` values when they are made.
_ROUTER_SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/ipv4/conf/all/rp_filter": "1",
    "net/ipv4/conf/default/rp_filter": "1",
    "net/ipv4/conf/all/send_redirects": "0",
    "net/ipv4/conf/default/send_redirects": "0",
}
# Fargo's VPCs are IPv4 only: no link-local IPv6 on ports, so tasks meet over IPv4 through the filter only.
_IPV6_SYSCTLS = {
    "net/ipv6/conf/all/disable_ipv6": "1",
    "net/ipv6/conf/default/disable_ipv6": "1",
}
_PORT_SYSCTLS = {
    "net/ipv4/conf/default/proxy_arp": "1",
    f"net/ipv4/conf/{ROUTER_UPLINK_IFNAME}/proxy_arp": "0",
}

_thread_lock = threading.Lock()


class VpcRouterError(RuntimeError):
    """Setting up or removing a VPC router failed."""


@dataclass(frozen=True)
class VpcRouter:
    vpc_id: str
    cidr: str
    netns_name: str
    netns_path: str
    resolver_ip: str  # AmazonProvidedDNS, VPC base + 2, on the router's lo
    uplink: str  # the host end of the uplink veth
    transit_host_ip: str  # .1 of the VPC's /30, on `uplink`
    transit_router_ip: str  # .2, on `router_uplink`
    router_uplink: str = ROUTER_UPLINK_IFNAME  # the uplink's end inside the router
    metadata_ip: str = ipam.METADATA_IP  # also on the router's lo

    @property
    def endpoint_ip(self) -> str:
        """Fargo's AWS APIs as interface VPC endpoints (base + 3), on the router's lo too."""
        return ipam.endpoint_ip(self.cidr)


@contextmanager
def _host_lock() -> Iterator[None]:
    """One router change at a time on this host: threads of this process, and other processes."""
    with _thread_lock:
        os.makedirs(os.path.dirname(_LOCK_PATH), exist_ok=True)
        fd = os.open(_LOCK_PATH, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock


def ensure_vpc_router(vpc_id: str, cidr: str, *, prefix: str = DEFAULT_PREFIX) -> VpcRouter:
    """Make the VPC's router (about 40 ms), or heal the one there (about 20 ms when nothing needs doing).

    A router just made forwards nothing until `security_groups.apply_vpc_filter` gives it the VPC's policy.
    """
    network = ipam.vpc_network(cidr)
    name = router_netns_name(vpc_id, prefix)
    path = netns_path(name)
    uplink = uplink_name(vpc_id, prefix)
    try:
        with _host_lock():
            fresh = not is_mounted_netns(path)
            if fresh:
                release_netns(path)  # a context kept for a namespace that had this name before
                remove_netns(name)  # a bare file left by a crash
                _delete_host_link(uplink)  # the uplink of a router whose namespace lost its name
                create_netns(name).close()
            inside = run_in_netns(path, _set_router_sysctls)
            transit = _kept_transit(uplink, str(network), inside) or ipam.allocate_transit(_transits_in_use())
            router = _router(vpc_id, network, name, path, uplink, transit)
            if fresh or not filter_table_exists(router):
                # Closed from the start, and closed again if it went missing: nothing passes unfiltered.
                apply_vpc_filter(router, render_vpc_filter(VpcPolicy(vpc_id=vpc_id, cidr=router.cidr), [], router))
            _ensure_uplink_pair(router, inside)
            _configure_inside(router)
            run_in_netns(path, lambda: set_sysctls(_PORT_SYSCTLS))
            ensure_vpc_guard(router.cidr)
            host_nat.enable_forwarding()
            host_nat.refresh_host_table(prefix)
    except (NetlinkError, OSError, NftError, VpcFilterError) as error:
        raise VpcRouterError(f"setting up the router of {vpc_id} ({cidr}) failed: {error}") from error
    return router


def _router(
    vpc_id: str, network: ipaddress.IPv4Network, name: str, path: str, uplink: str, transit: ipaddress.IPv4Network
) -> VpcRouter:
    return VpcRouter(
        vpc_id=vpc_id,
        cidr=str(network),
        netns_name=name,
        netns_path=path,
        resolver_ip=ipam.resolver_ip(str(network)),
        uplink=uplink,
        transit_host_ip=str(transit.network_address + 1),
        transit_router_ip=str(transit.network_address + 2),
    )


def _set_router_sysctls() -> set[str]:
    """(In the router.) Its settings, then the names of its links."""
    set_sysctls(_ROUTER_SYSCTLS)
    if os.path.isdir("/proc/sys/net/ipv6"):  # a kernel without IPv6 has nothing to turn off
        set_sysctls(_IPV6_SYSCTLS)
    return link_names()


def _host_index(ipr: IPRoute, name: str) -> int | None:
    indexes = ipr.link_lookup(ifname=name)
    return int(indexes[0]) if indexes else None


def _addresses(ipr: IPRoute, index: int) -> set[tuple[str, int]]:
    return {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=socket.AF_INET)}


def _kept_transit(uplink: str, cidr: str, inside: set[str]) -> ipaddress.IPv4Network | None:
    """The /30 of an uplink pair that is whole and serves this CIDR, or None (then it is made anew)."""
    if not os.path.exists(f"{_HOST_NET_DIR}/{uplink}"):
        return None
    with host_rtnl() as ipr:
        index = _host_index(ipr, uplink)
        if index is None:
            return None
        link = ipr.get_links(index)[0]
        addresses = _addresses(ipr, index)
    alias = parse_uplink_alias(link.get_attr("IFLA_IFALIAS") or "")
    transits = [
        ipaddress.IPv4Interface(f"{address}/{length}")
        for address, length in addresses
        if ipaddress.IPv4Address(address) in ipam.TRANSIT_RANGE
    ]
    if ROUTER_UPLINK_IFNAME in inside and alias is not None and alias[1] == cidr and len(transits) == 1:
        network = transits[0].network
        if transits[0].ip == network.network_address + 1 and network.prefixlen == 30:
            return network
    _delete_host_link(uplink)  # half made, or its peer is not in this router: made again below
    return None


def _transits_in_use() -> set[ipaddress.IPv4Network]:
    """Every network of the transit range that some host address sits in (any Fargo's uplinks)."""
    with host_rtnl() as ipr:
        addresses = ipr.get_addr(family=socket.AF_INET)
    return {
        ipaddress.IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}").network
        for a in addresses
        if ipaddress.IPv4Address(a.get_attr("IFA_ADDRESS")) in ipam.TRANSIT_RANGE
    }


def _ensure_uplink_pair(router: VpcRouter, inside: set[str]) -> None:
    """(Host side.) The uplink veth with its peer born inside the router; alias, address and up on the host end."""
    with host_rtnl() as ipr:
        index = _host_index(ipr, router.uplink)
        if index is None:
            if ROUTER_UPLINK_IFNAME in inside:
                # A pair whose host end went elsewhere: the router's end goes with a fresh pair.
                with netns_rtnl(router.netns_path) as inner:
                    stale = _host_index(inner, ROUTER_UPLINK_IFNAME)
                    if stale is not None:
                        inner.link("del", index=stale)
            fd = os.open(router.netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                ipr.link(
                    "add",
                    ifname=router.uplink,
                    kind="veth",
                    mtu=UPLINK_MTU,
                    peer={"ifname": ROUTER_UPLINK_IFNAME, "mtu": UPLINK_MTU, "net_ns_fd": fd},
                )
            finally:
                os.close(fd)
            index = _host_index(ipr, router.uplink)
            if index is None:
                raise VpcRouterError(f"uplink {router.uplink} vanished while being set up")
        # The alias maps the uplink (its name is only a hash) to its router and CIDR: for listing and guards.
        ipr.link("set", index=index, ifalias=uplink_alias(router.netns_name, router.cidr), state="up")
        _ensure_address(ipr, index, router.transit_host_ip, 30)


def _ensure_address(ipr: IPRoute, index: int, address: str, length: int) -> None:
    """`address/length` on the link, and no other IPv4 address."""
    present = _addresses(ipr, index)
    for other, other_length in present - {(address, length)}:
        ipr.addr("del", index=index, address=other, prefixlen=other_length)
    if (address, length) not in present:
        try:
            ipr.addr("add", index=index, address=address, prefixlen=length)
        except NetlinkError as error:
            if not is_error(error, errno.EEXIST):
                raise


def _configure_inside(router: VpcRouter) -> None:
    """(Router side.) lo with the endpoint addresses, the uplink's address, and the routes."""
    network = ipaddress.IPv4Network(router.cidr)
    with netns_rtnl(router.netns_path) as inner:
        lo = _host_index(inner, _LOOPBACK)
        up = _host_index(inner, ROUTER_UPLINK_IFNAME)
        if lo is None or up is None:
            raise VpcRouterError(f"router {router.netns_name} lacks lo or its uplink")
        inner.link("set", index=lo, state="up")
        present = {address for address, length in _addresses(inner, lo) if length == 32}
        for address in (router.metadata_ip, router.resolver_ip, router.endpoint_ip):
            if address not in present:
                inner.addr("add", index=lo, address=address, prefixlen=32)
        _ensure_address(inner, up, router.transit_router_ip, 30)
        inner.link("set", index=up, state="up")
        inner.route("replace", dst=str(network.network_address), dst_len=network.prefixlen, type="unreachable")
        inner.route("replace", dst="0.0.0.0", dst_len=0, gateway=router.transit_host_ip, oif=up)


def delete_vpc_router(vpc_id: str, *, prefix: str = DEFAULT_PREFIX, if_unused: bool = False) -> bool:
    """Remove the VPC's router namespace, its uplink, its host table entry and (if no other router has its
    CIDR) its guard route. Idempotent. With `if_unused`, a router that still holds task ports is kept.

    Returns False only when `if_unused` kept it. Servers with sockets made in the router should close them
    first: until then the namespace lives on (without uplink, reaching nothing).
    """
    name = router_netns_name(vpc_id, prefix)
    path = netns_path(name)
    uplink = uplink_name(vpc_id, prefix)
    try:
        with _host_lock():
            live = is_mounted_netns(path)
            if live and if_unused and run_in_netns(path, link_names) - {_LOOPBACK, ROUTER_UPLINK_IFNAME}:
                return False
            cidr = _uplink_cidr(uplink) or (_inside_cidr(path) if live else None)
            release_netns(path)  # its nft socket would keep the namespace alive
            remove_netns(name)
            _delete_host_link(uplink)  # at once, even if something still holds the namespace
            host_nat.refresh_host_table(prefix)
            if cidr is not None and cidr not in _router_cidrs_on_host():
                remove_vpc_guard(cidr)
    except (NetlinkError, OSError, NftError) as error:
        raise VpcRouterError(f"removing the router of {vpc_id} failed: {error}") from error
    return True


def _uplink_cidr(uplink: str) -> str | None:
    if not os.path.exists(f"{_HOST_NET_DIR}/{uplink}"):
        return None
    with host_rtnl() as ipr:
        index = _host_index(ipr, uplink)
        alias = ipr.get_links(index)[0].get_attr("IFLA_IFALIAS") if index is not None else None
    parsed = parse_uplink_alias(alias or "")
    return parsed[1] if parsed else None


def _inside_cidr(path: str) -> str | None:
    """The VPC CIDR from the router's own `unreachable` route (for a router that lost its uplink)."""
    with netns_rtnl(path) as inner:
        routes = inner.get_routes(family=socket.AF_INET, table=_MAIN_TABLE)
    for route in routes:
        if route["type"] == _RTN_UNREACHABLE and route.get_attr("RTA_DST"):
            return f"{route.get_attr('RTA_DST')}/{route['dst_len']}"
    return None


def _router_cidrs_on_host() -> set[str]:
    """The CIDRs of every router on the host (every prefix), read from the uplinks' aliases."""
    with host_rtnl() as ipr:
        aliases = [link.get_attr("IFLA_IFALIAS") for link in ipr.get_links()]
    return {parsed[1] for alias in aliases if alias and (parsed := parse_uplink_alias(alias))}


def _delete_host_link(name: str) -> None:
    if not os.path.exists(f"{_HOST_NET_DIR}/{name}"):
        return
    with host_rtnl() as ipr:
        index = _host_index(ipr, name)
        if index is None:
            return
        try:
            ipr.link("del", index=index)
        except NetlinkError as error:
            if not is_error(error, errno.ENODEV):
                raise


def list_vpc_routers(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The VPC ids that have a router namespace, or a leftover uplink, with this prefix."""
    vpc_ids = {vpc for name in list_netns_names() if (vpc := vpc_id_from_router_netns_name(name, prefix))}
    for uplink in host_nat.host_uplinks(prefix):
        with host_rtnl() as ipr:
            index = _host_index(ipr, uplink)
            alias = ipr.get_links(index)[0].get_attr("IFLA_IFALIAS") if index is not None else None
        parsed = parse_uplink_alias(alias or "")
        if parsed and (vpc := vpc_id_from_router_netns_name(parsed[0], prefix)):
            vpc_ids.add(vpc)
    return sorted(vpc_ids)


def router_netns_paths(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The paths of this prefix's router namespaces (mounted ones only)."""
    paths = [netns_path(name) for name in list_netns_names() if vpc_id_from_router_netns_name(name, prefix)]
    return [path for path in paths if is_mounted_netns(path)]


async def ensure_vpc_router_async(vpc_id: str, cidr: str, *, prefix: str = DEFAULT_PREFIX) -> VpcRouter:
    return await run_blocking(ensure_vpc_router, vpc_id, cidr, prefix=prefix)


async def delete_vpc_router_async(vpc_id: str, *, prefix: str = DEFAULT_PREFIX, if_unused: bool = False) -> bool:
    return await run_blocking(delete_vpc_router, vpc_id, prefix=prefix, if_unused=if_unused)


async def list_vpc_routers_async(prefix: str = DEFAULT_PREFIX) -> list[str]:
    return await run_blocking(list_vpc_routers, prefix)
