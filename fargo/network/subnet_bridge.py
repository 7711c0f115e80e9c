"""One Linux bridge per subnet the host serves: it holds the subnet's gateway address and the task veths.

`ensure_subnet_bridge` is idempotent and heals a bridge left by an earlier run (MTU, address, link up).
"""
from __future__ import annotations

import errno
import socket

from fargo.network import ipam
from fargo.network.names import DEFAULT_PREFIX, bridge_name
from fargo.network.rtnl import IPRoute, NetlinkError, host_rtnl, is_error


class BridgeNameTakenError(RuntimeError):
    """A link with the bridge's name exists but is not a bridge."""


def _link_kind(link: object) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")  # type: ignore[attr-defined]
    return None if info is None else info.get_attr("IFLA_INFO_KIND")


def _find(ipr: IPRoute, name: str) -> int | None:
    indexes = ipr.link_lookup(ifname=name)
    return int(indexes[0]) if indexes else None


def ensure_subnet_bridge(subnet_id: str, cidr: str, mtu: int, *, prefix: str = DEFAULT_PREFIX) -> str:
    """Create or heal the bridge of `subnet_id`: gateway address (e.g. 10.213.0.1/20), `mtu`, up. Returns its name."""
    name = bridge_name(subnet_id, prefix)
    gateway = ipam.gateway_ip(cidr)
    prefix_len = ipam.prefix_length(cidr)
    with host_rtnl() as ipr:
        try:
            # A fixed MAC: otherwise the bridge takes its lowest port's MAC, which changes as tasks come and go.
            # The MTU is set below, not here: only a change of MTU marks it as chosen by the user, so that the
            # kernel stops lowering it to the smallest port MTU.
            ipr.link("add", ifname=name, kind="bridge", address=ipam.mac_address(f"bridge/{subnet_id}"))
        except NetlinkError as error:
            if not is_error(error, errno.EEXIST):  # made by an earlier run or a concurrent caller
                raise
        index = _find(ipr, name)
        if index is None:
            raise RuntimeError(f"bridge {name} vanished while being set up")
        link = ipr.get_links(index)[0]
        if _link_kind(link) != "bridge":
            raise BridgeNameTakenError(f"{name} exists and is not a bridge")
        if link.get_attr("IFLA_MTU") != mtu:
            ipr.link("set", index=index, mtu=mtu)
        addresses = {
            (a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=socket.AF_INET)
        }
        for address, length in addresses - {(gateway, prefix_len)}:
            ipr.addr("del", index=index, address=address, prefixlen=length)  # stale: the subnet changed
        if (gateway, prefix_len) not in addresses:
            try:
                ipr.addr("add", index=index, address=gateway, prefixlen=prefix_len)
            except NetlinkError as error:
                if not is_error(error, errno.EEXIST):
                    raise
        if not link["flags"] & 1:  # IFF_UP
            ipr.link("set", index=index, state="up")
    return name


def bridge_index(subnet_id: str, *, prefix: str = DEFAULT_PREFIX) -> int | None:
    with host_rtnl() as ipr:
        return _find(ipr, bridge_name(subnet_id, prefix))


def delete_subnet_bridge(subnet_id: str, *, prefix: str = DEFAULT_PREFIX) -> None:
    """Remove the bridge (its gateway address and connected route go with it); nothing to do if absent."""
    with host_rtnl() as ipr:
        index = _find(ipr, bridge_name(subnet_id, prefix))
        if index is None:
            return
        try:
            ipr.link("del", index=index)
        except NetlinkError as error:
            if not is_error(error, errno.ENODEV):
                raise
