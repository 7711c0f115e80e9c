"""ECS's `awsvpcConfiguration` (RunTask, CreateService) checked against the VPCs as ECS checks it: up to 16
subnets, all of one VPC; up to 5 groups of that VPC (none: its default group); assignPublicIp."""
from __future__ import annotations

from dataclasses import dataclass

from fargo.control.vpcs import messages as msg
from fargo.errors import InvalidParameterException
from fargo.store.network_store import NetworkStore

MAX_SUBNETS = 16
MAX_SECURITY_GROUPS = 5


@dataclass(frozen=True)
class SubnetChoice:
    subnet_id: str
    cidr: str
    availability_zone: str


@dataclass(frozen=True)
class AwsvpcChoice:
    vpc_id: str
    vpc_cidr: str
    subnets: list[SubnetChoice]
    security_groups: list[str]
    assign_public_ip: bool


def resolve_awsvpc(store: NetworkStore, awsvpc: dict | None) -> AwsvpcChoice:
    """The VPC, subnets (in the order given) and groups a task's ENI may use; InvalidParameterException else."""
    if not awsvpc:
        raise InvalidParameterException(msg.NETWORK_CONFIGURATION_REQUIRED)
    subnet_ids = list(dict.fromkeys(str(s) for s in awsvpc.get("subnets") or []))
    if not subnet_ids:
        raise InvalidParameterException(msg.SUBNETS_EMPTY)
    if len(subnet_ids) > MAX_SUBNETS:
        raise InvalidParameterException(msg.TOO_MANY_SUBNETS)
    group_ids = list(dict.fromkeys(str(g) for g in awsvpc.get("securityGroups") or []))
    if len(group_ids) > MAX_SECURITY_GROUPS:
        raise InvalidParameterException(msg.TOO_MANY_SECURITY_GROUPS)
    public = awsvpc.get("assignPublicIp") or "DISABLED"
    if public not in ("ENABLED", "DISABLED"):
        raise InvalidParameterException(msg.BAD_ASSIGN_PUBLIC_IP)
    with store.reading() as r:
        subnets = {s.subnet_id: s for s in r.subnets(subnet_ids)}
        missing = [s for s in subnet_ids if s not in subnets]
        if missing:
            raise InvalidParameterException(msg.subnets_not_found(missing))
        vpc_ids = {subnets[s].vpc_id for s in subnet_ids}
        if len(vpc_ids) > 1:
            raise InvalidParameterException(msg.SUBNETS_IN_SEVERAL_VPCS)
        vpc = r.vpc(vpc_ids.pop())
        if vpc is None:  # a subnet outlives its VPC only if another replica is deleting both right now
            raise InvalidParameterException(msg.subnets_not_found(subnet_ids))
        if group_ids:
            groups = {g.group_id: g for g in r.groups(group_ids)}
            unknown = [g for g in group_ids if g not in groups]
            if unknown:
                raise InvalidParameterException(msg.security_groups_not_found(unknown))
            elsewhere = [g for g in group_ids if groups[g].vpc_id != vpc.vpc_id]
            if elsewhere:
                raise InvalidParameterException(msg.group_and_subnet_in_different_vpcs(elsewhere[0], subnet_ids[0]))
        else:
            group_ids = [g.group_id for g in r.groups(vpc_id=vpc.vpc_id) if g.is_default]
    chosen = [SubnetChoice(s, subnets[s].cidr, subnets[s].availability_zone) for s in subnet_ids]
    return AwsvpcChoice(vpc_id=vpc.vpc_id, vpc_cidr=vpc.cidr, subnets=chosen, security_groups=group_ids,
                        assign_public_ip=public == "ENABLED")
