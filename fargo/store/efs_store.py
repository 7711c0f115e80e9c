"""The SQL of Amazon EFS: file systems, access points, mount targets and their tags.

A mount target's ENI and address are EC2 rows (`network_interfaces`, `ip_allocations`): a transaction here
reaches them through `.network`, on the same connection, so a mount target and its ENI come and go together.
Checks that decide a change (one mount target per AZ, no mount target left when a file system goes) read
rows the transaction has locked: the file system row first, then the VPC's (see `NetworkWrites`).
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from fargo.store import schema
from fargo.store.database import Store, TaskWrites
from fargo.store.network_store import NetworkReads, NetworkWrites

CREATING, AVAILABLE, DELETING, ERROR = "creating", "available", "deleting", "error"


@dataclass(frozen=True)
class FileSystemRow:
    file_system_id: str
    creation_token: str
    life_cycle_state: str
    performance_mode: str
    throughput_mode: str
    provisioned_throughput: float | None
    encrypted: bool
    kms_key_id: str | None
    availability_zone: str | None
    backup: bool
    created_at: float


@dataclass(frozen=True)
class AccessPointRow:
    access_point_id: str
    client_token: str
    file_system_id: str
    posix_user: dict | None
    root_directory: dict
    life_cycle_state: str
    created_at: float


@dataclass(frozen=True)
class MountTargetRow:
    mount_target_id: str
    file_system_id: str
    subnet_id: str
    vpc_id: str
    availability_zone: str
    ip: str
    eni_id: str
    life_cycle_state: str
    created_at: float


Tags = list[tuple[str, str]]


class EfsStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    @contextlib.contextmanager
    def reading(self) -> Iterator[EfsReads]:
        with self._store.engine.connect() as c:
            yield EfsReads(c)

    @contextlib.contextmanager
    def writing(self, changes_groups: bool = False) -> Iterator[EfsWrites]:
        """One transaction. `changes_groups`: it adds, removes or regroups an ENI, which changes the members of
        security groups that agents enforce, so it bumps the store's generation (first: the lock order)."""
        with self._store._writing() as c:
            if changes_groups:
                TaskWrites(c).next_generation()
            yield EfsWrites(c)


def _rows(cls: type, rows: Iterable[Any]) -> list[Any]:
    return [cls(**row._mapping) for row in rows]


class EfsReads:
    def __init__(self, conn: Connection) -> None:
        self._c = conn
        self.network = self._network(conn)

    @staticmethod
    def _network(conn: Connection) -> NetworkReads:
        return NetworkReads(conn)

    # --- file systems ---------------------------------------------------------------------------

    def file_system(self, file_system_id: str, lock: bool = False) -> FileSystemRow | None:
        found = self.file_systems([file_system_id], lock=lock)
        return found[0] if found else None

    def file_systems(self, file_system_ids: Sequence[str] | None = None, lock: bool = False,
                     state: str | None = None) -> list[FileSystemRow]:
        t = schema.efs_file_systems
        q = select(t)
        if file_system_ids is not None:
            q = q.where(t.c.file_system_id.in_(list(file_system_ids)))
        if state is not None:
            q = q.where(t.c.life_cycle_state == state)
        if lock:
            q = q.with_for_update()
        return _rows(FileSystemRow, self._c.execute(q.order_by(t.c.created_at, t.c.file_system_id)))

    def file_system_by_token(self, creation_token: str) -> FileSystemRow | None:
        t = schema.efs_file_systems
        row = self._c.execute(select(t).where(t.c.creation_token == creation_token)).first()
        return FileSystemRow(**row._mapping) if row else None

    # --- access points --------------------------------------------------------------------------

    def access_point(self, access_point_id: str) -> AccessPointRow | None:
        found = self.access_points([access_point_id])
        return found[0] if found else None

    def access_points(self, access_point_ids: Sequence[str] | None = None,
                      file_system_id: str | None = None) -> list[AccessPointRow]:
        t = schema.efs_access_points
        q = select(t)
        if access_point_ids is not None:
            q = q.where(t.c.access_point_id.in_(list(access_point_ids)))
        if file_system_id is not None:
            q = q.where(t.c.file_system_id == file_system_id)
        return _rows(AccessPointRow, self._c.execute(q.order_by(t.c.created_at, t.c.access_point_id)))

    def access_point_by_token(self, client_token: str) -> AccessPointRow | None:
        t = schema.efs_access_points
        row = self._c.execute(select(t).where(t.c.client_token == client_token)).first()
        return AccessPointRow(**row._mapping) if row else None

    def access_point_count(self, file_system_id: str) -> int:
        t = schema.efs_access_points
        q = select(func.count()).select_from(t).where(t.c.file_system_id == file_system_id)
        return int(self._c.execute(q).scalar() or 0)

    # --- mount targets --------------------------------------------------------------------------

    def mount_target(self, mount_target_id: str, lock: bool = False) -> MountTargetRow | None:
        t = schema.efs_mount_targets
        q = select(t).where(t.c.mount_target_id == mount_target_id)
        row = self._c.execute(q.with_for_update() if lock else q).first()
        return MountTargetRow(**row._mapping) if row else None

    def mount_targets(self, file_system_ids: Sequence[str] | None = None,
                      mount_target_ids: Sequence[str] | None = None) -> list[MountTargetRow]:
        t = schema.efs_mount_targets
        q = select(t)
        if file_system_ids is not None:
            q = q.where(t.c.file_system_id.in_(list(file_system_ids)))
        if mount_target_ids is not None:
            q = q.where(t.c.mount_target_id.in_(list(mount_target_ids)))
        return _rows(MountTargetRow, self._c.execute(q.order_by(t.c.created_at, t.c.mount_target_id)))

    def mount_target_counts(self, file_system_ids: Sequence[str]) -> dict[str, int]:
        t = schema.efs_mount_targets
        q = (select(t.c.file_system_id, func.count()).where(t.c.file_system_id.in_(list(file_system_ids)))
             .group_by(t.c.file_system_id))
        return {fs: int(n) for fs, n in self._c.execute(q)}

    # --- tags -----------------------------------------------------------------------------------

    def tags(self, resource_ids: Sequence[str]) -> dict[str, Tags]:
        """Resource id -> its tags in the order they were added (absent: none)."""
        t = schema.efs_tags
        q = (select(t.c.resource_id, t.c.key, t.c.value).where(t.c.resource_id.in_(list(resource_ids)))
             .order_by(t.c.resource_id, t.c.position))
        out: dict[str, Tags] = {}
        for resource_id, key, value in self._c.execute(q):
            out.setdefault(resource_id, []).append((key, value))
        return out


