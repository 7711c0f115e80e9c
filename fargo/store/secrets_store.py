"""The SQL of Secrets Manager and SSM Parameter Store: secrets and their versions, parameters and theirs, tags.

Rows carry values sealed (see `fargo.control.secrets.sealing`); this module never sees a value in the clear
except String/StringList parameter values. A write that decides on what it read (a name free, a version
current) locks the rows it read, so that two replicas on one PostgreSQL database cannot both win.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from fargo.store import secrets_schema as s
from fargo.store.database import Store


@dataclass(frozen=True)
class SecretRow:
    arn: str
    name: str
    description: str | None
    kms_key_id: str | None
    created_at: float
    last_changed_at: float
    last_accessed_at: float | None
    deletion_date: float | None


@dataclass(frozen=True)
class SecretVersionRow:
    secret_arn: str
    version_id: str
    created_at: float
    kind: str  # "string" | "binary"
    sealed: bytes
    stages: list[str]


@dataclass(frozen=True)
class ParameterVersionRow:
    name: str
    version: int
    type: str
    value: str | None
    sealed: bytes | None
    key_id: str | None
    description: str | None
    allowed_pattern: str | None
    tier: str
    data_type: str
    last_modified_at: float


Tags = list[tuple[str, str]]


class SecretsStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    @contextlib.contextmanager
    def reading(self) -> Iterator[SecretsReads]:
        with self._store.engine.connect() as c:
            yield SecretsReads(c)

    @contextlib.contextmanager
    def writing(self) -> Iterator[SecretsWrites]:
        with self._store._writing() as c:
            yield SecretsWrites(c)


def _rows(cls: type, rows: Iterable[Any]) -> list[Any]:
    return [cls(**row._mapping) for row in rows]


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SecretsReads:
    def __init__(self, conn: Connection) -> None:
        self._c = conn

    # --- secrets --------------------------------------------------------------------------------

    def secret(self, *, arn: str | None = None, name: str | None = None, lock: bool = False) -> SecretRow | None:
        t = s.sm_secrets
        q = select(t).where(t.c.arn == arn) if arn is not None else select(t).where(t.c.name == name)
        row = self._c.execute(q.with_for_update() if lock else q).first()
        return SecretRow(**row._mapping) if row else None

    def secrets_with_arn_prefix(self, prefix: str, suffix_length: int) -> list[SecretRow]:
        """Secrets whose ARN is `prefix` followed by exactly `suffix_length` characters (a partial ARN)."""
        t = s.sm_secrets
        pattern = _like_escaped(prefix) + "_" * suffix_length
        found = _rows(SecretRow, self._c.execute(select(t).where(t.c.arn.like(pattern, escape="\\"))))
        # SQLite's LIKE ignores case: keep the exact matches
        return [r for r in found if r.arn.startswith(prefix) and len(r.arn) == len(prefix) + suffix_length]

    def secrets(self) -> list[SecretRow]:
        t = s.sm_secrets
        return _rows(SecretRow, self._c.execute(select(t).order_by(t.c.created_at, t.c.name)))

    def secret_versions(self, secret_arns: Sequence[str]) -> dict[str, list[SecretVersionRow]]:
        """Secret ARN -> its versions, oldest first."""
        t = s.sm_versions
        q = (select(t).where(t.c.secret_arn.in_(list(secret_arns)))
             .order_by(t.c.secret_arn, t.c.created_at, t.c.version_id))
        out: dict[str, list[SecretVersionRow]] = {}
        for row in _rows(SecretVersionRow, self._c.execute(q)):
            out.setdefault(row.secret_arn, []).append(row)
        return out

    # --- parameters -----------------------------------------------------------------------------

    def parameter(self, name: str, version: int | None = None, lock: bool = False) -> ParameterVersionRow | None:
        """The parameter's current version, or the version asked for."""
        p, v = s.ssm_parameters, s.ssm_versions
        if version is None:
            q = select(v).join(p, and_(p.c.name == v.c.name, p.c.version == v.c.version)).where(p.c.name == name)
        else:
            q = select(v).where(and_(v.c.name == name, v.c.version == version))
        row = self._c.execute(q.with_for_update() if lock else q).first()
        return ParameterVersionRow(**row._mapping) if row else None

    def parameter_exists(self, name: str) -> bool:
        p = s.ssm_parameters
        return self._c.execute(select(p.c.name).where(p.c.name == name)).first() is not None

    def parameters(self, names: Sequence[str] | None = None, prefix: str | None = None) -> list[ParameterVersionRow]:
        """Current versions, by name; of the names given, or of the names starting with `prefix`."""
        p, v = s.ssm_parameters, s.ssm_versions
        q = select(v).join(p, and_(p.c.name == v.c.name, p.c.version == v.c.version))
        if names is not None:
            q = q.where(p.c.name.in_(list(names)))
        if prefix:
            q = q.where(p.c.name.like(_like_escaped(prefix) + "%", escape="\\"))
        found = _rows(ParameterVersionRow, self._c.execute(q.order_by(p.c.name)))
        return [r for r in found if r.name.startswith(prefix)] if prefix else found  # SQLite's LIKE ignores case

    # --- tags -----------------------------------------------------------------------------------

    def tags(self, resource_arns: Sequence[str]) -> dict[str, Tags]:
        """Resource ARN -> its tags in the order they were added (absent: none)."""
        t = s.secret_tags
        q = (select(t.c.resource_arn, t.c.key, t.c.value).where(t.c.resource_arn.in_(list(resource_arns)))
             .order_by(t.c.resource_arn, t.c.position))
        out: dict[str, Tags] = {}
        for arn, key, value in self._c.execute(q):
            out.setdefault(arn, []).append((key, value))
        return out


