"""The start throttle: a deployment whose tasks keep stopping before they reach RUNNING waits longer and longer
between launches, up to 15 minutes, and never gives up (ECS "service throttle logic"; the curve is Fargo's,
the reference's suggestion: no delay for the first 2 failures, then 30 s doubling).
"""
from __future__ import annotations

from dataclasses import dataclass

FREE_FAILURES = 2
FIRST_DELAY_SECONDS = 30.0
MAX_DELAY_SECONDS = 900.0
_MAX_DOUBLINGS = 16  # far past the cap; keeps 2**n a small number


def delay_after(consecutive_failures: int) -> float:
    """Seconds to wait before the next launch after this many consecutive start failures."""
    if consecutive_failures <= FREE_FAILURES:
        return 0.0
    doublings = min(consecutive_failures - FREE_FAILURES - 1, _MAX_DOUBLINGS)
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2.0 ** doublings)


@dataclass(frozen=True)
class StartThrottle:
    """A deployment's throttle as it stores it: its failure streak and the earliest time of its next launch."""
    consecutive_failures: int
    next_attempt_at: float

    def holds(self, now: float) -> bool:
        return now < self.next_attempt_at

    def last_failure_at(self) -> float:
        """When the last failure was counted (derived, so that nothing more needs storing)."""
        return self.next_attempt_at - delay_after(self.consecutive_failures)

    def after_failures(self, failures: int, now: float) -> StartThrottle:
        if failures <= 0:
            return self
        streak = self.consecutive_failures + failures
        return StartThrottle(streak, now + delay_after(streak))

    def after_success(self, running_since: list[float]) -> StartThrottle:
        """A task that reached RUNNING after the last counted failure ends the streak (tasks that started
        before it say nothing about whether launches work now)."""
        if self.consecutive_failures and any(t >= self.last_failure_at() for t in running_since):
            return StartThrottle(0, self.next_attempt_at)
        return self
