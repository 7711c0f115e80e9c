"""Traffic counters of a task's eth1, read from inside its namespace (/proc/thread-self/net/dev).

A helper thread enters the namespace, reads the file once and ends, so nothing stays open that would keep
the namespace (and its veth) alive after the task is gone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from fargo.network.netns import run_in_netns
from fargo.network.task_eni import TASK_IFNAME


@dataclass(frozen=True)
class NetCounters:
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


class InterfaceNotFoundError(LookupError):
    """The namespace has no interface of that name."""


def parse_net_dev(text: str, ifname: str) -> NetCounters:
    """Counters of `ifname` from the text of /proc/net/dev (two header lines, then `name: 16 numbers`)."""
    for line in text.splitlines()[2:]:
        name, _, numbers = line.partition(":")
        if name.strip() != ifname:
            continue
        fields = [int(value) for value in numbers.split()]
        # rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop ...
        return NetCounters(*fields[0:4], *fields[8:12])
    raise InterfaceNotFoundError(f"no interface {ifname!r} in this namespace")


def _read_net_dev() -> str:
    # /proc/thread-self, not /proc/self: the latter shows the thread-group leader's namespace.
    fd = os.open("/proc/thread-self/net/dev", os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):  # seq_file: a read may return less than the whole file
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def read_eni_counters(netns_path: str, ifname: str = TASK_IFNAME) -> NetCounters:
    """One-shot read of the counters of `ifname` (eth1) in the namespace at `netns_path` (about 0.2 ms)."""
    return parse_net_dev(run_in_netns(netns_path, _read_net_dev), ifname)
