"""The task engine against a fake runtime and recording hooks: lifecycle order, stops in every state, hook
failures in each phase, containerd outages, cancellation and resuming after an agent restart."""
from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from fargo.agent.engine.runner import EngineTimeouts, TaskRunner
from fargo.agent.hooks.base import HookPhase
from fargo.protocol.messages import TaskAssignment, from_json, to_json
from tests.unit.engine_fakes import FakeHost, FakeRuntime, ImageFake, RecordingHook, Reports, assignment

HAPPY_PATH = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING",
              "STOPPED"]


class Engine:
    def __init__(self, tmp: Path, **hook_options: Any) -> None:
        self.runtime = FakeRuntime()
        self.host = FakeHost(self.runtime, tmp)
        self.journal: list[str] = []
        self.eni = RecordingHook(self.host, "eni", self.journal, **hook_options.pop("eni", {}))
        self.cgroup = RecordingHook(self.host, "cgroup", self.journal, **hook_options.pop("cgroup", {}))
        self.secrets = RecordingHook(self.host, "secrets", self.journal, phase=HookPhase.PENDING,
                                     **hook_options.pop("secrets", {}))
        self.hooks = [self.eni, self.cgroup, ImageFake(self.host), self.secrets]
        self.reports = Reports()
        self.runner: TaskRunner | None = None

    def start(self, a: TaskAssignment | None = None, resume: bool = False, last: Any = None) -> asyncio.Task:
        self.runner = TaskRunner(self.host, a or assignment(), self.hooks, self.reports, EngineTimeouts(2, 2), last)
        return asyncio.ensure_future(self.runner.run(resume))

    def stop_task(self, generation: int = 2) -> None:
        assert self.runner is not None
        self.runner.update(dataclasses.replace(self.runner.assignment, generation=generation,
                                               desired_status="STOPPED", stop_code="UserInitiated",
                                               stopped_reason="Task stopped by user"))

    @property
    def cid(self) -> str:
        assert self.runner is not None
        return self.runner.containers["app"].runtime_id


def run(test: Callable[[Path], Coroutine[Any, Any, None]]) -> Callable[[Path], None]:
    def wrapper(tmp_path: Path) -> None:
        asyncio.run(asyncio.wait_for(test(tmp_path), 20))
    wrapper.__name__ = test.__name__
    return wrapper


@run
async def test_the_lifecycle_walks_every_state_and_hooks_undo_in_reverse(tmp_path: Path) -> None:
    e = Engine(tmp_path)
    done = e.start()
    await e.reports.until("RUNNING")
    assert e.runtime.containers[e.cid].spec  # created from a spec
    e.stop_task()
    await done
    assert e.reports.statuses == HAPPY_PATH
    assert e.journal.index("secrets.prestart") > e.journal.index("eni.prestart")  # PENDING after PROVISIONING
    assert e.journal[-3:] == ["secrets.stop", "cgroup.stop", "eni.stop"]
    assert e.runtime.containers == {}
    last = e.reports.last
    assert last.stop_code == "UserInitiated" and last.stopped_reason == "Task stopped by user"
    assert [c.last_status for c in last.containers] == ["STOPPED"] and last.containers[0].exit_code == 143
    assert [r.seq for r in e.reports.all] == list(range(1, len(e.reports.all) + 1))


def test_hooks_contribute_to_every_container_spec(tmp_path: Path) -> None:
    async def body() -> None:
        e = Engine(tmp_path)
        done = e.start()
        await e.reports.until("RUNNING")
        env = e.runtime.containers[e.cid].spec["process"]["env"]
        assert "FROM_ENI=1" in env and "FROM_SECRETS=1" in env
        e.stop_task()
        await done
    asyncio.run(body())


