"""The efs-volumes hook inside the real task engine (fake runtime): what each EFS volume plan does to a task
before anything is mounted. The mounts themselves are tested on the real kernel in
tests/integration/test_efs_mounts.py."""
from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from fargo.agent.engine.runner import EngineTimeouts, TaskRunner
from fargo.agent.hooks.efs_volumes import DEFAULT_ATTEMPT_SECONDS, EfsVolumesHook, attempt_seconds_from
from fargo.protocol import stop_reasons as reasons
from fargo.protocol.messages import AccessPointPlan, EfsVolumePlan
from tests.unit.engine_fakes import TASK_ARN, FakeHost, FakeRuntime, ImageFake, Reports, assignment

FS = "fs-0123456789abcdef0"
APP = {"name": "app", "image": "busybox", "essential": True,
       "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]}


class Task:
    """One task run by the real runner, with the image hook's fake and the EFS hook."""

    def __init__(self, tmp: Path, plans: list[EfsVolumePlan], arn: str = TASK_ARN) -> None:
        self.runtime = FakeRuntime()
        self.host = FakeHost(self.runtime, tmp)
        self.hook = EfsVolumesHook(self.host)
        self.reports = Reports()
        a = dataclasses.replace(assignment([APP]), task_arn=arn, efs_volumes=plans)
        self.runner = TaskRunner(self.host, a, [ImageFake(self.host), self.hook], self.reports, EngineTimeouts(2, 2))

    async def run(self) -> None:
        await self.runner.run()

    def stop(self) -> None:
        self.runner.update(dataclasses.replace(self.runner.assignment, generation=2, desired_status="STOPPED",
                                               stop_code="UserInitiated", stopped_reason="Task stopped by user"))


def efs_run(tmp: Path, plans: list[EfsVolumePlan]) -> Task:
    task = Task(tmp, plans)
    asyncio.run(asyncio.wait_for(task.run(), 10))
    return task


def assert_failed_to_start(task: Task, reason: str) -> None:
    last = task.reports.last
    assert (last.known_status, last.stop_code, last.stopped_reason) == ("STOPPED", "TaskFailedToStart", reason)
    assert "create" not in task.runtime.calls  # no container was made


def test_the_control_planes_failure_stops_the_task_with_that_reason(tmp_path: Path) -> None:
    failure = reasons.efs_unresolvable(FS, "us-east-1")
    task = efs_run(tmp_path, [EfsVolumePlan("data", FS, failure=failure)])
    assert_failed_to_start(task, failure)


def test_blocked_nfs_waits_out_three_attempts_then_stops_with_efs_utils_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARGO_EFS_MOUNT_ATTEMPT_SECONDS", "0.05")
    started = time.monotonic()
    task = efs_run(tmp_path, [EfsVolumePlan("data", FS, blocked=True)])
    assert time.monotonic() - started >= 3 * 0.05
    assert_failed_to_start(task, reasons.efs_mount_timed_out(0.05))
    assert "Mount attempt 2/3 failed due to timeout after 0.05 sec" in task.reports.last.stopped_reason


def test_a_stop_during_the_wait_ends_it_at_once_and_other_tasks_go_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        blocked = Task(tmp_path / "a", [EfsVolumePlan("data", FS, blocked=True)])  # 3 x 15 s
        other = Task(tmp_path / "b", [], arn=TASK_ARN.replace("0123", "4567"))
        runs = [asyncio.ensure_future(blocked.run()), asyncio.ensure_future(other.run())]
        await other.reports.until("RUNNING")
        assert blocked.reports.last.known_status == "PENDING"  # still waiting; nothing else was held up
        started = time.monotonic()
        blocked.stop()
        await asyncio.wait_for(runs[0], 2)
        assert time.monotonic() - started < 1
        assert (blocked.reports.last.known_status, blocked.reports.last.stopped_reason) == \
            ("STOPPED", "Task stopped by user")
        other.stop()
        await asyncio.wait_for(runs[1], 2)

    asyncio.run(asyncio.wait_for(scenario(), 10))


AP_WITHOUT_CREATION = AccessPointPlan("fsap-0123456789abcdef0", "/app", posix_uid=1000, posix_gid=1000)


@pytest.mark.parametrize(("plan", "make_fs", "reason"), [
    (EfsVolumePlan("data", FS), False, reasons.efs_unresolvable(FS, "us-east-1")),
    (EfsVolumePlan("data", FS, root_directory="/data/airflow"), True,
     reasons.efs_no_such_directory(f"{FS}.efs.us-east-1.amazonaws.com:/data/airflow")),
    (EfsVolumePlan("data", FS, root_directory="/missing", transit_encryption=True), True,
     reasons.efs_no_such_directory("127.0.0.1:/missing")),
    (EfsVolumePlan("data", FS, access_point=AP_WITHOUT_CREATION, transit_encryption=True), True,
     reasons.efs_no_such_directory("127.0.0.1:/")),
], ids=["no-file-system-here", "no-root-directory", "no-root-directory-tls", "access-point-without-creation-info"])
def test_what_is_missing_on_this_host_stops_the_task_as_efs_utils_reports_it(
        tmp_path: Path, plan: EfsVolumePlan, make_fs: bool, reason: str) -> None:
    if make_fs:
        (tmp_path / "efs" / FS).mkdir(parents=True)
    task = efs_run(tmp_path, [plan])
    assert_failed_to_start(task, reason)
    assert reason.startswith("ResourceInitializationError: failed to invoke EFS utils commands to set up EFS volumes:")
    if make_fs:
        assert list((tmp_path / "efs" / FS).iterdir()) == []  # nothing made without CreationInfo


def test_a_task_without_efs_volumes_gets_no_mounts_and_nothing_to_undo(tmp_path: Path) -> None:
    task = Task(tmp_path, [])

    async def scenario() -> None:
        run = asyncio.ensure_future(task.run())
        await task.reports.until("RUNNING")
        spec = task.runtime.containers[task.runner.containers["app"].runtime_id].spec
        assert not any("/efs/" in m["source"] for m in spec["mounts"])
        task.stop()
        await run

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert task.reports.last.known_status == "STOPPED"


@pytest.mark.parametrize(("text", "seconds"), [
    (None, DEFAULT_ATTEMPT_SECONDS), ("", DEFAULT_ATTEMPT_SECONDS), ("0.2", 0.2), ("2", 2.0),
    ("soon", DEFAULT_ATTEMPT_SECONDS), ("0", DEFAULT_ATTEMPT_SECONDS), ("-1", DEFAULT_ATTEMPT_SECONDS),
])
def test_the_attempt_time_comes_from_the_environment_once(text: str | None, seconds: float) -> None:
    assert attempt_seconds_from(text) == seconds

