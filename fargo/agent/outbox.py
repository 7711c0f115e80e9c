"""Reports not yet acked by the control plane, sent in batches and retried until acked (at-least-once).

Each report is a whole snapshot of a task, so only the newest one per task is kept; the control plane
applies a seq once, so a report sent twice is harmless.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fargo.agent.backoff import Backoff
from fargo.protocol.messages import ReportAck, TaskReport

log = logging.getLogger(__name__)
MAX_BATCH = 200
RETRY_BACKOFF = (0.05, 5.0)
_AWAITED = frozenset({"RUNNING", "STOPPED"})  # the statuses waiters poll for: sent at once
# How long a report of a step on the way may wait for the task's next step. AWS shows a task's steps seconds
# late; a start here takes 60-80 ms, so a start sends no step report at all: its RUNNING report carries them.
COALESCE_S = 0.25


class _Window:
    """The time a step report may be held; closing it wakes the outbox."""

    def __init__(self, wake: asyncio.Event) -> None:
        self.open = True
        self._wake = wake

    def close(self) -> None:
        self.open = False
        self._wake.set()


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
        replaces its report meanwhile: a start merges one report instead of four, and their file writes and
        merges no longer take the interpreter from the task's own start work in the middle of it."""
        if self._awaited():
            return
        # A timer rings the same event, so a put wakes this in one turn of the loop (wait_for's own task took
        # three, and the RUNNING report went out 1.4 ms after the task was RUNNING).
        window = _Window(self._wake)
        timer = asyncio.get_running_loop().call_later(self.coalesce_s, window.close)
        try:
            while not self._awaited() and window.open:
                self._wake.clear()
                await self._wake.wait()
        finally:
            timer.cancel()

    def _awaited(self) -> bool:
        return any(r.known_status in _AWAITED for r in self._pending.values())

    async def run(self, send: Callable[[list[TaskReport]], Awaitable[ReportAck]],
                  on_acked: Callable[[str, int], None]) -> None:
        backoff = Backoff(*RETRY_BACKOFF)
        carried = False  # reports that go on without a wait: left over from a full batch, or not delivered
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
            if not carried:
                # Reports put while the last batch was on its way are held like any others: the next step of a
                # task whose report was just sent usually comes within the window.
                await self._gather_steps()
            batch = list(self._pending.values())[:MAX_BATCH]
            try:
                ack = await send(batch)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the control plane is away: keep the reports, retry
                log.warning("reports not delivered (%s); retrying in %.2fs", e, backoff.delay)
                await backoff.sleep()
                carried = True
                continue
            backoff.reset()
            for arn, seq in ack.acked.items():
                held = self._pending.get(arn)
                if held is not None and held.seq <= seq:
                    del self._pending[arn]
                on_acked(arn, seq)
            # A report replaced by a newer one while its batch was on its way was still acked; one the control
            # plane did not ack is retried, after a pause so that it does not spin.
            sent = {r.task_arn for r in batch}
            unacked = any(ack.acked.get(r.task_arn, -1) < r.seq for r in batch)
            carried = unacked or any(arn not in sent for arn in self._pending)
            if unacked:
                await asyncio.sleep(backoff.first)
