"""The host side of the VPCs this agent has tasks in.

Each VPC with a local task ENI has a router namespace (`fargo.network.vpc_router`), made with its first
ENI and removed after its last one, so a deleted VPC leaves nothing on the host. The router holds the
VPC's resolver (AmazonProvidedDNS at base + 2, `VpcResolver`) and its security-group filter, which is
rendered whole from the control plane's latest `VpcPolicy` and the local ENIs, and applied again whenever
either changes: a new or revoked rule reaches running tasks with the next assignment batch.

One lock per VPC orders the work on its router: ENIs made and removed side by side would otherwise race
for the router's creation and for the filter's last word.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fargo.network.security_groups import LocalEni, apply_vpc_filter_async, render_vpc_filter
from fargo.network.task_eni import create_task_eni_async, delete_task_eni_async, router_port_name
from fargo.network.vpc_resolver import VpcResolver, resolver_address
from fargo.network.vpc_router import VpcRouter, delete_vpc_router_async, ensure_vpc_router_async
from fargo.protocol.messages import EniPlan, VpcPolicy


@dataclass
class _Vpc:
    cidr: str
    router: VpcRouter | None = None
    enis: dict[str, LocalEni] | None = None  # by task id
    names: dict[str, str] | None = None  # private DNS name -> IP, for the resolver
    applied: str | None = None  # the filter script last applied


class VpcNetworks:
    def __init__(self, region: str, resolver: VpcResolver, prefix: str) -> None:
        self.region = region
        self.resolver = resolver
        self.prefix = prefix
        self._vpcs: dict[str, _Vpc] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._policies: dict[str, VpcPolicy] = {}

    async def attach(self, task_id: str, eni: EniPlan, mtu: int) -> None:
        """The task's ENI in its VPC's router, filtered from its first packet; idempotent (resume)."""
        async with self._lock(eni.vpc_id):
            vpc = self._vpcs.setdefault(eni.vpc_id, _Vpc(eni.vpc_cidr, enis={}, names={}))
            assert vpc.enis is not None and vpc.names is not None
            if vpc.router is None:
                vpc.router = await ensure_vpc_router_async(eni.vpc_id, eni.vpc_cidr, prefix=self.prefix)
                await self.resolver.serve(eni.vpc_id, vpc.router.netns_path, resolver_address(eni.vpc_cidr))
            vpc.enis[task_id] = LocalEni(task_id=task_id, router_ifname=router_port_name(task_id, self.prefix),
                                         ip=eni.ip, group_ids=tuple(eni.security_groups),
                                         assign_public_ip=eni.assign_public_ip)
            vpc.names[eni.private_dns_name] = eni.ip
            # The filter knows the port before it exists: no packet of the task passes unfiltered.
            await self._apply(eni.vpc_id, vpc)
            await create_task_eni_async(task_id, vpc.router, eni.subnet_cidr, eni.ip, mtu, eni.mac,
                                        prefix=self.prefix)
            self.resolver.set_records(eni.vpc_id, dict(vpc.names))

    async def detach(self, task_id: str, eni: EniPlan) -> None:
        """Remove the task's ENI; the VPC's router goes with its last ENI. Idempotent."""
        async with self._lock(eni.vpc_id):
            await delete_task_eni_async(task_id, prefix=self.prefix)
            vpc = self._vpcs.get(eni.vpc_id)
            if vpc is None or not vpc.enis:
                # Not attached in this agent's life (a task resumed while stopping): its router may serve
                # tasks not re-attached yet, so it is left to reconcile, which knows every assignment.
                return
            assert vpc.names is not None
            vpc.enis.pop(task_id, None)
            if vpc.names.get(eni.private_dns_name) == eni.ip:
                del vpc.names[eni.private_dns_name]
            if vpc.enis:
                self.resolver.set_records(eni.vpc_id, dict(vpc.names))
                await self._apply(eni.vpc_id, vpc)
                return
            # The resolver's sockets first: they would keep the namespace alive. A router that still holds
            # ports (of another Fargo on this host) is kept.
            await self.resolver.close_vpc(eni.vpc_id)
            await delete_vpc_router_async(eni.vpc_id, prefix=self.prefix, if_unused=True)
            del self._vpcs[eni.vpc_id]

    async def set_policies(self, policies: list[VpcPolicy]) -> None:
        """The control plane's latest policy of each VPC: the filters of those that changed are applied again."""
        for policy in policies:
            if self._policies.get(policy.vpc_id) == policy:
                continue
            self._policies[policy.vpc_id] = policy
            async with self._lock(policy.vpc_id):
                vpc = self._vpcs.get(policy.vpc_id)
                if vpc is not None and vpc.router is not None:
                    await self._apply(policy.vpc_id, vpc)

    async def close(self) -> None:
        await self.resolver.close()

    # --- helpers -------------------------------------------------------------------------------

    def _lock(self, vpc_id: str) -> asyncio.Lock:
        return self._locks.setdefault(vpc_id, asyncio.Lock())

    async def _apply(self, vpc_id: str, vpc: _Vpc) -> None:
        assert vpc.router is not None and vpc.enis is not None
        policy = self._policies.get(vpc_id) or VpcPolicy(vpc_id=vpc_id, cidr=vpc.cidr)
        script = render_vpc_filter(policy, list(vpc.enis.values()), vpc.router)
        if script != vpc.applied:
            await apply_vpc_filter_async(vpc.router, script)
            vpc.applied = script
