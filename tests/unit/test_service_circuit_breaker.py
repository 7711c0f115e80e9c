"""The deployment circuit breaker: the threshold formula, what counts as a failure, and its two stages."""
from __future__ import annotations

import pytest

from fargo.control.services import circuit_breaker as cb
from tests.unit.service_views import failed_start, task


@pytest.mark.parametrize(("desired", "threshold"), [(0, 3), (1, 3), (3, 3), (6, 3), (7, 4), (25, 13), (400, 200),
                                                    (800, 200)])
def test_threshold_is_half_the_desired_count_rounded_up_within_3_and_200(desired: int, threshold: int) -> None:
    assert cb.failure_threshold(desired) == threshold


def test_it_trips_when_the_count_reaches_the_threshold() -> None:
    assert not cb.tripped(12, 25) and cb.tripped(13, 25)


@pytest.mark.parametrize("code", ["ServiceSchedulerInitiated", "UserInitiated", "SpotInterruption"])
def test_stops_that_say_nothing_of_the_deployment_are_not_failures(code: str) -> None:
    assert not cb.failed_to_start(task(1, status="STOPPED", desired="STOPPED", up=None, stop_code=code))


def test_a_task_that_ran_is_not_a_start_failure() -> None:
    assert cb.failed_to_start(failed_start(1))
    assert not cb.failed_to_start(task(1, status="STOPPED", desired="STOPPED", stop_code="EssentialContainerExited"))


def test_stage_1_adds_the_new_start_failures_to_the_count() -> None:
    tasks = [failed_start(1), failed_start(2), task(3, up=None, status="PENDING")]
    assert cb.failed_tasks(1, tasks, {tasks[1].task_arn}) == 2


def test_stage_2_restarts_at_zero_and_counts_health_check_failures() -> None:
    running = task(1)
    assert cb.failed_tasks(2, [running, failed_start(2)], {failed_start(2).task_arn}) == 0
    sick = task(3, status="STOPPED", desired="STOPPED", stop_code="ServiceSchedulerInitiated",
                reason="Task failed container health checks")
    assert cb.failed_tasks(0, [running, sick], set()) == 1
