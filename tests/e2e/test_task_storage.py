"""Ephemeral storage as Fargate gives it, through boto3 on real tasks: one volume (20 GiB, or ephemeralStorage)
holding the writable layers and task volumes on 1.4.0, 10 GiB + 4 GiB on 1.3.0; task volumes shared between
containers; nothing of it left on the host at STOPPED, also across a SIGKILL of `fargo up`. fallocate, not
gigabytes of writes, fills the volumes: it keeps these tests fast and the host's disk untouched.
"""
from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from fargo.storage.ephemeral_volume import EphemeralVolume, StorageSizes
from fargo.storage.ext4_images import VolumeImages
from fargo.storage.loop_devices import devices_backed_under
from tests.e2e.conftest import FargoProcess, free_port, import_test_image, wait_for_task
from tests.e2e.test_task_metadata import GET, bodies
from tests.e2e.test_tasks import host_leftovers, logs, register, run

GIB = 1024**3
SCRATCH = [{"name": "scratch"}]
AT_SCRATCH = [{"sourceVolume": "scratch", "containerPath": "/scratch"}]
# `size <path>=<bytes>`: the size of the file system a path is on, as a process in the container sees it.
SIZE = "size() { echo \"size $1=$(( $(stat -f -c %b $1) * $(stat -f -c %S $1) ))\"; }; "
# `fill_to <path> <MiB>`: fallocate a file at <path> that leaves <MiB> free on its file system.
FILL_TO = ("fill_to() { free=$(( $(stat -f -c %a $(dirname $1)) * $(stat -f -c %S $(dirname $1)) )); "
           "fallocate -l $(( free - $2 * 1048576 )) $1; }; ")


def _sizes(output: str) -> dict[str, int]:
    return {m[0]: int(m[1]) for m in re.findall(r"^size (\S+)=(\d+)$", output, re.M)}


def _task_id(task: dict) -> str:
    return task["taskArn"].rsplit("/", 1)[-1]


def _finished(f: FargoProcess, td: str, timeout: float = 60, **extra) -> tuple[dict, str]:  # noqa: ANN003
    ecs = f.client("ecs")
    task = wait_for_task(ecs, run(ecs, td, **extra)["taskArn"], "STOPPED", timeout)
    return task, logs(f, task["taskArn"])


