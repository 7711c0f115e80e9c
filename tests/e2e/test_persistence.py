"""State survives restarts: on the SQLite file by default, and on PostgreSQL."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import FargoProcess, free_port

TD = {"family": "kept", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256",
      "memory": "512", "containerDefinitions": [{"name": "app", "image": "fargo.local/busybox:latest"}]}


def _write_state(f: FargoProcess) -> None:
    ecs = f.client("ecs")
    ecs.create_cluster(clusterName="kept", tags=[{"key": "a", "value": "1"}])
    ecs.register_task_definition(**TD, tags=[{"key": "b", "value": "2"}])
    ecs.register_task_definition(**TD)
    ecs.deregister_task_definition(taskDefinition="kept:1")


def _check_state(f: FargoProcess) -> None:
    ecs = f.client("ecs")
    cluster = ecs.describe_clusters(clusters=["kept"], include=["TAGS"])["clusters"][0]
    assert cluster["status"] == "ACTIVE" and cluster["tags"] == [{"key": "a", "value": "1"}]
    assert ecs.describe_task_definition(taskDefinition="kept")["taskDefinition"]["revision"] == 2
    first = ecs.describe_task_definition(taskDefinition="kept:1", include=["TAGS"])
    assert first["taskDefinition"]["status"] == "INACTIVE" and first["tags"] == [{"key": "b", "value": "2"}]
    assert ecs.register_task_definition(**TD)["taskDefinition"]["revision"] == 3


def _containerd_pid(data_dir: Path) -> str | None:
    pid_file = data_dir / "containerd" / "containerd.pid"
    return pid_file.read_text().strip() if pid_file.exists() else None


def test_restart_keeps_clusters_task_definitions_and_tags(fresh_fargo_dir: Path) -> None:
    f = FargoProcess(fresh_fargo_dir, free_port()).start()
    try:
        _write_state(f)
        containerd_before = _containerd_pid(fresh_fargo_dir)
    finally:
        assert f.stop() == 0, f.log_tail()
    f = FargoProcess(fresh_fargo_dir, free_port()).start()
    try:
        _check_state(f)
        # the second `fargo up` found the containerd the first one started and reused it
        assert _containerd_pid(fresh_fargo_dir) == containerd_before
    finally:
        f.stop()


@pytest.fixture
def postgres_url() -> str:
    base = os.environ.get("FARGO_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("PostgreSQL is not configured here: set FARGO_TEST_POSTGRES_URL (.ci/run sets it)")
    name = "fargo_test_" + uuid.uuid4().hex[:8]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_postgresql_store_keeps_state_across_restarts(fresh_fargo_dir: Path, postgres_url: str) -> None:
    f = FargoProcess(fresh_fargo_dir, free_port(), ["--database", postgres_url]).start()
    try:
        _write_state(f)
    finally:
        f.stop()
    f = FargoProcess(fresh_fargo_dir, free_port(), ["--database", postgres_url]).start()
    try:
        _check_state(f)
    finally:
        f.stop()
