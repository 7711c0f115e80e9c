"""Reports not yet acked by the control plane, sent in batches and retried until acked (at-least-once).

Each report is a whole snapshot of a task, so only the newest one per task is kept; the control plane
applies a seq once, so a report sent twice is harmless.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from fargo.agent.backoff import Backoff
from fargo.protocol.messages import ReportAck, TaskReport

log = logging.getLogger(__name__)
MAX_BATCH = 200
RETRY_BACKOFF = (0.05, 5.0)
_AWAITED = frozenset({"RUNNING", "STOPPED"})  # the statuses waiters poll for: sent at once
# How long a report of a step on the way may wait for the task's next step (AWS shows a task's steps
# seconds late; a sequential start's steps come 5-10 ms apart).
COALESCE_S = 0.02


class Outbox:
    def __init__(self, coalesce_s: float = COALESCE_S) -> None:
        self.coalesce_s = coalesce_s
        self._pending: dict[str, TaskReport] = {}
        self._wake = asyncio.Event()

    def put(self, report: TaskReport) -> None:
        held = self._pending.get(report.task_arn)
        if held is None or held.seq < report.seq:
            self._pending[report.task_arn] = report
        self._wake.set()

    def __len__(self) -> int:
        return len(self._pending)

    async def _gather_steps(self) -> None:
        """Hold reports of steps on the way (PROVISIONING, PENDING, ACTIVATING...) for up to `coalesce_s`, or
        until one of RUNNING or STOPPED comes, which waiters poll for and which go at once. A task's next step
        replaces its report meanwhile: a start merges one report instead of three, and their file writes and
        merges no longer take the interpreter from the task's own start work in the middle of it."""
        if self._awaited():
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + self.coalesce_s
        while not self._awaited() and (left := until - loop.time()) > 0:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    def _awaited(self) -> bool:
        return any(r.known_status in _AWAITED for r in self._pending.values())

    async def run(self, send: Callable[[list[TaskReport]], Awaitable[ReportAck]],
                  on_acked: Callable[[str, int], None]) -> None:
        backoff = Backoff(*RETRY_BACKOFF)
        while True:
            await self._wake.wait()
            await self._gather_steps()
            self._wake.clear()
            while self._pending:
                batch = list(self._pending.values())[:MAX_BATCH]
                try:
                    ack = await send(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - the control plane is away: keep the reports, retry
                    log.warning("reports not delivered (%s); retrying in %.2fs", e, backoff.delay)
                    await backoff.sleep()
                    continue
                backoff.reset()
                progress = False
                for arn, seq in ack.acked.items():
                    held = self._pending.get(arn)
                    if held is not None and held.seq <= seq:
                        del self._pending[arn]
                        progress = True
                    on_acked(arn, seq)
                if not progress:
                    await asyncio.sleep(backoff.first)  # nothing acked: do not spin
