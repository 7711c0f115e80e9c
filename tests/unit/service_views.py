"""Builders of the rollout planner's views for the service unit tests."""
from __future__ import annotations

from fargo.control.services.rollout import DeploymentView, ServiceView, TaskView

NEW, OLD = "ecs-svc/2000000000000000000", "ecs-svc/1000000000000000000"
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
NOW = 10_000.0


def task(n: int, deployment: str = NEW, *, status: str = "RUNNING", desired: str = "RUNNING",
         az: str = ZONES[0], up: float | None = 100.0, checks: bool = False, health: str = "UNKNOWN",
         stop_code: str | None = None, reason: str | None = None, reached: bool | None = None) -> TaskView:
    """Task n, RUNNING for `up` seconds at NOW unless said otherwise (up None: never ran)."""
    running_since = None if up is None else NOW - up
    return TaskView(task_arn=f"arn:aws:ecs:us-east-1:000000000000:task/c/{n:032x}", deployment_id=deployment,
                    last_status=status, desired_status=desired, health=health, has_health_checks=checks,
                    availability_zone=az, running_since=running_since, created_at=NOW - 1000 + n,
                    stopped_reason=reason, stop_code=stop_code,
                    reached_running=running_since is not None if reached is None else reached)


def failed_start(n: int, deployment: str = NEW, az: str = ZONES[0]) -> TaskView:
    return task(n, deployment, status="STOPPED", desired="STOPPED", az=az, up=None, stop_code="TaskFailedToStart",
                reason="Task failed to start")


def deployment(id: str = NEW, *, status: str = "PRIMARY", desired: int = 0, state: str = "IN_PROGRESS",
               failed: int = 0, next_attempt_at: float = 0.0, failures: int = 0) -> DeploymentView:
    return DeploymentView(id=id, status=status, desired_count=desired, rollout_state=state, failed_tasks=failed,
                          created_at=NOW - 1000, next_attempt_at=next_attempt_at,
                          consecutive_start_failures=failures)


def service(desired: int, *deployments: DeploymentView, max_percent: int = 200, min_percent: int = 100,
            breaker: bool = False, rollback: bool = False, grace: int = 0, zones: list[str] | None = None,
            status: str = "ACTIVE", last_completed: str | None = None, seen: frozenset[str] = frozenset(),
            condition: str | None = "MOVING") -> ServiceView:
    return ServiceView(name="web", desired_count=desired, maximum_percent=max_percent,
                       minimum_healthy_percent=min_percent, circuit_breaker_enable=breaker,
                       circuit_breaker_rollback=rollback, health_check_grace_seconds=grace,
                       zones=ZONES if zones is None else zones, status=status,
                       deployments=list(deployments) or [deployment(desired=desired)],
                       last_completed_deployment_id=last_completed, seen_stopped=seen, condition=condition)


def rolling(desired: int, **kw: object) -> ServiceView:
    """A new PRIMARY replacing OLD (COMPLETED, now ACTIVE)."""
    return service(desired, deployment(NEW, desired=desired),
                   deployment(OLD, status="ACTIVE", desired=desired, state="COMPLETED"), **kw)  # type: ignore[arg-type]


def old_tasks(count: int, start: int = 100) -> list[TaskView]:
    return [task(start + i, OLD, az=ZONES[i % 3]) for i in range(count)]
