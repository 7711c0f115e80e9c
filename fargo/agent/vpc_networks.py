"""The host side of the VPCs this agent has tasks in.

Each VPC with a local task ENI has a router namespace (`fargo.network.vpc_router`), made with its first
ENI and removed a few seconds after its last one, so a deleted VPC leaves nothing on the host. The router
holds the VPC's resolver (AmazonProvidedDNS at base + 2, `VpcResolver`), a listener of each router server
(the metadata endpoint at 169.254.170.2, the VPC endpoint at base + 3) and its security-group filter, which
is rendered from the control plane's latest `VpcPolicy` and the local ENIs whenever either changes, and
applied as the difference from what the router holds (whole after a router is made or when nft refuses the
difference): a new or revoked rule reaches running tasks with the next assignment batch. The filter drops
what a port it does not list sends or is sent, so a new ENI is made while the filter learns of it.

One lock per VPC orders the making and removal of its router; another orders its filter applies, which
are coalesced.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fargo.agent.backoff import Backoff
from fargo.network.security_groups import FilterState, LocalEni, apply_filter_state_async, filter_state
from fargo.network.task_eni import create_task_eni_async, delete_task_eni_async, router_port_name
from fargo.network.vpc_resolver import VpcResolver, resolver_address
from fargo.network.vpc_router import VpcRouter, VpcRouterError, delete_vpc_router_async, ensure_vpc_router_async
from fargo.protocol.messages import EniPlan, VpcPolicy

log = logging.getLogger(__name__)


# A router outlives its VPC's last local task by this much, so tasks started one after another reuse it
# (making and removing one costs about 70 ms); a deleted VPC's router is gone this long after its last task.
ROUTER_LINGER_SECONDS = float(os.environ.get("FARGO_ROUTER_LINGER_SECONDS", 5))

NAMES_EVERY_SECONDS = 0.02
FILTER_RETRY_BACKOFF = (0.2, 5.0)


class RouterServer(Protocol):
    """A server with a listener in each VPC's router (the metadata server, the VPC endpoint's relay)."""

    async def serve(self, vpc_id: str, netns_path: str, address: str) -> None: ...

    async def close_vpc(self, vpc_id: str) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class RouterService:
    """A router server and the address it listens on in each VPC's router (e.g. `VpcRouter.endpoint_ip`)."""

    server: RouterServer
    address_in: Callable[[VpcRouter], str]


@dataclass
class _Vpc:
    cidr: str
    router: VpcRouter | None = None
    enis: dict[str, LocalEni] = field(default_factory=dict)  # by task id
    names: dict[str, str] = field(default_factory=dict)  # private DNS name -> IP, for the resolver
    # Filter applies are coalesced: each change bumps `changes`; one apply shows every change made before it
    # started, so a hundred tasks attaching at once cost a few applies, not a hundred.
    changes: int = 0
    synced: int = 0
    applied: FilterState | None = None  # what the router's table holds (None: not known, apply it whole)
    apply_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    retiring: asyncio.Task[None] | None = None
    syncing: asyncio.Task[None] | None = None  # a policy's apply, under way in the background
    names_due: bool = False  # a resolver update is scheduled


