"""The network side of Fargo's control plane, in one object: the EC2 handlers, the default VPC, and what
RunTask and the agent gateway ask of VPCs (the awsvpcConfiguration check, security group policies).

Handlers run their store work in a thread, off the event loop. A committed change to security groups
or rules has bumped the store's generation in its transaction; `on_change` is then called, so that
agents waiting in this process look again at once.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from fargo.control.context import ControlContext
from fargo.control.threaded_handlers import Handler, SyncHandler, announce_change, in_thread
from fargo.control.vpcs import messages as msg
from fargo.control.vpcs.awsvpc import AwsvpcChoice, SubnetChoice, resolve_awsvpc
from fargo.control.vpcs.defaults import ensure_default_vpc
from fargo.control.vpcs.network_interfaces import NetworkInterfaces
from fargo.control.vpcs.policy import vpc_policies
from fargo.control.vpcs.security_group_rules import SecurityGroupRules
from fargo.control.vpcs.security_groups import SecurityGroups
from fargo.control.vpcs.subnets import Subnets
from fargo.control.vpcs.tags import Tags
from fargo.control.vpcs.vpcs import Vpcs
from fargo.control.vpcs.zones import AvailabilityZones
from fargo.errors import DryRunOperation
from fargo.protocol.messages import VpcPolicy
from fargo.store.network_store import NetworkStore

__all__ = ["AwsvpcChoice", "Network", "SubnetChoice"]

log = logging.getLogger("fargo.control")

# The operations whose success changed security groups or their rules (CreateVpc and DeleteVpc: the default group).
_CHANGE_GROUPS = frozenset({
    "CreateVpc", "DeleteVpc", "CreateSecurityGroup", "DeleteSecurityGroup", "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"})



class Network:
    def __init__(self, ctx: ControlContext, on_change: Callable[[], None] = lambda: None) -> None:
        self.ctx = ctx
        self.on_change = on_change
        self.store = NetworkStore(ctx.store)
        self.zones = AvailabilityZones(ctx.config)
        self._operations: dict[str, SyncHandler] = {}
        for part in (self.zones, Vpcs(ctx, self.store), Subnets(ctx, self.store, self.zones),
                     SecurityGroups(ctx, self.store), SecurityGroupRules(ctx, self.store),
                     NetworkInterfaces(ctx, self.store, self.zones), Tags(ctx, self.store)):
            self._operations.update(part.handlers())

    def ensure_default(self) -> None:
        """Seed the default VPC of the configuration, once per store (sync: called at start, in a thread)."""
        if ensure_default_vpc(self.ctx, self.store):
            log.info("seeded the default VPC %s", self.ctx.config.network.vpc_id)
            self._changed()

    def handlers(self) -> dict[str, Handler]:
        """EC2 operation name -> handler of the parsed request members, returning the output members."""
        return {name: self._handler(name, operation) for name, operation in self._operations.items()}

    def resolve_awsvpc(self, awsvpc: dict | None) -> AwsvpcChoice:
        """RunTask's networkConfiguration.awsvpcConfiguration, checked as ECS checks it (sync)."""
        return resolve_awsvpc(self.store, awsvpc)

    def vpc_policies(self, vpc_ids: Iterable[str]) -> list[VpcPolicy]:
        return vpc_policies(self.store, vpc_ids)

    def vpc_ids_of_agent(self, agent_id: str) -> list[str]:
        """The VPCs in which the agent's tasks have ENIs."""
        with self.store.reading() as r:
            return r.vpc_ids_of_agent(agent_id)

    def used_ip_count(self, subnet_id: str) -> int:
        """How many of the subnet's addresses task ENIs hold."""
        with self.store.reading() as r:
            return r.eni_counts([subnet_id]).get(subnet_id, 0)

    # --- helpers -------------------------------------------------------------------------------

    def _handler(self, name: str, operation: SyncHandler) -> Handler:
        return in_thread(operation, check=_refuse_dry_run, changed=self._changed if name in _CHANGE_GROUPS else None)

    def _changed(self) -> None:
        announce_change(self.on_change, "a security group change")


def _refuse_dry_run(p: dict) -> None:
    if p.get("DryRun"):
        raise DryRunOperation(msg.DRY_RUN)
