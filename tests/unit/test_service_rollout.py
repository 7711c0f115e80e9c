"""The rollout planner: rolling-update bounds, health, replacement, AZ spreading, completion, the events on
changes only, circuit breaker and rollback, throttle, DRAINING (reference sections 2 and 3)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from fargo.control.services import events, rollout
from fargo.control.services.rollout import plan
from tests.unit.service_views import (NEW, NOW, OLD, ZONES, deployment, failed_start, old_tasks, rolling, service,
                                      task)


@pytest.fixture(autouse=True)
def _aws_healthy_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests reason in AWS's 40 s; the e2e Fargo's shorter setting may be in the environment."""
    monkeypatch.setattr(rollout, "HEALTHY_AFTER_SECONDS", 40.0)

SCALING = f"Scaling activity initiated by (deployment {NEW})"
BLOCKED = events.deployment_configuration_blocked("web")


def _stopping(stopped: list[str], tasks: list[rollout.TaskView]) -> list[rollout.TaskView]:
    """The tasks as the next pass sees them once the loop asked the chosen ones to stop."""
    return [replace(t, desired_status="STOPPED") if t.task_arn in stopped else t for t in tasks]


# --- the reference's examples of the bounds ---

@pytest.mark.parametrize(("desired", "percent", "upper", "lower"),
                         [(4, 200, 8, None), (4, 50, None, 2), (2, 75, None, 2), (3, 125, 3, None), (0, 200, 0, 0)])
def test_bounds_are_floor_of_maximum_and_ceiling_of_minimum(desired: int, percent: int, upper: int | None,
                                                            lower: int | None) -> None:
    if upper is not None:
        assert rollout.upper_bound(desired, percent) == upper
    if lower is not None:
        assert rollout.lower_bound(desired, percent) == lower


def test_desired_4_maximum_200_starts_4_new_before_stopping_any_old() -> None:
    p = plan(rolling(4, max_percent=200, min_percent=100), old_tasks(4), NOW)
    assert [d for d, _ in p.start] == [NEW] * 4
    assert p.stop == []


def test_desired_4_minimum_50_stops_2_old_first_then_starts_2() -> None:
    s, tasks = rolling(4, max_percent=100, min_percent=50), old_tasks(4)
    first = plan(s, tasks, NOW)
    assert first.start == [] and len(first.stop) == 2
    assert {reason for _, reason in first.stop} == {SCALING}
    second = plan(s, _stopping([arn for arn, _ in first.stop], tasks), NOW)
    assert len(second.start) == 2 and second.stop == []


def test_minimum_75_with_desired_2_can_stop_none() -> None:
    p = plan(rolling(2, max_percent=200, min_percent=75), old_tasks(2), NOW)
    assert p.stop == [] and len(p.start) == 2


def test_maximum_125_with_desired_3_can_start_none_and_says_the_configuration_blocks_it() -> None:
    s = rolling(3, max_percent=125, min_percent=100)
    p = plan(s, old_tasks(3), NOW)
    assert p.start == [] and p.stop == []
    assert p.condition == rollout.BLOCKED
    assert p.events == [BLOCKED]
    assert BLOCKED.startswith("(service web) was unable to stop or start tasks during a deployment")


def test_the_configuration_event_is_posted_once_not_every_pass() -> None:
    s = rolling(2, max_percent=100, min_percent=75, condition=rollout.BLOCKED)
    assert plan(s, old_tasks(2), NOW).events == []
    untracked = rolling(2, max_percent=100, min_percent=75, condition=None)
    assert plan(untracked, old_tasks(2), NOW).events == []


def test_waiting_for_new_tasks_to_become_healthy_is_not_blocked() -> None:
    tasks = old_tasks(2) + [task(1, up=None, status="PENDING"), task(2, up=5.0)]
    p = plan(rolling(2, max_percent=200, min_percent=100), tasks, NOW)
    assert p.start == [] and p.stop == [] and p.condition == rollout.MOVING and p.events == []


def test_once_new_tasks_are_healthy_the_old_ones_stop_within_minimum_healthy() -> None:
    tasks = old_tasks(4) + [task(i, az=ZONES[i % 3]) for i in range(4)]
    p = plan(rolling(4, max_percent=200, min_percent=100), tasks, NOW)
    assert sorted(arn for arn, _ in p.stop) == sorted(t.task_arn for t in old_tasks(4))
    assert p.start == []


def test_old_tasks_not_yet_healthy_stop_without_counting_against_minimum_healthy() -> None:
    tasks = [task(100, OLD), task(101, OLD, up=None, status="PENDING")]
    p = plan(rolling(2, max_percent=100, min_percent=50), tasks, NOW)  # lower 1: the healthy one stays
    assert [arn for arn, _ in p.stop] == [tasks[1].task_arn]


