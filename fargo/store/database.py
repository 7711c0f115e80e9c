"""Opens the store (SQLite file or PostgreSQL), brings its schema up to date, and reads/writes rows.

Every method is one short transaction; callers hold AWS-shaped documents, never ORM objects. Task writes
that must be all-or-nothing (RunTask with its address, StopTask, a batch of agent reports) take a
`TaskWrites` from `task_writes()`: one transaction that locks the rows it reads.
"""
from __future__ import annotations

import contextlib
import functools
import json
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (Connection, Engine, and_, bindparam, create_engine, delete, event, func, insert,
                        select, text, update)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from fargo.network.ipam import SubnetFullError, allocate_ip, usable_address_count
from fargo.store import schema

_MIGRATIONS = Path(__file__).parent / "migrations"
# Each migration's revision id is its file name's number (0001_initial.py is "0001").
_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")
MIGRATE_TIMEOUT_S = 600.0


def head_revision() -> str:
    """The newest migration's revision id, read from the file names (alembic is not imported for it)."""
    return max(m.group(1) for f in (_MIGRATIONS / "versions").iterdir() if (m := _REVISION_FILE.match(f.name)))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while the agent writes task state; NORMAL sync is safe with WAL.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


@dataclass
class TaskRecord:
    """A task row: the API document plus the desired/known bookkeeping beside it."""

    doc: dict
    agent_id: str | None
    generation: int
    report_seq: int


