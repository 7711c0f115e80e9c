"""Idle footprint: N idle tasks (`sleep`) on one host and what they cost while nothing happens: `fargo up`'s RSS
and CPU (% of one core over --idle-seconds), its containerd's apart, and host memory per task (MemAvailable).
Targets: fargo RSS <= 200 MiB, idle CPU <= 1 % of a core. Usage (root, repo root):
.venv/bin/python bench/idle_tasks.py [--tasks 500] [--idle-seconds 30]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fargo_process import SUBNETS, BenchFargo, build_test_image, in_threads, print_table  # noqa: E402

from fargo.agent.host_scan import scan_host  # noqa: E402
from fargo.agent.task_cgroup import remove_task_cgroup  # noqa: E402
from fargo.network.task_eni import delete_task_eni  # noqa: E402

IMAGE = "fargo.local/busybox:latest"
FAMILY = "bench-idle"
# Idle, but ends at once on SIGTERM (PID 1 ignores it unless it traps it), so stopping 500 tasks is quick.
TASK_COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]
RSS_TARGET_MIB = 200.0
CPU_TARGET_PCT = 1.0
SETTLE_S = 5.0  # after the last task is RUNNING, before measuring: let start-up work drain
POLL_S = 1.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    """One look at the host and at the two processes."""

    fargo_rss_kib: int
    fargo_hwm_kib: int
    containerd_rss_kib: int
    shims: int
    shims_rss_kib: int
    mem_available_kib: int


@dataclass
class Idle:
    fargo_cpu_pct: float
    containerd_cpu_pct: float
    seconds: float


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_ticks(pid: int) -> int:
    # Fields after the ")" of comm: utime and stime are the 14th and 15th of the whole line.
    after_comm = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(after_comm[11]) + int(after_comm[12])


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def containerd_pid(fargo: BenchFargo) -> int:
    # Read each time: Fargo starts its containerd again if it dies.
    pid = int((fargo.containerd_socket.parent / "containerd.pid").read_text().strip())
    if not Path(f"/proc/{pid}").exists():
        raise RuntimeError(f"containerd pid {pid} is not running")
    return pid


def shim_pids(fargo: BenchFargo) -> list[int]:
    needle = str(fargo.data_dir).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and needle in cmdline:
                pids.append(int(entry.name))
    return pids


def sample(fargo: BenchFargo) -> Sample:
    pid = fargo.pid()
    assert pid is not None
    shims = shim_pids(fargo)
    shims_rss = 0
    for shim in shims:
        try:
            shims_rss += status_kib(shim, "VmRSS")
        except OSError:
            pass
    return Sample(status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM"), status_kib(containerd_pid(fargo), "VmRSS"),
                  len(shims), shims_rss, mem_available_kib())


def idle_cpu(fargo: BenchFargo, seconds: float) -> Idle:
    """CPU of fargo and of containerd over `seconds` in which the benchmark sends nothing."""
    pid, ctrd = fargo.pid(), containerd_pid(fargo)
    assert pid is not None
    start, ctrd_start, t0 = cpu_ticks(pid), cpu_ticks(ctrd), time.monotonic()
    time.sleep(seconds)
    end, ctrd_end, wall = cpu_ticks(pid), cpu_ticks(ctrd), time.monotonic() - t0
    return Idle(100 * (end - start) / CLK_TCK / wall, 100 * (ctrd_end - ctrd_start) / CLK_TCK / wall, wall)


def describe(ecs: Any, arns: list[str]) -> list[dict]:
    tasks: list[dict] = []
    for i in range(0, len(arns), 100):
        reply = ecs.describe_tasks(cluster="default", tasks=arns[i:i + 100])
        if reply.get("failures"):
            raise RuntimeError(f"DescribeTasks failures: {reply['failures'][:3]}")
        tasks.extend(reply["tasks"])
    return tasks


def wait_all(ecs: Any, arns: list[str], status: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        tasks = describe(ecs, arns)
        pending = [t for t in tasks if t["lastStatus"] != status]
        failed = [t for t in pending if t["lastStatus"] == "STOPPED"]
        if failed:
            raise RuntimeError(f"{len(failed)} tasks stopped before {status}, e.g. {failed[0]['taskArn']}: "
                               f"{failed[0].get('stoppedReason')}")
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} of {len(arns)} tasks not {status} after {timeout:.0f} s")
        time.sleep(POLL_S)


def run_tasks(ecs: Any, n: int, launched: list[str]) -> None:
    """RunTask with count up to 10 (the API's limit), until n tasks exist; arns go into `launched` as they come."""
    while len(launched) < n:
        count = min(10, n - len(launched))
        reply = ecs.run_task(cluster="default", taskDefinition=FAMILY, launchType="FARGATE", count=count,
                             networkConfiguration={"awsvpcConfiguration": {"subnets": SUBNETS}})
        launched.extend(t["taskArn"] for t in reply["tasks"])
        if reply.get("failures"):
            raise RuntimeError(f"RunTask failures: {reply['failures'][:3]}")


def stop_tasks(make_client: Callable[[], Any], arns: list[str], threads: int = 10) -> None:
    def stop(chunk: list[str]) -> None:
        ecs = make_client()
        for arn in chunk:
            ecs.stop_task(cluster="default", task=arn, reason="benchmark done")

    in_threads(stop, arns, threads)


def stop_everything_left(fargo: BenchFargo, arns: list[str]) -> None:
    """StopTask what is not STOPPED and wait for it, boundedly; BenchFargo.close() removes the rest anyway."""
    if not arns or fargo.proc is None or fargo.proc.poll() is not None:
        return
    try:
        left = [t["taskArn"] for t in describe(fargo.client(), arns) if t["lastStatus"] != "STOPPED"]
        if left:
            stop_tasks(fargo.client, left)
            wait_all(fargo.client(), left, "STOPPED", 120 + len(left) * 0.5)
    except Exception as e:  # noqa: BLE001
        print(f"cleaning up: {e}", file=sys.stderr)


def leftovers(data_dir: Path, task_ids: set[str]) -> list[str]:
    """What the host still holds for our tasks once Fargo is gone; each found is also removed here."""
    state = scan_host(data_dir)
    found = []
    for task_id in sorted((state.netns | state.veths) & task_ids):
        found.append(f"task ENI of {task_id}")
        delete_task_eni(task_id)
    for task_id in sorted(state.cgroups & task_ids):
        found.append(f"cgroups of {task_id}")
        try:
            remove_task_cgroup(task_id)
        except OSError as e:
            found.append(f"  (could not remove: {e})")
    found.extend(f"mount {m}" for m in state.mounts)
    return found


def mib(kib: int | float) -> float:
    return kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=500, help="idle tasks to run at once (%(default)s)")
    parser.add_argument("--idle-seconds", type=float, default=30, help="how long CPU is measured (%(default)s)")
    args = parser.parse_args()
    n = args.tasks

    work = Path(tempfile.mkdtemp(prefix="fargo-bench-image-"))
    launched: list[str] = []
    timings: dict[str, float] = {}
    try:
        tar = build_test_image(work)
        with BenchFargo() as fargo:
            data_dir = fargo.data_dir
            fargo.import_image(tar)
            ecs = fargo.client()
            ecs.create_cluster(clusterName="default")
            ecs.register_task_definition(
                family=FAMILY, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
                containerDefinitions=[{"name": "app", "image": IMAGE, "essential": True, "command": TASK_COMMAND,
                                      "stopTimeout": 2}])
            print(f"Idle tasks: Fargo pid {fargo.pid()} on {fargo.endpoint}, containerd pid {containerd_pid(fargo)}; "
                  f"{n} tasks, CPU over {args.idle_seconds:.0f} s", flush=True)
            try:
                # One task started and stopped first warms the snapshots and subnet bridges.
                warm: list[str] = []
                run_tasks(ecs, 1, warm)
                wait_all(ecs, warm, "RUNNING", 120)
                stop_tasks(fargo.client, warm, threads=1)
                wait_all(ecs, warm, "STOPPED", 120)
                launched.extend(warm)
                time.sleep(SETTLE_S)
                before = sample(fargo)
                idle_empty = idle_cpu(fargo, args.idle_seconds)

                t0 = time.monotonic()
                batch: list[str] = []
                try:
                    run_tasks(ecs, n, batch)
                finally:
                    launched.extend(batch)
                wait_all(ecs, batch, "RUNNING", 300 + n * 1.0)
                timings["all RUNNING"] = time.monotonic() - t0
                time.sleep(SETTLE_S)
                during = sample(fargo)
                idle_full = idle_cpu(fargo, args.idle_seconds)
                after_idle = sample(fargo)
                still = sum(1 for t in describe(ecs, batch) if t["lastStatus"] == "RUNNING")

                t0 = time.monotonic()
                stop_tasks(fargo.client, batch)
                wait_all(ecs, batch, "STOPPED", 120 + n * 0.5)
                timings["all STOPPED"] = time.monotonic() - t0
            finally:
                stop_everything_left(fargo, launched)
        task_ids = {arn.rsplit("/", 1)[1] for arn in launched}
        left = leftovers(data_dir, task_ids)
    finally:
        subprocess.run(["rm", "-rf", str(work)])

    per_task_kib = (before.mem_available_kib - during.mem_available_kib) / n
    rss_mib = mib(max(during.fargo_rss_kib, after_idle.fargo_rss_kib))
    print()
    print(f"{n} idle tasks: all RUNNING {timings['all RUNNING']:.1f} s after the first RunTask, "
          f"all STOPPED {timings['all STOPPED']:.1f} s after the first StopTask; {still} of {n} still RUNNING "
          f"after the idle period")
    print_table(["what", "0 tasks", f"{n} tasks", "ratio"], [
        ("fargo up RSS (MiB)", mib(before.fargo_rss_kib), rss_mib, rss_mib / mib(before.fargo_rss_kib)),
        ("fargo up peak RSS, VmHWM (MiB)", mib(before.fargo_hwm_kib), mib(after_idle.fargo_hwm_kib), ""),
        ("containerd RSS (MiB)", mib(before.containerd_rss_kib), mib(during.containerd_rss_kib),
         during.containerd_rss_kib / max(before.containerd_rss_kib, 1)),
        ("containerd-shim processes", before.shims, during.shims, ""),
        ("shims' RSS, summed (MiB)", mib(before.shims_rss_kib), mib(during.shims_rss_kib), ""),
        (f"fargo up idle CPU over {idle_full.seconds:.0f} s (% of a core)", idle_empty.fargo_cpu_pct,
         idle_full.fargo_cpu_pct, ""),
        (f"containerd idle CPU over {idle_full.seconds:.0f} s (% of a core)", idle_empty.containerd_cpu_pct,
         idle_full.containerd_cpu_pct, ""),
        ("host MemAvailable (MiB)", mib(before.mem_available_kib), mib(during.mem_available_kib), ""),
    ])
    print()
    print("Targets")
    print_table(["what", "value", "target", "met"], [
        ("fargo up RSS with the tasks idle (MiB)", rss_mib, RSS_TARGET_MIB, "yes" if rss_mib <= RSS_TARGET_MIB else "NO"),
        ("fargo up idle CPU (% of a core)", idle_full.fargo_cpu_pct, CPU_TARGET_PCT,
         "yes" if idle_full.fargo_cpu_pct <= CPU_TARGET_PCT else "NO"),
        ("host memory per task, MemAvailable drop / tasks (MiB)", mib(per_task_kib), "", ""),
    ])
    print()
    print("Left behind on the host after Fargo stopped: " + ("nothing" if not left else ""))
    for line in left:
        print(f"  {line}")
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
