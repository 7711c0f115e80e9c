"""Task storage: what the ephemeral volume and an EFS mount add to task start, and write speed on the volume.

Start latency, sequential RunTask -> RUNNING (each task stopped and STOPPED before the next):
  - Fargo as it runs (every task gets its own loop-mounted ext4 volume);
  - the same Fargo binary started with FARGO_EPHEMERAL_VOLUMES=0, a benchmark-only switch that leaves the
    writable layers in containerd's snapshots, unlimited: the baseline of the same run;
  - the first Fargo again, with an EFS volume (a file system with a mount target in each default subnet).
Write throughput: `dd` of --write-mib MiB with fsync inside a task (its writable layer, and a task volume), and
the same dd on the host into a plain directory of the disk that holds Fargo's data dir.
Target (issue 9): the volume adds at most 30 ms to RunTask -> RUNNING p50.
Usage (root, repo root): .venv/bin/python bench/storage.py [--tasks 20] [--write-mib 512]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fargo_process import SUBNETS, BenchFargo, build_test_image, percentile, print_table  # noqa: E402
from task_start import EcsJson, Launch, wait_for  # noqa: E402

IMAGE = "fargo.local/busybox:latest"
TASK_COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
TARGET_ADDED_MS = 30.0
POLL_S = 0.005
TIMEOUT_S = 120.0
DD_SECONDS = re.compile(r"copied, ([0-9.]+) s")


def register(ecs, family: str, command: list[str], volumes: list[dict] | None = None,  # noqa: ANN001
             mount_points: list[dict] | None = None) -> None:
    ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": IMAGE, "essential": True, "command": command,
                               "stopTimeout": 2, "mountPoints": mount_points or []}],
        volumes=volumes or [])


def params(family: str) -> dict:
    return {"cluster": "default", "taskDefinition": family, "launchType": "FARGATE",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": SUBNETS}}}


def start_latencies(fargo: BenchFargo, family: str, n: int) -> list[float]:
    """RunTask -> RUNNING of n tasks, one after another; each is stopped and STOPPED before the next."""
    ecs = EcsJson(fargo.port)
    out = []
    for _ in range(n):
        sent = time.perf_counter()
        arn = ecs("RunTask", params(family))["tasks"][0]["taskArn"]
        launch = Launch(arn, sent)
        launch.running_at = wait_for(ecs, {arn: launch}, "RUNNING", POLL_S, TIMEOUT_S)[arn]
        out.append(launch.latency)
        ecs("StopTask", {"cluster": "default", "task": arn})
        wait_for(ecs, {arn: Launch(arn, time.perf_counter())}, "STOPPED", POLL_S, TIMEOUT_S)
    return out


def prepared(fargo: BenchFargo, tar: Path) -> None:
    fargo.import_image(tar)
    ecs = fargo.client()
    ecs.create_cluster(clusterName="default")
    register(ecs, "bench-storage-plain", TASK_COMMAND)


def with_efs(fargo: BenchFargo) -> None:
    efs = fargo.client("efs")
    fs = efs.create_file_system(CreationToken="bench-storage")["FileSystemId"]
    for subnet in SUBNETS:
        efs.create_mount_target(FileSystemId=fs, SubnetId=subnet)
    register(fargo.client(), "bench-storage-efs", TASK_COMMAND,
             volumes=[{"name": "efs", "efsVolumeConfiguration": {"fileSystemId": fs}}],
             mount_points=[{"sourceVolume": "efs", "containerPath": "/mnt/efs"}])


def task_dd_seconds(fargo: BenchFargo, path: str, mib: int) -> float:
    """Seconds a task's `dd ... conv=fsync` of `mib` MiB into `path` took, as dd itself reports it."""
    family = "bench-storage-dd"
    register(fargo.client(), family,
             ["sh", "-c", f"dd if=/dev/zero of={path} bs=1M count={mib} conv=fsync 2>&1; rm -f {path}"],
             volumes=[{"name": "scratch"}], mount_points=[{"sourceVolume": "scratch", "containerPath": "/scratch"}])
    ecs = EcsJson(fargo.port)
    arn = ecs("RunTask", params(family))["tasks"][0]["taskArn"]
    wait_for(ecs, {arn: Launch(arn, time.perf_counter())}, "STOPPED", 0.2, TIMEOUT_S)
    out = subprocess.run([sys.executable, "-m", "fargo.cli.main", "logs", arn.rsplit("/", 1)[-1], "--endpoint",
                          fargo.endpoint], capture_output=True, text=True, check=True).stdout
    found = DD_SECONDS.search(out)
    if not found:
        raise RuntimeError(f"no dd figure in the task's output: {out!r}")
    return float(found.group(1))


