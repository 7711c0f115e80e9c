"""CIDR blocks as EC2 takes them: VPC and subnet blocks /16 to /28 with host bits cleared, rule CIDRs of
either family (canonical, so that a rule authorized as 10.0.0.5/24 is revoked as 10.0.0.0/24)."""
from __future__ import annotations

import ipaddress

from fargo.control.vpcs import messages as msg
from fargo.errors import AwsError, InvalidParameterValue

MIN_PREFIX, MAX_PREFIX = 16, 28


def network_block(value: str, range_error: type[AwsError], parameter: str = "cidrBlock") -> ipaddress.IPv4Network:
    """A VPC or subnet block; `range_error` (InvalidVpc.Range, InvalidSubnet.Range) for a size EC2 refuses."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise InvalidParameterValue(msg.not_a_cidr(value, parameter)) from None
    if not isinstance(network, ipaddress.IPv4Network) or "/" not in value:
        raise InvalidParameterValue(msg.not_a_cidr(value, parameter))
    if not MIN_PREFIX <= network.prefixlen <= MAX_PREFIX or _unroutable(network):
        raise range_error(msg.cidr_invalid(value))
    return network


def _unroutable(network: ipaddress.IPv4Network) -> bool:
    # No VPC can use these: "this" network, loopback, link-local, multicast and the reserved class E.
    return (network.is_loopback or network.is_link_local or network.is_multicast or network.is_reserved
            or network.subnet_of(ipaddress.IPv4Network("0.0.0.0/8")))


def rule_cidr(value: str, version: int) -> str:
    """A rule's CidrIp (version 4) or CidrIpv6 (version 6), canonical."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise InvalidParameterValue(msg.cidr_malformed(value)) from None
    if network.version != version or "/" not in value:
        raise InvalidParameterValue(msg.cidr_malformed(value))
    return str(network)
