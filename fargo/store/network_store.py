"""The SQL of EC2 networking: VPCs, subnets, security groups and their rules, task ENIs and EC2 tags.

Reads go through `NetworkReads` on one connection. A change goes through `NetworkWrites`: one transaction
in which the checks that decide it (no overlapping subnet, no dependent object, no duplicate rule) read
rows it has locked, so that two replicas cannot both pass a check that only one of them may pass.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable, Table, and_, bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from fargo.network.ipam import SubnetFullError
from fargo.store import schema
from fargo.store.database import Store, TaskWrites

__all__ = ["EniRow", "GroupRow", "NetworkReads", "NetworkStore", "NetworkWrites", "RuleRow", "SubnetFullError",
           "SubnetRow", "TagRow", "VpcRow"]


@dataclass(frozen=True)
class VpcRow:
    vpc_id: str
    cidr: str
    is_default: bool
    instance_tenancy: str
    created_at: float


@dataclass(frozen=True)
class SubnetRow:
    subnet_id: str
    vpc_id: str
    cidr: str
    availability_zone: str
    default_for_az: bool
    created_at: float


@dataclass(frozen=True)
class GroupRow:
    group_id: str
    vpc_id: str
    group_name: str
    description: str
    is_default: bool
    created_at: float


@dataclass(frozen=True)
class RuleRow:
    rule_id: str
    group_id: str
    is_egress: bool
    protocol: str
    from_port: int
    to_port: int
    peer_kind: str
    peer: str
    peer_owner: str | None
    description: str | None
    created_at: float
    position: int = 0  # set by the store: the group's rules in the order they were added


@dataclass(frozen=True)
class EniRow:
    eni_id: str
    attachment_id: str
    task_arn: str
    subnet_id: str
    vpc_id: str
    availability_zone: str
    ip: str
    mac: str
    private_dns_name: str
    group_ids: list[str]
    assign_public_ip: bool
    attach_time: float
    public_ip: str | None = None
    # Set for an ENI that is not a Fargate task's (an EFS mount target's); `task_arn` then names its holder.
    description: str | None = None
    requester_id: str | None = None


@dataclass(frozen=True)
class TagRow:
    resource_id: str
    resource_type: str
    key: str
    value: str


class NetworkStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    @contextlib.contextmanager
    def reading(self) -> Iterator[NetworkReads]:
        with self._store.engine.connect() as c:
            yield NetworkReads(c)

    @contextlib.contextmanager
    def writing(self, changes_groups: bool = False) -> Iterator[NetworkWrites]:
        """One transaction; it commits when the block ends and rolls back when it raises.

        `changes_groups`: the transaction changes security groups or rules, so it bumps the store's generation
        (agents re-apply groups on it), and does so first: the counter row is then locked before any other, in
        the order RunTask locks (counter, then subnet and groups), so the two never deadlock."""
        with self._store._writing() as c:
            w = NetworkWrites(c)
            if changes_groups:
                TaskWrites(c).next_generation()
            yield w


def _rows(cls: type, rows: Iterable[Any]) -> list[Any]:
    return [cls(**row._mapping) for row in rows]


# Each read's statement is built once per shape (which filters it has, whether it locks), with its values as
# parameters: RunTask and every assignment batch read VPCs, subnets, groups, rules and ENIs, and building a
# statement anew (with its cache key) took longer than SQLite took to run it.
_BUILT: dict[tuple[Any, ...], Executable] = {}


def _built(shape: tuple[Any, ...], build: Any) -> Executable:
    statement = _BUILT.get(shape)
    if statement is None:
        statement = _BUILT[shape] = build()
    return statement


def _ids(name: str) -> Any:
    return bindparam(name, expanding=True)


_VPC_IDS_OF_AGENT = (select(schema.network_interfaces.c.vpc_id).distinct().select_from(schema.network_interfaces)
                     .join(schema.tasks, schema.tasks.c.arn == schema.network_interfaces.c.task_arn)
                     .where(schema.tasks.c.agent_id == bindparam("b_agent"))
                     .order_by(schema.network_interfaces.c.vpc_id))


class NetworkReads:
    def __init__(self, conn: Connection) -> None:
        self._c = conn

    # --- VPCs and subnets -----------------------------------------------------------------------

    def vpc(self, vpc_id: str, lock: bool = False) -> VpcRow | None:
        """With `lock`, the row stays locked to the end of the transaction: every change inside a VPC takes it."""
        found = self.vpcs([vpc_id], lock=lock)
        return found[0] if found else None

    def vpcs(self, vpc_ids: Sequence[str] | None = None, lock: bool = False) -> list[VpcRow]:
        t = schema.vpcs

        def build() -> Executable:
            q = select(t)
            if vpc_ids is not None:
                q = q.where(t.c.vpc_id.in_(_ids("b_vpcs")))
            if lock:
                q = q.with_for_update()
            return q.order_by(t.c.created_at, t.c.vpc_id)
        q = _built(("vpcs", vpc_ids is not None, lock), build)
        return _rows(VpcRow, self._c.execute(q, {} if vpc_ids is None else {"b_vpcs": list(vpc_ids)}))

    def subnet(self, subnet_id: str, lock: bool = False) -> SubnetRow | None:
        found = self.subnets([subnet_id], lock=lock)
        return found[0] if found else None

    def subnets(self, subnet_ids: Sequence[str] | None = None, vpc_id: str | None = None,
                lock: bool = False) -> list[SubnetRow]:
        t = schema.subnets

        def build() -> Executable:
            q = select(t)
            if subnet_ids is not None:
                q = q.where(t.c.subnet_id.in_(_ids("b_subnets")))
            if vpc_id is not None:
                q = q.where(t.c.vpc_id == bindparam("b_vpc"))
            if lock:
                q = q.with_for_update()
            return q.order_by(t.c.created_at, t.c.subnet_id)
        q = _built(("subnets", subnet_ids is not None, vpc_id is not None, lock), build)
        params: dict[str, Any] = {"b_vpc": vpc_id} if vpc_id is not None else {}
        if subnet_ids is not None:
            params["b_subnets"] = list(subnet_ids)
        return _rows(SubnetRow, self._c.execute(q, params))

    # --- security groups and rules --------------------------------------------------------------

    def group(self, group_id: str, lock: bool = False) -> GroupRow | None:
        found = self.groups([group_id], lock=lock)
        return found[0] if found else None

    def groups(self, group_ids: Sequence[str] | None = None, vpc_id: str | None = None,
               lock: bool = False) -> list[GroupRow]:
        t = schema.security_groups

        def build() -> Executable:
            q = select(t.c.group_id, t.c.vpc_id, t.c.group_name, t.c.description, t.c.is_default, t.c.created_at)
            if group_ids is not None:
                q = q.where(t.c.group_id.in_(_ids("b_groups")))
            if vpc_id is not None:
                q = q.where(t.c.vpc_id == bindparam("b_vpc"))
            if lock:
                q = q.with_for_update()
            return q.order_by(t.c.created_at, t.c.group_id)
        q = _built(("groups", group_ids is not None, vpc_id is not None, lock), build)
        params: dict[str, Any] = {"b_vpc": vpc_id} if vpc_id is not None else {}
        if group_ids is not None:
            params["b_groups"] = list(group_ids)
        return _rows(GroupRow, self._c.execute(q, params))

    def group_by_name(self, vpc_id: str, name: str) -> GroupRow | None:
        t = schema.security_groups
        row = self._c.execute(select(t.c.group_id).where(and_(t.c.vpc_id == vpc_id,
                                                               t.c.name_key == name.lower()))).first()
        return self.group(row[0]) if row else None

    def rules(self, group_ids: Sequence[str] | None = None, rule_ids: Sequence[str] | None = None) -> list[RuleRow]:
        t = schema.security_group_rules

        def build() -> Executable:
            q = select(t)
            if group_ids is not None:
                q = q.where(t.c.group_id.in_(_ids("b_groups")))
            if rule_ids is not None:
                q = q.where(t.c.rule_id.in_(_ids("b_rules")))
            return q.order_by(t.c.created_at, t.c.position, t.c.rule_id)
        q = _built(("rules", group_ids is not None, rule_ids is not None), build)
        params: dict[str, Any] = {}
        if group_ids is not None:
            params["b_groups"] = list(group_ids)
        if rule_ids is not None:
            params["b_rules"] = list(rule_ids)
        return _rows(RuleRow, self._c.execute(q, params))

    def rules_referencing(self, group_id: str, peer_kind: str) -> list[RuleRow]:
        """Rules (of any group) whose peer is `group_id`."""
        t = schema.security_group_rules
        q = select(t).where(and_(t.c.peer_kind == peer_kind, t.c.peer == group_id))
        return _rows(RuleRow, self._c.execute(q.order_by(t.c.created_at, t.c.rule_id)))

    def rule_count(self, group_id: str, is_egress: bool) -> int:
        t = schema.security_group_rules
        q = select(func.count()).select_from(t).where(and_(t.c.group_id == group_id, t.c.is_egress == is_egress))
        return int(self._c.execute(q).scalar() or 0)

    # --- task ENIs ------------------------------------------------------------------------------

    def enis(self, eni_ids: Sequence[str] | None = None, vpc_ids: Sequence[str] | None = None,
             subnet_id: str | None = None) -> list[EniRow]:
        t = schema.network_interfaces

        def build() -> Executable:
            q = select(t)
            if eni_ids is not None:
                q = q.where(t.c.eni_id.in_(_ids("b_enis")))
            if vpc_ids is not None:
                q = q.where(t.c.vpc_id.in_(_ids("b_vpcs")))
            if subnet_id is not None:
                q = q.where(t.c.subnet_id == bindparam("b_subnet"))
            return q.order_by(t.c.attach_time, t.c.eni_id)
        q = _built(("enis", eni_ids is not None, vpc_ids is not None, subnet_id is not None), build)
        params: dict[str, Any] = {"b_subnet": subnet_id} if subnet_id is not None else {}
        if eni_ids is not None:
            params["b_enis"] = list(eni_ids)
        if vpc_ids is not None:
            params["b_vpcs"] = list(vpc_ids)
        rows = self._c.execute(q, params)
        return [EniRow(**dict(row._mapping, group_ids=list(row.group_ids or []))) for row in rows]

    def eni_members(self, vpc_ids: Sequence[str]) -> list[tuple[str, list[str]]]:
        """(IP, group ids) of each task ENI in these VPCs: what security group policies need of them, without
        building whole rows (a policy is built again with every task that starts or stops)."""
        t = schema.network_interfaces
        q = _built(("eni_members",), lambda: select(t.c.ip, t.c.group_ids).where(t.c.vpc_id.in_(_ids("b_vpcs"))))
        return [(ip, list(group_ids or [])) for ip, group_ids in self._c.execute(q, {"b_vpcs": list(vpc_ids)})]

    def eni_counts(self, subnet_ids: Sequence[str]) -> dict[str, int]:
        """Subnet id -> how many ENIs it holds (absent: none)."""
        t = schema.network_interfaces
        q = (select(t.c.subnet_id, func.count()).where(t.c.subnet_id.in_(list(subnet_ids)))
             .group_by(t.c.subnet_id))
        return {subnet_id: int(n) for subnet_id, n in self._c.execute(q)}

    def vpc_ids_of_agent(self, agent_id: str) -> list[str]:
        return [r[0] for r in self._c.execute(_VPC_IDS_OF_AGENT, {"b_agent": agent_id})]

    # --- tags -----------------------------------------------------------------------------------

    def tags(self, resource_ids: Sequence[str] | None = None) -> list[TagRow]:
        t = schema.ec2_tags
        q = select(t.c.resource_id, t.c.resource_type, t.c.key, t.c.value)
        if resource_ids is not None:
            q = q.where(t.c.resource_id.in_(list(resource_ids)))
        return _rows(TagRow, self._c.execute(q.order_by(t.c.resource_type, t.c.resource_id, t.c.position)))

    def tags_by_resource(self, resource_ids: Sequence[str]) -> dict[str, list[TagRow]]:
        out: dict[str, list[TagRow]] = {}
        for tag in self.tags(resource_ids):
            out.setdefault(tag.resource_id, []).append(tag)
        return out

    # --- seeding --------------------------------------------------------------------------------

    def was_seeded(self, name: str) -> bool:
        t = schema.seeded_defaults
        return self._c.execute(select(t.c.name).where(t.c.name == name)).first() is not None


class NetworkWrites(NetworkReads):
    """The writes of one transaction. Callers lock the VPC row (`vpc(..., lock=True)`) before they check and
    change anything in it: on PostgreSQL that orders the replicas' writers per VPC; SQLite has one writer.
    The lock order is: generation counter (`writing(changes_groups=True)`), VPC, subnet or group."""

    def insert_vpc(self, row: VpcRow) -> None:
        self._insert(schema.vpcs, row)

    def delete_vpc(self, vpc_id: str) -> None:
        self._c.execute(delete(schema.vpcs).where(schema.vpcs.c.vpc_id == vpc_id))

    def insert_subnet(self, row: SubnetRow) -> None:
        self._insert(schema.subnets, row)

    def delete_subnet(self, subnet_id: str) -> None:
        self._c.execute(delete(schema.subnets).where(schema.subnets.c.subnet_id == subnet_id))

    def insert_group(self, row: GroupRow) -> bool:
        """False when the VPC has a group of that name (in any case) already; nothing is written then."""
        values = dict(dataclasses.asdict(row), name_key=row.group_name.lower())
        try:
            with self._c.begin_nested():
                self._c.execute(insert(schema.security_groups).values(**values))
        except IntegrityError:
            return False
        return True

    def delete_group(self, group_id: str) -> list[str]:
        """Delete the group and its rules; returns the ids of the rules deleted."""
        r = schema.security_group_rules
        rule_ids = [x[0] for x in self._c.execute(select(r.c.rule_id).where(r.c.group_id == group_id))]
        self._c.execute(delete(r).where(r.c.group_id == group_id))
        self._c.execute(delete(schema.security_groups).where(schema.security_groups.c.group_id == group_id))
        return rule_ids

    def insert_rule(self, row: RuleRow) -> bool:
        """False when the group has a rule of the same identity already; nothing is written then."""
        r = schema.security_group_rules
        last = self._c.execute(select(func.max(r.c.position)).where(r.c.group_id == row.group_id)).scalar()
        try:
            with self._c.begin_nested():
                self._c.execute(insert(r).values(**dict(dataclasses.asdict(row), position=(last or 0) + 1)))
        except IntegrityError:
            return False
        return True

    def delete_rules(self, rule_ids: Sequence[str]) -> None:
        r = schema.security_group_rules
        self._c.execute(delete(r).where(r.c.rule_id.in_(list(rule_ids))))

    def put_tags(self, resource_id: str, resource_type: str, tags: Sequence[tuple[str, str]]) -> None:
        """Add or overwrite tags; new keys go after the resource's existing ones."""
        t = schema.ec2_tags
        existing = {tag.key for tag in self.tags([resource_id])}
        pos = self._c.execute(select(func.max(t.c.position)).where(t.c.resource_id == resource_id)).scalar() or 0
        for key, value in tags:
            if key in existing:
                self._c.execute(t.update().where(and_(t.c.resource_id == resource_id, t.c.key == key))
                                .values(value=value))
                continue
            pos += 1
            existing.add(key)
            self._c.execute(insert(t).values(resource_id=resource_id, key=key, value=value,
                                             resource_type=resource_type, position=pos))

    def delete_tags(self, resource_id: str, keys: Sequence[str]) -> None:
        t = schema.ec2_tags
        self._c.execute(delete(t).where(and_(t.c.resource_id == resource_id, t.c.key.in_(list(keys)))))

    def delete_all_tags(self, resource_ids: Sequence[str]) -> None:
        t = schema.ec2_tags
        if resource_ids:
            self._c.execute(delete(t).where(t.c.resource_id.in_(list(resource_ids))))

    # --- ENIs that are not a task's (EFS mount targets) ---------------------------------------------
    # Their addresses are rows of ip_allocations like task addresses (held by `holder`, not a task ARN), so
    # the one unique (subnet, ip) key keeps tasks and mount targets from ever sharing an address.

    def allocate_address(self, subnet: SubnetRow, holder: str) -> str:
        """The lowest free address of the subnet, now held by `holder`; SubnetFullError when none is left."""
        return TaskWrites(self._c).allocate_ip(subnet.subnet_id, subnet.cidr, holder)

    def claim_address(self, subnet_id: str, ip: str, holder: str) -> bool:
        """Hold the address `ip` of the subnet; False when something holds it already."""
        try:
            with self._c.begin_nested():
                self._c.execute(insert(schema.ip_allocations).values(subnet_id=subnet_id, ip=ip, task_arn=holder))
        except IntegrityError:
            return False
        return True

    def insert_eni(self, row: EniRow) -> None:
        """The ENI of an address allocated in this transaction (the caller holds the VPC's lock)."""
        self._insert(schema.network_interfaces, row)

    def set_eni_groups(self, eni_id: str, group_ids: Sequence[str]) -> None:
        n = schema.network_interfaces
        self._c.execute(n.update().where(n.c.eni_id == eni_id).values(group_ids=list(group_ids)))

    def release_address(self, holder: str) -> None:
        """Give back what `holder` holds: its address, its ENI and the ENI's tags."""
        TaskWrites(self._c).release_ip(holder)

    def mark_seeded(self, name: str, at: float) -> None:
        self._c.execute(insert(schema.seeded_defaults).values(name=name, seeded_at=at))

    def _insert(self, table: Table, row: Any) -> None:
        self._c.execute(insert(table).values(**dataclasses.asdict(row)))
