"""Two `fargo up` replicas on one PostgreSQL database: a control-plane-only one (`--no-agent`) and one with the
agent. Exactly one runs the service scheduler; when the leader is killed the other takes over, and the service's
tasks (run by the one agent) are neither lost nor doubled."""
from __future__ import annotations

import json
import signal
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, text

from tests.e2e.conftest import SHARED_PREFIX, FargoProcess, free_port, import_test_image
from tests.e2e.test_persistence import postgres_url  # noqa: F401 - the fixture: a fresh PostgreSQL database
from tests.e2e.test_services import FAST, NETWORK, register
from tests.fargo_process import discard_data_dir


def health(f: FargoProcess) -> dict:
    with urllib.request.urlopen(f.endpoint + "/_fargo/health", timeout=5) as r:
        return json.loads(r.read())


def wait_for_scheduler(f: FargoProcess, role: str, timeout: float) -> float:
    """Seconds until `f`'s health reports the scheduler as `role`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if health(f).get("scheduler") == role:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{f.endpoint} did not become scheduler {role} in {timeout} s: {health(f)}\n{f.log_tail()}")


def started_by(ecs, deployment_id: str) -> list[str]:  # noqa: ANN001
    return [arn for status in ("RUNNING", "STOPPED")
            for arn in ecs.list_tasks(startedBy=deployment_id, desiredStatus=status)["taskArns"]]


@pytest.fixture
def replicas(postgres_url: str) -> Iterator[tuple[FargoProcess, FargoProcess]]:  # noqa: F811
    """B (`--no-agent`, started first: the scheduler's leader) and A (the agent, standing by)."""
    dir_a, dir_b = Path(tempfile.mkdtemp(prefix="fargo-e2e-a-")), Path(tempfile.mkdtemp(prefix="fargo-e2e-b-"))
    database = ["--database", postgres_url]
    b = FargoProcess(dir_b, free_port(), database + ["--no-agent"], network_prefix=SHARED_PREFIX + "b")
    a = FargoProcess(dir_a, free_port(), database, network_prefix=SHARED_PREFIX + "a")
    try:
        b.start()
        wait_for_scheduler(b, "leader", 10)
        a.start()
        yield a, b
    finally:
        try:
            _stop_service_tasks(a)
        finally:
            a.stop()
            b.stop(signal.SIGKILL)
            engine = create_engine(postgres_url)
            try:
                with engine.connect() as c:
                    task_ids = [row[0] for row in c.execute(text("SELECT task_id FROM tasks"))]
            except Exception:  # noqa: BLE001 - the schema may not exist if a start failed
                task_ids = []
            finally:
                engine.dispose()
            discard_data_dir(dir_a, task_ids)  # A's store is not in its data dir: name its tasks
            discard_data_dir(dir_b)


def _stop_service_tasks(a: FargoProcess) -> None:
    if a.proc is None or a.proc.poll() is not None:
        return
    ecs = a.client("ecs")
    try:
        services = ecs.describe_services(services=["replicated"])["services"]
        arns = ecs.list_tasks(desiredStatus="RUNNING")["taskArns"]
    except ClientError:  # the test failed before it made the cluster
        return
    if services and services[0]["status"] == "ACTIVE":
        ecs.delete_service(service="replicated", force=True)
    for arn in arns:
        ecs.stop_task(task=arn)
    if arns:
        ecs.get_waiter("tasks_stopped").wait(tasks=arns, WaiterConfig=FAST)


def test_one_replica_schedules_and_the_other_takes_over_when_it_is_killed(
        replicas: tuple[FargoProcess, FargoProcess]) -> None:
    a, b = replicas
    import_test_image(a)
    ecs_b = b.client("ecs")
    ecs_b.create_cluster()
    td = register(ecs_b, "replicated")
    deployment = ecs_b.create_service(serviceName="replicated", taskDefinition=td, desiredCount=2,
                                      launchType="FARGATE", networkConfiguration=NETWORK)["service"]["deployments"][0]
    ecs_a = a.client("ecs")
    # B schedules, A's agent runs what B placed: the agent's poll sees the other replica's tasks in the store
    ecs_a.get_waiter("services_stable").wait(services=["replicated"], WaiterConfig=FAST)
    assert health(b)["scheduler"] == "leader" and health(a)["scheduler"] == "standby"
    assert health(b)["agent"] == "absent" and health(a)["agent"] == "ok"
    with pytest.raises(urllib.error.HTTPError) as no_images:  # images are the agent's replica's
        urllib.request.urlopen(b.endpoint + "/_fargo/images", timeout=5)
    assert no_images.value.code == 409

    b.stop(signal.SIGKILL)
    took = wait_for_scheduler(a, "leader", 10)
    assert took < 5, f"A took {took:.1f} s to take over"

    ecs_a.update_service(service="replicated", desiredCount=3)
    ecs_a.get_waiter("services_stable").wait(services=["replicated"], WaiterConfig=FAST)
    running = ecs_a.describe_tasks(tasks=ecs_a.list_tasks(serviceName="replicated")["taskArns"])["tasks"]
    assert len(running) == 3 and {t["lastStatus"] for t in running} == {"RUNNING"}
    # none doubled: the deployment started exactly three tasks, all still live
    every = started_by(ecs_a, deployment["id"])
    assert len(every) == len(set(every)) == 3 and set(every) == {t["taskArn"] for t in running}
