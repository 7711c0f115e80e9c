"""What one sampling round keeps of a container and of a task's ENI: the raw bytes of the kernel files, with the
time they were read. Sampling only copies bytes; parsing waits until someone asks for /stats.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ContainerSample:
    """One container's cgroup v1 files as read in one round (None: the file is missing on this host)."""

    read_ns: int  # epoch nanoseconds (time.time_ns) when the round read the files
    proc_stat: bytes  # the head of /proc/stat of the same round: system_cpu_usage and online_cpus
    memory_usage: bytes | None  # memory.usage_in_bytes
    memory_max_usage: bytes | None  # memory.max_usage_in_bytes
    memory_limit: bytes | None  # memory.limit_in_bytes (read once: runc sets it before the container starts)
    memory_stat: bytes | None  # memory.stat
    cpu_percpu: bytes | None  # cpuacct.usage_percpu (ns per possible CPU; their sum is cpuacct.usage)
    cpu_user_system: bytes | None  # cpuacct.stat (user / system in clock ticks)
    cpu_throttling: bytes | None  # cpu.stat (nr_periods, nr_throttled, throttled_time)
    blkio_bytes: bytes | None  # blkio.throttle.io_service_bytes_recursive
    blkio_ios: bytes | None  # blkio.throttle.io_serviced_recursive


@dataclass(frozen=True, slots=True)
class NetworkSample:
    """The task namespace's /proc/net/dev as read in one round."""

    read_ns: int
    net_dev: bytes
