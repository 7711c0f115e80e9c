"""Health checks, HEALTHY dependencies, startTimeout and the init process, through boto3."""
from __future__ import annotations

import time

from tests.e2e.conftest import FargoProcess, wait_for_task
from tests.e2e.test_tasks import logs, register, run


def test_health_checks_drive_container_and_task_health_and_healthy_dependencies(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(
        ecs, "health",
        {"name": "web", "command": ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 3600"], "stopTimeout": 2,
         "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/ready"], "interval": 5, "retries": 1}},
        {"name": "sick", "command": ["sleep", "3600"], "stopTimeout": 2,
         "healthCheck": {"command": ["CMD", "false"], "interval": 5, "retries": 1}},
        {"name": "after", "essential": False, "command": ["echo", "web is healthy"],
         "dependsOn": [{"containerName": "web", "condition": "HEALTHY"}]})
    task = run(ecs, td)
    deadline = time.monotonic() + 30
    containers: dict = {}
    while time.monotonic() < deadline:
        described = ecs.describe_tasks(tasks=[task["taskArn"]])["tasks"][0]
        containers = {c["name"]: c for c in described["containers"]}
        if containers["after"].get("exitCode") is not None and containers["sick"]["healthStatus"] == "UNHEALTHY":
            break
        time.sleep(0.2)
    assert containers["web"]["healthStatus"] == "HEALTHY"
    assert containers["sick"]["healthStatus"] == "UNHEALTHY"
    assert containers["after"]["exitCode"] == 0
    assert described["healthStatus"] == "UNHEALTHY"  # an essential container is unhealthy
    assert described["lastStatus"] == "RUNNING"  # a standalone task keeps running while unhealthy
    assert "web is healthy" in logs(runner_fargo, task["taskArn"], "after")
    ecs.stop_task(task=task["taskArn"])
    wait_for_task(ecs, task["taskArn"], "STOPPED", 30)


def test_a_dependency_not_met_within_start_timeout_stops_the_task(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "impatient",
                  {"name": "slow", "essential": False, "command": ["sleep", "3600"], "stopTimeout": 2},
                  {"name": "app", "command": ["echo", "never printed"], "startTimeout": 2,
                   "dependsOn": [{"containerName": "slow", "condition": "COMPLETE"}]})
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "STOPPED", 30)  # bench/task_timeouts.py measures how soon
    assert task["stopCode"] == "TaskFailedToStart"
    assert "startTimeout" in task["stoppedReason"]


def test_init_process_forwards_sigterm(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "with-init", {"name": "app", "command": ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; exec sleep 3600"],
                                     "linuxParameters": {"initProcessEnabled": True}, "stopTimeout": 20})
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "RUNNING")
    time.sleep(0.3)
    assert "docker-init" in logs(runner_fargo, task["taskArn"])
    ecs.stop_task(task=task["taskArn"])
    stopped = wait_for_task(ecs, task["taskArn"], "STOPPED", 30)
    # tini passed SIGTERM on to sleep (143), so no SIGKILL (137) after the 20 s stopTimeout was needed
    assert stopped["containers"][0]["exitCode"] == 143