class Store:
    def __init__(self, url: str) -> None:
        self._url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
        self._sqlite = url.startswith("sqlite")
        # A read of a few rows from SQLite is a file read (WAL: never behind a writer), tens of µs: less than
        # a thread hop costs, so a caller may make it on the event loop. PostgreSQL's is a round trip away.
        self.quick_reads = self._sqlite
        if self._sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in SQLite's busy
        # handler (1, 2, 5, 10 ... 100 ms) however soon the lock is free. Writers of this process queue here
        # instead and go the moment the one before commits. (Re-entrant: a nested write fails as before,
        # on SQLite's busy timeout, rather than hang.)
        self._write_lock = threading.RLock()
        self._readers = threading.local()  # each thread's own SQLite connection for `_driver_rows`

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction. On SQLite it takes the write lock first: a WAL reader that later writes
        fails at once (SQLITE_BUSY_SNAPSHOT) when another connection committed in between."""
        if not self._sqlite:
            with self.engine.begin() as c:
                yield c
            return
        with self._write_lock, self.engine.begin() as c:
            c.exec_driver_sql("BEGIN IMMEDIATE")
            yield c

    def _driver_rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """The rows of a read written in the driver's own SQL (`?` marks its parameters): for the reads every
        DescribeTasks and RunTask makes, where SQLAlchemy's execution took 50 of the 55 µs a lookup of one
        row cost. On SQLite each thread reads on a connection of its own, never the pool's: these reads run
        on the event loop too (`quick_reads`), and a pool emptied by a burst of threads must not make the
        loop wait for a connection."""
        if self._sqlite:
            return self._own_reader().execute(sql, params).fetchall()  # fetched whole: no read left open
        sql = sql.replace("?", "%s")  # psycopg's marks (no `?` or `%` is ever inside these statements)
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
            finally:
                cursor.close()
        finally:
            raw.close()  # back to the pool, which ends the read's transaction

    def _own_reader(self) -> sqlite3.Connection:
        """This thread's read-only connection to the SQLite file (autocommit: each read sees the newest
        commit and holds no transaction after it)."""
        reader = getattr(self._readers, "connection", None)
        if reader is None:
            reader = sqlite3.connect(self._url.removeprefix("sqlite:///"), isolation_level=None)
            reader.execute("PRAGMA busy_timeout=5000")
            reader.execute("PRAGMA query_only=1")
            reader.execute("PRAGMA cache_size=-256")  # KiB: these reads touch a few pages
            self._readers.connection = reader
        return reader

    def migrate(self) -> None:
        """Bring the schema to the newest revision, in this process."""
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def revision(self) -> str | None:
        """The schema's revision, None for a database no migration has touched."""
        try:
            with self.engine.connect() as c:
                return c.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError):  # no alembic_version table yet
            return None

    def migrate_apart(self) -> None:
        """As `migrate`, for a long-lived process: nothing when the schema is up to date, else the upgrade
        runs in a child process. Alembic and its migrations stay out of `fargo up` (about 11 MiB it would
        hold for its whole life, for work done once). The URL goes on stdin, not on the command line."""
        if self.revision() == head_revision():
            return
        try:
            done = subprocess.run([sys.executable, "-m", "fargo.store.upgrade"], input=self._url, text=True,
                                  capture_output=True, timeout=MIGRATE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the store's schema upgrade did not finish within {MIGRATE_TIMEOUT_S:.0f} s "
                               "(is another process holding the database?)") from None
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise RuntimeError(f"the store's schema upgrade failed: {why[:2000]}")

    def close(self) -> None:
        reader = getattr(self._readers, "connection", None)
        if reader is not None:  # (other threads' readers go with their threads)
            reader.close()
            self._readers.connection = None
        self.engine.dispose()

    # --- clusters -------------------------------------------------------------------------------

    def get_cluster(self, name: str) -> dict | None:
        rows = self._driver_rows(_GET_CLUSTER_SQL, [name])
        if not rows:
            return None
        doc = rows[0][0]
        return json.loads(doc) if isinstance(doc, str) else doc  # SQLite keeps JSON as text

    def put_cluster(self, doc: dict, created_at: float) -> None:
        t = schema.clusters
        with self._writing() as c:
            updated = c.execute(update(t).where(t.c.name == doc["clusterName"])
                                .values(arn=doc["clusterArn"], status=doc["status"], doc=doc)).rowcount
            if not updated:
                c.execute(insert(t).values(arn=doc["clusterArn"], name=doc["clusterName"], status=doc["status"],
                                           created_at=created_at, doc=doc))

    def list_cluster_arns(self, offset: int, limit: int) -> list[str]:
        t = schema.clusters
        with self.engine.connect() as c:
            rows = c.execute(select(t.c.arn).where(t.c.status == "ACTIVE")
                             .order_by(t.c.created_at, t.c.name).offset(offset).limit(limit)).all()
        return [r[0] for r in rows]

    # --- task definitions -----------------------------------------------------------------------

    def latest_revision(self, family: str) -> int:
        t = schema.task_definitions
        with self.engine.connect() as c:
            return c.execute(select(func.max(t.c.revision)).where(t.c.family == family)).scalar() or 0

    def insert_task_definition(self, doc: dict) -> bool:
        """False when another writer took this revision first (the caller retries with the next)."""
        t = schema.task_definitions
        try:
            with self._writing() as c:
                c.execute(insert(t).values(arn=doc["taskDefinitionArn"], family=doc["family"],
                                           revision=doc["revision"], status=doc["status"], doc=doc))
        except IntegrityError:
            return False
        return True

    def update_task_definition(self, doc: dict) -> None:
        t = schema.task_definitions
        with self._writing() as c:
            c.execute(update(t).where(t.c.arn == doc["taskDefinitionArn"]).values(status=doc["status"], doc=doc))

    def get_task_definition(self, family: str, revision: int | None) -> dict | None:
        """A bare family means its latest ACTIVE revision."""
        with self.engine.connect() as c:
            if revision is None:
                row = c.execute(_LATEST_TASK_DEFINITION, {"b_family": family}).first()
            else:
                row = c.execute(_TASK_DEFINITION, {"b_family": family, "b_revision": revision}).first()
        return row[0] if row else None

    def list_task_definition_arns(self, family: str | None, status: str | None, descending: bool,
                                  offset: int, limit: int) -> list[str]:
        t = schema.task_definitions
        q = select(t.c.arn)
        if family:
            q = q.where(t.c.family == family)
        if status:
            q = q.where(t.c.status == status)
        order = (t.c.family.desc(), t.c.revision.desc()) if descending else (t.c.family, t.c.revision)
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(q.order_by(*order).offset(offset).limit(limit)).all()]

    def list_task_definition_families(self, prefix: str | None, status: str, offset: int, limit: int) -> list[str]:
        t = schema.task_definitions
        q = select(t.c.family).distinct()
        if prefix:
            q = q.where(t.c.family.startswith(prefix, autoescape=True))
        active = select(t.c.family).where(t.c.status == "ACTIVE")
        if status == "ACTIVE":
            q = q.where(t.c.family.in_(active))
        elif status == "INACTIVE":
            q = q.where(t.c.family.not_in(active))
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(q.order_by(t.c.family).offset(offset).limit(limit)).all()]

    # --- tags -----------------------------------------------------------------------------------

    def get_tags(self, arn: str) -> list[dict]:
        t = schema.tags
        with self.engine.connect() as c:
            rows = c.execute(select(t.c.key, t.c.value).where(t.c.resource_arn == arn).order_by(t.c.position)).all()
        return [{"key": k, "value": v} for k, v in rows]

    def put_tags(self, arn: str, new_tags: Iterable[dict]) -> None:
        t = schema.tags
        with self._writing() as c:
            pos = c.execute(select(func.max(t.c.position)).where(t.c.resource_arn == arn)).scalar() or 0
            for tag in new_tags:
                value = tag.get("value", "")
                if c.execute(update(t).where(and_(t.c.resource_arn == arn, t.c.key == tag["key"]))
                             .values(value=value)).rowcount == 0:
                    pos += 1
                    c.execute(insert(t).values(resource_arn=arn, key=tag["key"], value=value, position=pos))

    def delete_tags(self, arn: str, keys: Sequence[str]) -> None:
        t = schema.tags
        with self._writing() as c:
            c.execute(delete(t).where(and_(t.c.resource_arn == arn, t.c.key.in_(list(keys)))))

    # --- tasks ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def task_writes(self) -> Iterator[TaskWrites]:
        """One transaction over tasks, their generations and addresses; it commits when the block ends."""
        with self._writing() as c:
            yield TaskWrites(c)

    def insert_task(self, doc: dict, task_id: str, family: str, client_token: str | None,
                    agent_id: str | None = None) -> int:
        """Insert a task with a new generation (no address: RunTask allocates in its own `task_writes`)."""
        with self.task_writes() as w:
            return w.insert(doc, task_id, family, client_token, agent_id)

    def get_task(self, task_id: str) -> dict | None:
        t = schema.tasks
        with self.engine.connect() as c:
            row = c.execute(select(t.c.doc).where(t.c.task_id == task_id)).first()
        return row[0] if row else None

    def get_task_texts(self, task_ids: Sequence[str]) -> dict[str, str]:
        """The documents of these tasks as the JSON text stored, by task id (missing ones left out): a
        caller that keeps what it decoded before decodes only what changed."""
        ids = list(task_ids)
        return {tid: text for tid, text in self._driver_rows(_task_texts_sql(len(ids)), ids)}

    def get_task_record(self, task_id: str) -> TaskRecord | None:
        t = schema.tasks
        with self.engine.connect() as c:
            row = c.execute(select(*_RECORD_COLUMNS).where(t.c.task_id == task_id)).first()
        return _record(row) if row else None

    def tasks_by_client_token(self, cluster_arn: str, client_token: str) -> list[dict]:
        t = schema.tasks
        with self.engine.connect() as c:
            rows = c.execute(select(t.c.doc).where(and_(t.c.cluster_arn == cluster_arn,
                                                        t.c.client_token == client_token))
                             .order_by(t.c.created_at)).all()
        return [r[0] for r in rows]

    def list_task_arns(self, cluster_arn: str, desired_status: str, family: str | None, started_by: str | None,
                       offset: int, limit: int) -> list[str]:
        t = schema.tasks
        q = select(t.c.arn).where(and_(t.c.cluster_arn == cluster_arn, t.c.desired_status == desired_status))
        if family:
            q = q.where(t.c.family == family)
        if started_by:
            q = q.where(t.c.started_by == started_by)
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(q.order_by(t.c.created_at, t.c.arn).offset(offset).limit(limit)).all()]

    def live_task_docs(self, cluster_arn: str) -> list[dict]:
        """The documents of the cluster's tasks that are not STOPPED yet, oldest first."""
        t = schema.tasks
        with self.engine.connect() as c:
            rows = c.execute(select(t.c.doc).where(and_(t.c.cluster_arn == cluster_arn, t.c.last_status != "STOPPED"))
                             .order_by(t.c.created_at, t.c.arn)).all()
        return [r[0] for r in rows]

    def count_tasks(self, cluster_arn: str, last_statuses: Sequence[str] | None = None,
                    exclude_last_status: str | None = None) -> int:
        t = schema.tasks
        q = select(func.count()).select_from(t).where(t.c.cluster_arn == cluster_arn)
        if last_statuses is not None:
            q = q.where(t.c.last_status.in_(list(last_statuses)))
        if exclude_last_status is not None:
            q = q.where(t.c.last_status != exclude_last_status)
        with self.engine.connect() as c:
            return int(c.execute(q).scalar() or 0)

    def generation(self) -> int:
        """The store-wide generation: every task change the control plane made so far has one at most this."""
        with self.engine.connect() as c:
            return _generation(c)

    def assigned_tasks(self, agent_id: str, since: int | None) -> tuple[int, list[tuple[TaskRecord, dict | None]]]:
        """The generation, then the agent's tasks with their task definitions: since=None those not yet
        STOPPED, else those whose generation is above `since`.

        The generation is read first: a change committed later has a higher one, so asking again with
        the generation returned misses nothing."""
        with self.engine.connect() as c:
            generation = _generation(c)
            if since is None:
                rows = c.execute(_LIVE_ASSIGNED, {"b_agent": agent_id}).all()
            else:
                rows = c.execute(_ASSIGNED_SINCE, {"b_agent": agent_id, "b_since": since}).all()
        return generation, [(_record(row[:-1]), row[-1]) for row in rows]

    def used_ip_count(self, subnet_id: str) -> int:
        t = schema.ip_allocations
        with self.engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(t).where(t.c.subnet_id == subnet_id)).scalar() or 0)

    def allocated_ips(self, subnet_id: str) -> dict[str, str]:
        """Address -> task ARN for the subnet's addresses that tasks hold."""
        t = schema.ip_allocations
        with self.engine.connect() as c:
            return dict(c.execute(select(t.c.ip, t.c.task_arn).where(t.c.subnet_id == subnet_id)).all())

    def purge_stopped_tasks(self, stopped_before: float) -> list[str]:
        """Delete tasks stopped before the given time, with their tags; return their ids."""
        t = schema.tasks
        old = and_(t.c.last_status == "STOPPED", t.c.stopped_at < stopped_before)
        with self._writing() as c:
            rows = c.execute(select(t.c.task_id, t.c.arn).where(old)).all()
            if rows:
                arns = [arn for _, arn in rows]
                c.execute(delete(schema.tags).where(schema.tags.c.resource_arn.in_(arns)))
                c.execute(delete(schema.ip_allocations).where(schema.ip_allocations.c.task_arn.in_(arns)))
                c.execute(delete(t).where(old))
        return [task_id for task_id, _ in rows]


