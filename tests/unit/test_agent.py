"""The agent against a control plane that loses messages and a fake runtime: reports are at-least-once,
an agent restart resumes from its own state, the desired set rules, and one runner's crash is contained."""
from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

from fargo.agent.agent import Agent, AgentSettings
from fargo.agent.hooks.base import TaskHook
from fargo.protocol.messages import (AgentHello, AssignmentBatch, Lease, ReportAck, TaskAssignment, TaskReport,
                                     from_json, to_json)
from tests.unit.engine_fakes import TASK_ARN, FakeRuntime, ImageFake, RecordingHook, assignment


class LossyControlPlane:
    """Holds assignments and applies reports by seq, as the real one does; drops the first `lose` report calls."""

    def __init__(self, lose: int = 0) -> None:
        self.desired: dict[str, TaskAssignment] = {}
        self.generation = 0
        self.applied: dict[str, TaskReport] = {}
        self.report_calls = 0
        self.lose = lose
        self.changed = asyncio.Event()

    def put(self, a: TaskAssignment) -> None:
        self.generation += 1
        self.desired[a.task_arn] = dataclasses.replace(a, generation=self.generation)
        self.changed.set()

    def stop(self, arn: str) -> None:
        self.put(dataclasses.replace(self.desired[arn], desired_status="STOPPED", stop_code="UserInitiated",
                                     stopped_reason="Task stopped by user"))

    async def hello(self, hello: AgentHello) -> Lease:
        return Lease(hello.agent_id, 30)

    async def assignments(self, agent_id: str, since: int | None, timeout: float) -> AssignmentBatch:
        def wanted() -> list[TaskAssignment]:
            if since is None:
                return [a for a in self.desired.values() if self.applied.get(a.task_arn) is None
                        or self.applied[a.task_arn].known_status != "STOPPED"]
            return [a for a in self.desired.values() if a.generation > since]
        if not wanted() and since is not None:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout)
            except TimeoutError:
                pass
        batch = [from_json(TaskAssignment, to_json(a)) for a in wanted()]
        return AssignmentBatch(self.generation, batch, full=since is None)

    async def report(self, agent_id: str, reports: list[TaskReport]) -> ReportAck:
        self.report_calls += 1
        if self.lose > 0:
            self.lose -= 1
            raise ConnectionError("the control plane is away")
        for r in reports:
            held = self.applied.get(r.task_arn)
            if held is None or r.seq > held.seq:
                self.applied[r.task_arn] = from_json(TaskReport, to_json(r))
        return ReportAck({r.task_arn: self.applied[r.task_arn].seq for r in reports})

    async def until(self, arn: str, status: str, timeout: float = 5) -> TaskReport:
        async def poll() -> TaskReport:
            while (r := self.applied.get(arn)) is None or r.known_status != status:
                await asyncio.sleep(0.005)
            return r
        return await asyncio.wait_for(poll(), timeout)


def make_agent(tmp: Path, cp: LossyControlPlane, runtime: FakeRuntime, journal: list[str]) -> Agent:
    def hooks(platform: Any, host: Any) -> list[TaskHook]:
        return [RecordingHook(host, "eni", journal), ImageFake(host)]

    async def no_reconcile(agent: Agent) -> None:
        pass

    settings = AgentSettings(data_dir=tmp, region="us-east-1", vpc_cidr="", network_prefix="fgunit",
                             agent_id="test-agent")
    return Agent(runtime, settings, cp, hooks_for=hooks, reconcile=no_reconcile)  # type: ignore[arg-type]


def test_reports_lost_on_the_way_are_sent_again_until_acked(tmp_path: Path) -> None:
    async def body() -> None:
        cp, runtime, journal = LossyControlPlane(lose=3), FakeRuntime(), []
        agent = make_agent(tmp_path, cp, runtime, journal)
        cp.put(assignment())
        await agent.start()
        await cp.until(TASK_ARN, "RUNNING")
        assert cp.report_calls > 3
        cp.stop(TASK_ARN)
        stopped = await cp.until(TASK_ARN, "STOPPED")
        assert stopped.stop_code == "UserInitiated"
        await asyncio.sleep(0.1)
        assert not list((tmp_path / "agent" / "tasks").glob("*.json"))  # acked STOPPED: nothing kept
        await agent.close()
    asyncio.run(body())