class VpcNetworks:
    def __init__(self, region: str, resolver: VpcResolver, prefix: str,
                 linger_seconds: float = ROUTER_LINGER_SECONDS, servers: Sequence[RouterService] = ()) -> None:
        self.region = region
        self.resolver = resolver
        self.servers = tuple(servers)
        self.prefix = prefix
        self.linger_seconds = linger_seconds
        self._vpcs: dict[str, _Vpc] = {}
        self._locks: dict[str, asyncio.Lock] = {}  # per VPC: its router's making and removal
        self._policies: dict[str, VpcPolicy] = {}

    async def attach(self, task_id: str, eni: EniPlan, mtu: int) -> None:
        """The task's ENI in its VPC's router, filtered from its first packet; idempotent (resume)."""
        async with self._lock(eni.vpc_id):
            vpc = self._vpcs.setdefault(eni.vpc_id, _Vpc(eni.vpc_cidr))
            if vpc.retiring is not None:
                vpc.retiring.cancel()
                vpc.retiring = None
            if vpc.router is None:
                try:
                    vpc.router = await ensure_vpc_router_async(eni.vpc_id, eni.vpc_cidr, prefix=self.prefix)
                    vpc.applied = None  # a router made or found holds a table of its own: the next is whole
                    await self.resolver.serve(eni.vpc_id, vpc.router.netns_path, resolver_address(eni.vpc_cidr),
                                              endpoint_ip=vpc.router.endpoint_ip)
                    for service in self.servers:
                        await service.server.serve(eni.vpc_id, vpc.router.netns_path, service.address_in(vpc.router))
                except BaseException:
                    vpc.router = None  # the next attach makes (heals) it again and serves in it
                    if not vpc.enis:  # a router made for nobody: it goes as an unused one does
                        self._retire_later(eni.vpc_id, vpc)
                    raise
            vpc.enis[task_id] = LocalEni(task_id=task_id, router_ifname=router_port_name(task_id, self.prefix),
                                         ip=eni.ip, group_ids=tuple(eni.security_groups),
                                         assign_public_ip=eni.assign_public_ip)
            vpc.names[eni.private_dns_name] = eni.ip
            vpc.changes += 1
        # Side by side: the filter drops whatever a port it does not list yet sends or is sent, so the ENI may
        # exist before the filter knows it; connectivity is reported once both are done.
        await asyncio.gather(
            self._sync(eni.vpc_id, vpc),
            create_task_eni_async(task_id, vpc.router, eni.subnet_cidr, eni.ip, mtu, eni.mac, prefix=self.prefix))
        self._publish_names(eni.vpc_id, vpc)

    async def detach(self, task_id: str, eni: EniPlan) -> None:
        """Remove the task's ENI; the VPC's router goes a little after its last ENI. Idempotent."""
        await delete_task_eni_async(task_id, prefix=self.prefix)
        vpc = self._vpcs.get(eni.vpc_id)
        if vpc is None:
            # Not attached in this agent's life (a task resumed while stopping): its router may serve
            # tasks not re-attached yet, so it is left to reconcile, which knows every assignment.
            return
        if task_id not in vpc.enis:  # its attach failed half way
            if not vpc.enis:
                self._retire_later(eni.vpc_id, vpc)
            return
        del vpc.enis[task_id]
        if vpc.names.get(eni.private_dns_name) == eni.ip:
            del vpc.names[eni.private_dns_name]
        vpc.changes += 1
        await self._sync(eni.vpc_id, vpc)
        self._publish_names(eni.vpc_id, vpc)
        if not vpc.enis:
            self._retire_later(eni.vpc_id, vpc)

    async def set_policies(self, policies: list[VpcPolicy]) -> None:
        """The control plane's latest policy of each VPC, kept at once (an ENI attached from now on is filtered by
        it); the filters of those that changed are applied again in the background, so that the batch's new
        tasks are not held up behind an apply (in a burst, one waited a second for the applies before it)."""
        for policy in policies:
            if self._policies.get(policy.vpc_id) == policy:
                continue
            self._policies[policy.vpc_id] = policy
            vpc = self._vpcs.get(policy.vpc_id)
            if vpc is not None and vpc.router is not None:
                vpc.changes += 1
                self._sync_soon(policy.vpc_id, vpc)

    async def close(self) -> None:
        """Stop serving. Routers stay for the tasks that keep running (the next agent resumes them); a router
        that only lingers goes now."""
        for vpc_id, vpc in list(self._vpcs.items()):
            if vpc.syncing is not None:
                vpc.syncing.cancel()
                vpc.syncing = None
            if vpc.retiring is not None:
                vpc.retiring.cancel()
                vpc.retiring = None
            if not vpc.enis:
                await self._retire(vpc_id, linger=False)
        await self.resolver.close()
        for service in self.servers:
            await service.server.close()

    # --- helpers -------------------------------------------------------------------------------

    def _lock(self, vpc_id: str) -> asyncio.Lock:
        return self._locks.setdefault(vpc_id, asyncio.Lock())

    async def _sync(self, vpc_id: str, vpc: _Vpc) -> None:
        """Apply the filter unless an apply that started after our change has already shown it."""
        wanted = vpc.changes
        async with vpc.apply_lock:
            if vpc.synced >= wanted or vpc.router is None:
                return
            target = vpc.changes
            policy = self._policies.get(vpc_id) or VpcPolicy(vpc_id=vpc_id, cidr=vpc.cidr)
            state = filter_state(policy, list(vpc.enis.values()), vpc.router)
            if state != vpc.applied:
                # only what changed (an ENI's elements and chains), unless nothing is known of the table
                await apply_filter_state_async(vpc.router, state, vpc.applied)
                vpc.applied = state
            vpc.synced = target

    def _sync_soon(self, vpc_id: str, vpc: _Vpc) -> None:
        if vpc.syncing is None or vpc.syncing.done():
            vpc.syncing = asyncio.create_task(self._sync_until_shown(vpc_id, vpc))

    async def _sync_until_shown(self, vpc_id: str, vpc: _Vpc) -> None:
        """Apply until the filter shows every change, retrying a refused apply: the rules of a policy must reach
        the running tasks even when no other change comes to apply them."""
        backoff = Backoff(*FILTER_RETRY_BACKOFF)
        while self._vpcs.get(vpc_id) is vpc and vpc.router is not None and vpc.synced < vpc.changes:
            try:
                await self._sync(vpc_id, vpc)
            except Exception as e:  # noqa: BLE001 - logged and retried; the tasks keep the filter they had
                log.warning("the security group filter of %s is not applied (%s); retrying in %.1fs",
                            vpc_id, e, backoff.delay)
                await backoff.sleep()

    def _publish_names(self, vpc_id: str, vpc: _Vpc) -> None:
        """The resolver's records, at most every NAMES_EVERY_SECONDS: ENIs made together cost a few zone builds
        (each is linear in the VPC's ENIs), not one each."""
        if not vpc.names_due:
            vpc.names_due = True
            asyncio.get_running_loop().call_later(NAMES_EVERY_SECONDS, self._names_now, vpc_id, vpc)

    def _names_now(self, vpc_id: str, vpc: _Vpc) -> None:
        vpc.names_due = False
        if self._vpcs.get(vpc_id) is vpc and vpc.router is not None:
            self.resolver.set_records(vpc_id, dict(vpc.names))

    def _retire_later(self, vpc_id: str, vpc: _Vpc) -> None:
        if vpc.retiring is None:
            vpc.retiring = asyncio.create_task(self._retire(vpc_id))

    async def _retire(self, vpc_id: str, linger: bool = True) -> None:
        if linger:
            await asyncio.sleep(self.linger_seconds)
        async with self._lock(vpc_id):
            vpc = self._vpcs.get(vpc_id)
            if vpc is None or vpc.enis:
                return
            vpc.retiring = None
            # The servers' sockets first: they would keep the namespace alive. A router that still holds
            # ports (of another Fargo on this host) is kept.
            await self.resolver.close_vpc(vpc_id)
            for service in self.servers:
                await service.server.close_vpc(vpc_id)
            try:
                await delete_vpc_router_async(vpc_id, prefix=self.prefix, if_unused=True)
            except VpcRouterError as e:
                log.warning("could not remove the router of %s (reconcile will): %s", vpc_id, e)
            del self._vpcs[vpc_id]