_RECORD_COLUMNS = (schema.tasks.c.doc, schema.tasks.c.agent_id, schema.tasks.c.generation, schema.tasks.c.report_seq)


def _record(row: Sequence[Any]) -> TaskRecord:
    doc, agent_id, generation, report_seq = row
    return TaskRecord(doc=doc, agent_id=agent_id, generation=int(generation), report_seq=int(report_seq))


def _generation(c: Connection) -> int:
    return int(c.execute(_GENERATION).scalar() or 0)


# DescribeTasks (which waiters poll) reads the cluster and the task texts each time, in the driver's SQL
# (`_driver_rows`): 4 and 15 µs where SQLAlchemy's statements took 54 and 44.
_GET_CLUSTER_SQL = "SELECT doc FROM clusters WHERE name = ?"


@functools.lru_cache(maxsize=128)
def _task_texts_sql(count: int) -> str:
    return f"SELECT task_id, CAST(doc AS TEXT) FROM tasks WHERE task_id IN ({', '.join(['?'] * count)})"


# Built once: agent reports save task rows all the time, and making the statement anew each time (with its
# cache key) cost as much as the write itself.
_SAVE_TASK = update(schema.tasks).where(schema.tasks.c.arn == bindparam("b_arn")).values(
    desired_status=bindparam("b_desired"), last_status=bindparam("b_last"), stopped_at=bindparam("b_stopped_at"),
    doc=bindparam("b_doc"), generation=bindparam("b_generation"), report_seq=bindparam("b_report_seq"))

