"""The service scheduler's planner: from a service, its tasks and the time, which tasks to start and to stop and
how the deployments move on (rolling-update bounds, task health, AZ spreading, completion, circuit breaker,
start throttle). Pure: plain dataclasses in, a Plan out, the same Plan for the same input; the loop
(`scheduler.py`) reads the store, asks, and applies the answer.

Each pass looks at one snapshot: starts use the room the snapshot leaves under maximumPercent, stops the
healthy tasks it has above minimumHealthyPercent; the next pass sees their effect.
"""
from __future__ import annotations

import enum
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from fargo.control.services import circuit_breaker, events
from fargo.control.services.throttle import StartThrottle
from fargo.protocol import stop_reasons as reasons

# A task none of whose essential containers has a health check counts as healthy this long after RUNNING.
HEALTHY_AFTER_SECONDS = float(os.environ.get("FARGO_SERVICE_HEALTHY_AFTER_SECONDS", "40"))

PRIMARY, ACTIVE = "PRIMARY", "ACTIVE"
IN_PROGRESS, COMPLETED, FAILED = "IN_PROGRESS", "COMPLETED", "FAILED"
DRAINING = "DRAINING"
_RUNNING, _STOPPED = "RUNNING", "STOPPED"
_PAST_RUNNING = frozenset({"DEACTIVATING", "STOPPING", "DEPROVISIONING"})  # on the way out, never back

# What a pass found, kept by the loop between passes so that an event is posted on a change, not every pass.
STEADY, BLOCKED, MOVING = "STEADY", "BLOCKED", "MOVING"


@dataclass(frozen=True)
class TaskView:
    """One task of the service, as the scheduler sees it in the store."""
    task_arn: str
    deployment_id: str     # its startedBy
    last_status: str       # PROVISIONING ... STOPPED
    desired_status: str
    health: str            # HEALTHY | UNHEALTHY | UNKNOWN (task healthStatus)
    has_health_checks: bool  # some essential container has a healthCheck
    availability_zone: str
    running_since: float | None   # startedAt
    created_at: float
    stopped_reason: str | None
    stop_code: str | None
    reached_running: bool  # was RUNNING at some point (startedAt set)


@dataclass(frozen=True)
class DeploymentView:
    id: str                # ecs-svc/<19 digits>
    status: str            # PRIMARY | ACTIVE
    desired_count: int     # the service desiredCount for PRIMARY; what the planner set for ACTIVE
    rollout_state: str     # IN_PROGRESS | COMPLETED | FAILED
    failed_tasks: int
    created_at: float
    next_attempt_at: float  # throttle: no start before this
    consecutive_start_failures: int
    rollout_state_reason: str = ""  # "" in: the planner writes the usual text for the state


@dataclass(frozen=True)
class ServiceView:
    name: str
    desired_count: int
    maximum_percent: int
    minimum_healthy_percent: int
    circuit_breaker_enable: bool
    circuit_breaker_rollback: bool
    health_check_grace_seconds: int
    zones: list[str]       # AZs of the service's subnets, in order
    status: str            # ACTIVE | DRAINING
    deployments: list[DeploymentView]   # PRIMARY first
    last_completed_deployment_id: str | None
    seen_stopped: frozenset[str]        # task ARNs whose stop the planner has already counted
    condition: str | None = None        # the last Plan's condition; None: not kept, so no events on its changes


@dataclass(frozen=True)
class Plan:
    start: list[tuple[str, str]]        # (deployment id, availability zone) for each task to start
    stop: list[tuple[str, str]]         # (task arn, reason) to stop with stopCode ServiceSchedulerInitiated
    deployments: list[DeploymentView]   # the new deployment list (finished ones removed; rollback added)
    events: list[str]                   # event messages, oldest first (the store prepends, newest first)
    newly_counted_stops: frozenset[str]
    rollback_to: str | None             # deployment id rolled back to (S1 makes the new PRIMARY from it)
    inactive: bool                      # DRAINING service with no tasks left: becomes INACTIVE
    condition: str = MOVING             # STEADY | BLOCKED | MOVING: keep it for the next pass's ServiceView
    replaced_unhealthy: int = 0         # starts that replace tasks stopped for failed health checks


