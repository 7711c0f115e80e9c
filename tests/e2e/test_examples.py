"""The task definitions in examples/ run as they are, as a newcomer would run them."""
from __future__ import annotations

import json

from tests.e2e.conftest import REPO, FargoProcess, wait_for_task
from tests.e2e.test_cli import fargo_cli
from tests.e2e.test_tasks import NETWORK


def _register(f: FargoProcess, name: str) -> str:
    body = json.loads((REPO / "examples" / name).read_text())
    return f.client("ecs").register_task_definition(**body)["taskDefinition"]["taskDefinitionArn"]


def test_hello_fargate_prints_its_greeting(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = _register(runner_fargo, "hello-fargate.json")
    task = ecs.run_task(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK)["tasks"][0]
    stopped = wait_for_task(ecs, task["taskArn"], "STOPPED")
    assert stopped["containers"][0]["exitCode"] == 0
    out = fargo_cli(runner_fargo, "logs", task["taskArn"].rsplit("/", 1)[-1]).stdout
    assert "Hello from a Fargate task on Fargo!" in out and "MTU: 9001" in out


def test_web_with_sidecar_serves_on_localhost(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = _register(runner_fargo, "web-with-sidecar.json")
    task = ecs.run_task(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK)["tasks"][0]
    running = wait_for_task(ecs, task["taskArn"], "RUNNING")
    assert running["lastStatus"] == "RUNNING"
    probe = {}
    for _ in range(100):
        probe = {c["name"]: c for c in ecs.describe_tasks(tasks=[task["taskArn"]])["tasks"][0]["containers"]}
        if probe["probe"].get("exitCode") is not None:
            break
        __import__("time").sleep(0.1)
    assert probe["init"]["exitCode"] == 0 and probe["probe"]["exitCode"] == 0
    out = fargo_cli(runner_fargo, "logs", task["taskArn"].rsplit("/", 1)[-1], "--container", "probe").stdout
    assert out.strip() == "hello"
    ecs.stop_task(task=task["taskArn"])
    stopped = wait_for_task(ecs, task["taskArn"], "STOPPED", 30)
    assert {c["name"]: c["lastStatus"] for c in stopped["containers"]} == {
        "init": "STOPPED", "web": "STOPPED", "probe": "STOPPED"}