# So are the statements of a task's start and of the agent's reports (RunTask, the assignment batch, each
# report's merge): built anew, their SQL construction took three times what SQLite took to run them.
_t, _td, _k = schema.tasks, schema.task_definitions, schema.counters
_ip, _eni = schema.ip_allocations, schema.network_interfaces
_GENERATION = select(_k.c.value).where(_k.c.name == schema.GENERATION_COUNTER)
_BUMP_GENERATION = (update(_k).where(_k.c.name == schema.GENERATION_COUNTER).values(value=_k.c.value + 1)
                    .returning(_k.c.value))
_TASK_DEFINITION = select(_td.c.doc).where(and_(_td.c.family == bindparam("b_family"),
                                                _td.c.revision == bindparam("b_revision")))
_LATEST_TASK_DEFINITION = (select(_td.c.doc).where(and_(_td.c.family == bindparam("b_family"),
                                                        _td.c.status == "ACTIVE"))
                           .order_by(_td.c.revision.desc()).limit(1))
_ASSIGNED = (select(*_RECORD_COLUMNS, _td.c.doc).select_from(_t)
             .join(_td, _td.c.arn == _t.c.task_definition_arn, isouter=True)
             .where(_t.c.agent_id == bindparam("b_agent")))
_LIVE_ASSIGNED = _ASSIGNED.where(_t.c.last_status != "STOPPED").order_by(_t.c.generation)
_ASSIGNED_SINCE = _ASSIGNED.where(_t.c.generation > bindparam("b_since")).order_by(_t.c.generation)
_LOCK_TASKS = (select(_t.c.arn, *_RECORD_COLUMNS).where(_t.c.arn.in_(bindparam("b_arns", expanding=True)))
               .order_by(_t.c.arn).with_for_update())
