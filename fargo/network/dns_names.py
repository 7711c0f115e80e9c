"""The names a VPC's resolver serves itself: the region's private zone and the locally served reverse zones.

As Route 53 Resolver does (and RFC 6303 asks), the private zone and the RFC 1918 reverse zones are answered
in the VPC, never forwarded: a name there that is no ENI of the VPC does not exist.
"""
from __future__ import annotations

import functools

import ipaddress

from dnslib import DNSLabel

from fargo.network.ipam import private_dns_name

# RFC 1918 space: 10/8, 172.16/12, 192.168/16, as reverse zones.
LOCAL_REVERSE_ZONES: tuple[str, ...] = (
    "10.in-addr.arpa",
    *(f"{octet}.172.in-addr.arpa" for octet in range(16, 32)),
    "168.192.in-addr.arpa",
)


def normalized(name: str | DNSLabel) -> str:
    """A name as compared here: lower case, no trailing dot (DNS names are case-insensitive)."""
    return str(DNSLabel(name)).rstrip(".").lower()


@functools.cache  # asked for every name of every zone built: a pure function of the region
def private_zone(region: str) -> str:
    """`ec2.internal` in us-east-1, `REGION.compute.internal` elsewhere: the search domain of the VPC."""
    # ipam owns the naming rule; the zone is whatever follows the host label of any ENI's name.
    return private_dns_name("0.0.0.0", region).partition(".")[2]


def reverse_name(ip: str) -> str:
    """The PTR name of an IPv4 address: 10.213.0.5 -> 5.0.213.10.in-addr.arpa."""
    return ipaddress.IPv4Address(ip).reverse_pointer


def is_within(name: str, zone: str) -> bool:
    """True if the normalized `name` is `zone` itself or a name below it."""
    return name == zone or name.endswith("." + zone)


def served_zone(name: str, region: str) -> str | None:
    """The locally served zone holding the normalized `name`, or None if the name is to be forwarded."""
    for zone in (private_zone(region), *LOCAL_REVERSE_ZONES):
        if is_within(name, zone):
            return zone
    return None
