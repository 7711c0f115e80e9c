"""Chaos, bounded (40 tasks, about two minutes): `kill -9` of `fargo up` in a burst of starts, then `kill -9` of
its containerd while the tasks stop. An agent restart must be invisible to tasks (every one reaches
RUNNING), and STOPPED must mean clean: no netns, veth, cgroup (in any hierarchy), container, snapshot or
mount of theirs is left on the host.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from fargo.network.names import netns_name
from fargo.network.task_eni import list_task_enis
from fargo.network.vpc_router import list_vpc_routers
from fargo.runtime.containerd_daemon import ContainerdPaths
from tests.e2e.conftest import OWN_PREFIX, TEST_IMAGE, FargoProcess, import_test_image

BURSTS, PER_CALL = 4, 10


def _run_burst(ecs, started: list[str], errors: list[str]) -> None:  # noqa: ANN001
    try:
        out = ecs.run_task(taskDefinition="chaos", count=PER_CALL, networkConfiguration={
            "awsvpcConfiguration": {"subnets": ["subnet-fargo-default-1a", "subnet-fargo-default-1b"]}})
        started.extend(t["taskArn"] for t in out["tasks"])
    except Exception as e:  # noqa: BLE001 - the process was killed under the call: expected
        errors.append(repr(e))


def _all_task_arns(ecs) -> list[str]:  # noqa: ANN001
    arns: list[str] = []
    for status in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(cluster="default", desiredStatus=status):
            arns.extend(page["taskArns"])
    return arns


def _describe(ecs, arns: list[str]) -> list[dict]:  # noqa: ANN001
    tasks: list[dict] = []
    for i in range(0, len(arns), 100):
        tasks.extend(ecs.describe_tasks(cluster="default", tasks=arns[i:i + 100])["tasks"])
    return tasks


def _wait_all(ecs, arns: list[str], status: str, timeout: float) -> list[dict]:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    tasks: list[dict] = []
    while time.monotonic() < deadline:
        tasks = _describe(ecs, arns)
        if all(t["lastStatus"] == status or t["lastStatus"] == "STOPPED" for t in tasks):
            return tasks
        time.sleep(0.2)
    late = [(t["taskArn"][-8:], t["lastStatus"]) for t in tasks if t["lastStatus"] != status]
    raise AssertionError(f"not all tasks reached {status} in {timeout}s: {late}")


def _containerd_pid(data_dir: Path) -> int:
    sock = str(ContainerdPaths.for_data_dir(data_dir).socket)
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"containerd") and sock.encode() in b" ".join(cmd):
                return int(proc.name)
    raise AssertionError("Fargo's containerd is not running")


def _leftovers(data_dir: Path, task_ids: list[str]) -> list[str]:
    left: list[str] = []
    netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    for task_id in task_ids:
        if netns_name(task_id, OWN_PREFIX) in netns:
            left.append(f"netns of {task_id}")
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            if (hierarchy / "fargo" / task_id).exists():
                left.append(f"cgroup {hierarchy.name}/fargo/{task_id}")
    left += [f"ENI port of {eni.task_id}" for eni in list_task_enis(OWN_PREFIX) if eni.task_id in task_ids]
    # The default VPC's router (of this Fargo's prefix) goes with its last task.
    left += [f"router of {vpc}" for vpc in list_vpc_routers(OWN_PREFIX) if vpc == "vpc-fargo-default"]
    ctr = ["ctr", "-a", str(ContainerdPaths.for_data_dir(data_dir).socket), "-n", "fargo"]
    containers = subprocess.run(ctr + ["containers", "ls", "-q"], capture_output=True, text=True).stdout.split()
    left += [f"container {c}" for c in containers]
    snapshots = subprocess.run(ctr + ["snapshots", "ls"], capture_output=True, text=True).stdout.splitlines()[1:]
    left += [f"snapshot {s.split()[0]}" for s in snapshots if s.split() and "-" in s.split()[0]
             and s.split()[0].split("-")[0] in task_ids]
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    left += [f"mount {m.split()[1]}" for m in mounts if m.split()[1].startswith(str(data_dir / "tasks"))]
    return left


def test_kill_9_during_starts_and_of_containerd_during_stops_loses_no_task_and_leaves_nothing(
        fresh_fargo_dir: Path) -> None:
    f = FargoProcess(fresh_fargo_dir).start()
    try:
        import_test_image(f)
        ecs = f.client("ecs")
        ecs.create_cluster()
        ecs.register_task_definition(
            family="chaos", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "app", "image": TEST_IMAGE, "command": ["sleep", "3600"],
                                   "stopTimeout": 2}])
        started: list[str] = []
        errors: list[str] = []
        bursts = [threading.Thread(target=_run_burst, args=(f.client("ecs"), started, errors))
                  for _ in range(BURSTS)]
        for b in bursts:
            b.start()
        time.sleep(1.0)
        assert f.proc is not None
        f.proc.kill()  # kill -9 of fargo up, one second into the burst
        f.proc.wait()
        for b in bursts:
            b.join(30)

        f.start()
        ecs = f.client("ecs")
        arns = _all_task_arns(ecs)
        assert set(started) <= set(arns) and len(arns) >= PER_CALL
        print(f"{len(arns)} tasks after the restart ({len(started)} acknowledged before the kill)")
        tasks = _wait_all(ecs, arns, "RUNNING", 60)
        failed = [(t["taskArn"][-8:], t.get("stoppedReason")) for t in tasks if t["lastStatus"] != "RUNNING"]
        assert not failed, f"an agent restart was visible to tasks: {failed}\n{f.log_tail(80)}"

        for arn in arns:
            ecs.stop_task(cluster="default", task=arn)
        time.sleep(0.3)
        os.kill(_containerd_pid(fresh_fargo_dir), signal.SIGKILL)  # kill -9 of containerd during the stops
        tasks = _wait_all(ecs, arns, "STOPPED", 60)
        assert all(t["lastStatus"] == "STOPPED" for t in tasks)
        assert all("/" not in (t.get("stoppedReason") or "") for t in tasks)
        task_ids = [a.rsplit("/", 1)[-1] for a in arns]
        deadline = time.monotonic() + 10
        while (left := _leftovers(fresh_fargo_dir, task_ids)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, f"STOPPED tasks left on the host: {left[:10]}"
    finally:
        f.stop(signal.SIGKILL)
