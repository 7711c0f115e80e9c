"""Names of Fargo's network objects: task and VPC router namespaces, router ports and uplinks.

Every name starts with a prefix (default `fg`) so several Fargos, or tests, can share a host without colliding.
Link names must fit Linux's 15 characters, so they carry a hash of the task or VPC id. A task's namespace is
`<prefix>-<task id>` and a VPC router's `<prefix>r-<vpc id>`; a prefix may not end in `r`, so that no router
namespace of one prefix ever reads as a task namespace of another.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re

DEFAULT_PREFIX = "fg"
NETNS_DIR = "/run/netns"
# Linux interface names hold at most 15 characters (IFNAMSIZ - 1).
_IFNAME_MAX = 15
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,5}$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_ROUTER_MARK = "r-"
# The router's end of its uplink lives alone in the router namespace, so it needs no hash.
ROUTER_UPLINK_IFNAME = "uplink"


def check_prefix(prefix: str) -> str:
    # At most 6 characters so that prefix + kind letter + hash keeps at least 8 hex digits.
    if not _PREFIX_RE.match(prefix) or prefix.endswith("r"):
        raise ValueError(
            f"network name prefix {prefix!r} must be 1-6 lowercase letters or digits, starting with a letter "
            "and not ending in 'r'"
        )
    return prefix


def _check_id(kind: str, value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(f"{kind} {value!r} must be letters, digits, '.', '_' or '-'")
    return value


def _hashed_ifname(prefix: str, kind: str, identifier: str) -> str:
    head = check_prefix(prefix) + kind
    digest = hashlib.sha256(identifier.encode()).hexdigest()
    return head + digest[: _IFNAME_MAX - len(head)]


def router_port_name(task_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The router's end of a task's veth (in the router namespace); its peer in the task namespace is `eth1`."""
    return _hashed_ifname(prefix, "v", _check_id("task id", task_id))


# The bridge design's host veth had the same name; kept for the tests that still say so.
host_veth_name = router_port_name


def bridge_name(subnet_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The name the bridge design gave a subnet's bridge (no longer made; kept for tests/unit/test_ipam.py)."""
    return _hashed_ifname(prefix, "b", _check_id("subnet id", subnet_id))


def uplink_name(vpc_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The host's end of a VPC router's uplink veth, e.g. `fgu3f1c0a9d2e7b` (its peer is `uplink`)."""
    return _hashed_ifname(prefix, "u", _check_id("VPC id", vpc_id))


def is_uplink_name(name: str, prefix: str) -> bool:
    head = check_prefix(prefix) + "u"
    tail = name[len(head):]
    return name.startswith(head) and len(name) == _IFNAME_MAX and all(c in "0123456789abcdef" for c in tail)


def netns_name(task_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The task's namespace name as `ip netns` lists it: `<prefix>-<task id>`."""
    return f"{check_prefix(prefix)}-{_check_id('task id', task_id)}"


def router_netns_name(vpc_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The VPC router's namespace name: `<prefix>r-<vpc id>`."""
    return f"{check_prefix(prefix)}{_ROUTER_MARK}{_check_id('VPC id', vpc_id)}"


def netns_path(name: str) -> str:
    return f"{NETNS_DIR}/{name}"


def task_id_from_netns_name(name: str, prefix: str = DEFAULT_PREFIX) -> str | None:
    """The task id in a namespace (or router port alias) name, or None if the name is not a task's of ours."""
    head = f"{check_prefix(prefix)}-"
    if not name.startswith(head) or not _ID_RE.match(name[len(head):]):
        return None
    return name[len(head):]


def vpc_id_from_router_netns_name(name: str, prefix: str = DEFAULT_PREFIX) -> str | None:
    """The VPC id in a router namespace name, or None if the name is not a router's of this prefix."""
    head = f"{check_prefix(prefix)}{_ROUTER_MARK}"
    if not name.startswith(head) or not _ID_RE.match(name[len(head):]):
        return None
    return name[len(head):]


def uplink_alias(router_netns: str, vpc_cidr: str) -> str:
    """What a host uplink end carries as its alias: which router it serves and that VPC's CIDR."""
    return f"{router_netns} {vpc_cidr}"


def parse_uplink_alias(alias: str) -> tuple[str, str] | None:
    """(router namespace name, VPC CIDR) from an uplink alias of any prefix, or None for other aliases."""
    parts = alias.split(" ")
    if len(parts) != 2 or _ROUTER_MARK not in parts[0]:
        return None
    try:
        network = ipaddress.ip_network(parts[1], strict=True)
    except ValueError:
        return None
    return (parts[0], str(network)) if isinstance(network, ipaddress.IPv4Network) else None
