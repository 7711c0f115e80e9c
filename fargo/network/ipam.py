"""Address management as pure functions: which IP a task gets, its gateway, MAC and DNS name, the VPC's
resolver, endpoint and metadata addresses, and the transit network of each VPC router's uplink.

Follows AWS's VPC rules: in every subnet the first four addresses and the last one are reserved.
"""
from __future__ import annotations

import hashlib
import ipaddress
import socket

# AWS reserves .0 (network), .1 (VPC router), .2 (DNS), .3 (future use) and the broadcast address.
_RESERVED_AT_START = 4
_RESERVED_AT_END = 1
# The task metadata and credentials endpoint, as on Fargate; every VPC router holds it.
METADATA_IP = "169.254.170.2"
# Link-local space for the /30 between the host and each VPC router: never routed, never seen by tasks.
TRANSIT_RANGE = ipaddress.IPv4Network("169.254.240.0/20")
_TRANSIT_PREFIX = 30


class SubnetFullError(RuntimeError):
    """The subnet has no free address left for another ENI."""

    def __init__(self, subnet_cidr: str) -> None:
        super().__init__(
            f"There are not enough free addresses in subnet '{subnet_cidr}' "
            "to satisfy the requested number of instances."
        )
        self.subnet_cidr = subnet_cidr


def subnet_network(subnet_cidr: str) -> ipaddress.IPv4Network:
    """The subnet as an IPv4 network; host bits must be zero, as in EC2."""
    network = ipaddress.ip_network(subnet_cidr, strict=True)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"subnet {subnet_cidr!r} is not an IPv4 CIDR block")
    if network.prefixlen > 28:
        raise ValueError(f"subnet {subnet_cidr!r} is smaller than /28, the smallest EC2 allows")
    return network


def allocate_ip(subnet_cidr: str, in_use: set[str]) -> str:
    """The lowest usable address of the subnet that is not in `in_use` (addresses outside are ignored)."""
    network = subnet_network(subnet_cidr)
    first = int(network.network_address) + _RESERVED_AT_START
    last = int(network.broadcast_address) - _RESERVED_AT_END
    # (inet_aton, not ipaddress: the addresses are the store's own, dotted quads; parsing a thousand of them
    # with ipaddress cost 3.5 ms of every RunTask into a subnet that held them)
    taken = {int.from_bytes(socket.inet_aton(ip), "big") for ip in in_use}
    for candidate in range(first, last + 1):
        if candidate not in taken:
            return socket.inet_ntoa(candidate.to_bytes(4, "big"))
    raise SubnetFullError(subnet_cidr)


def usable_address_count(subnet_cidr: str) -> int:
    """How many ENI addresses the subnet holds (a /24 holds 251)."""
    return subnet_network(subnet_cidr).num_addresses - _RESERVED_AT_START - _RESERVED_AT_END


def vpc_network(vpc_cidr: str) -> ipaddress.IPv4Network:
    """The VPC's CIDR block as an IPv4 network; host bits must be zero."""
    network = ipaddress.ip_network(vpc_cidr, strict=True)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"VPC CIDR block {vpc_cidr!r} is not IPv4")
    return network


def resolver_ip(vpc_cidr: str) -> str:
    """AmazonProvidedDNS: the VPC's base address + 2, e.g. 10.213.0.2 for 10.213.0.0/16."""
    return str(vpc_network(vpc_cidr).network_address + 2)


def endpoint_ip(vpc_cidr: str) -> str:
    """Where the VPC reaches Fargo's own AWS APIs (its "interface endpoints"): base + 3, e.g. 10.213.0.3.

    AWS reserves that address; `allocate_ip` never gives it out: in the subnet that starts at the VPC's base
    it is one of the four reserved first addresses, and no other subnet holds it.
    """
    return str(vpc_network(vpc_cidr).network_address + 3)


def allocate_transit(in_use: set[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The lowest /30 of TRANSIT_RANGE that overlaps nothing in `in_use` (the host keeps .1, the router .2)."""
    for candidate in TRANSIT_RANGE.subnets(new_prefix=_TRANSIT_PREFIX):
        if not any(candidate.overlaps(used) for used in in_use):
            return candidate
    raise RuntimeError(f"no free /{_TRANSIT_PREFIX} left in {TRANSIT_RANGE} for another VPC router")


def gateway_ip(subnet_cidr: str) -> str:
    """The subnet's router address: the first host address, e.g. 10.213.0.1 for 10.213.0.0/20."""
    return str(subnet_network(subnet_cidr).network_address + 1)


def prefix_length(subnet_cidr: str) -> int:
    return subnet_network(subnet_cidr).prefixlen


def mac_address(identifier: str) -> str:
    """A stable MAC for an ENI or bridge: unicast, locally administered, derived from `identifier`."""
    digest = bytearray(hashlib.sha256(identifier.encode()).digest()[:6])
    # Clear the multicast bit, set the locally-administered bit (AWS ENI MACs are such too, e.g. 0e:...).
    digest[0] = (digest[0] & 0xFC) | 0x02
    return ":".join(f"{byte:02x}" for byte in digest)


def private_dns_name(ip: str, region: str) -> str:
    """EC2's private DNS name: ip-10-213-0-5.ec2.internal in us-east-1, ip-...REGION.compute.internal elsewhere."""
    host = "ip-" + str(ipaddress.IPv4Address(ip)).replace(".", "-")
    if region == "us-east-1":
        return f"{host}.ec2.internal"
    return f"{host}.{region}.compute.internal"
