"""Fargate Spot interruptions on demand (`fargo spot interrupt`): AWS never lets users trigger one, Fargo does,
so that a service's recovery can be rehearsed.

An interrupted task stops as AWS stops it: desired status STOPPED with stopCode SpotInterruption and the
reason AWS gives, so its containers get SIGTERM and, after their stopTimeout, SIGKILL (StopTask's path).
A service then replaces the task by itself.
"""
from __future__ import annotations

import asyncio
import math
import random

from fargo.control.capacity_providers import FARGATE_SPOT
from fargo.control.tasks import Tasks
from fargo.errors import InvalidParameterException
from fargo.protocol import stop_reasons as reasons


def how_many(candidates: int, count: int | None, fraction: float | None) -> int:
    """`count` tasks (at most all), a `fraction` of them rounded up, or all of them when neither is given."""
    if count is not None and fraction is not None:
        raise InvalidParameterException("Give either a count or a fraction of tasks to interrupt, not both.")
    if count is not None:
        if count < 1:
            raise InvalidParameterException("The count of tasks to interrupt must be at least 1.")
        return min(count, candidates)
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise InvalidParameterException("The fraction of tasks to interrupt must be above 0 and at most 1.")
        return min(candidates, math.ceil(fraction * candidates))
    return candidates


async def interrupt_spot_tasks(tasks: Tasks, cluster: str | None = None, service: str | None = None,
                               count: int | None = None, fraction: float | None = None,
                               rng: random.Random | None = None) -> list[dict]:
    """Interrupt RUNNING FARGATE_SPOT tasks of the cluster (of the service, when named), picked at random as
    AWS picks them; returns the stopped tasks' documents."""
    found = await asyncio.to_thread(tasks.clusters.get_active, cluster)
    docs = await asyncio.to_thread(tasks.ctx.store.live_task_docs, found["clusterArn"])
    candidates = [d for d in docs if d.get("capacityProviderName") == FARGATE_SPOT
                  and d["desiredStatus"] == "RUNNING" and d["lastStatus"] == "RUNNING"
                  and (service is None or d.get("group") == f"service:{service}")]
    chosen = (rng or random).sample(candidates, how_many(len(candidates), count, fraction))
    out = []
    for doc in chosen:
        stopped = await tasks.stop_task({"cluster": found["clusterArn"], "task": doc["taskArn"],
                                         "reason": reasons.SPOT_INTERRUPTED}, stop_code=reasons.SPOT_INTERRUPTION)
        out.append(stopped["task"])
    return out
