"""The host's half of assignPublicIp: IPv4 forwarding, and one nft table per prefix (`ip fargo_<prefix>`) for
the VPC routers' uplinks.

The routers masquerade their public ENIs to their transit address (169.254.240.0/20); the host masquerades
that range again on whatever interface it leaves by, so a task goes out with the host's address. Nothing
opens a connection into a router through its uplink, a router reaches no other router and no link-local
service of the host, and the host's own services are closed to the routers.
"""
from __future__ import annotations

import os
import re

from fargo.network.ipam import TRANSIT_RANGE
from fargo.network.names import check_prefix, is_uplink_name
from fargo.network.netns import set_sysctls
from fargo.network.nft import NftError, run_nft

_HOST_NET_DIR = "/sys/class/net"
_LINK_LOCAL = "169.254.0.0/16"
_QUOTED = re.compile(r'"([^"]+)"')


def host_table_name(prefix: str) -> str:
    return f"fargo_{check_prefix(prefix)}"


def enable_forwarding() -> None:
    """Turn on IPv4 forwarding in the host namespace (the calling thread's), as any container host does."""
    set_sysctls({"net/ipv4/ip_forward": "1"})


def render_host_table(prefix: str, uplinks: list[str]) -> str:
    """The script that replaces the host table of `prefix` for these uplinks, or removes it if there are none."""
    table = f"ip {host_table_name(prefix)}"
    lines = [f"table {table} {{", "}", f"delete table {table}"]
    if not uplinks:
        return "\n".join(lines) + "\n"
    elements = ", ".join(f'"{name}"' for name in sorted(uplinks))
    lines += [
        f"table {table} {{",
        "\tset uplinks {",
        "\t\ttype ifname",
        f"\t\telements = {{ {elements} }}",
        "\t}",
        "\tchain uplink_input {",
        "\t\ttype filter hook input priority 0; policy accept;",
        "\t\tiifname @uplinks ct state established,related accept",
        "\t\tiifname @uplinks drop",
        "\t}",
        "\tchain uplink_forward {",
        "\t\ttype filter hook forward priority 0; policy accept;",
        f"\t\tiifname @uplinks ip saddr != {TRANSIT_RANGE} drop",
        f"\t\tiifname @uplinks ip daddr {_LINK_LOCAL} drop",
        "\t\toifname @uplinks ct state established,related accept",
        "\t\toifname @uplinks drop",
        "\t}",
        "\tchain uplink_nat {",
        "\t\ttype nat hook postrouting priority 100; policy accept;",
        f"\t\tip saddr {TRANSIT_RANGE} oifname != @uplinks masquerade",
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def host_uplinks(prefix: str) -> list[str]:
    """The host ends of this prefix's router uplinks (sysfs lists the host namespace's links, no netlink)."""
    return sorted(name for name in os.listdir(_HOST_NET_DIR) if is_uplink_name(name, prefix))


def _applied_uplinks(prefix: str) -> set[str] | None:
    """The uplinks the host table names now, or None if there is no such table."""
    try:
        listing = run_nft(f"list set ip {host_table_name(prefix)} uplinks")
    except NftError:
        return None
    _, _, elements = listing.partition("elements")
    return set(_QUOTED.findall(elements))


def refresh_host_table(prefix: str) -> None:
    """Make the host table match this prefix's uplinks on the host; nothing is applied if it already does."""
    uplinks = host_uplinks(prefix)
    applied = _applied_uplinks(prefix)
    if (applied is None and not uplinks) or applied == set(uplinks):
        return
    run_nft(render_host_table(prefix, uplinks))
