"""Restarts of `fargo up` lose nothing: tasks keep running in containerd and are picked up again."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.e2e.conftest import FargoProcess, free_port, import_test_image, wait_for_task
from tests.e2e.test_tasks import containerd_containers, containerd_snapshots, host_leftovers, register, run


def _start(data_dir: Path, *args: str) -> FargoProcess:
    return FargoProcess(data_dir, free_port(), list(args)).start()


def test_sigkilled_fargo_leaves_tasks_running_and_picks_them_up(fresh_fargo_dir: Path) -> None:
    f = _start(fresh_fargo_dir)
    try:
        import_test_image(f)
        ecs = f.client("ecs")
        ecs.create_cluster()
        long_td = register(ecs, "survivor", {"name": "app", "command": ["sleep", "3600"], "stopTimeout": 2})
        short_td = register(ecs, "exits-meanwhile", {"name": "app", "command": ["sh", "-c", "sleep 2; exit 7"]})
        survivor = wait_for_task(ecs, run(ecs, long_td)["taskArn"], "RUNNING")
        leaver = wait_for_task(ecs, run(ecs, short_td)["taskArn"], "RUNNING")
    finally:
        f.stop(signal.SIGKILL)
    time.sleep(3)  # the short task exits while no agent watches
    f = _start(fresh_fargo_dir)
    try:
        ecs = f.client("ecs")
        again = ecs.describe_tasks(tasks=[survivor["taskArn"]])["tasks"][0]
        assert again["lastStatus"] == "RUNNING"
        assert again["containers"][0]["runtimeId"] == survivor["containers"][0]["runtimeId"]
        gone = wait_for_task(ecs, leaver["taskArn"], "STOPPED", 30)
        assert gone["containers"][0]["exitCode"] == 7
        assert gone["stopCode"] == "EssentialContainerExited"
        assert host_leftovers(leaver["taskArn"].rsplit("/", 1)[-1], f.network_prefix) == []
        ecs.stop_task(task=survivor["taskArn"])
        stopped = wait_for_task(ecs, survivor["taskArn"], "STOPPED", 30)
        assert stopped["containers"][0]["exitCode"] == 137
        assert host_leftovers(survivor["taskArn"].rsplit("/", 1)[-1], f.network_prefix) == []
    finally:
        f.stop()


def test_sigterm_stops_serving_but_not_the_tasks(fresh_fargo_dir: Path) -> None:
    f = _start(fresh_fargo_dir)
    try:
        import_test_image(f)
        ecs = f.client("ecs")
        ecs.create_cluster()
        td = register(ecs, "kept-running", {"name": "app", "command": ["sleep", "3600"], "stopTimeout": 2})
        task = wait_for_task(ecs, run(ecs, td)["taskArn"], "RUNNING")
    finally:
        assert f.stop(signal.SIGTERM) == 0
    task_id = task["taskArn"].rsplit("/", 1)[-1]
    assert Path(f"/run/netns/{f.network_prefix}-{task_id}").exists()  # the task still has its network
    f = _start(fresh_fargo_dir)
    try:
        ecs = f.client("ecs")
        assert ecs.describe_tasks(tasks=[task_id])["tasks"][0]["lastStatus"] == "RUNNING"
        ecs.stop_task(task=task_id)
        wait_for_task(ecs, task["taskArn"], "STOPPED", 30)
        assert host_leftovers(task_id, f.network_prefix) == []
    finally:
        f.stop()


def test_runtime_timeouts_use_each_platforms_error_name(fresh_fargo_dir: Path) -> None:
    os.environ["FARGO_CONTAINER_CREATE_TIMEOUT"] = "0.0001"
    try:
        f = _start(fresh_fargo_dir)
    finally:
        del os.environ["FARGO_CONTAINER_CREATE_TIMEOUT"]
    try:
        import_test_image(f)
        ecs = f.client("ecs")
        ecs.create_cluster()
        td = register(ecs, "slow", {"name": "app", "command": ["true"]})
        new = wait_for_task(ecs, run(ecs, td)["taskArn"], "STOPPED", 30)
        assert new["stopCode"] == "TaskFailedToStart"
        assert new["stoppedReason"].startswith("ContainerRuntimeTimeoutError: Could not transition to created; "
                                               "timed out after waiting")
        old = wait_for_task(ecs, run(ecs, td, platformVersion="1.3.0")["taskArn"], "STOPPED", 30)
        assert old["stoppedReason"].startswith("DockerTimeoutError: Could not transition to created")
        for task in (new, old):
            assert host_leftovers(task["taskArn"].rsplit("/", 1)[-1]) == []
            runtime_id = task["containers"][0]["runtimeId"]
            assert runtime_id not in containerd_containers(f) and runtime_id not in containerd_snapshots(f)
    finally:
        f.stop()


def test_a_containerd_crash_does_not_stop_running_tasks(fresh_fargo_dir: Path) -> None:
    f = _start(fresh_fargo_dir)
    try:
        import_test_image(f)
        ecs = f.client("ecs")
        ecs.create_cluster()
        td = register(ecs, "outlives-containerd", {"name": "app", "command": ["sleep", "3600"], "stopTimeout": 2})
        task = wait_for_task(ecs, run(ecs, td)["taskArn"], "RUNNING")
        pid = int((fresh_fargo_dir / "containerd" / "containerd.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        new_pid = pid
        while time.monotonic() < deadline and new_pid == pid:
            time.sleep(0.2)
            new_pid = int((fresh_fargo_dir / "containerd" / "containerd.pid").read_text())
        assert new_pid != pid, "Fargo did not start containerd again"
        time.sleep(1)
        assert ecs.describe_tasks(tasks=[task["taskArn"]])["tasks"][0]["lastStatus"] == "RUNNING"
        # the task is still driven: new tasks run and StopTask reaches the old one
        other = wait_for_task(ecs, run(ecs, td)["taskArn"], "RUNNING")
        for t in (task, other):
            ecs.stop_task(task=t["taskArn"])
        for t in (task, other):
            stopped = wait_for_task(ecs, t["taskArn"], "STOPPED", 30)
            assert stopped["stopCode"] == "UserInitiated" and stopped["containers"][0]["exitCode"] == 137
            assert host_leftovers(t["taskArn"].rsplit("/", 1)[-1]) == []
    finally:
        f.stop()
