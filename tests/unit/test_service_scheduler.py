"""The service scheduler's passes against a real SQLite store, with the agent's side played by writing task
state into the store: tasks started through RunTask's path with group and startedBy, spread over the zones,
replaced when they stop, a rolling update to completion, the circuit breaker's rollback, DRAINING to INACTIVE."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fargo import clock
from fargo.control.services import rollout
from fargo.control.services.leadership import SoleLeader
from fargo.control.services.scheduler import ServiceScheduler
from tests.unit.test_services_api import ControlPlane

SERVICE_ARN = "arn:aws:ecs:us-east-1:000000000000:service/default/web"


@pytest.fixture
def cp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ControlPlane:
    monkeypatch.setattr(rollout, "HEALTHY_AFTER_SECONDS", 0.0)
    return ControlPlane(tmp_path)


def scheduler(cp: ControlPlane) -> ServiceScheduler:
    return ServiceScheduler(cp.ctx, cp.services, cp.tasks, cp.tasks.network, SoleLeader(), interval=0.1)


def run_pass(cp: ControlPlane) -> dict:
    asyncio.run(scheduler(cp).reconcile(SERVICE_ARN))
    return cp("DescribeServices", services=["web"])["services"][0]


def tasks(cp: ControlPlane, desired: str = "RUNNING") -> list[dict]:
    arns = cp("ListTasks", serviceName="web", desiredStatus=desired)["taskArns"]
    return cp("DescribeTasks", tasks=arns)["tasks"] if arns else []


def agent(cp: ControlPlane, status: str = "RUNNING", reached_running: bool = True) -> None:
    """Move every task the agent should act on: desired RUNNING ones to `status`, desired STOPPED ones to STOPPED."""
    with cp.store.task_writes() as w:
        for arn, record in w.lock(t["taskArn"] for t in tasks(cp) + tasks(cp, "STOPPED")).items():
            doc = record.doc
            if doc["lastStatus"] == "STOPPED":
                continue
            if doc["desiredStatus"] == "STOPPED" or status == "STOPPED":
                doc["lastStatus"], doc["stoppedAt"] = "STOPPED", clock.now()
                doc["desiredStatus"] = "STOPPED"
                doc.setdefault("stopCode", "TaskFailedToStart")
                doc.setdefault("stoppedReason", "Task failed to start")
            else:
                doc["lastStatus"] = status
            if reached_running and status == "RUNNING":
                doc.setdefault("startedAt", clock.now() - 1)
            w.save(record)


def test_a_service_starts_its_tasks_spread_over_zones_and_reaches_a_steady_state(cp: ControlPlane) -> None:
    created = cp.create(desiredCount=4)
    deployment = created["deployments"][0]["id"]
    s = run_pass(cp)
    live = tasks(cp)
    assert len(live) == 4 and s["pendingCount"] == 4
    assert {t["group"] for t in live} == {"service:web"} and {t["startedBy"] for t in live} == {deployment}
    assert sorted(t["availabilityZone"] for t in live) == ["us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b"]
    started = s["events"][0]["message"]
    assert started.startswith("(service web) has started 4 tasks: (task ")
    agent(cp)
    s = run_pass(cp)
    assert s["runningCount"] == 4 and s["pendingCount"] == 0
    [d] = s["deployments"]
    assert d["rolloutState"] == "COMPLETED" and d["rolloutStateReason"] == f"ECS deployment {deployment} completed."
    assert [e["message"] for e in s["events"][:2]] == ["(service web) has reached a steady state.",
                                                       f"(service web) (deployment {deployment}) deployment completed."]
    again = run_pass(cp)
    assert again["events"] == s["events"] and len(tasks(cp)) == 4  # a pass over a steady service changes nothing


def test_a_stopped_task_is_replaced(cp: ControlPlane) -> None:
    cp.create(desiredCount=2)
    run_pass(cp)
    agent(cp)
    run_pass(cp)
    victim = tasks(cp)[0]["taskArn"]
    asyncio.run(cp.tasks.stop_task({"task": victim}))
    agent(cp)
    run_pass(cp)
    live = tasks(cp)
    assert len(live) == 2 and victim not in {t["taskArn"] for t in live}


def test_a_rolling_update_replaces_the_old_tasks_and_completes(cp: ControlPlane) -> None:
    cp.create(desiredCount=2, deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 50})
    run_pass(cp)
    agent(cp)
    run_pass(cp)
    old = {t["taskArn"] for t in tasks(cp)}
    s = cp("UpdateService", service="web", taskDefinition="web:2")["service"]
    new_id = s["deployments"][0]["id"]
    for _ in range(6):
        s = run_pass(cp)
        agent(cp)
    live = tasks(cp)
    assert len(live) == 2 and {t["startedBy"] for t in live} == {new_id} and not old & {t["taskArn"] for t in live}
    stopped = [t for t in tasks(cp, "STOPPED") if t["taskArn"] in old]
    assert {t["stopCode"] for t in stopped} == {"ServiceSchedulerInitiated"}
    assert {t["stoppedReason"] for t in stopped} == {f"Scaling activity initiated by (deployment {new_id})"}
    s = run_pass(cp)
    assert [d["id"] for d in s["deployments"]] == [new_id] and s["deployments"][0]["rolloutState"] == "COMPLETED"
    assert s["runningCount"] == 2 and s["taskDefinition"].endswith("web:2")


def test_tasks_that_fail_to_start_trip_the_circuit_breaker_and_roll_back(cp: ControlPlane) -> None:
    cp.create(desiredCount=1, deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    run_pass(cp)
    agent(cp)
    good = run_pass(cp)["deployments"][0]["id"]
    bad = cp("UpdateService", service="web", taskDefinition="web:2")["service"]["deployments"][0]["id"]
    for _ in range(12):
        s = run_pass(cp)
        failing = [t for t in tasks(cp) if t["startedBy"] == bad]
        with cp.store.task_writes() as w:  # the new deployment's tasks stop before RUNNING
            for record in w.lock(t["taskArn"] for t in failing).values():
                record.doc.update(lastStatus="STOPPED", desiredStatus="STOPPED", stoppedAt=clock.now(),
                                  stopCode="TaskFailedToStart", stoppedReason="Task failed to start")
                w.save(record)
        if any("rolling back" in e["message"] for e in s["events"]):
            break
    messages = [e["message"] for e in s["events"]]
    assert f"(service web) (deployment {bad}) deployment failed: tasks failed to start." in messages
    assert f"(service web) rolling back to deployment {good}." in messages
    primary = s["deployments"][0]
    assert primary["id"] == good and primary["status"] == "PRIMARY" and primary["taskDefinition"].endswith("web:1")
    assert s["taskDefinition"].endswith("web:1")
    for _ in range(3):
        agent(cp)
        s = run_pass(cp)
    assert [d["id"] for d in s["deployments"]] == [good] and s["deployments"][0]["rolloutState"] == "COMPLETED"


def test_a_deleted_service_drains_its_tasks_and_becomes_inactive(cp: ControlPlane) -> None:
    cp.create(desiredCount=2)
    run_pass(cp)
    agent(cp)
    run_pass(cp)
    cp("DeleteService", service="web", force=True)
    s = run_pass(cp)
    assert s["status"] == "DRAINING" and tasks(cp) == []
    agent(cp)
    s = run_pass(cp)
    assert s["status"] == "INACTIVE"
    assert cp("ListServices")["serviceArns"] == []
    assert len(cp("ListTasks", serviceName="web", desiredStatus="STOPPED")["taskArns"]) == 2


def test_a_deregistered_definition_still_runs_its_services_tasks(cp: ControlPlane) -> None:
    cp.create(desiredCount=1)
    cp.registry.deregister("web:1")
    run_pass(cp)
    assert len(tasks(cp)) == 1 and tasks(cp)[0]["taskDefinitionArn"].endswith("web:1")
