"""Docker's stats JSON (types.StatsJSON, cgroup v1 shape) as Fargate's /stats serves it, rendered from held samples.

Keys come in the Go marshaller's order, and Go's `omitempty` is kept where Docker has it (percpu_usage,
system_cpu_usage, online_cpus, the memory figures), so precpu_stats before a second sample looks as Docker's does.
"""
from __future__ import annotations

import os
from typing import Any

from fargo.agent.metadata.stats_samples import ContainerSample, NetworkSample
from fargo.agent.metadata.timestamps import rfc3339_nano_ns
from fargo.network.counters import InterfaceNotFoundError, parse_net_dev
from fargo.network.task_eni import TASK_IFNAME

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: preread before a second sample
_NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
_BLKIO_LISTS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
                "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
                "io_time_recursive", "sectors_recursive")


def render_stats(name: str, docker_id: str, current: ContainerSample, previous: ContainerSample | None,
                 network: NetworkSample | None, network_before: NetworkSample | None,
                 version: int = 4) -> dict[str, Any]:
    """One container's stats. `network` is None on platform 1.3.0 (no `networks`); the rate needs both samples
    and is a v4 addition."""
    out: dict[str, Any] = {
        "read": rfc3339_nano_ns(current.read_ns),
        "preread": rfc3339_nano_ns(previous.read_ns) if previous is not None else ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": _blkio_stats(current),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu_stats(current),
        "precpu_stats": _cpu_stats(previous),
        "memory_stats": _memory_stats(current),
        "name": name,
        "id": docker_id,
    }
    if network is not None:
        counters = _eth1(network)
        if counters is not None:
            out["networks"] = {TASK_IFNAME: counters}
            before = _eth1(network_before) if network_before is not None else None
            if version >= 4 and before is not None and network_before is not None:
                seconds = (network.read_ns - network_before.read_ns) / 1e9
                if seconds > 0:
                    out["network_rate_stats"] = {
                        "rx_bytes_per_sec": (counters["rx_bytes"] - before["rx_bytes"]) / seconds,
                        "tx_bytes_per_sec": (counters["tx_bytes"] - before["tx_bytes"]) / seconds,
                    }
    return out


def _numbers(raw: bytes | None) -> list[int]:
    return [int(word) for word in raw.split()] if raw else []


def _number(raw: bytes | None) -> int:
    values = _numbers(raw)
    return values[0] if values else 0


def _key_values(raw: bytes | None) -> dict[str, int]:
    pairs: dict[str, int] = {}
    for line in (raw or b"").splitlines():
        key, _, value = line.partition(b" ")
        if value:
            pairs[key.decode()] = int(value)
    return pairs


def _blkio_entries(raw: bytes | None) -> list[dict[str, Any]]:
    entries = []
    for line in (raw or b"").splitlines():
        parts = line.split()
        if len(parts) != 3:  # the closing "Total N" line has no device
            continue
        major, _, minor = parts[0].partition(b":")
        entries.append({"major": int(major), "minor": int(minor), "op": parts[1].decode(), "value": int(parts[2])})
    return entries


def _blkio_stats(sample: ContainerSample) -> dict[str, list[dict[str, Any]]]:
    # Only the throttle files are kept by this kernel's v1 blkio; the queue/time lists stay empty, as on Fargate.
    stats: dict[str, list[dict[str, Any]]] = {key: [] for key in _BLKIO_LISTS}
    stats["io_service_bytes_recursive"] = _blkio_entries(sample.blkio_bytes)
    stats["io_serviced_recursive"] = _blkio_entries(sample.blkio_ios)
    return stats


def _host_cpu(proc_stat: bytes) -> tuple[int, int]:
    """(system_cpu_usage in ns, online CPUs) the way Docker derives them from /proc/stat."""
    system_ns = 0
    online = 0
    for line in proc_stat.splitlines():
        if line.startswith(b"cpu "):
            # user nice system idle iowait irq softirq; steal and guest are left out, as Docker does
            system_ns = sum(int(v) for v in line.split()[1:8]) * _NS_PER_TICK
        elif line.startswith(b"cpu"):
            online += 1
    return system_ns, online


def _cpu_stats(sample: ContainerSample | None) -> dict[str, Any]:
    percpu = _numbers(sample.cpu_percpu) if sample is not None else []
    ticks = _key_values(sample.cpu_user_system) if sample is not None else {}
    usage: dict[str, Any] = {"total_usage": sum(percpu)}
    if percpu:
        usage["percpu_usage"] = percpu
    usage["usage_in_kernelmode"] = ticks.get("system", 0) * _NS_PER_TICK
    usage["usage_in_usermode"] = ticks.get("user", 0) * _NS_PER_TICK
    stats: dict[str, Any] = {"cpu_usage": usage}
    system_ns, online = _host_cpu(sample.proc_stat) if sample is not None else (0, 0)
    if system_ns:
        stats["system_cpu_usage"] = system_ns
    if online:
        stats["online_cpus"] = online
    throttling = _key_values(sample.cpu_throttling) if sample is not None else {}
    stats["throttling_data"] = {
        "periods": throttling.get("nr_periods", 0),
        "throttled_periods": throttling.get("nr_throttled", 0),
        "throttled_time": throttling.get("throttled_time", 0),
    }
    return stats


def _memory_stats(sample: ContainerSample) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "usage": _number(sample.memory_usage),
        "max_usage": _number(sample.memory_max_usage),
        "stats": _key_values(sample.memory_stat),
        "limit": _number(sample.memory_limit),
    }
    return {key: value for key, value in figures.items() if value}


def _eth1(sample: NetworkSample) -> dict[str, int] | None:
    try:
        counters = parse_net_dev(sample.net_dev.decode(), TASK_IFNAME)
    except InterfaceNotFoundError:
        return None
    return {
        "rx_bytes": counters.rx_bytes, "rx_packets": counters.rx_packets,
        "rx_errors": counters.rx_errors, "rx_dropped": counters.rx_dropped,
        "tx_bytes": counters.tx_bytes, "tx_packets": counters.tx_packets,
        "tx_errors": counters.tx_errors, "tx_dropped": counters.tx_dropped,
    }
