"""Exponential backoff, the one way the agent waits before trying again (control plane calls, reports,
containerd coming back, a task's clean-up)."""
from __future__ import annotations

import asyncio


class Backoff:
    def __init__(self, first: float, longest: float, factor: float = 2.0) -> None:
        self.first, self.longest, self.factor = first, longest, factor
        self.delay = first

    async def sleep(self) -> None:
        """Wait the current delay, then make the next one longer (up to `longest`)."""
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * self.factor, self.longest)

    def reset(self) -> None:
        self.delay = self.first