_INSERT_TASK = insert(_t)
_TAKEN_IPS = select(_ip.c.ip).where(_ip.c.subnet_id == bindparam("b_subnet"))
_INSERT_IP = insert(_ip)
_LOCK_SUBNET = (select(schema.subnets.c.subnet_id).where(schema.subnets.c.subnet_id == bindparam("b_subnet"))
                .with_for_update(read=True))
_LOCK_GROUPS = (select(schema.security_groups.c.group_id)
                .where(schema.security_groups.c.group_id.in_(bindparam("b_groups", expanding=True)))
                .with_for_update(read=True))
_INSERT_ENI = insert(_eni)
_RELEASE_IP = delete(_ip).where(_ip.c.task_arn == bindparam("b_arn"))
_ENIS_OF_TASK = select(_eni.c.eni_id).where(_eni.c.task_arn == bindparam("b_arn"))
_DELETE_ENI_TAGS = delete(schema.ec2_tags).where(schema.ec2_tags.c.resource_id.in_(bindparam("b_enis", expanding=True)))
_DELETE_ENIS = delete(_eni).where(_eni.c.task_arn == bindparam("b_arn"))


class TaskWrites:
    """The writes of one task transaction. Rows read here are locked (FOR UPDATE on PostgreSQL; SQLite
    holds its one write lock), so a StopTask and an agent report never overwrite each other."""

    def __init__(self, conn: Connection) -> None:
        self._c = conn

    def lock(self, task_arns: Iterable[str]) -> dict[str, TaskRecord]:
        """The named tasks that exist, by ARN, locked in ARN order (one order for all: no deadlocks)."""
        wanted = sorted(set(task_arns))
        if not wanted:
            return {}
        rows = self._c.execute(_LOCK_TASKS, {"b_arns": wanted}).all()
        return {row[0]: _record(row[1:]) for row in rows}

    def lock_by_id(self, task_id: str) -> TaskRecord | None:
        t = schema.tasks
        row = self._c.execute(select(*_RECORD_COLUMNS).where(t.c.task_id == task_id).with_for_update()).first()
        return _record(row) if row else None

    def next_generation(self) -> int:
        """Bump the store-wide generation; the counter row stays locked until this transaction ends."""
        value = self._c.execute(_BUMP_GENERATION).scalar()
        if value is None:  # a store made before the counter existed: start it
            self._c.execute(insert(schema.counters).values(name=schema.GENERATION_COUNTER, value=1))
            value = 1
        return int(value)

    def insert(self, doc: dict, task_id: str, family: str, client_token: str | None, agent_id: str | None) -> int:
        """Insert a new task with the next generation; returns the generation."""
        generation = self.next_generation()
        self._c.execute(_INSERT_TASK, dict(
            arn=doc["taskArn"], task_id=task_id, cluster_arn=doc["clusterArn"], family=family,
            started_by=doc.get("startedBy"), desired_status=doc["desiredStatus"], last_status=doc["lastStatus"],
            created_at=doc["createdAt"], stopped_at=doc.get("stoppedAt"), client_token=client_token, doc=doc,
            task_definition_arn=doc.get("taskDefinitionArn"), agent_id=agent_id, generation=generation,
            report_seq=0))
        return generation

    def save(self, record: TaskRecord) -> None:
        """Write back a locked record: its document, the columns queried by, generation and report seq."""
        doc = record.doc
        self._c.execute(_SAVE_TASK, {
            "b_arn": doc["taskArn"], "b_desired": doc["desiredStatus"], "b_last": doc["lastStatus"],
            "b_stopped_at": doc.get("stoppedAt"), "b_doc": doc, "b_generation": record.generation,
            "b_report_seq": record.report_seq})

    def allocate_ip(self, subnet_id: str, subnet_cidr: str, task_arn: str) -> str:
        """The lowest free address of the subnet, now held by `task_arn`.

        Another replica may insert the same address at the same moment: the unique key refuses one of
        the two, and that one tries the next address (each try in a savepoint, so the transaction lives)."""
        taken = {r[0] for r in self._c.execute(_TAKEN_IPS, {"b_subnet": subnet_id}).all()}
        for _attempt in range(usable_address_count(subnet_cidr)):
            ip = allocate_ip(subnet_cidr, taken)
            try:
                with self._c.begin_nested():
                    self._c.execute(_INSERT_IP, {"subnet_id": subnet_id, "ip": ip, "task_arn": task_arn})
            except IntegrityError:
                taken.add(ip)
                continue
            return ip
        raise SubnetFullError(subnet_cidr)

    def insert_network_interface(self, row: dict) -> None:
        """The task ENI of an address allocated in this transaction (keys: the `network_interfaces` columns;
        `group_ids` a list, `public_ip` optional).

        The subnet and groups are locked for share first, so a DeleteSubnet or DeleteSecurityGroup of another
        replica waits for this transaction and then sees the ENI; LookupError when one of them is gone."""
        group_ids = list(row.get("group_ids") or [])
        if self._c.execute(_LOCK_SUBNET, {"b_subnet": row["subnet_id"]}).first() is None:
            raise LookupError(f"subnet {row['subnet_id']} does not exist")
        found = {r[0] for r in self._c.execute(_LOCK_GROUPS, {"b_groups": group_ids})}
        missing = [group_id for group_id in group_ids if group_id not in found]
        if missing:
            raise LookupError(f"security group {missing[0]} does not exist")
        self._c.execute(_INSERT_ENI, dict(
            eni_id=row["eni_id"], attachment_id=row["attachment_id"], task_arn=row["task_arn"],
            subnet_id=row["subnet_id"], vpc_id=row["vpc_id"], availability_zone=row["availability_zone"],
            ip=row["ip"], mac=row["mac"], private_dns_name=row["private_dns_name"], group_ids=group_ids,
            assign_public_ip=bool(row.get("assign_public_ip", False)), public_ip=row.get("public_ip"),
            attach_time=float(row["attach_time"])))

    def release_ip(self, task_arn: str) -> None:
        """Give back the task's address; its ENI (and the ENI's EC2 tags) go with it."""
        self._c.execute(_RELEASE_IP, {"b_arn": task_arn})
        eni_ids = [r[0] for r in self._c.execute(_ENIS_OF_TASK, {"b_arn": task_arn})]
        if eni_ids:
            self._c.execute(_DELETE_ENI_TAGS, {"b_enis": eni_ids})
            self._c.execute(_DELETE_ENIS, {"b_arn": task_arn})