# --- health ---

def test_without_health_checks_a_task_is_healthy_40_seconds_after_running() -> None:
    s = rolling(1, max_percent=200, min_percent=100)
    young = old_tasks(1) + [task(1, up=39.0)]
    assert plan(s, young, NOW).stop == []
    grown = old_tasks(1) + [task(1, up=40.0)]
    assert [arn for arn, _ in plan(s, grown, NOW).stop] == [old_tasks(1)[0].task_arn]


def test_the_healthy_delay_comes_from_the_module_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollout, "HEALTHY_AFTER_SECONDS", 1.0)
    tasks = old_tasks(1) + [task(1, up=2.0)]
    assert len(plan(rolling(1, max_percent=200), tasks, NOW).stop) == 1


def test_with_health_checks_a_task_counts_once_healthy_whatever_its_age() -> None:
    s = rolling(1, max_percent=200, min_percent=100)
    assert plan(s, old_tasks(1) + [task(1, up=500.0, checks=True, health="UNKNOWN")], NOW).stop == []
    assert len(plan(s, old_tasks(1) + [task(1, up=1.0, checks=True, health="HEALTHY")], NOW).stop) == 1


def test_unhealthy_within_the_grace_period_is_not_yet_replaced() -> None:
    s = service(1, deployment(desired=1, state="COMPLETED"), grace=60)
    p = plan(s, [task(1, up=30.0, checks=True, health="UNHEALTHY")], NOW)
    assert p.start == [] and p.stop == []


def test_unhealthy_after_the_grace_period_is_started_over_first_when_maximum_allows() -> None:
    s = service(3, deployment(desired=3, state="COMPLETED"), grace=60, max_percent=200)
    sick = task(1, az=ZONES[1], up=61.0, checks=True, health="UNHEALTHY")
    well = [task(2, az=ZONES[0], checks=True, health="HEALTHY"), task(3, az=ZONES[2], checks=True, health="HEALTHY")]
    p = plan(s, [sick, *well], NOW)
    assert p.start == [(NEW, ZONES[1])]
    assert p.stop == [(sick.task_arn, "Task failed container health checks")]
    assert p.replaced_unhealthy == 1
    assert p.events == [f"(service web) (task {1:032x}) failed container health checks."]


def test_unhealthy_tasks_stop_one_at_a_time_when_maximum_leaves_no_room() -> None:
    s = service(2, deployment(desired=2, state="COMPLETED"), max_percent=100, min_percent=50)
    sick = [task(i, up=100.0, checks=True, health="UNHEALTHY", az=ZONES[i]) for i in (1, 2)]
    p = plan(s, sick, NOW)
    assert p.start == [] and len(p.stop) == 1 and p.replaced_unhealthy == 0
    following = plan(s, _stopping([p.stop[0][0]], sick), NOW)
    assert len(following.start) == 1 and following.stop == []  # the next waits for the first to be gone


# --- replacement and spreading ---

def test_a_stopped_task_is_replaced_in_its_availability_zone() -> None:
    s = service(3, deployment(desired=3, state="COMPLETED"))
    gone = task(3, az=ZONES[2], status="STOPPED", desired="STOPPED", stop_code="EssentialContainerExited")
    p = plan(s, [task(1, az=ZONES[0]), task(2, az=ZONES[1]), gone], NOW)
    assert p.start == [(NEW, ZONES[2])]
    assert p.newly_counted_stops == {gone.task_arn}


def test_a_task_being_stopped_by_the_user_is_replaced_at_once() -> None:
    s = service(1, deployment(desired=1, state="COMPLETED"))
    assert plan(s, [task(1, desired="STOPPED")], NOW).start == [(NEW, ZONES[0])]


def test_starts_spread_over_three_zones() -> None:
    p = plan(service(6), [], NOW)
    assert [az for _, az in p.start] == ZONES + ZONES


def test_starts_fill_the_emptiest_zones_first() -> None:
    tasks = [task(1, az=ZONES[0]), task(2, az=ZONES[0]), task(3, az=ZONES[1])]
    p = plan(service(6, deployment(desired=6)), tasks, NOW)
    assert [az for _, az in p.start] == [ZONES[2], ZONES[1], ZONES[2]]


