"""The shape every synchronous control-plane API handler takes on the event loop: its store and file work in a
thread, and (for changes agents must hear of at once) a callback after the commit."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("fargo.control")

SyncHandler = Callable[[dict], dict]
Handler = Callable[[dict], Awaitable[dict]]


def in_thread(operation: SyncHandler, *, check: Callable[[dict], None] | None = None,
              changed: Callable[[], None] | None = None) -> Handler:
    """`operation` off the event loop; `check` first (on the loop), `changed` after it succeeded."""
    async def handle(p: dict) -> dict:
        if check is not None:
            check(p)
        out = await asyncio.to_thread(operation, p)
        if changed is not None:
            changed()
        return out
    return handle


def announce_change(on_change: Callable[[], None], what: str) -> None:
    """Tell waiting agents of a committed change; a failure is logged (they also poll the store)."""
    try:
        on_change()
    except Exception:  # noqa: BLE001 - the change is committed
        log.exception("on_change failed after %s", what)
