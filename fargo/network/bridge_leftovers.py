"""Subnet bridges that Fargo's bridge design left on the host (`<prefix>b<hash>`), found by name and kind.

Nothing makes them any more; their connected routes would shadow the VPC guard routes, so reconciliation
removes each one that no veth is attached to.
"""
from __future__ import annotations

import errno
import os

from fargo.network.names import check_prefix
from fargo.network.rtnl import NetlinkError, host_rtnl, is_error

_HOST_NET_DIR = "/sys/class/net"
_IFNAME_LENGTH = 15


def _is_leftover_bridge(name: str, prefix: str) -> bool:
    head = check_prefix(prefix) + "b"
    tail = name[len(head):]
    if not name.startswith(head) or len(name) != _IFNAME_LENGTH or any(c not in "0123456789abcdef" for c in tail):
        return False
    return os.path.isdir(f"{_HOST_NET_DIR}/{name}/bridge")


def unused_leftover_bridges(prefix: str) -> list[str]:
    """The bridge design's bridges of this prefix that have no port (sysfs: no netlink)."""
    return sorted(
        name
        for name in os.listdir(_HOST_NET_DIR)
        if _is_leftover_bridge(name, prefix) and not os.listdir(f"{_HOST_NET_DIR}/{name}/brif")
    )


def remove_unused_leftover_bridges(prefix: str) -> list[str]:
    """Delete them (their addresses and routes go with them); the names removed."""
    removed = []
    for name in unused_leftover_bridges(prefix):
        with host_rtnl() as ipr:
            indexes = ipr.link_lookup(ifname=name)
            if not indexes:
                continue
            try:
                ipr.link("del", index=indexes[0])
            except NetlinkError as error:
                if not is_error(error, errno.ENODEV):
                    raise
        removed.append(name)
    return removed
