"""The network package's own threads for its blocking work (netlink, nft, namespaces).

The `*_async` functions of fargo.network run here, so short network work never queues behind slow storage
work in asyncio's default pool, and never runs on the event loop thread (pyroute2 refuses that).

A VPC's security-group filter is applied on a lane of its own (`run_filter_apply`): in a burst of starts the
pool holds a queue of ENIs to make, and an apply that waited behind them held back the connectivity of every
ENI it was to admit (100 tasks finished PROVISIONING together, about a second late).
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_WORKERS = 4
_pool: ThreadPoolExecutor | None = None
# nft transactions are serialised anyway (one libnftables lock): one thread is all the lane needs.
_filter_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="fargo-net")
    return _pool


async def run_blocking(call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`call(*args, **kwargs)` on the network pool, awaited from the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), functools.partial(call, *args, **kwargs))


async def run_filter_apply(call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`call(*args, **kwargs)` on the filter lane: never behind the pool's queue of ENIs."""
    global _filter_pool
    if _filter_pool is None:
        _filter_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fargo-filter")
    return await asyncio.get_running_loop().run_in_executor(_filter_pool, functools.partial(call, *args, **kwargs))
