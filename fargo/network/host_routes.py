"""Host-wide network state that every task relies on: the VPC guard routes and the metadata address.

A VPC guard is an `unreachable` route for a whole VPC CIDR: nothing addressed into the VPC can leave the
machine, while each subnet bridge's connected route (more specific) still carries local traffic.
"""
from __future__ import annotations

import errno
import ipaddress
import socket

from fargo.network.rtnl import NetlinkError, host_rtnl, is_error

METADATA_IP = "169.254.170.2"
_LOOPBACK = "lo"


def _normalised(cidr: str) -> ipaddress.IPv4Network:
    network = ipaddress.ip_network(cidr, strict=True)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"VPC CIDR {cidr!r} is not IPv4")
    return network


def ensure_vpc_guard(cidr: str) -> None:
    """Keep `unreachable CIDR` in the main table (replace makes it idempotent and heals a changed route)."""
    network = _normalised(cidr)
    with host_rtnl() as ipr:
        ipr.route("replace", dst=str(network.network_address), dst_len=network.prefixlen, type="unreachable")


def remove_vpc_guard(cidr: str) -> None:
    network = _normalised(cidr)
    with host_rtnl() as ipr:
        try:
            ipr.route("del", dst=str(network.network_address), dst_len=network.prefixlen, type="unreachable")
        except NetlinkError as error:
            if not is_error(error, errno.ESRCH):
                raise


def vpc_guards() -> list[str]:
    """The CIDRs that have an unreachable route in the main table."""
    with host_rtnl() as ipr:
        routes = ipr.get_routes(family=socket.AF_INET, table=254)
    guards = []
    for route in routes:
        if route["type"] == 7:  # RTN_UNREACHABLE
            guards.append(f"{route.get_attr('RTA_DST') or '0.0.0.0'}/{route['dst_len']}")
    return guards


def _loopback_index() -> int:
    with host_rtnl() as ipr:
        return int(ipr.link_lookup(ifname=_LOOPBACK)[0])


def ensure_metadata_address() -> None:
    """Put 169.254.170.2/32 on `lo` (this kernel has no dummy driver); one address serves every bridge."""
    index = _loopback_index()
    with host_rtnl() as ipr:
        try:
            ipr.addr("add", index=index, address=METADATA_IP, prefixlen=32)
        except NetlinkError as error:
            if not is_error(error, errno.EEXIST):
                raise


def has_metadata_address() -> bool:
    index = _loopback_index()
    with host_rtnl() as ipr:
        return any(a.get_attr("IFA_ADDRESS") == METADATA_IP for a in ipr.get_addr(index=index, family=socket.AF_INET))


def remove_metadata_address() -> None:
    index = _loopback_index()
    with host_rtnl() as ipr:
        try:
            ipr.addr("del", index=index, address=METADATA_IP, prefixlen=32)
        except NetlinkError as error:
            if not is_error(error, errno.EADDRNOTAVAIL):
                raise
