"""Docker stats JSON rendered from fixed samples, in the shape Fargate's task metadata endpoint serves."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from fargo.agent.metadata.docker_stats import ZERO_TIME, render_stats
from fargo.agent.metadata.timestamps import rfc3339_nano_ns as rfc3339_nano
from fargo.agent.metadata.stats import TaskStatsCollector
from fargo.agent.metadata.stats_schedule import StatsSchedule
from fargo.agent.metadata.stats_samples import ContainerSample, NetworkSample

TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
UNLIMITED = 9223372036854771712
PROC_STAT = b"cpu  100 0 50 1000 5 0 3 7 0 0\ncpu0 60 0 30 500 2 0 2 4 0 0\ncpu1 40 0 20 500 3 0 1 3 0 0"
MEMORY_STAT = (b"cache 651264\nrss 4669440\nrss_huge 0\nmapped_file 430080\ndirty 0\nwriteback 0\npgpgin 8436\n"
               b"pgpgout 7137\npgfault 11034\npgmajfault 5\ninactive_anon 0\nactive_anon 1675264\n"
               b"inactive_file 3088384\nactive_file 557056\nunevictable 0\nhierarchical_memory_limit 536870912\n"
               b"hierarchical_memsw_limit 9223372036854771712\ntotal_cache 651264\ntotal_rss 4669440\n")
BLKIO_BYTES = (b"254:0 Read 638976\n254:0 Write 0\n254:0 Sync 638976\n254:0 Async 0\n254:0 Discard 0\n"
               b"254:0 Total 638976\nTotal 638976\n")
BLKIO_IOS = b"254:0 Read 12\n254:0 Write 0\n254:0 Sync 12\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 12\nTotal 12\n"
NET_DEV = ("Inter-|   Receive                                                |  Transmit\n"
           " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls "
           "carrier compressed\n"
           "    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0"
           "       0          0\n"
           "  eth1: {rx} 1898631    0    0    0     0          0         0 {tx}  428002    0    0    0     0"
           "       0          0\n")
READ_1 = 1_602_192_274_938_633_969  # 2020-10-08T21:24:34.938633969Z
READ_2 = READ_1 + 10_000_303_050


def container_sample(read_ns: int, total_per_cpu: tuple[int, int], user_ticks: int = 81) -> ContainerSample:
    return ContainerSample(
        read_ns=read_ns, proc_stat=PROC_STAT,
        memory_usage=b"6504448\n", memory_max_usage=b"8458240\n", memory_limit=b"9223372036854771712\n",
        memory_stat=MEMORY_STAT,
        cpu_percpu=f"{total_per_cpu[0]} {total_per_cpu[1]} 0 0 \n".encode(),
        cpu_user_system=f"user {user_ticks}\nsystem 8\n".encode(),
        cpu_throttling=b"nr_periods 3\nnr_throttled 1\nthrottled_time 2500\nnr_bursts 0\nburst_time 0\n",
        blkio_bytes=BLKIO_BYTES, blkio_ios=BLKIO_IOS)


def network_sample(read_ns: int, rx: int, tx: int) -> NetworkSample:
    return NetworkSample(read_ns, NET_DEV.format(rx=rx, tx=tx).encode())


FIRST = container_sample(READ_1, (695639662, 440984939))
SECOND = container_sample(READ_2, (696479228, 441212276))
NET_1 = network_sample(READ_1, 2398000000, 1259000000)
NET_2 = network_sample(READ_2, 2398000433, 1259002154)


def test_stats_have_the_keys_of_fargates_example_in_go_order() -> None:
    stats = render_stats("curltest", "3d1f-464223573", SECOND, FIRST, NET_2, NET_1)
    assert list(stats) == ["read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats", "cpu_stats",
                           "precpu_stats", "memory_stats", "name", "id", "networks", "network_rate_stats"]
    assert (stats["pids_stats"], stats["num_procs"], stats["storage_stats"]) == ({}, 0, {})
    assert (stats["name"], stats["id"]) == ("curltest", "3d1f-464223573")
    assert list(stats["blkio_stats"]) == ["io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
                                          "io_service_time_recursive", "io_wait_time_recursive",
                                          "io_merged_recursive", "io_time_recursive", "sectors_recursive"]
    assert list(stats["cpu_stats"]) == ["cpu_usage", "system_cpu_usage", "online_cpus", "throttling_data"]
    assert list(stats["cpu_stats"]["cpu_usage"]) == ["total_usage", "percpu_usage", "usage_in_kernelmode",
                                                     "usage_in_usermode"]
    assert list(stats["memory_stats"]) == ["usage", "max_usage", "stats", "limit"]
    json.dumps(stats)  # plain JSON types only


def test_cpu_figures_come_from_cpuacct_and_proc_stat_in_nanoseconds() -> None:
    cpu = render_stats("app", "id", SECOND, FIRST, None, None)["cpu_stats"]
    assert cpu["cpu_usage"] == {"total_usage": 696479228 + 441212276, "percpu_usage": [696479228, 441212276, 0, 0],
                                "usage_in_kernelmode": 8 * TICK_NS, "usage_in_usermode": 81 * TICK_NS}
    assert cpu["system_cpu_usage"] == (100 + 50 + 1000 + 5 + 3) * TICK_NS  # steal (7) is not counted
    assert cpu["online_cpus"] == 2
    assert cpu["throttling_data"] == {"periods": 3, "throttled_periods": 1, "throttled_time": 2500}


def test_memory_stats_keep_cgroup_v1_keys_and_the_unlimited_limit() -> None:
    memory = render_stats("app", "id", SECOND, None, None, None)["memory_stats"]
    assert (memory["usage"], memory["max_usage"], memory["limit"]) == (6504448, 8458240, UNLIMITED)
    assert memory["stats"]["cache"] == 651264 and memory["stats"]["total_rss"] == 4669440
    assert memory["stats"]["hierarchical_memory_limit"] == 536870912


def test_blkio_ops_are_capitalised_per_device_and_the_other_lists_empty() -> None:
    blkio = render_stats("app", "id", SECOND, None, None, None)["blkio_stats"]
    assert blkio["io_service_bytes_recursive"][0] == {"major": 254, "minor": 0, "op": "Read", "value": 638976}
    assert [e["op"] for e in blkio["io_service_bytes_recursive"]] == ["Read", "Write", "Sync", "Async", "Discard",
                                                                      "Total"]
    assert blkio["io_serviced_recursive"][-1] == {"major": 254, "minor": 0, "op": "Total", "value": 12}
    assert all(blkio[key] == [] for key in ("io_queue_recursive", "io_service_time_recursive",
                                             "io_wait_time_recursive", "io_merged_recursive", "io_time_recursive",
                                             "sectors_recursive"))


def test_blkio_lists_are_empty_where_the_kernel_has_no_device() -> None:
    quiet = dataclasses.replace(container_sample(READ_1, (1, 2)), blkio_bytes=b"Total 0\n", blkio_ios=None)
    blkio = render_stats("app", "id", quiet, None, None, None)["blkio_stats"]
    assert blkio["io_service_bytes_recursive"] == [] and blkio["io_serviced_recursive"] == []


def test_before_a_second_sample_preread_is_go_zero_time_and_precpu_is_zero() -> None:
    stats = render_stats("app", "id", FIRST, None, NET_1, None)
    assert stats["read"] == "2020-10-08T21:24:34.938633969Z"
    assert stats["preread"] == ZERO_TIME == "0001-01-01T00:00:00Z"
    assert stats["precpu_stats"] == {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    assert "network_rate_stats" not in stats
    assert stats["networks"]["eth1"]["rx_bytes"] == 2398000000


def test_after_a_second_sample_preread_and_precpu_are_the_previous_round() -> None:
    stats = render_stats("app", "id", SECOND, FIRST, NET_2, NET_1)
    assert stats["read"] == "2020-10-08T21:24:44.938937019Z"
    assert stats["preread"] == "2020-10-08T21:24:34.938633969Z"
    assert stats["precpu_stats"]["cpu_usage"]["percpu_usage"] == [695639662, 440984939, 0, 0]
    assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > stats["precpu_stats"]["cpu_usage"]["total_usage"]


def test_network_rate_is_byte_delta_over_the_time_between_samples() -> None:
    stats = render_stats("app", "id", SECOND, FIRST, NET_2, NET_1)
    assert stats["networks"] == {"eth1": {
        "rx_bytes": 2398000433, "rx_packets": 1898631, "rx_errors": 0, "rx_dropped": 0,
        "tx_bytes": 1259002154, "tx_packets": 428002, "tx_errors": 0, "tx_dropped": 0}}
    seconds = (READ_2 - READ_1) / 1e9
    rate = stats["network_rate_stats"]
    assert rate["rx_bytes_per_sec"] == pytest.approx(433 / seconds)
    assert rate["tx_bytes_per_sec"] == pytest.approx(2154 / seconds)
    assert isinstance(rate["rx_bytes_per_sec"], float)


def test_v3_has_networks_but_no_network_rate_stats() -> None:
    stats = render_stats("app", "id", SECOND, FIRST, NET_2, NET_1, version=3)
    assert "networks" in stats and "network_rate_stats" not in stats


def test_platform_1_3_0_has_no_networks() -> None:
    stats = render_stats("app", "id", SECOND, FIRST, None, None)
    assert "networks" not in stats and "network_rate_stats" not in stats


def test_a_namespace_without_eth1_gives_no_networks() -> None:
    bare = NetworkSample(READ_1, NET_DEV.split("  eth1")[0].encode())
    assert "networks" not in render_stats("app", "id", FIRST, None, bare, None)


@pytest.mark.parametrize(("epoch_ns", "text"), [
    (READ_1, "2020-10-08T21:24:34.938633969Z"),
    (1_602_192_274_500_000_000, "2020-10-08T21:24:34.5Z"),
    (1_602_192_274_000_000_000, "2020-10-08T21:24:34Z"),
])
def test_timestamps_are_go_rfc3339_nano(epoch_ns: int, text: str) -> None:
    assert rfc3339_nano(epoch_ns) == text


def fake_cgroup(root: Path, cgroup: str, total_ns: int) -> None:
    """The stat files of a v1 container cgroup, as plain files under per-controller directories."""
    files = {"memory": {"memory.usage_in_bytes": "4096", "memory.max_usage_in_bytes": "8192",
                        "memory.limit_in_bytes": "536870912", "memory.stat": "cache 0\nrss 4096\n"},
             "cpuacct": {"cpuacct.usage_percpu": f"{total_ns} 0 ", "cpuacct.stat": "user 1\nsystem 0\n"},
             "cpu": {"cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"},
             "blkio": {"blkio.throttle.io_service_bytes_recursive": "Total 0\n",
                       "blkio.throttle.io_serviced_recursive": "Total 0\n"}}
    for controller, contents in files.items():
        directory = root / controller / cgroup.strip("/")
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in contents.items():
            (directory / name).write_text(text)


def test_collector_holds_the_last_two_rounds_and_keeps_an_unlisted_containers_last_sample(tmp_path: Path) -> None:
    mounts = {c: tmp_path / c for c in ("memory", "cpuacct", "cpu", "blkio")}
    listed = {"c1": "app", "c2": "sidecar"}
    collector = TaskStatsCollector("t1", str(tmp_path / "no-netns"), lambda: listed, network_stats=False,
                                   cgroup_parent="/fargo/t1", mounts=mounts)
    try:
        assert collector.stats("c1") is None
        fake_cgroup(tmp_path, "/fargo/t1/c1", 1000)
        collector.sample_now()
        first = collector.stats("c1")
        assert first is not None and first["preread"] == ZERO_TIME and first["name"] == "app"
        assert collector.stats("c2") is None  # its cgroup does not exist yet
        (tmp_path / "cpuacct/fargo/t1/c1/cpuacct.usage_percpu").write_text("5000 0 ")
        collector.sample_now()
        second = collector.stats("c1")
        assert second is not None and second["preread"] == first["read"]
        assert (second["precpu_stats"]["cpu_usage"]["total_usage"], second["cpu_stats"]["cpu_usage"]["total_usage"]) \
            == (1000, 5000)
        assert second["memory_stats"]["limit"] == 536870912 and "networks" not in second
        del listed["c1"]
        collector.sample_now()
        assert collector.stats("c1") == second
    finally:
        collector.close()


class _FakeCollector:
    """A collector as the schedule sees it: rounds on multiples of `interval`, each one recorded."""

    def __init__(self, task_id: str, interval: float, fail: bool = False) -> None:
        self.task_id, self.interval, self.fail = task_id, interval, fail
        self.rounds: list[tuple[int, bytes]] = []  # (thread, the /proc/stat it was given)

    def next_round_at(self, now: float) -> float:
        return (math.floor(now / self.interval) + 1) * self.interval

    def round_work(self) -> Callable[[bytes], None]:
        def work(proc_stat: bytes) -> None:
            self.rounds.append((threading.get_ident(), proc_stat))
            if self.fail:
                raise OSError("cgroup file unreadable")
        return work


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)


def test_collectors_due_together_share_one_thread_and_one_read_of_proc_stat_and_keep_their_own_errors(
        caplog: pytest.LogCaptureFixture) -> None:
    collectors = [_FakeCollector("t1", 30), _FakeCollector("t2", 30, fail=True), _FakeCollector("t3", 30)]

    async def first_rounds() -> None:
        schedule = StatsSchedule(asyncio.get_running_loop())
        for collector in collectors:
            schedule.add(collector)
        # (waits for the first round instead of a fixed time: a loaded host may take long to start its thread)
        await _until(lambda: sum(len(c.rounds) for c in collectors) >= 3)
        await asyncio.sleep(0.02)  # time for a round too many, if the schedule took one
        for collector in collectors:
            schedule.remove(collector)

    asyncio.run(first_rounds())
    rounds = [r for c in collectors for r in c.rounds]
    assert len(rounds) == 3 and len({thread for thread, _ in rounds}) == 1
    assert rounds[0][0] != threading.get_ident() and rounds[0][1].startswith(b"cpu ")
    assert len({id(proc_stat) for _, proc_stat in rounds}) == 1
    assert [r.message for r in caplog.records] == ["stats round of task t2 failed"]


def test_a_watched_collector_is_sampled_on_its_short_interval_and_an_idle_one_waits_until_brought_forward() -> None:
    fast, idle = _FakeCollector("fast", 0.02), _FakeCollector("idle", 3600)

    async def a_while() -> tuple[int, int, float, int, int]:
        loop = asyncio.get_running_loop()
        schedule = StatsSchedule(loop)
        started = loop.time()
        schedule.add(fast)
        schedule.add(idle)
        await asyncio.sleep(0.3)
        counts = len(fast.rounds), len(idle.rounds), loop.time() - started
        schedule.remove(fast)
        schedule.bring_forward(idle, loop.time())  # a first read of its /stats
        await _until(lambda: len(idle.rounds) >= 2)
        brought = len(idle.rounds)
        schedule.remove(idle)
        await _until(lambda: schedule._runner is not None and schedule._runner.done())
        assert schedule._runner is not None and schedule._runner.done()  # nothing left: the schedule's task ended
        return (*counts, brought, len(schedule))

    fast_rounds, idle_rounds, elapsed, idle_after, left = asyncio.run(a_while())
    # one round on adding, then at most one per 20 ms boundary passed (a loaded host may run fewer)
    assert 3 <= fast_rounds <= elapsed / 0.02 + 2 and idle_rounds == 1
    assert idle_after == 2 and left == 0
