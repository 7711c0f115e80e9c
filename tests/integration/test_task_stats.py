"""A task's stats collector against real cgroup v1 hierarchies and a real network namespace.

The test makes its own cgroups under /sys/fs/cgroup/<h>/fargo-test-<rand>/ and two namespaces joined by a veth
(eth1 on the task side), and removes them all at the end, even on failure.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fargo.agent.metadata import cgroup_stats
from fargo.agent.metadata.stats import TaskStatsCollector
from fargo.agent.task_cgroup import controller_mounts
from fargo.network.netns import socket_in_netns
from fargo.network.names import netns_path

_CONTROLLERS = ("memory", "cpu", "cpuacct", "blkio")
_BUSY_CHILD = """
import sys, time
sys.stdin.readline()                      # wait until the test has moved us into the container cgroup
block = bytearray(64 << 20)
block[::4096] = b"x" * (len(block) // 4096)   # touch every page so it is charged
end = time.monotonic() + 0.3
while time.monotonic() < end:
    pass
print("done", flush=True)
sys.stdin.readline()
"""


@dataclass
class SandboxCgroups:
    parent: str  # e.g. /fargo-test-1a2b3c/task1, the task's cgroup
    mounts: dict[str, Path]

    def make(self, container_id: str) -> None:
        for controller in _CONTROLLERS:
            (self.mounts[controller] / self.parent.strip("/") / container_id).mkdir(parents=True)

    def enter(self, container_id: str, pid: int) -> None:
        for controller in _CONTROLLERS:
            (self.mounts[controller] / self.parent.strip("/") / container_id / "cgroup.procs").write_text(str(pid))

    def remove(self, container_id: str) -> None:
        for controller in _CONTROLLERS:
            (self.mounts[controller] / self.parent.strip("/") / container_id).rmdir()


@pytest.fixture
def cgroups() -> Iterator[SandboxCgroups]:
    mounts = controller_mounts()
    missing = [c for c in _CONTROLLERS if c not in mounts]
    # Fargate's stats are cgroup v1's, and so are Fargo's task cgroups: a host without them cannot run tasks.
    assert not missing, f"this host lacks the cgroup v1 hierarchies {missing}"
    top = f"fargo-test-{secrets.token_hex(4)}"
    yield SandboxCgroups(f"/{top}/task1", {c: mounts[c] for c in _CONTROLLERS})
    for controller in _CONTROLLERS:
        root = mounts[controller] / top
        for dirpath, _dirs, _files in os.walk(root, topdown=False):  # cgroups go with rmdir, deepest first
            os.rmdir(dirpath)


@dataclass(frozen=True)
class TaskNetns:
    path: str  # the task's namespace, holding eth1
    peer_path: str  # the namespace at the veth's other end


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def task_netns() -> Iterator[TaskNetns]:
    tag = secrets.token_hex(4)
    task, peer = f"fargo-stats-test-{tag}-t", f"fargo-stats-test-{tag}-p"
    made: list[str] = []
    try:
        for name in (task, peer):
            _ip("netns", "add", name)
            made.append(name)
        _ip("-n", task, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", peer)
        for name, address in ((task, "192.0.2.1/30"), (peer, "192.0.2.2/30")):
            _ip("-n", name, "addr", "add", address, "dev", "eth1")
            _ip("-n", name, "link", "set", "eth1", "up")
        yield TaskNetns(netns_path(task), netns_path(peer))
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _send_udp(net: TaskNetns, datagrams: int, size: int) -> None:
    receiver = socket_in_netns(net.peer_path, socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket_in_netns(net.path, socket.AF_INET, socket.SOCK_DGRAM)
    with receiver, sender:
        receiver.bind(("192.0.2.2", 0))
        receiver.settimeout(2)
        for _ in range(datagrams):
            sender.sendto(b"x" * size, receiver.getsockname())
            receiver.recv(size)
        receiver.sendto(b"y" * size, ("192.0.2.1", sender.getsockname()[1]))  # one back, so eth1 also receives
        sender.settimeout(2)
        sender.recv(size)


def test_collector_sees_cpu_memory_and_eth1_traffic_grow_in_real_cgroups_and_netns(
        cgroups: SandboxCgroups, task_netns: TaskNetns) -> None:
    cgroups.make("c1")
    collector = TaskStatsCollector("task1", task_netns.path, lambda: {"c1": "app"}, cgroup_parent=cgroups.parent,
                                   mounts=cgroups.mounts)
    child = subprocess.Popen([sys.executable, "-c", _BUSY_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        collector.sample_now()
        before = collector.stats("c1")
        assert before is not None and before["preread"] == "0001-01-01T00:00:00Z"
        assert "network_rate_stats" not in before

        cgroups.enter("c1", child.pid)
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        _send_udp(task_netns, datagrams=50, size=1000)
        assert child.stdout.readline().strip() == "done"
        collector.sample_now()
        after = collector.stats("c1")
        assert after is not None

        assert after["preread"] == before["read"] and after["name"] == "app" and after["id"] == "c1"
        grown = after["cpu_stats"]["cpu_usage"]["total_usage"] - before["cpu_stats"]["cpu_usage"]["total_usage"]
        assert grown >= 200_000_000  # the child spun for 0.3 s
        assert after["precpu_stats"] == before["cpu_stats"]
        assert after["cpu_stats"]["system_cpu_usage"] > before["cpu_stats"]["system_cpu_usage"]
        assert after["memory_stats"]["usage"] - before["memory_stats"].get("usage", 0) >= 60 << 20
        assert after["memory_stats"]["stats"]["rss"] >= 60 << 20
        sent = after["networks"]["eth1"]["tx_bytes"] - before["networks"]["eth1"]["tx_bytes"]
        received = after["networks"]["eth1"]["rx_bytes"] - before["networks"]["eth1"]["rx_bytes"]
        assert sent >= 50 * 1000 and received >= 1000
        assert after["networks"]["eth1"]["tx_packets"] - before["networks"]["eth1"]["tx_packets"] >= 50
        assert after["network_rate_stats"]["tx_bytes_per_sec"] > 0

        # the container exits and its cgroup is removed: the last sample stays
        child.stdin.close()
        child.wait(5)
        cgroups.remove("c1")
        collector.sample_now()
        last = collector.stats("c1")
        assert last is not None and last["read"] == after["read"] and last["preread"] == after["preread"]
        assert (last["cpu_stats"], last["memory_stats"]) == (after["cpu_stats"], after["memory_stats"])
    finally:
        collector.close()
        if child.poll() is None:
            child.kill()
            child.wait()


def test_platform_1_3_0_collector_reads_no_namespace(cgroups: SandboxCgroups) -> None:
    cgroups.make("c1")
    collector = TaskStatsCollector("task1", "/run/netns/absent", lambda: {"c1": "app"}, network_stats=False,
                                   cgroup_parent=cgroups.parent, mounts=cgroups.mounts)
    try:
        collector.sample_now()
        stats = collector.stats("c1")
        assert stats is not None and "networks" not in stats
    finally:
        collector.close()
    cgroups.remove("c1")


def test_run_samples_on_its_interval_until_cancelled_and_then_lets_go_of_the_namespace(
        cgroups: SandboxCgroups, task_netns: TaskNetns) -> None:
    cgroups.make("c1")
    collector = TaskStatsCollector("task1", task_netns.path, lambda: {"c1": "app"}, interval=0.05,
                                   idle_interval=0.05, cgroup_parent=cgroups.parent, mounts=cgroups.mounts)

    async def run_a_while() -> None:
        async with asyncio.TaskGroup() as group:
            running = group.create_task(collector.run())
            await asyncio.sleep(0.3)
            running.cancel()

    asyncio.run(run_a_while())
    stats = collector.stats("c1")
    assert stats is not None and "network_rate_stats" in stats
    assert 0.03 < _seconds_between(stats["preread"], stats["read"]) < 0.2
    held_before = cgroup_stats.FD_BUDGET._held
    collector.sample_now()  # closed: a late round reads nothing
    assert collector.stats("c1") == stats and cgroup_stats.FD_BUDGET._held == held_before
    cgroups.remove("c1")


def _seconds_between(earlier: str, later: str) -> float:
    def epoch(text: str) -> float:
        whole, _, fraction = text.rstrip("Z").partition(".")
        return time.mktime(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")
    return epoch(later) - epoch(earlier)


@pytest.mark.parametrize("containers", [1, 20])
@pytest.mark.parametrize("held_fds", [True, False], ids=["pread", "open-per-read"])
def test_one_round_costs_well_under_a_millisecond_per_container(
        cgroups: SandboxCgroups, task_netns: TaskNetns, containers: int, held_fds: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if not held_fds:
        monkeypatch.setattr(cgroup_stats.FD_BUDGET, "limit", 0)
    ids = {f"c{i}": f"app{i}" for i in range(containers)}
    for container_id in ids:
        cgroups.make(container_id)
    collector = TaskStatsCollector("task1", task_netns.path, lambda: ids, cgroup_parent=cgroups.parent,
                                   mounts=cgroups.mounts)
    try:
        collector.sample_now()  # opens the files
        rounds = 200
        started = time.perf_counter()
        for _ in range(rounds):
            collector.sample_now()
        per_round = (time.perf_counter() - started) / rounds
        started = time.perf_counter()
        for container_id in ids:
            collector.stats(container_id)
        per_render = (time.perf_counter() - started) / containers
    finally:
        collector.close()
    print(f"\n{containers} container(s), {'pread' if held_fds else 'open/read/close'}: "
          f"{per_round * 1e6:.0f} µs per round, {per_render * 1e6:.0f} µs per stats() render")
    assert per_round < 0.0005 * containers + 0.0005
    for container_id in ids:
        cgroups.remove(container_id)


def test_the_namespace_counters_are_opened_through_a_process_in_it_and_only_in_it(
        task_netns: TaskNetns, monkeypatch: pytest.MonkeyPatch) -> None:
    from fargo.agent.metadata import eni_counters
    from fargo.agent.metadata.eni_counters import EniCountersFile
    entered: list[str] = []
    real = eni_counters.run_in_netns
    monkeypatch.setattr(eni_counters, "run_in_netns", lambda path, work: entered.append(path) or real(path, work))
    inside = subprocess.Popen(["ip", "netns", "exec", task_netns.path.rsplit("/", 1)[-1], "sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while os.stat(f"/proc/{inside.pid}/ns/net").st_ino != os.stat(task_netns.path).st_ino:
            assert time.monotonic() < deadline, "the helper never entered the namespace"
            time.sleep(0.01)
        for pid in (inside.pid, os.getpid()):  # a process in the namespace; one outside it (the thread is used)
            counters = EniCountersFile.open(task_netns.path, pid)
            try:
                assert b"eth1:" in counters.read(), pid  # the task namespace's interfaces, not the host's
            finally:
                counters.close()
        assert entered == [task_netns.path]  # a thread entered the namespace only for the process outside it
    finally:
        inside.kill()
        inside.wait()
