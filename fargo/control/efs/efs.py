"""Amazon EFS on Fargo's control plane, in one object: the EFS handlers, the resume at start, the close at stop.

Handlers run their store and file work in a thread, off the event loop. A change of mount targets changes the
members of security groups; `on_change` is then called (after the commit) so that agents waiting in this
process look again at once, as `Network` does for rule changes.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fargo.control.context import ControlContext
from fargo.control.efs.access_points import AccessPoints
from fargo.control.efs.directories import FileSystemDirectories
from fargo.control.efs.file_systems import FileSystems
from fargo.control.efs.metering import SizeMeter, metered_size
from fargo.control.efs.mount_targets import MountTargets
from fargo.control.efs.resource_tags import ResourceTags
from fargo.control.vpcs.zones import AvailabilityZones
from fargo.store.efs_store import EfsStore

log = logging.getLogger("fargo.control")

# The operations whose success changed which ENIs are members of which security groups.
_CHANGE_GROUPS = frozenset({"CreateMountTarget", "DeleteMountTarget", "ModifyMountTargetSecurityGroups"})

SyncHandler = Callable[[dict], dict]
Handler = Callable[[dict], Awaitable[dict]]
STOP_WAIT_SECONDS = 5.0  # for directory removals under way; the rest is redone at the next start


class Efs:
    def __init__(self, ctx: ControlContext, on_change: Callable[[], None] = lambda: None) -> None:
        self.ctx = ctx
        self.on_change = on_change
        self.store = EfsStore(ctx.store)
        self.directories = FileSystemDirectories(ctx.config.efs_data_root)
        self.meter = SizeMeter(lambda fs_id: metered_size(self.directories.path(fs_id)))
        zones = AvailabilityZones(ctx.config)
        self.file_systems = FileSystems(ctx, self.store, self.directories, self.meter, zones)
        self._operations: dict[str, SyncHandler] = {}
        for part in (self.file_systems, AccessPoints(ctx, self.store),
                     MountTargets(ctx, self.store, zones), ResourceTags(self.store)):
            self._operations.update(part.handlers())

    def resume(self) -> None:
        """Finish file system creations and removals a stop cut short (sync: called at start, in a thread)."""
        self.file_systems.resume()

    async def close(self) -> None:
        await asyncio.to_thread(self.directories.wait, STOP_WAIT_SECONDS)

    def handlers(self) -> dict[str, Handler]:
        """EFS operation name -> handler of the parsed request members, returning the output members."""
        return {name: self._handler(name, operation) for name, operation in self._operations.items()}

    def _handler(self, name: str, operation: SyncHandler) -> Handler:
        async def handle(p: dict) -> dict:
            out = await asyncio.to_thread(operation, p)
            if name in _CHANGE_GROUPS:
                self._changed()
            return out
        return handle

    def _changed(self) -> None:
        try:
            self.on_change()
        except Exception:  # noqa: BLE001 - the change is committed; agents also poll the store
            log.exception("on_change failed after a mount target change")