def test_scale_in_stops_from_the_fullest_zone_oldest_first() -> None:
    tasks = [task(1, az=ZONES[0]), task(2, az=ZONES[1]), task(3, az=ZONES[0]), task(4, az=ZONES[2])]
    p = plan(service(3, deployment(desired=3, state="COMPLETED"), min_percent=100), tasks, NOW)
    assert p.stop == [(tasks[0].task_arn, SCALING)]


def test_old_tasks_stop_from_the_fullest_zone() -> None:
    olds = [task(100, OLD, az=ZONES[1]), task(101, OLD, az=ZONES[0]), task(102, OLD, az=ZONES[1])]
    news = [task(i, az=ZONES[i]) for i in range(3)]
    p = plan(rolling(3, max_percent=200, min_percent=67), olds + news, NOW)  # lower 3: 3 of the 6 may stop
    assert [arn for arn, _ in p.stop] == [olds[0].task_arn, olds[1].task_arn, olds[2].task_arn]


def test_tasks_of_a_deployment_the_service_no_longer_has_are_stopped() -> None:
    stray = task(50, "ecs-svc/0000000000000000001")
    p = plan(service(1, deployment(desired=1, state="COMPLETED")), [task(1), stray], NOW)
    assert p.stop == [(stray.task_arn, SCALING)]


# --- completion and steady state ---

def test_completion_drops_the_old_deployments_and_posts_the_two_events_in_order() -> None:
    done = [task(100, OLD, status="STOPPED", desired="STOPPED", stop_code="ServiceSchedulerInitiated")]
    p = plan(rolling(2), done + [task(1), task(2, az=ZONES[1])], NOW)
    assert [(d.id, d.status, d.rollout_state) for d in p.deployments] == [(NEW, "PRIMARY", "COMPLETED")]
    assert p.deployments[0].rollout_state_reason == f"ECS deployment {NEW} completed."
    assert p.events == [f"(service web) (deployment {NEW}) deployment completed.",
                        "(service web) has reached a steady state."]
    assert p.condition == rollout.STEADY


def test_an_old_task_still_stopping_holds_completion() -> None:
    p = plan(rolling(1), [task(100, OLD, status="DEACTIVATING", desired="STOPPED"), task(1)], NOW)
    assert p.deployments[0].rollout_state == "IN_PROGRESS" and [d.id for d in p.deployments] == [NEW, OLD]
    assert p.events == []


def test_an_old_deployment_with_no_task_left_leaves_the_list() -> None:
    p = plan(rolling(2), [task(1, up=None, status="PENDING")], NOW)
    assert [d.id for d in p.deployments] == [NEW]
    assert p.deployments[0].rollout_state_reason == f"ECS deployment {NEW} in progress."


def test_steady_state_is_posted_again_after_a_replacement_only_on_the_change() -> None:
    done = deployment(desired=1, state="COMPLETED")
    assert plan(service(1, done, condition=rollout.MOVING), [task(1)], NOW).events == [events.steady_state("web")]
    assert plan(service(1, done, condition=rollout.STEADY), [task(1)], NOW).events == []


def test_desired_zero_with_one_deployment_is_stable() -> None:
    p = plan(service(0), [], NOW)
    assert p.start == [] and p.stop == [] and p.condition == rollout.STEADY
    assert p.deployments[0].rollout_state == "COMPLETED"
    again = plan(service(0, p.deployments[0], condition=p.condition), [], NOW)
    assert again.events == [] and again.condition == rollout.STEADY


def test_the_same_input_gives_the_same_plan() -> None:
    s, tasks = rolling(5, max_percent=150, min_percent=50), old_tasks(5)
    assert plan(s, tasks, NOW) == plan(s, tasks, NOW)


# --- circuit breaker ---

def test_three_start_failures_trip_the_breaker_at_desired_1() -> None:
    s = service(1, deployment(desired=1, failed=2), breaker=True)
    p = plan(s, [failed_start(1)], NOW)
    assert p.start == [] and p.rollback_to is None
    assert (p.deployments[0].rollout_state, p.deployments[0].failed_tasks) == ("FAILED", 3)
    assert p.deployments[0].rollout_state_reason == "ECS deployment circuit breaker: tasks failed to start."
    assert p.events[-1] == f"(service web) (deployment {NEW}) deployment failed: tasks failed to start."


def test_a_stop_is_counted_once() -> None:
    s = service(1, deployment(desired=1, failed=1), breaker=True, seen=frozenset({failed_start(1).task_arn}))
    p = plan(s, [failed_start(1)], NOW)
    assert p.deployments[0].failed_tasks == 1 and p.newly_counted_stops == frozenset()


def test_a_failed_deployment_launches_no_more() -> None:
    s = service(2, deployment(desired=2, state="FAILED", failed=3), breaker=True)
    p = plan(s, [], NOW)
    assert p.start == [] and p.events == [] and p.condition == rollout.MOVING


