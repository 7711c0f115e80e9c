"""Two control-plane replicas on one PostgreSQL database: exactly one runs the service scheduler, and the
other takes over when the leader's connection goes (its process died); the services table on PostgreSQL."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from fargo.control.services.leadership import SCHEDULER_LOCK_KEY, AdvisoryLockLeader, SoleLeader, leadership_for
from fargo.store.database import Store
from fargo.store.services_store import ServicesStore
from tests.e2e.test_persistence import postgres_url  # noqa: F401 - the fixture: a fresh PostgreSQL database


def test_exactly_one_replica_leads_and_the_other_takes_over_when_it_goes(postgres_url: str) -> None:  # noqa: F811
    first, second = AdvisoryLockLeader(postgres_url), AdvisoryLockLeader(postgres_url)
    try:
        assert first.holds() is True
        assert second.holds() is False
        assert first.holds() is True and second.holds() is False  # asking again changes nothing
        first.close()  # as when its process dies: PostgreSQL ends the session and frees the lock
        assert second.holds() is True
        assert first.holds() is False  # back again, it stands by
    finally:
        first.close()
        second.close()


def test_a_leader_whose_session_is_killed_stops_leading(postgres_url: str) -> None:  # noqa: F811
    first, second = AdvisoryLockLeader(postgres_url), AdvisoryLockLeader(postgres_url)
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        assert first.holds() and not second.holds()
        with admin.connect() as c:  # the leader's connection is cut (a network partition, an admin)
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                           "AND objid = :low"), {"low": SCHEDULER_LOCK_KEY & 0xFFFFFFFF})
        assert first.holds() is False
        assert second.holds() is True
    finally:
        first.close()
        second.close()
        admin.dispose()


def test_sqlite_has_one_process_and_it_always_leads() -> None:
    assert isinstance(leadership_for("sqlite:////tmp/x.db"), SoleLeader)
    assert leadership_for("sqlite:////tmp/x.db").holds()


def test_the_services_table_migrates_and_takes_optimistic_writes_on_postgresql(postgres_url: str) -> None:  # noqa: F811
    store = Store(postgres_url)
    try:
        store.migrate()
        services = ServicesStore(store)
        doc = {"serviceArn": "arn:aws:ecs:us-east-1:000000000000:service/default/web", "serviceName": "web",
               "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/default", "status": "ACTIVE",
               "launchType": "FARGATE", "createdAt": 1.0, "deployments": []}
        assert services.create(doc, "tok", None) and not services.create(doc, "tok", None)
        row = services.get(doc["serviceArn"])
        assert row is not None and row.version == 1 and row.client_token == "tok"
        assert services.save({**doc, "desiredCount": 2}, 1) and not services.save(doc, 1)  # the second is stale
        assert services.list_arns(doc["clusterArn"], "FARGATE", 0, 10) == [doc["serviceArn"]]
        assert services.scheduled_arns() == [doc["serviceArn"]]
    finally:
        store.close()
