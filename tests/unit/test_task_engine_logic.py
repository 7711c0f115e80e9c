"""The task engine's pure rules: legal state moves, dependsOn verdicts, stop order, task health."""
from __future__ import annotations

import pytest

from fargo.agent.engine.dependencies import (
    ContainerProgress,
    Verdict,
    condition_verdict,
    dependencies_verdict,
    stop_order,
)
from fargo.agent.hooks.health_checks import health_command
from fargo.agent.engine.runner import _duration
from fargo.protocol.task_states import IllegalTransition, TaskState, check_transition
from fargo.errors import PlatformUnknownException
from fargo.platform import resolve_platform_version

S = TaskState


def test_the_happy_path_is_legal_one_step_at_a_time() -> None:
    path = [S.PROVISIONING, S.PENDING, S.ACTIVATING, S.RUNNING, S.DEACTIVATING, S.STOPPING, S.DEPROVISIONING,
            S.STOPPED]
    for a, b in zip(path, path[1:]):
        check_transition(a, b)


@pytest.mark.parametrize("a,b", [(S.RUNNING, S.STOPPED), (S.STOPPED, S.RUNNING), (S.PENDING, S.RUNNING),
                                 (S.STOPPING, S.RUNNING)])
def test_skipping_or_going_back_is_illegal(a: TaskState, b: TaskState) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(a, b)


def test_a_task_that_cannot_start_goes_straight_to_stopping() -> None:
    for early in (S.PROVISIONING, S.PENDING, S.ACTIVATING):
        check_transition(early, S.STOPPING)


def test_start_waits_for_the_dependency_to_start() -> None:
    assert condition_verdict("START", ContainerProgress())[0] is Verdict.WAIT
    assert condition_verdict("START", ContainerProgress(started=True))[0] is Verdict.READY


def test_complete_accepts_any_exit_and_success_only_zero() -> None:
    failed = ContainerProgress(started=True, exited=True, exit_code=2)
    assert condition_verdict("COMPLETE", failed)[0] is Verdict.READY
    verdict, why = condition_verdict("SUCCESS", failed)
    assert verdict is Verdict.NEVER and "code 2" in why
    assert condition_verdict("SUCCESS", ContainerProgress(started=True, exited=True, exit_code=0))[0] is Verdict.READY


def test_healthy_can_never_hold_once_unhealthy_or_exited() -> None:
    assert condition_verdict("HEALTHY", ContainerProgress(started=True, health="HEALTHY"))[0] is Verdict.READY
    assert condition_verdict("HEALTHY", ContainerProgress(started=True))[0] is Verdict.WAIT
    assert condition_verdict("HEALTHY", ContainerProgress(started=True, health="UNHEALTHY"))[0] is Verdict.NEVER
    assert condition_verdict("HEALTHY", ContainerProgress(started=True, exited=True, exit_code=0))[0] is Verdict.NEVER


def test_a_dependency_that_failed_to_start_can_never_be_met() -> None:
    assert condition_verdict("START", ContainerProgress(failed_to_start=True))[0] is Verdict.NEVER


def test_never_beats_wait_beats_ready() -> None:
    progress = {"a": ContainerProgress(started=True), "b": ContainerProgress(),
                "c": ContainerProgress(started=True, exited=True, exit_code=1)}
    assert dependencies_verdict((("a", "START"),), progress)[0] is Verdict.READY
    assert dependencies_verdict((("a", "START"), ("b", "START")), progress)[0] is Verdict.WAIT
    verdict, why = dependencies_verdict((("b", "START"), ("c", "SUCCESS")), progress)
    assert verdict is Verdict.NEVER and why.startswith("dependency c (SUCCESS)")


def test_dependents_stop_before_what_they_depend_on() -> None:
    waves = stop_order({"db": (), "app": (("db", "START"),), "proxy": (("app", "HEALTHY"),), "log": ()})
    assert waves == [["log", "proxy"], ["app"], ["db"]]


def test_health_command_forms() -> None:
    assert health_command(("CMD-SHELL", "curl -f localhost")) == ["/bin/sh", "-c", "curl -f localhost"]
    assert health_command(("CMD", "test", "-f", "/x")) == ["test", "-f", "/x"]
    assert health_command(("NONE",)) is None


def test_runtime_timeouts_print_like_go_durations() -> None:
    assert _duration(240) == "4m0s"
    assert _duration(1.5) == "1.5s"
    assert _duration(0.01) == "10ms"


def test_platform_versions_resolve_latest_and_refuse_unknown_ones() -> None:
    assert resolve_platform_version("LATEST").version == "1.4.0"
    assert resolve_platform_version(None, latest="1.3.0").version == "1.3.0"
    assert resolve_platform_version("1.3.0").runtime_timeout_error == "DockerTimeoutError"
    assert resolve_platform_version("1.4.0").runtime_timeout_error == "ContainerRuntimeTimeoutError"
    with pytest.raises(PlatformUnknownException):
        resolve_platform_version("1.4")
