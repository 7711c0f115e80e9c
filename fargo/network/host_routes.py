"""The VPC guard routes of the host: an `unreachable` route for each VPC CIDR that has a router here.

Nothing in the host namespace is ever addressed into a VPC: its tasks live behind the VPC's router. The
guard makes sure that a packet for a VPC address (from the host, or from another VPC's router by its
default route) goes nowhere instead of following the host's default route off the machine.
"""
from __future__ import annotations

import errno
import socket

from fargo.network.ipam import vpc_network
from fargo.network.rtnl import NetlinkError, host_rtnl, is_error

_RTN_UNREACHABLE = 7
_MAIN_TABLE = 254


def ensure_vpc_guard(cidr: str) -> None:
    """Keep `unreachable CIDR` in the main table (replace makes it idempotent and heals a changed route)."""
    network = vpc_network(cidr)
    with host_rtnl() as ipr:
        ipr.route("replace", dst=str(network.network_address), dst_len=network.prefixlen, type="unreachable")


def remove_vpc_guard(cidr: str) -> None:
    network = vpc_network(cidr)
    with host_rtnl() as ipr:
        try:
            ipr.route("del", dst=str(network.network_address), dst_len=network.prefixlen, type="unreachable")
        except NetlinkError as error:
            if not is_error(error, errno.ESRCH):
                raise


def vpc_guards() -> list[str]:
    """The CIDRs that have an unreachable route in the main table."""
    with host_rtnl() as ipr:
        routes = ipr.get_routes(family=socket.AF_INET, table=_MAIN_TABLE)
    return [
        f"{route.get_attr('RTA_DST') or '0.0.0.0'}/{route['dst_len']}"
        for route in routes
        if route["type"] == _RTN_UNREACHABLE
    ]
