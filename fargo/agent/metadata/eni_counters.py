"""A task namespace's /proc/net/dev held open, so each round's eth1 counters are one pread (about 7 µs).

The fd is opened through a process of the task (`/proc/<pid>/net/dev`, checked to be in the namespace) or,
without one, by a helper thread that entered the namespace; either way it stays bound to that namespace. (A
thread per task was most of a first stats round's cost in a burst of starts.) It also keeps the namespace (and
the task's veth) alive, so it must be closed when the task stops.
"""
from __future__ import annotations

import os

from fargo.network.netns import run_in_netns

_READ_SIZE = 1 << 16
_SEQ_PAGE = 4096  # a seq_file read returns at most one page of records; read on past it if it was full


def _open_net_dev() -> int:
    # /proc/thread-self, not /proc/self: the latter is the thread-group leader's namespace, i.e. the host's.
    return os.open("/proc/thread-self/net/dev", os.O_RDONLY | os.O_CLOEXEC)


def _open_through(pid: int, netns_path: str) -> int | None:
    """/proc/<pid>/net/dev if that process is in the namespace at `netns_path` once the file is open (it binds
    to the process's namespace when opened: a pid reused meanwhile is caught by the check after)."""
    try:
        fd = os.open(f"/proc/{pid}/net/dev", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(netns_path).st_ino:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


class EniCountersFile:
    """/proc/net/dev as seen inside one task namespace."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def open(cls, netns_path: str, pid: int | None = None) -> EniCountersFile:
        """Raises OSError if there is no namespace at `netns_path`. `pid`: a process that may be in it."""
        if pid:
            fd = _open_through(pid, netns_path)
            if fd is not None:
                return cls(fd)
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
