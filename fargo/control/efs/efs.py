"""Amazon EFS on Fargo's control plane, in one object: the EFS handlers, the resume at start, the close at stop.

Handlers run their store and file work in a thread, off the event loop. A change of mount targets changes the
members of security groups; `on_change` is then called (after the commit) so that agents waiting in this
process look again at once, as `Network` does for rule changes.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from fargo.control.context import ControlContext
from fargo.control.efs.access_points import AccessPoints
from fargo.control.efs.directories import FileSystemDirectories
from fargo.control.efs.file_systems import FileSystems
from fargo.control.efs.metering import SizeMeter, metered_size
from fargo.control.efs.mount_targets import MountTargets
from fargo.control.efs.resource_tags import ResourceTags
from fargo.control.threaded_handlers import Handler, SyncHandler, announce_change, in_thread
from fargo.control.vpcs.zones import AvailabilityZones
from fargo.store.efs_store import EfsStore


# The operations whose success changed which ENIs are members of which security groups.
_CHANGE_GROUPS = frozenset({"CreateMountTarget", "DeleteMountTarget", "ModifyMountTargetSecurityGroups"})

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
        return in_thread(operation, changed=self._changed if name in _CHANGE_GROUPS else None)

    def _changed(self) -> None:
        announce_change(self.on_change, "a mount target change")
