"""The agent's outbox: reports of steps on the way wait briefly for the task's next step; RUNNING and STOPPED,
which waiters poll for, go at once; every report is still sent until acked."""
from __future__ import annotations

import asyncio
import time

from fargo.agent.outbox import Outbox
from fargo.protocol.messages import ReportAck, TaskReport

ARN = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef"


def _report(seq: int, status: str) -> TaskReport:
    return TaskReport(task_arn=ARN, seq=seq, known_status=status, containers=[])


async def _started(outbox: Outbox, sent: list[tuple[float, list[str]]]) -> asyncio.Task[None]:
    async def send(batch: list[TaskReport]) -> ReportAck:
        sent.append((time.monotonic(), [r.known_status for r in batch]))
        return ReportAck(acked={r.task_arn: r.seq for r in batch})

    return asyncio.create_task(outbox.run(send, lambda arn, seq: None))


def test_steps_on_the_way_are_merged_into_one_report_and_running_goes_at_once() -> None:
    async def scenario() -> None:
        outbox, sent = Outbox(coalesce_s=0.5), []
        runner = await _started(outbox, sent)
        outbox.put(_report(0, "PROVISIONING"))
        await asyncio.sleep(0.05)
        outbox.put(_report(1, "PENDING"))
        await asyncio.sleep(0.05)
        assert sent == []  # held: the window is not over and nothing awaited came
        put_at = time.monotonic()
        outbox.put(_report(2, "RUNNING"))
        await asyncio.sleep(0.05)
        assert [statuses for _, statuses in sent] == [["RUNNING"]] and sent[0][0] - put_at < 0.04
        runner.cancel()

    asyncio.run(scenario())


def test_running_put_while_a_step_is_held_is_sent_in_the_next_turn_of_the_loop() -> None:
    """The held step's wait wakes at once: the RUNNING report must not queue behind whatever else the loop runs
    next (a waiter that took three turns let a task's poststart work go first)."""
    async def scenario() -> None:
        outbox, sent = Outbox(coalesce_s=10), []
        runner = await _started(outbox, sent)
        outbox.put(_report(0, "ACTIVATING"))
        await asyncio.sleep(0.01)  # held, waiting for the next step
        outbox.put(_report(1, "RUNNING"))
        turns = 0
        while not sent and turns < 10:
            await asyncio.sleep(0)
            turns += 1
        assert [statuses for _, statuses in sent] == [["RUNNING"]]
        assert turns == 1
        runner.cancel()

    asyncio.run(scenario())


def test_a_step_alone_is_sent_when_its_window_ends() -> None:
    async def scenario() -> None:
        outbox, sent = Outbox(coalesce_s=0.1), []
        runner = await _started(outbox, sent)
        put_at = time.monotonic()
        outbox.put(_report(0, "PENDING"))
        await asyncio.sleep(0.3)
        assert [statuses for _, statuses in sent] == [["PENDING"]]
        assert 0.09 <= sent[0][0] - put_at < 0.25
        assert len(outbox) == 0  # acked
        runner.cancel()

    asyncio.run(scenario())


def test_a_report_that_replaced_one_on_its_way_is_not_held_back() -> None:
    """A report sent and acked while the task's next one came is done; the next goes on its own merits (RUNNING
    at once), not after the pause kept for reports the control plane did not ack."""
    async def scenario() -> None:
        outbox, sent = Outbox(coalesce_s=0.5), []
        in_flight, release = asyncio.Event(), asyncio.Event()

        async def send(batch: list[TaskReport]) -> ReportAck:
            sent.append((time.monotonic(), [r.known_status for r in batch]))
            if len(sent) == 1:
                in_flight.set()
                await release.wait()
            return ReportAck(acked={r.task_arn: r.seq for r in batch})

        runner = asyncio.create_task(outbox.run(send, lambda arn, seq: None))
        outbox.put(_report(0, "STOPPED"))  # goes at once
        await in_flight.wait()
        outbox.put(_report(1, "RUNNING"))  # (a test's sequence: what counts is that it came meanwhile)
        released_at = time.monotonic()
        release.set()
        await asyncio.sleep(0.1)
        assert [statuses for _, statuses in sent] == [["STOPPED"], ["RUNNING"]]
        assert sent[1][0] - released_at < 0.03
        assert len(outbox) == 0
        runner.cancel()

    asyncio.run(scenario())


def test_a_report_not_acked_is_sent_again() -> None:
    async def scenario() -> None:
        outbox, sent = Outbox(coalesce_s=0.01), []

        async def send(batch: list[TaskReport]) -> ReportAck:
            sent.append((time.monotonic(), [r.known_status for r in batch]))
            return ReportAck(acked={} if len(sent) == 1 else {r.task_arn: r.seq for r in batch})

        runner = asyncio.create_task(outbox.run(send, lambda arn, seq: None))
        outbox.put(_report(0, "RUNNING"))
        await asyncio.sleep(0.3)
        assert [statuses for _, statuses in sent] == [["RUNNING"], ["RUNNING"]]
        assert sent[1][0] - sent[0][0] >= 0.04  # after a pause: no spinning on a report the control plane keeps back
        assert len(outbox) == 0
        runner.cancel()

    asyncio.run(scenario())