class EfsWrites(EfsReads):
    network: NetworkWrites

    @staticmethod
    def _network(conn: Connection) -> NetworkWrites:
        return NetworkWrites(conn)

    def insert_file_system(self, row: FileSystemRow) -> bool:
        """False when a file system has the creation token already; nothing is written then."""
        return self._insert_unique(schema.efs_file_systems, row)

    def set_file_system_state(self, file_system_id: str, state: str) -> None:
        t = schema.efs_file_systems
        self._c.execute(update(t).where(t.c.file_system_id == file_system_id).values(life_cycle_state=state))

    def delete_file_system(self, file_system_id: str) -> None:
        t = schema.efs_file_systems
        self._c.execute(delete(t).where(t.c.file_system_id == file_system_id))
        self.delete_all_tags([file_system_id])

    def insert_access_point(self, row: AccessPointRow) -> bool:
        """False when an access point has the client token already; nothing is written then."""
        return self._insert_unique(schema.efs_access_points, row)

    def delete_access_points(self, access_point_ids: Sequence[str]) -> None:
        t = schema.efs_access_points
        if access_point_ids:
            self._c.execute(delete(t).where(t.c.access_point_id.in_(list(access_point_ids))))
            self.delete_all_tags(access_point_ids)

    def insert_mount_target(self, row: MountTargetRow) -> bool:
        """False when the file system has a mount target in the AZ already; nothing is written then."""
        return self._insert_unique(schema.efs_mount_targets, row)

    def delete_mount_target(self, mount_target_id: str) -> None:
        t = schema.efs_mount_targets
        self._c.execute(delete(t).where(t.c.mount_target_id == mount_target_id))

    def put_tags(self, resource_id: str, tags: Sequence[tuple[str, str]]) -> None:
        """Add or overwrite tags; new keys go after the resource's existing ones."""
        t = schema.efs_tags
        existing = {key for key, _ in self.tags([resource_id]).get(resource_id, [])}
        pos = self._c.execute(select(func.max(t.c.position)).where(t.c.resource_id == resource_id)).scalar() or 0
        for key, value in tags:
            if key in existing:
                self._c.execute(update(t).where(and_(t.c.resource_id == resource_id, t.c.key == key))
                                .values(value=value))
                continue
            pos += 1
            existing.add(key)
            self._c.execute(insert(t).values(resource_id=resource_id, key=key, value=value, position=pos))

    def delete_tags(self, resource_id: str, keys: Sequence[str]) -> None:
        t = schema.efs_tags
        self._c.execute(delete(t).where(and_(t.c.resource_id == resource_id, t.c.key.in_(list(keys)))))

    def delete_all_tags(self, resource_ids: Sequence[str]) -> None:
        t = schema.efs_tags
        if resource_ids:
            self._c.execute(delete(t).where(t.c.resource_id.in_(list(resource_ids))))

    def _insert_unique(self, table: Table, row: Any) -> bool:
        try:
            with self._c.begin_nested():
                self._c.execute(insert(table).values(**dataclasses.asdict(row)))
        except IntegrityError:
            return False
        return True
