"""State survives restarts: on the SQLite file by default, and on PostgreSQL."""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
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
def postgres_url() -> Iterator[str]:
    """A fresh database: on FARGO_TEST_POSTGRES_URL's server if set, else on a throw-away local cluster."""
    base = os.environ.get("FARGO_TEST_POSTGRES_URL")
    with contextlib.ExitStack() as stack:
        if not base:
            # pytest's tmp dirs are root-only; the postgres user needs a directory of its own
            pg_dir = Path(tempfile.mkdtemp(prefix="fargo-pg-"))
            stack.callback(shutil.rmtree, pg_dir, True)
            base = stack.enter_context(_throwaway_cluster(pg_dir))
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


@contextlib.contextmanager
def _throwaway_cluster(directory: Path) -> Iterator[str]:
    """initdb + pg_ctl as the postgres user (PostgreSQL refuses to run as root), on a free port."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.fail("PostgreSQL is not installed: `make test` installs it (apt-get install postgresql)")
    bindir = Path(bins[-1]).parent
    shutil.chown(directory, "postgres", "postgres")
    directory.chmod(0o700)
    port = free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_postgres + [str(bindir / "initdb"), "-D", str(directory / "data"), "-A", "trust", "-U", "fargo"],
                   check=True, capture_output=True)
    subprocess.run(as_postgres + [str(bindir / "pg_ctl"), "-D", str(directory / "data"), "-w", "-l",
                                  str(directory / "log"), "-o", f"-p {port} -k {directory} -c listen_addresses=127.0.0.1",
                                  "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://fargo@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_postgres + [str(bindir / "pg_ctl"), "-D", str(directory / "data"), "-m", "immediate",
                                      "stop"], capture_output=True)


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
