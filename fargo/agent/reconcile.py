"""After a restart, remove from the host what belongs to no task this agent knows: containerd containers
and snapshots, task ENIs (namespaces and router ports), the routers of VPCs it keeps no task in, task cgroups
in every hierarchy, ephemeral volumes (mounts, loop devices, image files), and other mounts under the data
dir. Host-wide resources claimed by another live Fargo on this host are left alone (`host_claims`).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fargo.agent import host_claims, host_scan
from fargo.agent.task_cgroup import list_task_cgroups, remove_task_cgroup
from fargo.network.blocking_pool import run_blocking
from fargo.network.bridge_leftovers import remove_unused_leftover_bridges
from fargo.network.rtnl import NetlinkError
from fargo.network.task_eni import delete_task_eni_async, list_task_enis_async
from fargo.network.vpc_router import VpcRouterError, delete_vpc_router_async, list_vpc_routers_async
from fargo.runtime.errors import ContainerRuntimeError
from fargo.storage.ephemeral_volume import remove_orphan_storage

if TYPE_CHECKING:
    from fargo.agent.agent import Agent

log = logging.getLogger(__name__)


async def remove_orphans(agent: Agent) -> None:
    known = set(agent.runners) | agent.state.known_task_ids()
    data_dir = agent.settings.data_dir

    def orphan(task_id: str) -> bool:
        return task_id not in known and host_claims.is_ours_or_nobodys(task_id, data_dir)

    runtime = agent.runtime
    try:
        records = await runtime.list_containers({})
        live_ids = set()
        for record in records:
            task_id = record.labels.get("fargo.task-id")
            if task_id and task_id not in known:  # containerd is ours alone: no claim to ask
                log.info("removing orphaned container %s", record.id)
                try:
                    await runtime.kill(record.id, signal.SIGKILL, all=True)
                    await runtime.delete_task(record.id)
                    await runtime.delete_container(record.id)
                except ContainerRuntimeError as e:
                    log.warning("could not remove orphaned container %s: %s", record.id, e)
            else:
                live_ids.add(record.id)
        for key in await runtime.list_snapshots():
            if key not in live_ids and _is_container_snapshot(key):
                log.info("removing orphaned snapshot %s", key)
                try:
                    await runtime.delete_snapshot(key)
                except ContainerRuntimeError as e:
                    log.warning("could not remove snapshot %s: %s", key, e)
    except ContainerRuntimeError as e:
        log.warning("could not reconcile containerd: %s", e)
    await remove_orphan_networks(agent.network_prefix, is_orphan=orphan, live_vpc_ids=agent.live_vpc_ids)
    for task_id in await asyncio.to_thread(list_task_cgroups):
        if orphan(task_id):
            try:
                await asyncio.to_thread(remove_task_cgroup, task_id)
            except OSError as e:
                log.warning("could not remove the cgroups of task %s: %s", task_id, e)
    tasks_root = Path(os.path.realpath(data_dir / "tasks"))  # as mountinfo names it (a relative --data-dir too)
    # (before the mounts below: a volume is shut down first, so that its data is not written back)
    for task_id in await asyncio.to_thread(remove_orphan_storage, tasks_root, known):
        log.info("removed the ephemeral storage of orphaned task %s", task_id)
    for mount in await asyncio.to_thread(host_scan.mounts_under, tasks_root):
        task_id = mount.relative_to(tasks_root).parts[0]
        if task_id not in known:
            try:
                await asyncio.to_thread(host_scan.unmount, mount)
            except OSError as e:
                log.warning("could not unmount %s: %s", mount.name, e)
    for task_id in host_claims.claimed_by(data_dir):
        if task_id not in known:
            host_claims.release(task_id)


async def remove_orphan_networks(prefix: str, *, is_orphan: Callable[[str], bool],
                                 live_vpc_ids: Callable[[], set[str]]) -> None:
    """Delete the orphans' task ENIs, then the routers of VPCs without a live task here, and the bridges an
    older Fargo left.

    A router that still holds a task port (a task of another Fargo on this host, or one not yet resumed)
    is kept: only an unused router goes.
    """
    for eni in await list_task_enis_async(prefix):
        if is_orphan(eni.task_id):
            log.info("removing orphaned ENI of task %s", eni.task_id)
            await delete_task_eni_async(eni.task_id, prefix=prefix)
    for vpc_id in await list_vpc_routers_async(prefix):
        if vpc_id in live_vpc_ids():  # asked each time: a task may have been assigned meanwhile
            continue
        try:
            if await delete_vpc_router_async(vpc_id, prefix=prefix, if_unused=True):
                log.info("removed the router of %s: no task of this agent is in it", vpc_id)
        except VpcRouterError as e:
            log.warning("could not remove the router of %s: %s", vpc_id, e)
    try:
        for bridge in await run_blocking(remove_unused_leftover_bridges, prefix):
            log.info("removed subnet bridge %s, left by the bridge design", bridge)
    except (NetlinkError, OSError) as e:
        log.warning("could not remove the bridges left by the bridge design: %s", e)


def _is_container_snapshot(key: str) -> bool:
    """Container rootfs snapshots are keyed by the container id (`<32 hex>-<10 digits>`); layers by chain id."""
    head, _, tail = key.partition("-")
    return len(head) == 32 and tail.isdigit()