class WriteAheadCheckingControlPlane(LossyControlPlane):
    """Notes, for every report it gets, the newest seq the agent's state held on disk for that task at that
    moment: in the task's file or in the report log (`fargo.agent.agent_state`)."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__()
        self.state_dir = state_dir
        self.on_disk: list[tuple[int, int]] = []  # (seq sent, seq in the file then)

    async def report(self, agent_id: str, reports: list[TaskReport]) -> ReportAck:
        log = self.state_dir.parent / "reports.log"
        logged = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        for r in reports:
            task_id = r.task_arn.rsplit('/', 1)[-1]
            path = self.state_dir / f"{task_id}.json"
            written = json.loads(path.read_text()).get("report") if path.exists() else None
            seqs = [written["seq"] if written else 0] + [e["report"]["seq"] for e in logged if e["task"] == task_id]
            self.on_disk.append((r.seq, max(seqs)))
        return await super().report(agent_id, reports)


def test_every_report_is_in_the_agents_state_before_it_is_sent(tmp_path: Path) -> None:
    # (written once per send, not once per report: a restarted agent must never reuse a seq already sent)
    async def body() -> None:
        cp, runtime, journal = WriteAheadCheckingControlPlane(tmp_path / "agent" / "tasks"), FakeRuntime(), []
        agent = make_agent(tmp_path, cp, runtime, journal)
        cp.put(assignment())
        await agent.start()
        await cp.until(TASK_ARN, "RUNNING")
        cp.stop(TASK_ARN)
        await cp.until(TASK_ARN, "STOPPED")
        await agent.close()
        assert cp.on_disk and all(written >= sent for sent, written in cp.on_disk), cp.on_disk
    asyncio.run(body())


def test_a_restarted_agent_resumes_from_its_own_state_and_containerd(tmp_path: Path) -> None:
    async def body() -> None:
        cp, runtime, journal = LossyControlPlane(), FakeRuntime(), []
        agent = make_agent(tmp_path, cp, runtime, journal)
        cp.put(assignment())
        await agent.start()
        running = await cp.until(TASK_ARN, "RUNNING")
        await agent.close()  # the process goes; the container stays
        cid = running.containers[0].runtime_id
        assert runtime.containers[cid].running
        cp.stop(TASK_ARN)  # StopTask while no agent runs
        again = make_agent(tmp_path, cp, runtime, journal)
        await again.start()
        stopped = await cp.until(TASK_ARN, "STOPPED")
        assert stopped.seq > running.seq and runtime.containers == {}
        assert journal.count("eni.prestart") == 2  # prestart again on resume: idempotent by contract
        await again.close()
    asyncio.run(body())


def test_a_local_task_missing_from_the_full_desired_set_is_stopped(tmp_path: Path) -> None:
    async def body() -> None:
        cp, runtime, journal = LossyControlPlane(), FakeRuntime(), []
        agent = make_agent(tmp_path, cp, runtime, journal)
        cp.put(assignment())
        await agent.start()
        await cp.until(TASK_ARN, "RUNNING")
        await agent.close()
        cp.desired.clear()  # the control plane forgot the task (say, its store was restored)
        again = make_agent(tmp_path, cp, runtime, journal)
        await again.start()
        await cp.until(TASK_ARN, "STOPPED")
        assert runtime.containers == {}
        await again.close()
    asyncio.run(body())


def test_a_crashed_runner_is_resumed_and_neither_its_siblings_nor_the_agent_loop_notice(tmp_path: Path) -> None:
    async def body() -> None:
        cp, runtime, journal = LossyControlPlane(), FakeRuntime(), []
        agent = make_agent(tmp_path, cp, runtime, journal)
        good = assignment()
        bad = dataclasses.replace(assignment(), task_arn=TASK_ARN[:-3] + "bad")
        cp.put(good)
        cp.put(bad)
        await agent.start()
        await cp.until(bad.task_arn, "RUNNING")

        async def bug() -> None:
            raise RuntimeError("a bug in the engine")
        crashed = agent.runners[bad.task_id]
        crashed._stop = bug  # type: ignore[method-assign]
        cp.stop(bad.task_arn)
        while agent.runners.get(bad.task_id) is crashed:
            await asyncio.sleep(0.005)
        assert agent.ready and good.task_id in agent.runners
        # the crashed runner is made again from what it knew, and StopTask still reaches the task
        stopped = await cp.until(bad.task_arn, "STOPPED")
        assert stopped.stop_code == "UserInitiated" and runtime.containers.get(stopped.containers[0].runtime_id) is None
        cp.stop(good.task_arn)
        await cp.until(good.task_arn, "STOPPED")
        await agent.close()
    asyncio.run(body())


def test_the_agent_is_not_ready_once_its_loop_has_died(tmp_path: Path) -> None:
    async def body() -> None:
        cp, runtime, journal = LossyControlPlane(), FakeRuntime(), []
        agent = make_agent(tmp_path, cp, runtime, journal)
        await agent.start()
        assert agent.ready
        assert agent._main is not None
        agent._main.cancel()
        await asyncio.sleep(0.01)
        assert not agent.ready
    asyncio.run(body())
