"""Token buckets per caller, as the ECS agent's tollbooth limiter keeps them: a steady rate and a burst."""
from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

# Past this many callers, buckets that have refilled (idle callers) are dropped, so strangers cannot grow it.
_PRUNE_ABOVE = 4096


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RequestLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}

    def allow(self, caller: Hashable) -> bool:
        """Take one token from the caller's bucket; False when it is empty (answer 429)."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_ABOVE:
                self._prune(now)
            bucket = self._buckets[caller] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def forget(self, caller: Hashable) -> None:
        self._buckets.pop(caller, None)

    def _prune(self, now: float) -> None:
        for caller, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst:
                del self._buckets[caller]
