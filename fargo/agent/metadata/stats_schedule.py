"""One sampling schedule per event loop for every task's stats collector.

Each collector comes due on multiples of its interval of the loop's clock (every second while someone reads
its /stats, every 30 s otherwise), so collectors come due together. The schedule wakes once for all of them
and runs their rounds in one worker thread, reading /proc/stat once for the lot. It used to be one coroutine
per task, woken for each round: with 500 idle tasks those wake-ups (a timer, a task, a cancellation each) cost
more of the event loop than the reads cost the worker thread.
"""
from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Callable
from typing import Protocol

from fargo.agent.metadata.cgroup_stats import HostCpuFile

log = logging.getLogger(__name__)

# A round is due when the loop wakes this close to its time: timers may fire a hair early.
_EARLY_S = 0.001


class Sampled(Protocol):
    """What the schedule asks of a collector (fargo.agent.metadata.stats.TaskStatsCollector)."""

    task_id: str

    def next_round_at(self, now: float) -> float:
        """Loop time of the collector's next round, given that it was sampled at `now`."""
        ...

    def round_work(self) -> Callable[[bytes], None]:
        """Its round, prepared on the event loop (what is listed now); run in the worker with /proc/stat."""
        ...


class StatsSchedule:
    """Collectors and the loop time each comes due; one task wakes at the earliest and samples all due."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: dict[Sampled, float] = {}  # collector -> loop time of its next round (insertion order kept)
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    def add(self, collector: Sampled) -> None:
        """Sample `collector` at once (in the next turn of the loop), then on its schedule."""
        self.bring_forward(collector, self._loop.time())
        if self._runner is None or self._runner.done():
            self._runner = self._loop.create_task(self._run(), name="task stats schedule")

    def remove(self, collector: Sampled) -> None:
        if self._due.pop(collector, None) is not None and not self._due:
            self._wake.set()  # the last one gone: the schedule's task ends now, not at that one's next round

    def bring_forward(self, collector: Sampled, at: float) -> None:
        """Sample `collector` no later than `at` (a first read of its /stats wants a fast round soon)."""
        if at < self._due.get(collector, math.inf):
            self._due[collector] = at
            self._wake.set()

    def __len__(self) -> int:
        return len(self._due)

    async def _run(self) -> None:
        while self._due:
            now = self._loop.time()
            due = [(c, at) for c, at in self._due.items() if at <= now + _EARLY_S]
            if due:
                await self._sample(due, now)
                continue
            self._wake.clear()
            timer = self._loop.call_at(min(self._due.values()), self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    async def _sample(self, due: list[tuple[Sampled, float]], now: float) -> None:
        work: list[tuple[Sampled, Callable[[bytes], None]]] = []
        for collector, at in due:
            # from its due time when that is a hair ahead: else the same boundary would come due again
            self._due[collector] = collector.next_round_at(max(now, at))
            try:
                work.append((collector, collector.round_work()))
            except Exception:  # noqa: BLE001 - stats are never worth stopping a task, or its neighbours, for
                log.exception("stats round of task %s failed", collector.task_id)
        errors = await self._loop.run_in_executor(None, self._run_all, [w for _, w in work])
        for (collector, _), error in zip(work, errors):
            if error is not None:
                log.error("stats round of task %s failed", collector.task_id, exc_info=error)

    @staticmethod
    def _run_all(rounds: list[Callable[[bytes], None]]) -> list[BaseException | None]:
        host_cpu = HostCpuFile()  # opened per round, not held: a round may outlive the loop that started it
        try:
            proc_stat = host_cpu.read()
        finally:
            host_cpu.close()
        errors: list[BaseException | None] = []
        for work in rounds:
            try:
                work(proc_stat)
                errors.append(None)
            except Exception as error:  # noqa: BLE001 - one task's failure is that task's, not its neighbours'
                errors.append(error)
        return errors


_schedules: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StatsSchedule] = weakref.WeakKeyDictionary()


def schedule_of(loop: asyncio.AbstractEventLoop) -> StatsSchedule:
    """The running loop's schedule (made on first use)."""
    schedule = _schedules.get(loop)
    if schedule is None:
        schedule = _schedules[loop] = StatsSchedule(loop)
    return schedule
