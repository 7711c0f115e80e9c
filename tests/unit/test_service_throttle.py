"""The start throttle: its curve, the earliest next launch, and what ends a failure streak."""
from __future__ import annotations

import pytest

from fargo.control.services.throttle import StartThrottle, delay_after


@pytest.mark.parametrize(("failures", "delay"), [(0, 0), (1, 0), (2, 0), (3, 30), (4, 60), (5, 120), (6, 240),
                                                 (7, 480), (8, 900), (9, 900), (10_000, 900)])
def test_no_delay_for_two_failures_then_30_seconds_doubling_up_to_15_minutes(failures: int, delay: float) -> None:
    assert delay_after(failures) == delay


def test_failures_push_the_next_attempt() -> None:
    t = StartThrottle(2, 0.0).after_failures(1, 100.0)
    assert t == StartThrottle(3, 130.0)
    assert t.holds(129.9) and not t.holds(130.0)
    assert t.after_failures(0, 200.0) is t


def test_a_task_running_since_the_last_failure_ends_the_streak() -> None:
    t = StartThrottle(3, 130.0)  # its last failure counted at 100
    assert t.after_success([99.0]) == t
    assert t.after_success([100.5]).consecutive_failures == 0
