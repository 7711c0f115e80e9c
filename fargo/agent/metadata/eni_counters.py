"""A task namespace's /proc/net/dev held open, so each round's eth1 counters are one pread (about 7 µs).

The fd is opened by a helper thread that entered the namespace; it stays bound to that namespace after the
thread ends. It also keeps the namespace (and the task's veth) alive, so it must be closed when the task stops.
"""
from __future__ import annotations

import os

from fargo.network.netns import run_in_netns

_READ_SIZE = 1 << 16
_SEQ_PAGE = 4096  # a seq_file read returns at most one page of records; read on past it if it was full


def _open_net_dev() -> int:
    # /proc/thread-self, not /proc/self: the latter is the thread-group leader's namespace, i.e. the host's.
    return os.open("/proc/thread-self/net/dev", os.O_RDONLY | os.O_CLOEXEC)


class EniCountersFile:
    """/proc/net/dev as seen inside one task namespace."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def open(cls, netns_path: str) -> EniCountersFile:
        """Raises OSError if there is no namespace at `netns_path`."""
        return cls(run_in_netns(netns_path, _open_net_dev))

    def read(self) -> bytes:
        data = os.pread(self._fd, _READ_SIZE, 0)
        if len(data) < _SEQ_PAGE:
            return data
        chunks = [data]
        while chunk := os.pread(self._fd, _READ_SIZE, sum(len(c) for c in chunks)):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
