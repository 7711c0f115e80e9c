"""The default VPC of `ctx.config.network` (vpc-fargo-default, its subnet per AZ, sg-fargo-default), seeded
into the store once: a marker row remembers it, so a default VPC the user deleted is not made again."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from fargo import clock
from fargo.control.context import ControlContext
from fargo.control.vpcs.subnets import insert_subnet
from fargo.control.vpcs.vpcs import insert_vpc
from fargo.store.network_store import NetworkStore, SubnetRow, VpcRow

DEFAULT_VPC_SEED = "default-vpc"


def ensure_default_vpc(ctx: ControlContext, store: NetworkStore) -> bool:
    """Seed the default VPC unless this store ever had it; True when it was seeded now."""
    net = ctx.config.network
    now = clock.now()
    with store.reading() as r:
        if r.was_seeded(DEFAULT_VPC_SEED):
            return False
    try:
        with store.writing(changes_groups=True) as w:
            # The marker first: a replica seeding at the same moment fails on it, before anything else.
            w.mark_seeded(DEFAULT_VPC_SEED, now)
            vpc = VpcRow(vpc_id=net.vpc_id, cidr=net.cidr, is_default=True, instance_tenancy="default",
                         created_at=now)
            insert_vpc(w, vpc, net.security_group_id, ctx.config.account_id)
            for s in net.subnets:
                insert_subnet(w, SubnetRow(subnet_id=s.subnet_id, vpc_id=net.vpc_id, cidr=s.cidr,
                                           availability_zone=s.availability_zone, default_for_az=True,
                                           created_at=now))
    except IntegrityError:
        with store.reading() as r:
            if r.was_seeded(DEFAULT_VPC_SEED):  # another replica seeded it
                return False
        raise
    return True
