"""The SQL of ECS services: their rows, and the reads of their tasks the scheduler and ListTasks make.

A write names the version it read (`save(..., expected_version)`): when another writer got there first it
changes nothing and says so, and the caller reads again. Tasks are read from `tasks` (the agents' reports
land there), never copied into the service row.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, or_, select, update

from fargo.store import schema
from fargo.store.database import Store
from fargo.store.services_schema import services


# Built once: the scheduler asks every second, and building the statement cost more than running it.
_SCHEDULED_ARNS = (select(services.c.arn).where(services.c.status.in_(["ACTIVE", "DRAINING"]))
                   .order_by(services.c.created_at, services.c.arn))


@dataclass
class ServiceRow:
    doc: dict
    version: int
    client_token: str | None


class ServicesStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    # --- services -------------------------------------------------------------------------------

    def get(self, arn: str) -> ServiceRow | None:
        with self._store.engine.connect() as c:
            row = c.execute(select(services.c.doc, services.c.version, services.c.client_token)
                            .where(services.c.arn == arn)).first()
        return ServiceRow(row[0], int(row[1]), row[2]) if row else None

    def get_many(self, arns: Sequence[str]) -> dict[str, ServiceRow]:
        with self._store.engine.connect() as c:
            rows = c.execute(select(services.c.arn, services.c.doc, services.c.version, services.c.client_token)
                             .where(services.c.arn.in_(list(arns)))).all()
        return {arn: ServiceRow(doc, int(version), token) for arn, doc, version, token in rows}

    def create(self, doc: dict, client_token: str | None, replaces_version: int | None) -> bool:
        """Insert a new service, or replace an INACTIVE one of the same ARN read at `replaces_version`;
        False when another writer made or changed it first. The old service's tags go with it."""
        values = dict(cluster_arn=doc["clusterArn"], service_name=doc["serviceName"], status=doc["status"],
                      launch_type=doc.get("launchType"), client_token=client_token, created_at=doc["createdAt"],
                      version=1, doc=doc)
        t = services
        with self._store._writing() as c:
            if replaces_version is None:
                if c.execute(select(t.c.arn).where(t.c.arn == doc["serviceArn"])).first() is not None:
                    return False
                c.execute(insert(t).values(arn=doc["serviceArn"], **values))
            else:
                values["version"] = replaces_version + 1
                if not c.execute(update(t).where(and_(t.c.arn == doc["serviceArn"], t.c.status == "INACTIVE",
                                                      t.c.version == replaces_version)).values(**values)).rowcount:
                    return False
                c.execute(delete(schema.tags).where(schema.tags.c.resource_arn == doc["serviceArn"]))
        return True

    def save(self, doc: dict, expected_version: int) -> bool:
        """Write the document back if the row is still at `expected_version` (then one above it)."""
        t = services
        with self._store._writing() as c:
            return bool(c.execute(update(t).where(and_(t.c.arn == doc["serviceArn"], t.c.version == expected_version))
                                  .values(status=doc["status"], launch_type=doc.get("launchType"), doc=doc,
                                          version=expected_version + 1)).rowcount)

    def list_arns(self, cluster_arn: str, launch_type: str | None, offset: int, limit: int) -> list[str]:
        """ACTIVE services only: DRAINING and INACTIVE ones are not listed."""
        t = services
        q = select(t.c.arn).where(and_(t.c.cluster_arn == cluster_arn, t.c.status == "ACTIVE"))
        if launch_type:
            q = q.where(t.c.launch_type == launch_type)
        with self._store.engine.connect() as c:
            return [r[0] for r in c.execute(q.order_by(t.c.created_at, t.c.arn).offset(offset).limit(limit)).all()]

    def scheduled_arns(self) -> list[str]:
        """The services the scheduler looks after: ACTIVE and DRAINING, oldest first."""
        with self._store.engine.connect() as c:
            return [r[0] for r in c.execute(_SCHEDULED_ARNS).all()]

    def count_active(self, cluster_arn: str, statuses: Sequence[str] = ("ACTIVE", "DRAINING")) -> int:
        t = services
        with self._store.engine.connect() as c:
            return len(c.execute(select(t.c.arn).where(and_(t.c.cluster_arn == cluster_arn,
                                                             t.c.status.in_(list(statuses))))).all())

    # --- their tasks ----------------------------------------------------------------------------

    def tasks_of(self, cluster_arn: str, deployment_ids: Sequence[str], stopped_since: float) -> list[dict]:
        """Task documents (with their private part) started by these deployments: all that are not STOPPED,
        and those that stopped after `stopped_since`."""
        t = schema.tasks
        if not deployment_ids:
            return []
        q = select(t.c.doc).where(and_(t.c.cluster_arn == cluster_arn, t.c.started_by.in_(list(deployment_ids)),
                                       or_(t.c.last_status != "STOPPED", t.c.stopped_at.is_(None),
                                           t.c.stopped_at >= stopped_since)))
        with self._store.engine.connect() as c:
            return [r[0] for r in c.execute(q.order_by(t.c.created_at, t.c.arn)).all()]

    def task_arns(self, cluster_arn: str, deployment_ids: Sequence[str], desired_status: str, family: str | None,
                  started_by: str | None, offset: int, limit: int) -> list[str]:
        """ListTasks with serviceName: the tasks its deployments started."""
        t = schema.tasks
        wanted = [d for d in deployment_ids if started_by is None or d == started_by]
        if not wanted:
            return []
        q = select(t.c.arn).where(and_(t.c.cluster_arn == cluster_arn, t.c.desired_status == desired_status,
                                       t.c.started_by.in_(wanted)))
        if family:
            q = q.where(t.c.family == family)
        with self._store.engine.connect() as c:
            return [r[0] for r in c.execute(q.order_by(t.c.created_at, t.c.arn).offset(offset).limit(limit)).all()]