@pytest.mark.parametrize("stop_at", ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"])
def test_stop_task_in_every_state_ends_stopped_and_clean(tmp_path: Path, stop_at: str) -> None:
    async def body() -> None:
        e = Engine(tmp_path)
        gate = asyncio.Event()
        if stop_at == "PROVISIONING":
            e.eni.gate = gate
        elif stop_at == "PENDING":
            e.secrets.gate = gate
        done = e.start()
        await e.reports.until(stop_at)
        e.stop_task()
        gate.set()
        await asyncio.wait_for(done, 10)
        assert e.reports.last.known_status == "STOPPED"
        assert e.reports.last.stop_code == "UserInitiated"
        assert e.runtime.containers == {}
        assert not e.eni.made and not e.cgroup.made and not e.secrets.made
    asyncio.run(body())


def test_a_stop_before_the_task_ever_ran_goes_straight_to_stopped(tmp_path: Path) -> None:
    async def body() -> None:
        e = Engine(tmp_path)
        await e.start(assignment(desired="STOPPED"))
        assert e.reports.statuses == ["PROVISIONING", "STOPPING", "DEPROVISIONING", "STOPPED"]
        assert "eni.prestart" not in e.journal
    asyncio.run(body())


@pytest.mark.parametrize("hook", ["eni", "secrets"])
def test_a_hook_that_refuses_stops_the_task_with_its_fargate_reason(tmp_path: Path, hook: str) -> None:
    async def body() -> None:
        reason = "ResourceInitializationError: unable to pull secrets or registry auth"
        e = Engine(tmp_path, **{hook: {"refuse": reason}})
        await e.start()
        last = e.reports.last
        assert last.known_status == "STOPPED" and last.stop_code == "TaskFailedToStart"
        assert last.stopped_reason == reason
        assert "RUNNING" not in e.reports.statuses
        assert e.runtime.containers == {}
    asyncio.run(body())


def test_a_bug_in_a_hook_stops_the_task_without_a_host_path_in_its_reason(tmp_path: Path) -> None:
    async def body() -> None:
        e = Engine(tmp_path, cgroup={"prestart_error": OSError("mkdir /tmp/x/containerd/state/abc: file exists")})
        await e.start()
        reason = e.reports.last.stopped_reason or ""
        assert reason.startswith("CannotStartContainerError") and "/tmp/" not in reason
    asyncio.run(body())


def test_a_hook_that_fails_to_undo_keeps_the_task_deprovisioning_until_it_succeeds(tmp_path: Path) -> None:
    async def body() -> None:
        e = Engine(tmp_path, eni={"stop_failures": 2})
        done = e.start()
        await e.reports.until("RUNNING")
        e.stop_task()
        await e.reports.until("DEPROVISIONING")
        await asyncio.sleep(0.1)
        assert e.reports.last.known_status == "DEPROVISIONING"  # not STOPPED while the ENI is still there
        await asyncio.wait_for(done, 10)
        assert e.journal.count("eni.stop") == 3 and not e.eni.made
        assert e.reports.last.known_status == "STOPPED"
    asyncio.run(body())


def test_an_essential_exit_stops_the_task_with_the_exit_code(tmp_path: Path) -> None:
    async def body() -> None:
        e = Engine(tmp_path)
        done = e.start()
        await e.reports.until("RUNNING")
        e.runtime.exit(e.cid, 3)
        await asyncio.wait_for(done, 5)
        last = e.reports.last
        assert last.stop_code == "EssentialContainerExited"
        assert last.stopped_reason == "Essential container in task exited"
        assert last.containers[0].exit_code == 3
    asyncio.run(body())


def test_a_containerd_outage_during_the_stop_is_ridden_out_and_nothing_is_left(tmp_path: Path) -> None:
    async def body() -> None:
        e = Engine(tmp_path)
        done = e.start()
        await e.reports.until("RUNNING")
        e.runtime.go_down()
        e.stop_task()
        await asyncio.sleep(0.3)
        assert e.reports.last.known_status != "STOPPED"
        e.runtime.come_back()
        await asyncio.wait_for(done, 15)
        assert e.reports.last.known_status == "STOPPED"
        assert e.runtime.containers == {}
    asyncio.run(body())


def test_a_container_that_cannot_start_fails_the_task_with_the_runtime_reason(tmp_path: Path) -> None:
    async def body() -> None:
        e = Engine(tmp_path)
        e.runtime.fail_start = "failed to start shim: mkdir /var/lib/fargo/containerd/state/x: file exists"
        await e.start()
        last = e.reports.last
        assert last.stop_code == "TaskFailedToStart"
        assert (last.stopped_reason or "").startswith("CannotStartContainerError:")
        assert "/var/lib" not in (last.stopped_reason or "") and "/var/lib" not in (last.containers[0].reason or "")
    asyncio.run(body())


def test_a_create_that_never_returns_is_the_platforms_runtime_timeout(tmp_path: Path) -> None:
    async def body() -> None:
        e = Engine(tmp_path)
        e.runtime.hang_create = True
        await e.start()
        assert e.reports.last.stopped_reason == (
            "ContainerRuntimeTimeoutError: Could not transition to created; timed out after waiting 2s")
    asyncio.run(body())


def test_cancelling_the_runner_leaves_the_task_running_and_a_new_runner_resumes_it(tmp_path: Path) -> None:
    async def body() -> None:
        e = Engine(tmp_path)
        first = e.start()
        await e.reports.until("RUNNING")
        first.cancel()  # the agent shuts down (or dies)
        with pytest.raises(asyncio.CancelledError):
            await first
        assert e.runtime.containers[e.cid].running  # the container lives on
        last = from_json(type(e.reports.last), to_json(e.reports.last))  # as the agent's state file keeps it
        a = from_json(TaskAssignment, to_json(e.runner.assignment if e.runner else None))
        seq_before = last.seq
        second = e.start(a, resume=True, last=last)
        await asyncio.sleep(0.05)
        assert e.runtime.containers[e.cid].running and e.reports.last.known_status == "RUNNING"
        e.runtime.exit(e.cid, 0)  # the resumed runner watches the container again
        await asyncio.wait_for(second, 5)
        assert e.reports.last.known_status == "STOPPED" and e.reports.last.seq > seq_before
        assert e.reports.last.containers[0].exit_code == 0
    asyncio.run(body())


def test_resuming_a_task_that_was_still_pending_starts_it_over_from_a_fresh_container(tmp_path: Path) -> None:
    async def body() -> None:
        e = Engine(tmp_path)
        gate = asyncio.Event()
        e.secrets.gate = gate
        first = e.start()
        await e.reports.until("PENDING")
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        e.secrets.gate = None
        a = e.runner.assignment if e.runner else assignment()
        e.runtime.containers.pop(e.cid, None)
        await e.runtime.create_container(e.cid, "busybox", {"half": "made"}, {})  # made before the crash
        second = e.start(a, resume=True, last=e.reports.last)
        await e.reports.until("RUNNING")
        assert e.runtime.containers[e.cid].spec.get("half") is None  # made again from its spec
        e.stop_task(generation=5)
        await asyncio.wait_for(second, 5)
        assert e.reports.last.known_status == "STOPPED"
    asyncio.run(body())


def test_an_older_assignment_never_undoes_a_stop(tmp_path: Path) -> None:
    async def body() -> None:
        e = Engine(tmp_path)
        done = e.start()
        await e.reports.until("RUNNING")
        e.stop_task(generation=3)
        assert e.runner is not None
        e.runner.update(dataclasses.replace(e.runner.assignment, generation=2, desired_status="RUNNING"))
        await asyncio.wait_for(done, 5)
        assert e.reports.last.known_status == "STOPPED"
    asyncio.run(body())