class Health(enum.Enum):
    HEALTHY = "HEALTHY"      # counts toward minimumHealthyPercent
    STARTING = "STARTING"    # not yet: pending, in its first seconds, unknown, or unhealthy within the grace period
    UNHEALTHY = "UNHEALTHY"  # failed its health checks after the grace period: to be replaced


def task_health(task: TaskView, now: float, grace_seconds: float) -> Health:
    if task.last_status != _RUNNING or task.running_since is None:
        return Health.STARTING
    up = now - task.running_since
    if not task.has_health_checks:
        return Health.HEALTHY if up >= HEALTHY_AFTER_SECONDS else Health.STARTING
    if task.health == "HEALTHY":
        return Health.HEALTHY
    if task.health == "UNHEALTHY" and up >= grace_seconds:
        return Health.UNHEALTHY
    return Health.STARTING


def upper_bound(desired: int, maximum_percent: int) -> int:
    """Most tasks PENDING or RUNNING across all deployments."""
    return desired * maximum_percent // 100


def lower_bound(desired: int, minimum_healthy_percent: int) -> int:
    """Fewest healthy RUNNING tasks across all deployments."""
    return -(-desired * minimum_healthy_percent // 100)


def is_live(task: TaskView) -> bool:
    """Counts toward the bounds: on its way to RUNNING or there, and nobody asked it to stop."""
    return (task.last_status != _STOPPED and task.last_status not in _PAST_RUNNING
            and task.desired_status != _STOPPED)


def plan(service: ServiceView, tasks: list[TaskView], now: float) -> Plan:
    newly = frozenset(t.task_arn for t in tasks
                      if t.last_status == _STOPPED and t.task_arn not in service.seen_stopped)
    by_deployment: dict[str, list[TaskView]] = {}
    for task in tasks:
        by_deployment.setdefault(task.deployment_id, []).append(task)
    counted = [_count_stops(d, by_deployment.get(d.id, []), newly, now) for d in service.deployments]
    notes: list[str] = []
    before, primary = service.deployments[0], counted[0]
    launching = service.status != DRAINING and primary.rollout_state != FAILED
    if launching and not _throttle(before).holds(now) and _throttle(primary).holds(now):
        notes.append(events.unable_to_start(service.name))
    if (launching and primary.rollout_state == IN_PROGRESS and service.circuit_breaker_enable
            and circuit_breaker.tripped(primary.failed_tasks, service.desired_count)):
        return _trip(service, counted, newly, notes, now)
    return _Pass(service, counted, tasks, now).plan(newly, notes)


def _throttle(d: DeploymentView) -> StartThrottle:
    return StartThrottle(d.consecutive_start_failures, d.next_attempt_at)


def _count_stops(d: DeploymentView, its: list[TaskView], newly: frozenset[str], now: float) -> DeploymentView:
    """The deployment's failedTasks and throttle after the stops this pass sees for the first time."""
    throttle = _throttle(d).after_success([t.running_since for t in its
                                           if t.reached_running and t.running_since is not None])
    throttle = throttle.after_failures(
        sum(1 for t in its if t.task_arn in newly and circuit_breaker.failed_to_start(t)), now)
    return replace(d, failed_tasks=circuit_breaker.failed_tasks(d.failed_tasks, its, newly),
                   consecutive_start_failures=throttle.consecutive_failures,
                   next_attempt_at=throttle.next_attempt_at)


def _trip(service: ServiceView, counted: list[DeploymentView], newly: frozenset[str], notes: list[str],
          now: float) -> Plan:
    """The PRIMARY failed: it launches no more; with rollback, a PRIMARY with the last COMPLETED deployment's
    id takes over (its tasks, if any are left, are that PRIMARY's) and the failed one drains as ACTIVE."""
    failed = replace(counted[0], rollout_state=FAILED, rollout_state_reason=events.CIRCUIT_BREAKER_FAILED)
    notes.append(events.circuit_breaker_failed(service.name, failed.id))
    target = service.last_completed_deployment_id
    if not (service.circuit_breaker_rollback and target and target != failed.id):
        return Plan(start=[], stop=[], deployments=[failed, *counted[1:]], events=notes, newly_counted_stops=newly,
                    rollback_to=None, inactive=False)
    back = DeploymentView(id=target, status=PRIMARY, desired_count=service.desired_count, rollout_state=IN_PROGRESS,
                          failed_tasks=0, created_at=now, next_attempt_at=now, consecutive_start_failures=0,
                          rollout_state_reason=events.rolling_back_reason(target))
    notes.append(events.rolling_back(service.name, target))
    rest = [replace(failed, status=ACTIVE), *(d for d in counted[1:] if d.id != target)]
    return Plan(start=[], stop=[], deployments=[back, *rest], events=notes, newly_counted_stops=newly,
                rollback_to=target, inactive=False)


class _Pass:
    """One pass over a snapshot: the service's live tasks sorted by deployment and health."""

    def __init__(self, service: ServiceView, counted: list[DeploymentView], tasks: list[TaskView],
                 now: float) -> None:
        self.service, self.primary, self.olds = service, counted[0], counted[1:]
        self.draining = service.status == DRAINING
        self.desired = 0 if self.draining else service.desired_count
        self.present = [t for t in tasks if t.last_status != _STOPPED]
        self.live = [t for t in self.present if is_live(t)]
        self.health = {t.task_arn: task_health(t, now, service.health_check_grace_seconds) for t in self.live}
        self.mine = [t for t in self.live if t.deployment_id == self.primary.id]
        self.theirs = [t for t in self.live if t.deployment_id != self.primary.id]
        self.launching = not self.draining and self.primary.rollout_state != FAILED
        self.throttled = _throttle(self.primary).holds(now)
        self.rank = _zone_rank(service.zones)

    def of(self, group: list[TaskView], *health: Health) -> list[TaskView]:
        return [t for t in group if self.health[t.task_arn] in health]

    def plan(self, newly: frozenset[str], notes: list[str]) -> Plan:
        s, primary = self.service, self.primary
        ok = self.of(self.mine, Health.HEALTHY, Health.STARTING)
        need = max(0, self.desired - len(ok))
        room = max(0, upper_bound(self.desired, s.maximum_percent) - len(self.live))
        n_start = min(need, room) if self.launching and not self.throttled else 0
        start = [(primary.id, az) for az in _spread(n_start, s.zones, ok)]
        stop, replaced = self._stops(n_start, notes)

        steady = (not self.draining and not start and not stop and len(self.present) == self.desired
                  and len(self.of(self.mine, Health.HEALTHY)) == self.desired)
        work = need > 0 or len(ok) > self.desired or bool(self.theirs) or bool(self.of(self.mine, Health.UNHEALTHY))
        waiting = (len(self.present) > len(self.live) or self.throttled or not self.launching
                   or bool(self.of(self.live, Health.STARTING)))
        condition = (STEADY if steady else BLOCKED if work and not start and not stop and not waiting
                     else MOVING)
        deployments = self._deployments(stop)
        if steady and primary.rollout_state == IN_PROGRESS:
            deployments = [replace(deployments[0], rollout_state=COMPLETED,
                                   rollout_state_reason=events.completed(primary.id))]
            notes += [events.deployment_completed(s.name, primary.id), events.steady_state(s.name)]
        elif steady and primary.rollout_state == COMPLETED and s.condition not in (None, STEADY):
            notes.append(events.steady_state(s.name))
        if condition == BLOCKED and s.condition not in (None, BLOCKED):
            notes.append(events.deployment_configuration_blocked(s.name))
        return Plan(start=start, stop=stop, deployments=deployments, events=notes, newly_counted_stops=newly,
                    rollback_to=None, inactive=self.draining and not self.present, condition=condition,
                    replaced_unhealthy=replaced)

    def _stops(self, n_start: int, notes: list[str]) -> tuple[list[tuple[str, str]], int]:
        """(task arn, reason) to stop, and how many of the starts replace unhealthy tasks."""
        scaling = reasons.scaling_activity(self.primary.id)
        if self.draining:
            return [(t.task_arn, scaling) for t in sorted(self.live, key=_age)], 0
        stop: list[tuple[str, str]] = []
        mine_load = Counter(t.availability_zone for t in self.mine)
        all_load = Counter(t.availability_zone for t in self.live)
        ok = self.of(self.mine, Health.HEALTHY, Health.STARTING)
        replaced = 0
        bad = self.of(self.mine, Health.UNHEALTHY)
        if self.launching and bad:
            # replaced now (maximumPercent left room) go at once; the others one at a time
            covered = min(len(bad), max(0, len(ok) + n_start + len(bad) - self.desired))
            if covered == 0 and len(self.present) == len(self.live):
                covered = 1
            for t in _pick(bad, covered, mine_load, self.rank):
                all_load[t.availability_zone] -= 1
                stop.append((t.task_arn, reasons.HEALTH_CHECKS_FAILED))
                notes.append(events.failed_health_checks(self.service.name, events.task_id(t.task_arn)))
            replaced = min(covered, n_start)
        budget = (len(self.of(self.live, Health.HEALTHY))
                  - lower_bound(self.desired, self.service.minimum_healthy_percent))
        if self.launching:
            # old deployments: the ones not (yet) healthy cost nothing; healthy ones within minimumHealthyPercent
            not_healthy = self.of(self.theirs, Health.STARTING, Health.UNHEALTHY)
            chosen = _pick(not_healthy, len(not_healthy), all_load, self.rank)
            healthy = self.of(self.theirs, Health.HEALTHY)
            taken = _pick(healthy, max(0, min(len(healthy), budget)), all_load, self.rank)
            budget -= len(taken)
            stop += [(t.task_arn, scaling) for t in chosen + taken]
        surplus = len(ok) - self.desired
        if surplus > 0:
            # scaled in: starting tasks first, then healthy ones within minimumHealthyPercent
            first = _pick(self.of(self.mine, Health.STARTING), surplus, mine_load, self.rank)
            then = _pick(self.of(self.mine, Health.HEALTHY), max(0, min(surplus - len(first), budget)),
                         mine_load, self.rank)
            stop += [(t.task_arn, scaling) for t in first + then]
        return stop, replaced

    def _deployments(self, stop: list[tuple[str, str]]) -> list[DeploymentView]:
        """PRIMARY with the service's count; each ACTIVE with the live tasks it keeps, gone once it has none."""
        stopping = {arn for arn, _ in stop}
        keeps = Counter(t.deployment_id for t in self.live if t.task_arn not in stopping)
        present = {t.deployment_id for t in self.present}
        out = [_with_reason(replace(self.primary, desired_count=self.desired))]
        out += [_with_reason(replace(d, desired_count=0 if self.draining else keeps[d.id]))
                for d in self.olds if d.id in present]
        return out


def _with_reason(d: DeploymentView) -> DeploymentView:
    if d.rollout_state_reason:
        return d
    text = {IN_PROGRESS: events.in_progress(d.id), COMPLETED: events.completed(d.id),
            FAILED: events.CIRCUIT_BREAKER_FAILED}.get(d.rollout_state, "")
    return replace(d, rollout_state_reason=text)


def _age(t: TaskView) -> tuple[float, str]:
    return t.created_at, t.task_arn


def _zone_rank(zones: Sequence[str]) -> Callable[[str], tuple[int, str]]:
    order = {z: i for i, z in enumerate(zones)}
    return lambda az: (order.get(az, len(order)), az)


def _spread(n: int, zones: Sequence[str], staying: list[TaskView]) -> list[str]:
    """An AZ for each of n starts: the one with the fewest of the PRIMARY's tasks that stay (old deployments'
    and unhealthy ones are on their way out), then the first in the subnets' order. No zones known: ""
    (the loop picks any subnet)."""
    if not zones:
        return [""] * n
    load = Counter(t.availability_zone for t in staying)
    out = []
    for _ in range(n):
        az = min(zones, key=lambda z: (load[z], zones.index(z)))
        load[az] += 1
        out.append(az)
    return out


def _pick(candidates: list[TaskView], count: int, load: Counter[str],
          rank: Callable[[str], tuple[int, str]]) -> list[TaskView]:
    """`count` of the candidates, each from the AZ that has the most (by `load`, which it updates), then the
    first AZ in order, then the oldest task."""
    left = list(candidates)
    chosen = []
    for _ in range(min(count, len(left))):
        task = min(left, key=lambda t: (-load[t.availability_zone], rank(t.availability_zone), _age(t)))
        left.remove(task)
        load[task.availability_zone] -= 1
        chosen.append(task)
    return chosen