class SecretsWrites(SecretsReads):
    # --- secrets --------------------------------------------------------------------------------

    def insert_secret(self, row: SecretRow) -> bool:
        """False when a secret has this name (or ARN) already; nothing is written then."""
        return self._insert_unique(s.sm_secrets, row)

    def update_secret(self, arn: str, **values: Any) -> None:
        t = s.sm_secrets
        self._c.execute(update(t).where(t.c.arn == arn).values(**values))

    def delete_secret(self, arn: str) -> None:
        for table, column in ((s.sm_versions, s.sm_versions.c.secret_arn), (s.secret_tags, s.secret_tags.c.resource_arn),
                              (s.sm_secrets, s.sm_secrets.c.arn)):
            self._c.execute(delete(table).where(column == arn))

    def expired_secret_arns(self, now: float) -> list[str]:
        t = s.sm_secrets
        q = select(t.c.arn).where(and_(t.c.deletion_date.is_not(None), t.c.deletion_date <= now))
        return [r[0] for r in self._c.execute(q)]

    def insert_secret_version(self, row: SecretVersionRow) -> None:
        self._c.execute(insert(s.sm_versions).values(**dataclasses.asdict(row)))

    def set_stages(self, secret_arn: str, version_id: str, stages: list[str]) -> None:
        t = s.sm_versions
        self._c.execute(update(t).where(and_(t.c.secret_arn == secret_arn, t.c.version_id == version_id))
                        .values(stages=stages))

    def delete_secret_versions(self, secret_arn: str, version_ids: Sequence[str]) -> None:
        t = s.sm_versions
        self._c.execute(delete(t).where(and_(t.c.secret_arn == secret_arn, t.c.version_id.in_(list(version_ids)))))

    # --- parameters -----------------------------------------------------------------------------

    def lock_parameter(self, name: str) -> int | None:
        """The current version number, its row locked; None when there is no such parameter."""
        p = s.ssm_parameters
        row = self._c.execute(select(p.c.version).where(p.c.name == name).with_for_update()).first()
        return int(row[0]) if row else None

    def insert_parameter(self, row: ParameterVersionRow) -> bool:
        """A new parameter at version 1; False when the name is taken (nothing is written then)."""
        if not self._insert_unique(s.ssm_parameters, {"name": row.name, "version": row.version}):
            return False
        self._c.execute(insert(s.ssm_versions).values(**dataclasses.asdict(row)))
        return True

    def add_parameter_version(self, row: ParameterVersionRow, keep: int) -> None:
        """`row` becomes current; versions older than the `keep` newest go."""
        p, v = s.ssm_parameters, s.ssm_versions
        self._c.execute(insert(v).values(**dataclasses.asdict(row)))
        self._c.execute(update(p).where(p.c.name == row.name).values(version=row.version))
        self._c.execute(delete(v).where(and_(v.c.name == row.name, v.c.version <= row.version - keep)))

    def delete_parameter(self, name: str, arn: str) -> bool:
        p, v, t = s.ssm_parameters, s.ssm_versions, s.secret_tags
        gone = self._c.execute(delete(p).where(p.c.name == name)).rowcount
        self._c.execute(delete(v).where(v.c.name == name))
        self._c.execute(delete(t).where(t.c.resource_arn == arn))
        return bool(gone)

    # --- tags -----------------------------------------------------------------------------------

    def put_tags(self, resource_arn: str, tags: Sequence[tuple[str, str]]) -> None:
        """Add or overwrite tags; new keys go after the resource's existing ones."""
        t = s.secret_tags
        existing = {key for key, _ in self.tags([resource_arn]).get(resource_arn, [])}
        pos = self._c.execute(select(func.max(t.c.position)).where(t.c.resource_arn == resource_arn)).scalar() or 0
        for key, value in tags:
            if key in existing:
                self._c.execute(update(t).where(and_(t.c.resource_arn == resource_arn, t.c.key == key))
                                .values(value=value))
                continue
            pos += 1
            existing.add(key)
            self._c.execute(insert(t).values(resource_arn=resource_arn, key=key, value=value, position=pos))

    def remove_tags(self, resource_arn: str, keys: Sequence[str]) -> None:
        t = s.secret_tags
        self._c.execute(delete(t).where(and_(t.c.resource_arn == resource_arn, t.c.key.in_(list(keys)))))

    def _insert_unique(self, table: Table, row: Any) -> bool:
        values = row if isinstance(row, dict) else dataclasses.asdict(row)
        try:
            with self._c.begin_nested():
                self._c.execute(insert(table).values(**values))
        except IntegrityError:
            return False
        return True