def host_dd_seconds(directory: Path, mib: int) -> float:
    target = directory / "bench-dd"
    started = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fsync"],
                   check=True, capture_output=True)
    took = time.perf_counter() - started
    target.unlink()
    return took


def ms(values: list[float], p: float) -> float:
    return percentile(values, p) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20, help="sequential tasks per variant (%(default)s)")
    parser.add_argument("--write-mib", type=int, default=512, help="MiB each dd writes (%(default)s)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fargo-bench-image-"))
    try:
        tar = build_test_image(work)
        with BenchFargo() as fargo:
            prepared(fargo, tar)
            with_efs(fargo)
            start_latencies(fargo, "bench-storage-plain", 2)  # warm: snapshots, router, caches
            start_latencies(fargo, "bench-storage-efs", 1)
            with_volume = start_latencies(fargo, "bench-storage-plain", args.tasks)
            with_efs_volume = start_latencies(fargo, "bench-storage-efs", args.tasks)
            layer_s = task_dd_seconds(fargo, "/bench-dd", args.write_mib)
            volume_s = task_dd_seconds(fargo, "/scratch/bench-dd", args.write_mib)
            host_s = host_dd_seconds(fargo.data_dir, args.write_mib)
        os.environ["FARGO_EPHEMERAL_VOLUMES"] = "0"
        try:
            with BenchFargo() as bare:
                prepared(bare, tar)
                start_latencies(bare, "bench-storage-plain", 2)
                without_volume = start_latencies(bare, "bench-storage-plain", args.tasks)
        finally:
            del os.environ["FARGO_EPHEMERAL_VOLUMES"]
    finally:
        subprocess.run(["rm", "-rf", str(work)])

    print()
    print(f"Start latency, RunTask -> RUNNING ({args.tasks} sequential tasks each)")
    print_table(["variant", "p50 ms", "p95 ms", "min ms"], [
        ("ephemeral volume (as Fargo runs)", ms(with_volume, 50), ms(with_volume, 95), ms(with_volume, 0)),
        ("no volume (FARGO_EPHEMERAL_VOLUMES=0, baseline)", ms(without_volume, 50), ms(without_volume, 95),
         ms(without_volume, 0)),
        ("ephemeral volume + one EFS volume", ms(with_efs_volume, 50), ms(with_efs_volume, 95),
         ms(with_efs_volume, 0)),
    ])
    added = ms(with_volume, 50) - ms(without_volume, 50)
    efs_added = ms(with_efs_volume, 50) - ms(with_volume, 50)
    print()
    mib = args.write_mib
    print(f"Sequential write, dd {mib} MiB bs=1M conv=fsync")
    print_table(["where", "seconds", "MiB/s", "ratio to host"], [
        ("task writable layer (on its volume)", layer_s, mib / layer_s, host_s / layer_s),
        ("task volume (on its volume)", volume_s, mib / volume_s, host_s / volume_s),
        ("host: plain directory on the data dir's disk", host_s, mib / host_s, 1.0),
    ])
    print()
    print_table(["figure", "value", "target met"], [
        ("volume adds to RunTask -> RUNNING p50 (ms)", added, "yes" if added <= TARGET_ADDED_MS else "NO"),
        ("an EFS volume adds to RunTask -> RUNNING p50 (ms)", efs_added, ""),
        ("p50 with volume / p50 without", percentile(with_volume, 50) / percentile(without_volume, 50), ""),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
