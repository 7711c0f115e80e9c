"""The deployment circuit breaker: a deployment's failedTasks and when it trips (threshold formula since
January 2024). Stage 1, until a task of the deployment reaches RUNNING: tasks that stopped before reaching it,
each counted once. Stage 2, after: the count restarts at 0 and counts tasks stopped for failed health checks.
"""
from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from fargo.protocol import stop_reasons as reasons

if TYPE_CHECKING:
    from fargo.control.services.rollout import TaskView

MIN_THRESHOLD = 3
MAX_THRESHOLD = 200
# Stops that say nothing about the deployment: the scheduler's own, the user's, a Spot interruption.
_NOT_FAILURES = frozenset({reasons.SERVICE_SCHEDULER_INITIATED, reasons.USER_INITIATED,
                           reasons.SPOT_INTERRUPTION})


def failure_threshold(desired_count: int) -> int:
    """0.5 × desiredCount rounded up, clamped to [3, 200]."""
    return min(MAX_THRESHOLD, max(MIN_THRESHOLD, math.ceil(desired_count / 2)))


def failed_to_start(task: TaskView) -> bool:
    return task.last_status == "STOPPED" and not task.reached_running and task.stop_code not in _NOT_FAILURES


def failed_health_checks(task: TaskView) -> bool:
    return task.last_status == "STOPPED" and task.stopped_reason == reasons.HEALTH_CHECKS_FAILED


def failed_tasks(previous: int, deployment_tasks: Sequence[TaskView], newly_stopped: Collection[str]) -> int:
    """The deployment's failedTasks after this pass. Stage 2 is counted from the tasks themselves, so the
    restart at 0 needs no memory of when the stage began."""
    if any(t.reached_running for t in deployment_tasks):
        return sum(1 for t in deployment_tasks if failed_health_checks(t))
    return previous + sum(1 for t in deployment_tasks if t.task_arn in newly_stopped and failed_to_start(t))


def tripped(failed: int, desired_count: int) -> bool:
    return failed >= failure_threshold(desired_count)
