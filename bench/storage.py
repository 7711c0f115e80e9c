"""Task storage: what the ephemeral volume and an EFS mount add to task start, and write speed on the volume.

Start latency, sequential RunTask -> RUNNING (each task stopped and STOPPED before the next):
  - Fargo as it runs (every task gets its own loop-mounted ext4 volume);
  - a second Fargo beside it, started with FARGO_EPHEMERAL_VOLUMES=0 (benchmark only), which leaves the
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
BARE_PREFIX = "fgb"
POLL_S = 0.005
TIMEOUT_S = 120.0
# busybox's dd prints no timing; its `time` applet does ("real\t0m 1.23s"), to 10 ms
TIME_REAL = re.compile(r"real\s+([0-9]+)m\s*([0-9.]+)s")


def register(ecs, family: str, command: list[str], volumes: list[dict] | None = None,  # noqa: ANN001
             mount_points: list[dict] | None = None, cpu: str = "256", memory: str = "512") -> None:
    ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu=cpu, memory=memory,
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
    """Seconds a task's `dd ... conv=fsync` of `mib` MiB into `path` took, as `time` in the task reports it."""
    family = "bench-storage-dd"
    register(fargo.client(), family,
             ["sh", "-c", f"time dd if=/dev/zero of={path} bs=1M count={mib} conv=fsync 2>&1; rm -f {path}"],
             volumes=[{"name": "scratch"}], mount_points=[{"sourceVolume": "scratch", "containerPath": "/scratch"}],
             # a whole vCPU (as the host's dd has) and room for the page cache of what dd writes: the disk is
             # measured, not a CPU quota or memory reclaim
             cpu="1024", memory="2048")
    ecs = EcsJson(fargo.port)
    arn = ecs("RunTask", params(family))["tasks"][0]["taskArn"]
    wait_for(ecs, {arn: Launch(arn, time.perf_counter())}, "STOPPED", 0.2, TIMEOUT_S)
    out = subprocess.run([sys.executable, "-m", "fargo.cli.main", "logs", arn.rsplit("/", 1)[-1], "--endpoint",
                          fargo.endpoint], capture_output=True, text=True, check=True).stdout
    found = TIME_REAL.search(out)
    if not found:
        raise RuntimeError(f"no timing in the task's output: {out!r}")
    return int(found.group(1)) * 60 + float(found.group(2))


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


def bare_fargo() -> BenchFargo:
    """The baseline Fargo: the same code, tasks without volumes; beside the first, so its own prefix."""
    fargo = BenchFargo(prefix="fargo-bench-bare-")
    fargo.extra_args += ["--network-prefix", BARE_PREFIX]
    return fargo


def alternating(pairs: list[tuple[BenchFargo, str, list[float]]], n: int) -> None:
    """n starts of each variant, taken in turn, so that both see the same host at the same time."""
    for _ in range(n):
        for fargo, family, out in pairs:
            out.extend(start_latencies(fargo, family, 1))


def dd_rounds(fargo: BenchFargo, mib: int, rounds: int) -> tuple[list[float], list[float], list[float]]:
    layer, volume, host = [], [], []
    for _ in range(rounds):  # in turn, so that a slow moment of the disk does not land on one of them
        layer.append(task_dd_seconds(fargo, "/bench-dd", mib))
        volume.append(task_dd_seconds(fargo, "/scratch/bench-dd", mib))
        host.append(host_dd_seconds(fargo.data_dir, mib))
    return layer, volume, host


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=30, help="sequential tasks per variant (%(default)s)")
    parser.add_argument("--write-mib", type=int, default=512, help="MiB each dd writes (%(default)s)")
    parser.add_argument("--write-rounds", type=int, default=3, help="dd runs of each kind (%(default)s)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fargo-bench-image-"))
    with_volume: list[float] = []
    without_volume: list[float] = []
    with_efs_volume: list[float] = []
    try:
        tar = build_test_image(work)
        with BenchFargo() as fargo:
            prepared(fargo, tar)
            with_efs(fargo)
            os.environ["FARGO_EPHEMERAL_VOLUMES"] = "0"  # read by the bare Fargo's agent when it starts
            try:
                bare = bare_fargo().__enter__()
            finally:
                del os.environ["FARGO_EPHEMERAL_VOLUMES"]
            try:
                prepared(bare, tar)
                warm = [(fargo, "bench-storage-plain", []), (bare, "bench-storage-plain", []),
                        (fargo, "bench-storage-efs", [])]
                alternating(warm, 2)  # snapshots, routers, templates, caches
                alternating([(fargo, "bench-storage-plain", with_volume), (bare, "bench-storage-plain", without_volume),
                             (fargo, "bench-storage-efs", with_efs_volume)], args.tasks)
            finally:
                bare.close()
            layer_s, volume_s, host_s = dd_rounds(fargo, args.write_mib, args.write_rounds)
    finally:
        subprocess.run(["rm", "-rf", str(work)])

    print()
    print(f"Start latency, RunTask -> RUNNING ({args.tasks} sequential tasks each, the variants in turn)")
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
    layer, volume, host = (percentile(v, 50) for v in (layer_s, volume_s, host_s))
    print(f"Sequential write, dd {mib} MiB bs=1M conv=fsync (median of {args.write_rounds})")
    print_table(["where", "seconds", "MiB/s", "ratio to host"], [
        ("task writable layer (on its volume)", layer, mib / layer, host / layer),
        ("task volume (on its volume)", volume, mib / volume, host / volume),
        ("host: plain directory on the data dir's disk", host, mib / host, 1.0),
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
