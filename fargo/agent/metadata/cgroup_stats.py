"""Reading a container's cgroup v1 stat files, and the host's /proc/stat, cheaply every second.

Each file is opened once and re-read with pread (about 1-10 µs, against about 9-17 µs for open/read/close). Open
files count against the process's fd limit (hard 20000 here), so past a process-wide budget a container's files
are opened for each read instead: slower, never failing.
"""
from __future__ import annotations

import errno
import os
import resource
import threading
from collections.abc import Mapping
from pathlib import Path

from fargo.agent.metadata.stats_samples import ContainerSample

# (controller, file) in ContainerSample's field order, after memory_limit which is read once.
_SAMPLED_FILES: tuple[tuple[str, str], ...] = (
    ("memory", "memory.usage_in_bytes"),
    ("memory", "memory.max_usage_in_bytes"),
    ("memory", "memory.stat"),
    ("cpuacct", "cpuacct.usage_percpu"),
    ("cpuacct", "cpuacct.stat"),
    ("cpu", "cpu.stat"),
    ("blkio", "blkio.throttle.io_service_bytes_recursive"),
    ("blkio", "blkio.throttle.io_serviced_recursive"),
)
_LIMIT_FILE = ("memory", "memory.limit_in_bytes")
_READ_SIZE = 1 << 16
# The kernel answers ENODEV on an open file of a removed cgroup, ENOENT when opening one.
_GONE = (errno.ENODEV, errno.ENOENT)


class CgroupGone(Exception):
    """The container's cgroup was removed (the container exited and its task was deleted)."""


class _FdBudget:
    """How many cgroup files all collectors of this process may hold open: half the soft fd limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()

    def take(self, count: int) -> bool:
        with self._lock:
            if self._held + count > self.limit:
                return False
            self._held += count
            return True

    def give_back(self, count: int) -> None:
        with self._lock:
            self._held -= count


FD_BUDGET = _FdBudget(resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 2)


def _read_fd(fd: int) -> bytes:
    return os.pread(fd, _READ_SIZE, 0)


def _read_path(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, _READ_SIZE)
    finally:
        os.close(fd)


class ContainerCgroupFiles:
    """The stat files of one container cgroup (`/fargo/<task id>/<docker id>`), held open while it lives."""

    def __init__(self, paths: list[str | None], limit: bytes | None, fds: list[int | None] | None) -> None:
        self._paths = paths  # None: that controller or file is not on this host
        self._limit = limit
        self._fds = fds  # None: over the fd budget, open each file per read

    @classmethod
    def open(cls, cgroup_path: str, mounts: Mapping[str, Path]) -> ContainerCgroupFiles | None:
        """The container's files, or None while its cgroup does not exist (yet, or any more)."""
        rel = cgroup_path.strip("/")
        memory = mounts.get("memory")
        if memory is None or not (memory / rel).is_dir():
            return None
        paths: list[str | None] = []
        for controller, name in _SAMPLED_FILES:
            base = mounts.get(controller)
            path = str(base / rel / name) if base is not None else None
            paths.append(path if path is not None and os.path.exists(path) else None)
        try:
            limit: bytes | None = _read_path(str(memory / rel / _LIMIT_FILE[1]))
        except OSError as error:
            if error.errno in _GONE:
                return None
            limit = None
        wanted = sum(path is not None for path in paths)
        if not FD_BUDGET.take(wanted):
            return cls(paths, limit, None)
        fds: list[int | None] = []
        try:
            for path in paths:
                fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC) if path is not None else None)
        except OSError as error:
            for fd in fds:
                if fd is not None:
                    os.close(fd)
            FD_BUDGET.give_back(wanted)
            if error.errno in _GONE:
                return None
            raise
        return cls(paths, limit, fds)

    @property
    def holds_fds(self) -> bool:
        return self._fds is not None

    def read(self, read_ns: int, proc_stat: bytes) -> ContainerSample:
        """One sample of every file; raises CgroupGone once the cgroup has been removed."""
        values: list[bytes | None] = []
        try:
            if self._fds is not None:
                values = [_read_fd(fd) if fd is not None else None for fd in self._fds]
            else:
                values = [_read_path(path) if path is not None else None for path in self._paths]
        except OSError as error:
            if error.errno in _GONE:
                raise CgroupGone() from error
            raise
        usage, max_usage, stat, percpu, user_system, throttling, blkio_bytes, blkio_ios = values
        return ContainerSample(read_ns, proc_stat, usage, max_usage, self._limit, stat, percpu, user_system,
                               throttling, blkio_bytes, blkio_ios)

    def close(self) -> None:
        if self._fds is None:
            return
        held = [fd for fd in self._fds if fd is not None]
        self._fds = None
        for fd in held:
            os.close(fd)
        FD_BUDGET.give_back(len(held))


class HostCpuFile:
    """/proc/stat held open: its `cpu` lines give Docker's system_cpu_usage and online_cpus."""

    def __init__(self) -> None:
        self._fd = os.open("/proc/stat", os.O_RDONLY | os.O_CLOEXEC)

    def read(self) -> bytes:
        data = os.pread(self._fd, _READ_SIZE, 0)
        # only the cpu lines are used; the interrupt counts after them are the bulk of the file
        end = data.find(b"\nintr")
        return data[:end] if end >= 0 else data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