def test_without_the_breaker_failures_are_counted_but_never_trip() -> None:
    s = service(1, deployment(desired=1, failed=5))
    p = plan(s, [failed_start(1)], NOW)
    assert p.deployments[0].rollout_state == "IN_PROGRESS" and p.deployments[0].failed_tasks == 6


def test_rollback_makes_a_primary_with_the_last_completed_id_and_drains_the_failed_one() -> None:
    s = rolling(2, breaker=True, rollback=True, last_completed=OLD)
    s = replace(s, deployments=[replace(s.deployments[0], failed_tasks=2), *s.deployments[1:]])
    p = plan(s, old_tasks(2) + [failed_start(1)], NOW)
    assert p.rollback_to == OLD and p.start == [] and p.stop == []
    back, failed = p.deployments
    assert (back.id, back.status, back.rollout_state, back.desired_count) == (OLD, "PRIMARY", "IN_PROGRESS", 2)
    assert back.rollout_state_reason == f"ECS deployment circuit breaker: rolling back to deploymentId {OLD}."
    assert (failed.id, failed.status, failed.rollout_state) == (NEW, "ACTIVE", "FAILED")
    assert p.events == [f"(service web) (deployment {NEW}) deployment failed: tasks failed to start.",
                        f"(service web) rolling back to deployment {OLD}."]


def test_after_rollback_the_old_tasks_are_the_primary_s_and_it_completes_with_that_id() -> None:
    back = deployment(OLD, desired=2)
    failed = deployment(NEW, status="ACTIVE", state="FAILED", failed=3)
    p = plan(service(2, back, failed, breaker=True, rollback=True, last_completed=OLD), old_tasks(2), NOW)
    assert [d.id for d in p.deployments] == [OLD]
    assert p.events[0] == f"(service web) (deployment {OLD}) deployment completed."


def test_no_rollback_without_a_completed_deployment() -> None:
    s = service(1, deployment(desired=1, failed=2), breaker=True, rollback=True)
    p = plan(s, [failed_start(1)], NOW)
    assert p.rollback_to is None and [d.rollout_state for d in p.deployments] == ["FAILED"]


# --- throttle ---

def test_the_third_consecutive_start_failure_throttles_the_next_start_with_one_event() -> None:
    s = service(1, deployment(desired=1, failures=2, next_attempt_at=NOW - 5))
    p = plan(s, [failed_start(3)], NOW)
    assert p.start == []
    assert (p.deployments[0].consecutive_start_failures, p.deployments[0].next_attempt_at) == (3, NOW + 30)
    assert p.events == [events.unable_to_start("web")]
    held = replace(s, deployments=p.deployments, seen_stopped=p.newly_counted_stops)
    later = plan(held, [failed_start(3)], NOW + 10)
    assert later.start == [] and later.events == []
    assert plan(held, [failed_start(3)], NOW + 30).start == [(NEW, ZONES[0])]


def test_the_first_two_start_failures_are_retried_at_once() -> None:
    p = plan(service(1, deployment(desired=1)), [failed_start(1)], NOW)
    assert p.start == [(NEW, ZONES[0])] and p.events == []
    assert p.deployments[0].consecutive_start_failures == 1


def test_a_task_that_ran_and_exited_does_not_throttle() -> None:
    exited = task(1, status="STOPPED", desired="STOPPED", stop_code="EssentialContainerExited")
    p = plan(service(1, deployment(desired=1, failures=2, next_attempt_at=NOW - 50)), [exited], NOW)
    assert p.deployments[0].consecutive_start_failures == 2 and p.start == [(NEW, ZONES[0])]


# --- DRAINING ---

def test_draining_stops_every_task_and_sets_every_deployment_to_zero() -> None:
    s = rolling(2, status="DRAINING")
    tasks = old_tasks(1) + [task(1)]
    p = plan(s, tasks, NOW)
    assert p.start == [] and sorted(arn for arn, _ in p.stop) == sorted(t.task_arn for t in tasks)
    assert [d.desired_count for d in p.deployments] == [0, 0] and not p.inactive


def test_draining_becomes_inactive_once_no_task_is_left() -> None:
    stopping = plan(rolling(1, status="DRAINING"), [task(1, status="STOPPING", desired="STOPPED")], NOW)
    assert not stopping.inactive and stopping.stop == []
    gone = plan(rolling(1, status="DRAINING"), [task(1, status="STOPPED", desired="STOPPED")], NOW)
    assert gone.inactive and gone.events == []