def test_on_1_4_0_the_writable_layer_and_task_volumes_share_20_gib_and_get_enospc_past_it(
        runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    script = (SIZE + FILL_TO + "size /; size /scratch; "
              "fallocate -l 21G /too-big; echo too-big=$?; rm -f /too-big; "
              "fallocate -l 15G /layer && echo layer=ok; "
              "fallocate -l 6G /scratch/six; echo six=$?; rm -f /scratch/six; "
              "fallocate -l 4G /scratch/four && echo four=ok; "
              "fill_to /scratch/rest 16 && echo rest=ok; "
              "dd if=/dev/zero of=/past-the-end bs=1M count=64 2>/dev/null; echo dd=$?; rm /past-the-end; "
              "dd if=/dev/zero of=/below bs=1M count=4 2>/dev/null; echo below=$?")
    td = register(ecs, "storage-20g", {"name": "app", "command": ["sh", "-c", script], "mountPoints": AT_SCRATCH},
                  volumes=SCRATCH)
    task, out = _finished(runner_fargo, td)
    assert task["ephemeralStorage"] == {"sizeInGiB": 20}
    sizes = _sizes(out)
    assert 19.5 * GIB < sizes["/"] <= 20 * GIB and sizes["/scratch"] == sizes["/"], out  # one file system
    for line in ("too-big=1", "layer=ok", "six=1", "four=ok", "rest=ok", "dd=1", "below=0"):
        assert line in out.splitlines(), (line, out)
    assert task["containers"][0]["exitCode"] == 0
    assert host_leftovers(_task_id(task), data_dir=runner_fargo.data_dir) == []


def test_ephemeral_storage_from_run_task_overrides_shows_in_df_and_describe_tasks(
        runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "storage-sized", {"name": "app", "command": ["sh", "-c", SIZE + "size /; size /scratch"],
                                         "mountPoints": AT_SCRATCH},
                  volumes=SCRATCH, ephemeralStorage={"sizeInGiB": 25})
    task, out = _finished(runner_fargo, td, overrides={"ephemeralStorage": {"sizeInGiB": 30}})
    assert task["ephemeralStorage"] == {"sizeInGiB": 30}
    assert 29.5 * GIB < _sizes(out)["/"] <= 30 * GIB, out
    task, out = _finished(runner_fargo, td)  # the definition's own size without an override
    assert task["ephemeralStorage"] == {"sizeInGiB": 25}
    assert 24.5 * GIB < _sizes(out)["/scratch"] <= 25 * GIB, out
    assert host_leftovers(_task_id(task), data_dir=runner_fargo.data_dir) == []


def test_on_1_3_0_writable_layers_have_10_gib_and_task_volumes_4_gib_of_their_own(
        runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    script = (SIZE + "size /; size /scratch; "
              "fallocate -l 5G /scratch/five; echo five=$?; rm -f /scratch/five; "
              "fallocate -l 3G /scratch/three && echo three=ok; "
              "fallocate -l 11G /eleven; echo eleven=$?; rm -f /eleven; "
              "fallocate -l 9G /nine && echo nine=ok")  # the volume's 3 GiB do not count against the layer
    td = register(ecs, "storage-1-3-0", {"name": "app", "command": ["sh", "-c", script], "mountPoints": AT_SCRATCH},
                  volumes=SCRATCH)
    task, out = _finished(runner_fargo, td, platformVersion="1.3.0")
    assert task["platformVersion"] == "1.3.0" and "ephemeralStorage" not in task
    sizes = _sizes(out)
    assert 9.5 * GIB < sizes["/"] <= 10 * GIB and 3.5 * GIB < sizes["/scratch"] <= 4 * GIB, out
    for line in ("five=1", "three=ok", "eleven=1", "nine=ok"):
        assert line in out.splitlines(), (line, out)
    assert host_leftovers(_task_id(task), data_dir=runner_fargo.data_dir) == []


def test_containers_share_task_volumes_through_mount_points_read_only_and_volumes_from(
        runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(
        ecs, "storage-shared",
        {"name": "writer", "essential": False, "mountPoints": [{"sourceVolume": "shared", "containerPath": "/data"}],
         "command": ["sh", "-c", "echo from-writer > /data/note; ls -ld /data | cut -c1-10"]},
        {"name": "borrower", "essential": False, "volumesFrom": [{"sourceContainer": "writer"}],
         "dependsOn": [{"containerName": "writer", "condition": "SUCCESS"}],
         "command": ["sh", "-c", "cat /data/note; echo from-borrower >> /data/note"]},
        {"name": "reader", "dependsOn": [{"containerName": "borrower", "condition": "SUCCESS"}],
         "mountPoints": [{"sourceVolume": "shared", "containerPath": "/in", "readOnly": True}],
         "volumesFrom": [{"sourceContainer": "writer", "readOnly": True}],
         # (stderr into stdout: the two streams are copied apart, so their order in the log is not kept)
         "command": ["sh", "-c", "exec 2>&1; cat /in/note; echo x > /in/denied; echo in=$?; echo y > /data/denied; "
                                 "echo data=$?; ls /in"]},
        volumes=[{"name": "shared", "host": {}}])
    task, _ = _finished(runner_fargo, td)
    assert [c["exitCode"] for c in sorted(task["containers"], key=lambda c: c["name"])] == [0, 0, 0], task
    assert logs(runner_fargo, task["taskArn"], "writer").split() == ["drwxr-xr-x"]  # root, 0755 as on Fargate
    assert logs(runner_fargo, task["taskArn"], "borrower").split() == ["from-writer"]
    reader = logs(runner_fargo, task["taskArn"], "reader").splitlines()
    assert reader[:2] == ["from-writer", "from-borrower"]
    assert "in=1" in reader and "data=1" in reader and reader[-1] == "note", reader  # read-only both ways
    assert host_leftovers(_task_id(task), data_dir=runner_fargo.data_dir) == []


def test_a_task_volume_is_wiped_when_its_task_stops(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "storage-wiped", {"name": "app", "mountPoints": AT_SCRATCH, "stopTimeout": 2,
                                         "command": ["sh", "-c", "ls /scratch; echo secret > /scratch/left; "
                                                                 "echo layer > /layer; sleep 3600"]},
                  volumes=SCRATCH)
    first = wait_for_task(ecs, run(ecs, td)["taskArn"], "RUNNING")
    task_dir = runner_fargo.data_dir / "tasks" / _task_id(first)
    deadline = time.monotonic() + 10
    while not (task_dir / "volume" / "volumes" / "scratch" / "left").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    runtime_id = first["containers"][0]["runtimeId"]
    assert (task_dir / "volume" / "containers" / runtime_id / "upper" / "layer").read_text() == "layer\n"
    ecs.stop_task(task=first["taskArn"])
    wait_for_task(ecs, first["taskArn"], "STOPPED", 30)
    assert not (task_dir / "volume").exists() and not (task_dir / "volume.img").exists()
    assert host_leftovers(_task_id(first), data_dir=runner_fargo.data_dir) == []
    second = wait_for_task(ecs, run(ecs, td)["taskArn"], "RUNNING")
    ecs.stop_task(task=second["taskArn"])
    wait_for_task(ecs, second["taskArn"], "STOPPED", 30)
    assert logs(runner_fargo, second["taskArn"]).strip() == ""  # the new task's volume started empty


def test_a_task_that_cannot_start_leaves_no_storage(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "storage-no-image", {"name": "app", "image": "fargo.local/missing:1", "mountPoints": AT_SCRATCH},
                  volumes=SCRATCH)
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "STOPPED", 60)
    assert task["stopCode"] == "TaskFailedToStart"
    assert host_leftovers(_task_id(task), data_dir=runner_fargo.data_dir) == []


def test_metadata_v4_ephemeral_storage_metrics_count_what_the_task_writes(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    task_path = '"${ECS_CONTAINER_METADATA_URI_V4#http://169.254.170.2}/task"'
    stats_path = '"${ECS_CONTAINER_METADATA_URI_V4#http://169.254.170.2}/task/stats"'
    script = (GET + f"get {task_path}; dd if=/dev/zero of=/scratch/file bs=1M count=96 2>/dev/null; "
              f"dd if=/dev/zero of=/direct bs=1M count=16 oflag=direct 2>/dev/null; get {task_path}; "
              f"get {stats_path} >/dev/null; sleep 2; get {stats_path}")  # (the first ask wakes the sampler)
    td = register(ecs, "storage-metrics", {"name": "app", "command": ["sh", "-c", script], "mountPoints": AT_SCRATCH,
                                           "stopTimeout": 2}, volumes=SCRATCH, cpu="512", memory="1024")
    task, out = _finished(runner_fargo, td)
    before, after, stats = (json.loads(b) for b in bodies(out))
    assert before["EphemeralStorageMetrics"]["Reserved"] == after["EphemeralStorageMetrics"]["Reserved"] == 20480
    assert after["EphemeralStorageMetrics"]["Utilized"] >= before["EphemeralStorageMetrics"]["Utilized"] + 96 + 16
    blkio = stats[task["containers"][0]["runtimeId"]]["blkio_stats"]["io_service_bytes_recursive"]
    loop_writes = [e["value"] for e in blkio if e["major"] == 7 and e["op"] == "Write"]
    assert loop_writes and max(loop_writes) >= 16 << 20, blkio  # the O_DIRECT writes, on the loop device


def _start(data_dir: Path) -> FargoProcess:
    return FargoProcess(data_dir, free_port()).start()


def test_after_sigkill_of_fargo_up_running_tasks_keep_their_volume_and_nothing_else_is_left(
        fresh_fargo_dir: Path) -> None:
    f = _start(fresh_fargo_dir)
    try:
        import_test_image(f)
        ecs = f.client("ecs")
        ecs.create_cluster()
        keeper_td = register(ecs, "storage-keeper", {
            "name": "app", "mountPoints": AT_SCRATCH, "stopTimeout": 2,
            "command": ["sh", "-c", "echo kept > /scratch/kept; echo layer > /layer; sleep 3600"]}, volumes=SCRATCH)
        leaver_td = register(ecs, "storage-leaver", {"name": "app", "mountPoints": AT_SCRATCH,
                                                     "command": ["sh", "-c", "echo x > /scratch/x; sleep 2"]},
                             volumes=SCRATCH)
        keeper = wait_for_task(ecs, run(ecs, keeper_td)["taskArn"], "RUNNING")
        leaver = wait_for_task(ecs, run(ecs, leaver_td)["taskArn"], "RUNNING")
        time.sleep(0.5)
    finally:
        f.stop(signal.SIGKILL)
    # A task this agent never heard of left its volume (as if its state were lost): reconcile removes it.
    orphan = EphemeralVolume(fresh_fargo_dir / "tasks" / ("0" * 32), StorageSizes(20),
                             VolumeImages(fresh_fargo_dir / "storage" / "templates"))
    orphan.make(["scratch"])
    time.sleep(2.5)  # the leaver exits while no agent watches
    f = _start(fresh_fargo_dir)
    try:
        ecs = f.client("ecs")
        assert ecs.describe_tasks(tasks=[keeper["taskArn"]])["tasks"][0]["lastStatus"] == "RUNNING"
        keeper_dir = fresh_fargo_dir / "tasks" / _task_id(keeper)
        assert (keeper_dir / "volume" / "volumes" / "scratch" / "kept").read_text() == "kept\n"
        runtime_id = keeper["containers"][0]["runtimeId"]
        assert (keeper_dir / "volume" / "containers" / runtime_id / "upper" / "layer").read_text() == "layer\n"
        gone = wait_for_task(ecs, leaver["taskArn"], "STOPPED", 30)
        assert gone["stopCode"] == "EssentialContainerExited"
        assert host_leftovers(_task_id(leaver), f.network_prefix, fresh_fargo_dir) == []
        deadline = time.monotonic() + 10
        while host_leftovers("0" * 32, f.network_prefix, fresh_fargo_dir) and time.monotonic() < deadline:
            time.sleep(0.1)  # reconciliation runs once the agent has its assignments
        assert host_leftovers("0" * 32, f.network_prefix, fresh_fargo_dir) == []
        assert not (fresh_fargo_dir / "tasks" / ("0" * 32) / "volume").exists()
        ecs.stop_task(task=keeper["taskArn"])
        wait_for_task(ecs, keeper["taskArn"], "STOPPED", 30)
        assert host_leftovers(_task_id(keeper), f.network_prefix, fresh_fargo_dir) == []
        assert devices_backed_under(fresh_fargo_dir) == []
    finally:
        f.stop()


def test_run_task_refuses_an_ephemeral_storage_override_outside_21_to_200_gib(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "storage-bad-override", {"name": "app", "command": ["true"]})
    for size in (20, 201):
        with pytest.raises(ClientError) as refused:
            run(ecs, td, overrides={"ephemeralStorage": {"sizeInGiB": size}})
        assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
        assert "between 21 and 200" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as refused:  # 1.3.0 has no configurable ephemeral storage
        run(ecs, td, platformVersion="1.3.0", overrides={"ephemeralStorage": {"sizeInGiB": 30}})
    assert refused.value.response["Error"]["Code"] == "PlatformTaskDefinitionIncompatibilityException"
