"""Host-side names of Fargo's network objects: subnet bridges, host veths and task network namespaces.

Every name starts with a prefix (default `fg`) so several Fargos, or tests, can share a host without colliding.
Link names must fit Linux's 15 characters, so they carry a hash of the subnet or task id.
"""
from __future__ import annotations

import hashlib
import re

DEFAULT_PREFIX = "fg"
NETNS_DIR = "/run/netns"
# Linux interface names hold at most 15 characters (IFNAMSIZ - 1).
_IFNAME_MAX = 15
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,5}$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


def check_prefix(prefix: str) -> str:
    # At most 6 characters so that prefix + kind letter + hash keeps at least 8 hex digits.
    if not _PREFIX_RE.match(prefix):
        raise ValueError(
            f"network name prefix {prefix!r} must be 1-6 lowercase letters or digits, starting with a letter"
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


def bridge_name(subnet_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The bridge of one subnet, e.g. `fgb3f1c0a9d2e7b` for subnet-0abc..."""
    return _hashed_ifname(prefix, "b", _check_id("subnet id", subnet_id))


def host_veth_name(task_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The host end of a task's veth (the bridge port); its peer inside the task netns is `eth1`."""
    return _hashed_ifname(prefix, "v", _check_id("task id", task_id))


def netns_name(task_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The task's namespace name as `ip netns` lists it: `<prefix>-<task id>`."""
    return f"{check_prefix(prefix)}-{_check_id('task id', task_id)}"


def netns_path(name: str) -> str:
    return f"{NETNS_DIR}/{name}"


def task_id_from_netns_name(name: str, prefix: str = DEFAULT_PREFIX) -> str | None:
    """The task id in a namespace (or host veth alias) name, or None if the name is not ours."""
    head = f"{check_prefix(prefix)}-"
    if not name.startswith(head) or not _ID_RE.match(name[len(head):]):
        return None
    return name[len(head):]
