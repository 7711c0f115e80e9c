"""Which control-plane replica runs the service scheduler: exactly one at a time.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own; the lock goes
with the connection (a crashed or partitioned replica loses it when PostgreSQL drops its session) and the
next replica to ask takes it. A replica whose connection fails stops scheduling at once. On SQLite one
process owns the database file, so it always leads.
"""
from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

log = logging.getLogger("fargo.control")

# The advisory lock's key: "fargoSCH" as a 64-bit number, so no other user of the database picks it by chance.
SCHEDULER_LOCK_KEY = 0x6661_7267_6F53_4348


class Leadership(Protocol):
    def holds(self) -> bool:
        """True while this replica is the leader (sync: it may talk to the database)."""
        ...

    def close(self) -> None: ...


class SoleLeader:
    """SQLite: one process per database file."""

    def holds(self) -> bool:
        return True

    def close(self) -> None:
        pass


class AdvisoryLockLeader:
    """PostgreSQL: `pg_try_advisory_lock` held on a dedicated connection (autocommit, outside the pool)."""

    def __init__(self, url: str, key: int = SCHEDULER_LOCK_KEY) -> None:
        self._engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._key = key
        self._conn: Connection | None = None
        self._leading = False

    def holds(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._engine.connect()
            if self._leading:
                self._conn.execute(text("SELECT 1"))  # the session (and with it the lock) is still there
                return True
            self._leading = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                                    {"key": self._key}).scalar())
            if self._leading:
                log.info("this replica now runs the service scheduler")
            return self._leading
        except Exception as e:  # noqa: BLE001 - any failure of the connection ends the leadership
            if self._leading:
                log.warning("lost the service scheduler's lock (%s): no longer scheduling", e)
            self._drop()
            return False

    def close(self) -> None:
        self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        self._leading = False
        if self._conn is not None:
            try:
                self._conn.close()  # closing the session releases the lock
            except Exception:  # noqa: BLE001 - it is gone either way
                pass
            self._conn = None


def leadership_for(database_url: str) -> Leadership:
    return SoleLeader() if database_url.startswith("sqlite") else AdvisoryLockLeader(database_url)
