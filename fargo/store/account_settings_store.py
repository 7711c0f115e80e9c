"""The SQL of ECS account settings: read, set (insert or update) and delete one principal's settings.

A put is one statement pair in one write transaction, keyed by (principal, name): two replicas setting the
same setting leave one row, the last writer's value.
"""
from __future__ import annotations

from sqlalchemy import and_, delete, insert, select, update

from fargo.store.accounts_schema import account_settings as t
from fargo.store.database import Store


class AccountSettingsStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def settings_of(self, principal_arns: list[str]) -> dict[str, dict[str, str]]:
        """principal -> {name: value} of what was set for these principals."""
        out: dict[str, dict[str, str]] = {arn: {} for arn in principal_arns}
        with self._store.engine.connect() as c:
            rows = c.execute(select(t.c.principal_arn, t.c.name, t.c.value)
                             .where(t.c.principal_arn.in_(principal_arns))).all()
        for principal, name, value in rows:
            out[principal][name] = value
        return out

    def put(self, principal_arn: str, name: str, value: str, now: float) -> None:
        key = and_(t.c.principal_arn == principal_arn, t.c.name == name)
        with self._store._writing() as c:
            if not c.execute(update(t).where(key).values(value=value, updated_at=now)).rowcount:
                c.execute(insert(t).values(principal_arn=principal_arn, name=name, value=value, updated_at=now))

    def delete(self, principal_arn: str, name: str) -> str | None:
        """Forget the setting; the value it had, or None when it was not set."""
        key = and_(t.c.principal_arn == principal_arn, t.c.name == name)
        with self._store._writing() as c:
            value = c.execute(select(t.c.value).where(key)).scalar()
            if value is not None:
                c.execute(delete(t).where(key))
        return value
