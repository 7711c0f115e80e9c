"""The store keeps what the API promises: stopped tasks for an hour, revisions unique, tags in order, one
generation counter for all task writes, and no address handed out twice, even by two replicas."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text

from fargo.network.ipam import SubnetFullError
from fargo.store import database
from fargo.store.database import Store
from tests.e2e.test_persistence import postgres_url  # noqa: F401 - the fixture: a fresh PostgreSQL database


def _task(task_id: str, stopped_at: float | None) -> dict:
    return {"taskArn": f"arn:aws:ecs:us-east-1:000000000000:task/default/{task_id}",
            "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/default", "desiredStatus": "STOPPED",
            "lastStatus": "STOPPED" if stopped_at else "RUNNING", "createdAt": 1.0, "stoppedAt": stopped_at}


def test_only_tasks_stopped_before_the_cutoff_are_purged_with_their_tags(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fargo.db'}")
    store.migrate()
    now = 10_000.0
    for task_id, stopped in (("old", now - 3601), ("recent", now - 60), ("running", None)):
        store.insert_task(_task(task_id, stopped), task_id, "fam", None)
        store.put_tags(_task(task_id, stopped)["taskArn"], [{"key": "k", "value": task_id}])
    assert store.purge_stopped_tasks(now - 3600) == ["old"]
    assert store.get_task("old") is None and store.get_tags(_task("old", 1)["taskArn"]) == []
    assert store.get_task("recent") is not None and store.get_task("running") is not None


def test_a_taken_revision_is_refused_so_the_caller_takes_the_next(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fargo.db'}")
    store.migrate()
    doc: dict[str, Any] = {"taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/f:1",
                           "family": "f", "revision": 1, "status": "ACTIVE"}
    assert store.insert_task_definition(doc) is True
    assert store.insert_task_definition(dict(doc, taskDefinitionArn=doc["taskDefinitionArn"] + "x")) is False
    assert store.latest_revision("f") == 1


# --- desired state, generations and addresses ---------------------------------------------------

def _sqlite(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'fargo.db'}")
    store.migrate()
    return store


def _running(task_id: str, subnet_id: str = "subnet-a", ip: str = "10.0.0.4") -> dict:
    return dict(_task(task_id, None), desiredStatus="RUNNING", lastStatus="PROVISIONING",
                taskDefinitionArn="arn:aws:ecs:us-east-1:000000000000:task-definition/fam:1",
                _fargo={"subnetId": subnet_id, "ip": ip})


def test_every_task_write_takes_the_next_store_wide_generation(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    assert store.insert_task(_running("a"), "a", "fam", None, "embedded") == 1
    assert store.insert_task(_running("b"), "b", "fam", None, "other") == 2
    with store.task_writes() as w:
        record = w.lock_by_id("a")
        assert record is not None and record.generation == 1
        record.doc["desiredStatus"] = "STOPPED"
        record.generation = w.next_generation()
        w.save(record)
    assert store.generation() == 3
    generation, rows = store.assigned_tasks("embedded", 1)
    assert generation == 3 and [(r.doc["taskArn"].rsplit("/", 1)[-1], r.generation) for r, _ in rows] == [("a", 3)]
    assert store.assigned_tasks("embedded", 3)[1] == []
    assert [r.doc["desiredStatus"] for r, _ in store.assigned_tasks("embedded", 0)[1]] == ["STOPPED"]


def test_sqlite_writers_of_one_process_queue_for_each_other_instead_of_timing_out(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    store.engine.dispose()  # new connections from here on, with a short busy timeout: SQLite would give up
    event.listen(store.engine, "connect", lambda conn, _record: conn.execute("PRAGMA busy_timeout=50"))
    holding, done, errors = threading.Event(), [], []

    def second_writer() -> None:
        holding.wait()
        try:
            done.append(store.insert_task(_running("b"), "b", "fam", None, "embedded"))
        except Exception as error:  # noqa: BLE001 - the test reports it
            errors.append(error)

    writer = threading.Thread(target=second_writer)
    writer.start()
    with store.task_writes() as w:
        first = w.insert(_running("a"), "a", "fam", None, "embedded")
        holding.set()
        writer.join(0.4)  # the other writer waits all along, far past SQLite's 50 ms
        assert writer.is_alive()
    writer.join(5)
    assert errors == [] and (first, done) == (1, [2])


def test_a_failed_task_write_keeps_neither_its_address_nor_its_generation(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    with pytest.raises(RuntimeError):
        with store.task_writes() as w:
            w.allocate_ip("subnet-a", "10.0.0.0/28", "arn:t")
            w.next_generation()
            raise RuntimeError("RunTask failed half way")
    assert store.used_ip_count("subnet-a") == 0 and store.generation() == 0


def test_addresses_are_the_lowest_free_ones_and_a_full_subnet_says_so(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    got = []
    for i in range(11):  # a /28 holds 16 - 4 reserved at the start - 1 at the end
        with store.task_writes() as w:
            got.append(w.allocate_ip("subnet-a", "10.0.0.0/28", f"arn:t{i}"))
    assert got == [f"10.0.0.{i}" for i in range(4, 15)]
    with pytest.raises(SubnetFullError):
        with store.task_writes() as w:
            w.allocate_ip("subnet-a", "10.0.0.0/28", "arn:t11")
    with store.task_writes() as w:
        w.release_ip("arn:t3")
    with store.task_writes() as w:
        assert w.allocate_ip("subnet-a", "10.0.0.0/28", "arn:t12") == "10.0.0.7"
    assert store.used_ip_count("subnet-a") == 11 and store.used_ip_count("subnet-b") == 0


def test_migration_0002_moves_old_tasks_to_generations_and_allocations(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fargo.db'}")
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(database.__file__).parent / "migrations"))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    old = {"taskArn": "arn:aws:ecs:us-east-1:000000000000:task/default/old", "clusterArn": "c",
           "taskDefinitionArn": "arn:td:1", "availabilityZone": "us-east-1a", "lastStatus": "RUNNING",
           "_fargo": {"subnetId": "subnet-a", "ip": "10.0.0.9", "taskDefinition": {"family": "f"},
                      "containerOverrides": {}}}
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO tasks (arn, task_id, cluster_arn, family, desired_status, last_status, "
                          "created_at, doc) VALUES (:arn, 'old', 'c', 'f', 'RUNNING', 'RUNNING', 1.0, :doc)"),
                     {"arn": old["taskArn"], "doc": json.dumps(old)})
    store.migrate()
    record = store.get_task_record("old")
    assert record is not None and (record.generation, record.agent_id, record.report_seq) == (1, "embedded", 0)
    assert record.doc["_fargo"] == {"subnetId": "subnet-a", "ip": "10.0.0.9", "availabilityZone": "us-east-1a"}
    assert store.generation() == 1 and store.allocated_ips("subnet-a") == {"10.0.0.9": old["taskArn"]}


# --- two control-plane replicas on one PostgreSQL -----------------------------------------------

def test_two_replicas_never_hand_out_one_address_twice(postgres_url: str) -> None:
    stores = [Store(postgres_url), Store(postgres_url)]
    stores[0].migrate()
    per_thread, threads = 12, 6
    barrier = threading.Barrier(threads)
    got: list[tuple[str, int]] = []
    lock = threading.Lock()

    def run_tasks(n: int) -> None:
        store = stores[n % 2]
        barrier.wait()
        for i in range(per_thread):
            with store.task_writes() as w:  # as RunTask: the address, then the generation
                ip = w.allocate_ip("subnet-a", "10.0.0.0/24", f"arn:{n}-{i}")
                generation = w.next_generation()
            with lock:
                got.append((ip, generation))

    workers = [threading.Thread(target=run_tasks, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    try:
        ips = [ip for ip, _ in got]
        assert len(ips) == per_thread * threads == len(set(ips))
        assert sorted(g for _, g in got) == list(range(1, per_thread * threads + 1))
        assert stores[1].used_ip_count("subnet-a") == per_thread * threads
    finally:
        for s in stores:
            s.close()


def test_a_replica_that_loses_the_race_for_an_address_takes_the_next(postgres_url: str) -> None:
    first, second = Store(postgres_url), Store(postgres_url)
    first.migrate()
    try:
        result: list[str] = []
        with first.task_writes() as w:
            assert w.allocate_ip("subnet-a", "10.0.0.0/24", "arn:first") == "10.0.0.4"
            # the other replica cannot see the address yet, picks it too and waits on the unique key
            racer = threading.Thread(target=lambda: result.append(_allocate(second, "arn:second")))
            racer.start()
            racer.join(0.5)
            assert racer.is_alive()
        racer.join(5)
        assert result == ["10.0.0.5"]
    finally:
        first.close()
        second.close()


def _allocate(store: Store, task_arn: str) -> str:
    with store.task_writes() as w:
        return w.allocate_ip("subnet-a", "10.0.0.0/24", task_arn)


def _store_of_kind(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """A fresh store on SQLite, or on a fresh PostgreSQL database (the `postgres_url` fixture)."""
    if kind == "sqlite":
        return _sqlite(tmp_path)
    store = Store(request.getfixturevalue("postgres_url"))
    store.migrate()
    return store


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_task_texts_are_the_stored_documents_and_change_with_each_save(kind: str, tmp_path: Path,
                                                                       request: pytest.FixtureRequest) -> None:
    store = _store_of_kind(kind, tmp_path, request)
    store.insert_task(_running("a"), "a", "fam", None, "embedded")
    before = store.get_task_texts(["a", "missing"])
    assert list(before) == ["a"] and json.loads(before["a"]) == _running("a")
    with store.task_writes() as w:
        record = w.lock_by_id("a")
        assert record is not None
        record.doc["lastStatus"] = "RUNNING"
        w.save(record)
    after = store.get_task_texts(["a"])["a"]
    assert after != before["a"] and json.loads(after)["lastStatus"] == "RUNNING"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_cluster_reads_back_as_written_and_as_changed(kind: str, tmp_path: Path,
                                                        request: pytest.FixtureRequest) -> None:
    store = _store_of_kind(kind, tmp_path, request)
    doc = {"clusterName": "c1", "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/c1", "status": "ACTIVE",
           "settings": [{"name": "containerInsights", "value": "enabled"}], "tags": []}
    assert store.get_cluster("c1") is None
    store.put_cluster(doc, 1.0)
    assert store.get_cluster("c1") == doc
    store.put_cluster({**doc, "status": "INACTIVE"}, 1.0)
    assert store.get_cluster("c1") == {**doc, "status": "INACTIVE"}
    assert store.get_cluster("c1%") is None and store.get_cluster("c1' OR '1'='1") is None  # a value, not SQL


def test_sqlite_quick_reads_need_no_pooled_connection_and_see_each_new_commit(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    assert store.quick_reads
    store.insert_task(_running("a"), "a", "fam", None, "embedded")
    assert list(store.get_task_texts(["a"])) == ["a"]
    held = []
    try:
        for _ in range(store.engine.pool.size() + store.engine.pool._max_overflow):  # the whole pool, taken
            held.append(store.engine.raw_connection())
        started = time.monotonic()
        assert list(store.get_task_texts(["a", "b"])) == ["a"] and store.get_cluster("none") is None
        assert time.monotonic() - started < 1.0  # no wait for the pool (its timeout is 30 s)
    finally:
        for connection in held:
            connection.close()
    store.insert_task(_running("b"), "b", "fam", None, "embedded")  # committed after this thread's first read
    assert sorted(store.get_task_texts(["a", "b"])) == ["a", "b"]
    store.close()


def test_describe_decodes_only_documents_whose_text_changed_and_hands_out_their_view() -> None:
    from fargo.control.tasks import DecodedDocuments
    documents = DecodedDocuments(lambda doc: {k: v for k, v in doc.items() if k != "_fargo"})
    first = documents.decode({"a": '{"v":1,"_fargo":{"ip":"10.0.0.5"}}', "b": '{"v":2}'})
    # the same text read again is a new str from the store: compared by content
    again = documents.decode({"a": "".join(['{"v":1,', '"_fargo":{"ip":"10.0.0.5"}}']), "b": '{"v":3}'})
    assert again["a"] is first["a"] == {"v": 1}  # unchanged: the view made before, without the private part
    assert again["b"] == {"v": 3} and first["b"] == {"v": 2}


def test_the_head_revision_read_from_file_names_is_alembics() -> None:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(database._MIGRATIONS))
    assert database.head_revision() == ScriptDirectory.from_config(cfg).get_current_head()


def test_a_store_is_upgraded_apart_and_then_left_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fargo.db'}"
    store = Store(url)
    assert store.revision() is None
    store.migrate_apart()  # in a child process
    assert store.revision() == database.head_revision()
    store.insert_task(_running("a"), "a", "fam", None, "embedded")
    store.migrate_apart()  # up to date: nothing happens
    assert store.get_task_texts(["a"])


def test_an_upgrade_that_fails_apart_says_why(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fargo.db'}"
    store = Store(url)
    with store.engine.begin() as c:  # a revision no migration knows: alembic refuses it
        c.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        c.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    with pytest.raises(RuntimeError) as failed:
        store.migrate_apart()
    assert str(failed.value) == ("the store's schema upgrade failed: CommandError: Can't locate revision "
                                 "identified by '9999'")
