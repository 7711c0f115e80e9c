"""One stats collector per task: it samples the containers' cgroups and the ENI's counters every second, and
/stats renders the last two samples it holds, so a request never reads the kernel.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fargo.agent.metadata.cgroup_stats import CgroupGone, ContainerCgroupFiles, HostCpuFile
from fargo.agent.metadata.docker_stats import render_stats
from fargo.agent.metadata.eni_counters import EniCountersFile
from fargo.agent.metadata.stats_schedule import StatsSchedule, schedule_of
from fargo.agent.metadata.stats_samples import ContainerSample, NetworkSample
from fargo.agent.task_cgroup import controller_mounts, task_cgroup_path

log = logging.getLogger(__name__)


# A task nobody asks about is sampled every IDLE_INTERVAL_S (its counters stay current for Container
# Insights-style readers); once /stats is read it is sampled every `interval` for WATCHED_FOR_S. 500 idle
# tasks sampled every second would cost about 11 % of a core; every 30 s, under 0.4 %.
IDLE_INTERVAL_S = 30.0
WATCHED_FOR_S = 60.0


class TaskStatsCollector:
    """Samples a task's containers' cgroups and its ENI's counters on a schedule; /stats reads the last two samples."""

    def __init__(self, task_id: str, netns_path: str, containers: Callable[[], Mapping[str, str]],
                 interval: float = 1.0, network_stats: bool = True, *, idle_interval: float = IDLE_INTERVAL_S,
                 cgroup_parent: str | None = None, mounts: Mapping[str, Path] | None = None,
                 pids: Callable[[], list[int]] | None = None) -> None:
        """`containers` gives docker id -> container name, asked at each round (on the event loop under `run`).
        `network_stats` is False on platform 1.3.0. `cgroup_parent` overrides `/fargo/<task id>` (tests).
        `pids` gives processes that may be in the task's namespace (its containers' init processes): the
        namespace's counters are opened through one of them."""
        self.task_id = task_id
        self.interval = interval
        self.idle_interval = idle_interval
        self._asked_at: float | None = None  # loop time of the last stats() call
        self._schedule: StatsSchedule | None = None  # while run() runs
        self._netns_path = netns_path
        self._pids = pids
        self._containers = containers
        self._network_stats = network_stats
        self._cgroup_parent = cgroup_parent or task_cgroup_path(task_id)
        self._mounts = mounts if mounts is not None else controller_mounts()
        self._files: dict[str, ContainerCgroupFiles] = {}
        self._names: dict[str, str] = {}
        # docker id -> (latest, the one before); each value is replaced whole, so stats() needs no lock
        self._samples: dict[str, tuple[ContainerSample, ContainerSample | None]] = {}
        self._network: tuple[NetworkSample, NetworkSample | None] | None = None
        self._eni: EniCountersFile | None = None
        self._host_cpu: HostCpuFile | None = None
        self._round_lock = threading.Lock()  # a round and close() never overlap: close must not free fds mid-read
        self._closed = False

    async def run(self) -> None:
        """Sample now and then on the schedule until cancelled; the held files are closed on the way out.

        Rounds fall on multiples of `interval` (or of `idle_interval` while nobody reads /stats) of the loop's
        clock, so the rounds of all tasks come due together: the loop's one schedule runs them together."""
        loop = asyncio.get_running_loop()
        self._schedule = schedule_of(loop)
        self._schedule.add(self)
        try:
            await loop.create_future()  # the schedule samples; this only holds the collector's place
        finally:
            self._schedule.remove(self)
            self._schedule = None
            self.close()

    def next_round_at(self, now: float) -> float:
        interval = self.interval if self._watched(now) else max(self.interval, self.idle_interval)
        return (math.floor(now / interval) + 1) * interval

    def round_work(self) -> Callable[[bytes], None]:
        containers = dict(self._containers())  # asked on the event loop, where the runner changes it
        return lambda proc_stat: self._sample(containers, proc_stat)

    def sample_now(self) -> None:
        """One synchronous round (tests, or a first sample before `run`)."""
        with self._round_lock:
            if self._closed:
                return
            if self._host_cpu is None:
                self._host_cpu = HostCpuFile()
            proc_stat = self._host_cpu.read()
        self._sample(dict(self._containers()), proc_stat)

    def _watched(self, now: float) -> bool:
        return self._asked_at is not None and now - self._asked_at < WATCHED_FOR_S

    def stats(self, docker_id: str, version: int = 4) -> dict[str, Any] | None:
        """Docker stats JSON of one container from the held samples; None before its first sample. Asking
        raises the sampling to every `interval` for a while; it never reads anything itself."""
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:  # no loop (a synchronous caller): the schedule is left as it is
            now = None
        if now is not None:
            if not self._watched(now) and self._schedule is not None:
                # a first read cuts an idle wait short: the next round is a fast one
                self._schedule.bring_forward(self, (math.floor(now / self.interval) + 1) * self.interval)
            self._asked_at = now
        held = self._samples.get(docker_id)
        if held is None:
            return None
        current, previous = held
        network, network_before = self._network if self._network is not None else (None, None)
        return render_stats(self._names.get(docker_id, ""), docker_id, current, previous,
                            network if self._network_stats else None, network_before, version)

    def close(self) -> None:
        """Close every held fd (the ENI's keeps the task namespace alive); later rounds do nothing."""
        with self._round_lock:
            self._closed = True
            for files in self._files.values():
                files.close()
            self._files.clear()
            if self._eni is not None:
                self._eni.close()
                self._eni = None
            if self._host_cpu is not None:
                self._host_cpu.close()
                self._host_cpu = None

    def _sample(self, containers: dict[str, str], proc_stat: bytes) -> None:
        with self._round_lock:
            if self._closed:
                return
            read_ns = time.time_ns()
            for docker_id, name in containers.items():
                self._names[docker_id] = name
                sample = self._sample_container(docker_id, read_ns, proc_stat)
                if sample is not None:
                    held = self._samples.get(docker_id)
                    self._samples[docker_id] = (sample, held[0] if held is not None else None)
            for docker_id in [d for d in self._files if d not in containers]:
                self._files.pop(docker_id).close()  # no longer listed: free its fds, keep its last sample
            if self._network_stats:
                self._sample_network()

    def _sample_container(self, docker_id: str, read_ns: int, proc_stat: bytes) -> ContainerSample | None:
        files = self._files.get(docker_id)
        if files is None:
            files = ContainerCgroupFiles.open(f"{self._cgroup_parent}/{docker_id}", self._mounts)
            if files is None:
                return None  # not created yet, or gone: its last sample (if any) stays
            self._files[docker_id] = files
        try:
            return files.read(read_ns, proc_stat)
        except CgroupGone:
            self._files.pop(docker_id).close()
            return None

    def _pid_in_netns(self) -> int | None:
        pids = self._pids() if self._pids is not None else []
        return pids[0] if pids else None

    def _sample_network(self) -> None:
        if self._eni is None:
            if not os.path.exists(self._netns_path):
                return  # the ENI is not attached yet
            try:
                self._eni = EniCountersFile.open(self._netns_path, self._pid_in_netns())
            except OSError as error:
                log.debug("no counters for task %s yet: %s", self.task_id, error)
                return
        sample = NetworkSample(time.time_ns(), self._eni.read())
        self._network = (sample, self._network[0] if self._network is not None else None)
