"""Opens the store (SQLite file or PostgreSQL), brings its schema up to date, and reads/writes rows.

Every method is one short transaction; callers hold AWS-shaped documents, never ORM objects.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, and_, create_engine, delete, event, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from fargo.store import schema

_MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while the agent writes task state; NORMAL sync is safe with WAL.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


class Store:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def migrate(self) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    # --- clusters -------------------------------------------------------------------------------

    def get_cluster(self, name: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(schema.clusters.c.doc).where(schema.clusters.c.name == name)).first()
        return row[0] if row else None

    def put_cluster(self, doc: dict, created_at: float) -> None:
        t = schema.clusters
        with self.engine.begin() as c:
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
            with self.engine.begin() as c:
                c.execute(insert(t).values(arn=doc["taskDefinitionArn"], family=doc["family"],
                                           revision=doc["revision"], status=doc["status"], doc=doc))
        except IntegrityError:
            return False
        return True

    def update_task_definition(self, doc: dict) -> None:
        t = schema.task_definitions
        with self.engine.begin() as c:
            c.execute(update(t).where(t.c.arn == doc["taskDefinitionArn"]).values(status=doc["status"], doc=doc))

    def get_task_definition(self, family: str, revision: int | None) -> dict | None:
        """A bare family means its latest ACTIVE revision."""
        t = schema.task_definitions
        q = select(t.c.doc).where(t.c.family == family)
        if revision is None:
            q = q.where(t.c.status == "ACTIVE").order_by(t.c.revision.desc()).limit(1)
        else:
            q = q.where(t.c.revision == revision)
        with self.engine.connect() as c:
            row = c.execute(q).first()
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
        with self.engine.begin() as c:
            pos = c.execute(select(func.max(t.c.position)).where(t.c.resource_arn == arn)).scalar() or 0
            for tag in new_tags:
                value = tag.get("value", "")
                if c.execute(update(t).where(and_(t.c.resource_arn == arn, t.c.key == tag["key"]))
                             .values(value=value)).rowcount == 0:
                    pos += 1
                    c.execute(insert(t).values(resource_arn=arn, key=tag["key"], value=value, position=pos))

    def delete_tags(self, arn: str, keys: Sequence[str]) -> None:
        t = schema.tags
        with self.engine.begin() as c:
            c.execute(delete(t).where(and_(t.c.resource_arn == arn, t.c.key.in_(list(keys)))))

    # --- tasks ----------------------------------------------------------------------------------

    def insert_task(self, doc: dict, task_id: str, family: str, client_token: str | None) -> None:
        t = schema.tasks
        with self.engine.begin() as c:
            c.execute(insert(t).values(
                arn=doc["taskArn"], task_id=task_id, cluster_arn=doc["clusterArn"], family=family,
                started_by=doc.get("startedBy"), desired_status=doc["desiredStatus"], last_status=doc["lastStatus"],
                created_at=doc["createdAt"], stopped_at=doc.get("stoppedAt"), client_token=client_token, doc=doc))

    def update_task(self, doc: dict) -> None:
        t = schema.tasks
        with self.engine.begin() as c:
            c.execute(update(t).where(t.c.arn == doc["taskArn"]).values(
                desired_status=doc["desiredStatus"], last_status=doc["lastStatus"],
                stopped_at=doc.get("stoppedAt"), doc=doc))

    def get_task(self, task_id: str) -> dict | None:
        t = schema.tasks
        with self.engine.connect() as c:
            row = c.execute(select(t.c.doc).where(t.c.task_id == task_id)).first()
        return row[0] if row else None

    def get_tasks(self, task_ids: Sequence[str]) -> dict[str, dict]:
        t = schema.tasks
        with self.engine.connect() as c:
            rows = c.execute(select(t.c.task_id, t.c.doc).where(t.c.task_id.in_(list(task_ids)))).all()
        return {tid: doc for tid, doc in rows}

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

    def unfinished_tasks(self) -> list[dict]:
        """Tasks the agent still owes work: anything not yet STOPPED."""
        t = schema.tasks
        with self.engine.connect() as c:
            rows = c.execute(select(t.c.doc).where(t.c.last_status != "STOPPED").order_by(t.c.created_at)).all()
        return [r[0] for r in rows]

    def purge_stopped_tasks(self, stopped_before: float) -> list[str]:
        """Delete tasks stopped before the given time, with their tags; return their ids."""
        t = schema.tasks
        old = and_(t.c.last_status == "STOPPED", t.c.stopped_at < stopped_before)
        with self.engine.begin() as c:
            rows = c.execute(select(t.c.task_id, t.c.arn).where(old)).all()
            if rows:
                c.execute(delete(schema.tags).where(schema.tags.c.resource_arn.in_([arn for _, arn in rows])))
                c.execute(delete(t).where(old))
        return [task_id for task_id, _ in rows]
