"""Task start latency: Fargate RunTask -> RUNNING on a throw-away `fargo up`, against `ctr run` on the same containerd.

Sequential: 20 tasks one after another (each stopped and STOPPED before the next). Concurrent: 100 tasks from
10 RunTask(count=10) calls fired at once, then all stopped at once. Baseline: `ctr run` of the same image.
Usage (root, repo root): .venv/bin/python bench/task_start.py [--sequential 20] [--concurrent 100]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fargo_process import SUBNETS, BenchFargo, build_test_image, dumps, in_threads, percentile, print_table  # noqa: E402

from fargo.agent.task_cgroup import all_hierarchy_mounts  # noqa: E402

IMAGE = "fargo.local/busybox:latest"
FAMILY = "bench-task-start"
CTR_NAMESPACE = "bench"
ECS_PREFIX = "AmazonEC2ContainerServiceV20141113"
# PID 1 ignores SIGTERM unless it handles it, so trap it: StopTask then ends the task at once. A StopTask that
# lands before the shell has set its trap still waits for stopTimeout, so keep that short.
TASK_COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
STOP_TIMEOUT_S = 2
# Lifecycle steps from the task's own timestamps (ms resolution), as (label, from field, to field).
STEPS = [
    ("PROVISIONING  createdAt -> connectivityAt", "createdAt", "connectivityAt"),
    ("PENDING       connectivityAt -> pullStoppedAt", "connectivityAt", "pullStoppedAt"),
    ("ACTIVATING    pullStoppedAt -> startedAt", "pullStoppedAt", "startedAt"),
    ("total         createdAt -> startedAt", "createdAt", "startedAt"),
]
TASK_TIMEOUT_S = 60.0
# The engine issue's targets, against the baseline measured in the same run.
SEQUENTIAL_TARGET = 1.15
CONCURRENT_TARGET = 1.3
BATCH_TIMEOUT_S = 180.0


class EcsJson:
    """A keep-alive JSON 1.1 client on one connection: far less client overhead than boto3, so polls are cheap."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def __call__(self, operation: str, params: dict) -> dict:
        body = dumps(params)
        self.conn.request("POST", "/", body, {"Content-Type": "application/x-amz-json-1.1",
                                              "X-Amz-Target": f"{ECS_PREFIX}.{operation}"})
        response = self.conn.getresponse()
        payload = json.loads(response.read() or b"{}")
        if response.status != 200:
            raise RuntimeError(f"{operation} failed with HTTP {response.status}: {payload}")
        return payload


@dataclass
class Launch:
    """One task's start as the client saw it, plus the server's own timestamps."""

    arn: str
    sent_at: float  # perf_counter just before RunTask
    running_at: float | None = None
    server: dict = field(default_factory=dict)

    @property
    def latency(self) -> float:
        assert self.running_at is not None
        return self.running_at - self.sent_at

    @property
    def server_latency(self) -> float | None:
        return self.step("createdAt", "startedAt")

    def step(self, start_field: str, end_field: str) -> float | None:
        start, end = self.server.get(start_field), self.server.get(end_field)
        return end - start if start is not None and end is not None else None


def run_params(count: int) -> dict:
    return {"cluster": "default", "taskDefinition": FAMILY, "launchType": "FARGATE", "count": count,
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": SUBNETS}}}


def describe(ecs: EcsJson, arns: list[str]) -> list[dict]:
    tasks: list[dict] = []
    for i in range(0, len(arns), 100):
        reply = ecs("DescribeTasks", {"cluster": "default", "tasks": arns[i:i + 100]})
        if reply.get("failures"):
            raise RuntimeError(f"DescribeTasks failures: {reply['failures']}")
        tasks.extend(reply["tasks"])
    return tasks


def wait_for(ecs: EcsJson, launches: dict[str, Launch], status: str, poll_s: float, timeout: float) -> dict[str, float]:
    """Poll until every task shows `status`; record when each was first seen so. Returns arn -> perf_counter."""
    seen: dict[str, float] = {}
    deadline = time.perf_counter() + timeout
    while len(seen) < len(launches):
        pending = [arn for arn in launches if arn not in seen]
        tasks = describe(ecs, pending)
        now = time.perf_counter()
        for task in tasks:
            if task["lastStatus"] == status:
                seen[task["taskArn"]] = now
                launches[task["taskArn"]].server = task
            elif task["lastStatus"] == "STOPPED" and status != "STOPPED":
                raise RuntimeError(f"task {task['taskArn']} stopped before {status}: {task.get('stoppedReason')}")
        if now > deadline:
            raise TimeoutError(f"{len(launches) - len(seen)} tasks not {status} after {timeout:.0f} s")
        if len(seen) < len(launches):
            time.sleep(poll_s)
    return seen


def stop_all(ecs_for_thread: Callable[[], EcsJson], arns: list[str], threads: int = 10) -> None:
    """StopTask for every arn, from `threads` concurrent clients."""
    def stop(chunk: list[str]) -> None:
        ecs = ecs_for_thread()
        for arn in chunk:
            ecs("StopTask", {"cluster": "default", "task": arn, "reason": "benchmark done"})

    in_threads(stop, arns, threads)


def sequential_fargo(fargo: BenchFargo, n: int, stop_times: list[float], poll_s: float) -> list[Launch]:
    ecs = EcsJson(fargo.port)
    launches = []
    for _ in range(n):
        sent = time.perf_counter()
        arn = ecs("RunTask", run_params(1))["tasks"][0]["taskArn"]
        launch = Launch(arn, sent)
        launch.running_at = wait_for(ecs, {arn: launch}, "RUNNING", poll_s, TASK_TIMEOUT_S)[arn]
        launches.append(launch)
        stop_sent = time.perf_counter()
        ecs("StopTask", {"cluster": "default", "task": arn, "reason": "benchmark done"})
        stopped = wait_for(ecs, {arn: Launch(arn, stop_sent)}, "STOPPED", poll_s, TASK_TIMEOUT_S)[arn]
        stop_times.append(stopped - stop_sent)
    return launches


@dataclass
class BatchResult:
    launches: list[Launch]
    all_running_s: float
    all_stopped_s: float
    cpu_s: float = float("nan")  # Fargo's own CPU from the first RunTask until all were RUNNING


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of the process (all its threads) so far; NaN without one."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def concurrent_fargo(fargo: BenchFargo, n: int, poll_s: float, launched: list[str]) -> BatchResult:
    calls = [min(10, n - i) for i in range(0, n, 10)]
    clients = [EcsJson(fargo.port) for _ in calls]
    for ecs in clients:
        ecs("ListClusters", {})  # open the connections before the clock starts
    gate = threading.Barrier(len(calls) + 1)
    replies: list[list[str]] = [[] for _ in calls]
    errors: list[BaseException] = []

    def fire(i: int) -> None:
        gate.wait()
        try:
            replies[i] = [t["taskArn"] for t in clients[i]("RunTask", run_params(calls[i]))["tasks"]]
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    workers = [threading.Thread(target=fire, args=(i,)) for i in range(len(calls))]
    for w in workers:
        w.start()
    cpu_before = process_cpu_s(fargo.pid())
    sent = time.perf_counter()
    gate.wait()
    for w in workers:
        w.join()
    mine = [arn for reply in replies for arn in reply]
    launched.extend(mine)
    if errors:
        raise errors[0]
    launches = {arn: Launch(arn, sent) for arn in mine}
    ecs = clients[0]
    for arn, at in wait_for(ecs, launches, "RUNNING", poll_s, BATCH_TIMEOUT_S).items():
        launches[arn].running_at = at
    all_running = max(launch.latency for launch in launches.values())
    cpu = process_cpu_s(fargo.pid()) - cpu_before

    stop_sent = time.perf_counter()
    stop_all(lambda: EcsJson(fargo.port), list(launches))
    stopped = wait_for(ecs, {arn: Launch(arn, stop_sent) for arn in launches}, "STOPPED", poll_s, BATCH_TIMEOUT_S)
    return BatchResult(list(launches.values()), all_running, max(stopped.values()) - stop_sent, cpu)


def ctr(sock: Path, *args: str) -> list[str]:
    return ["ctr", "-a", str(sock), "-n", CTR_NAMESPACE, *args]


def sequential_ctr_run_rm(sock: Path, n: int, first: int = 0) -> list[float]:
    """Wall time of `ctr run --rm IMAGE ID true`: create, start, exit, delete."""
    times = []
    for i in range(first, first + n):
        t0 = time.perf_counter()
        subprocess.run(ctr(sock, "run", "--rm", IMAGE, f"bench-rm-{i}", "true"), check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def sequential_ctr_run_detached(sock: Path, n: int, seccomp: bool = False, first: int = 0) -> list[float]:
    """Wall time of `ctr run -d IMAGE ID sleep 3600` (it returns once the task has started), then kill + delete.

    `seccomp` adds containerd's default seccomp profile, as Fargo (like Fargate) applies Docker's default one.
    """
    times = []
    for i in range(first, first + n):
        cid = f"bench-d{'s' if seccomp else ''}-{i}"
        t0 = time.perf_counter()
        subprocess.run(ctr(sock, "run", "-d", *(["--seccomp"] if seccomp else []), IMAGE, cid, "sleep", "3600"),
                       check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
        _check_ctr_running(sock, [cid])
        _remove_ctr_containers(sock, [cid])
    return times


def concurrent_ctr_run_detached(sock: Path, n: int, batch: int = 0) -> float:
    """`ctr run -d` of n containers fired at once; seconds until every one has returned (its task started)."""
    ids = [f"bench-c{batch}-{i}" for i in range(n)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(ctr(sock, "run", "-d", IMAGE, cid, "sleep", "3600"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for cid in ids]
    failed = [p.stderr.read().decode() for p in procs if p.wait(BATCH_TIMEOUT_S) != 0]  # type: ignore[union-attr]
    elapsed = time.perf_counter() - t0
    try:
        if failed:
            raise RuntimeError(f"{len(failed)} ctr run -d failed, e.g.: {failed[0]}")
        _check_ctr_running(sock, ids)
    finally:
        _remove_ctr_containers(sock, ids)
    return elapsed


def _check_ctr_running(sock: Path, ids: list[str]) -> None:
    listed = subprocess.run(ctr(sock, "tasks", "ls"), check=True, capture_output=True, text=True).stdout
    running = {line.split()[0] for line in listed.splitlines()[1:] if "RUNNING" in line}
    missing = set(ids) - running
    if missing:
        raise RuntimeError(f"ctr tasks not RUNNING: {sorted(missing)[:5]}\n{listed}")


def _remove_ctr_containers(sock: Path, ids: list[str]) -> None:
    for cid in ids:
        subprocess.run(ctr(sock, "tasks", "kill", "-s", "SIGKILL", cid), capture_output=True)
    for cid in ids:
        _delete_ctr_task(sock, cid)
        subprocess.run(ctr(sock, "containers", "delete", cid), capture_output=True)


def _delete_ctr_task(sock: Path, cid: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        done = subprocess.run(ctr(sock, "tasks", "delete", cid), capture_output=True)
        if done.returncode == 0 or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def remove_ctr_cgroup_parent() -> None:
    """`ctr run` puts each container's cgroup under /<namespace>/ and runc removes only the container's own:
    the empty parent in every hierarchy goes here."""
    for hierarchy in all_hierarchy_mounts():
        try:
            (hierarchy.mount_point / CTR_NAMESPACE).rmdir()
        except FileNotFoundError:
            pass


def stop_everything_left(fargo: BenchFargo, arns: list[str]) -> None:
    """StopTask anything the run left RUNNING (a failure midway), and wait for it, boundedly."""
    if not arns or fargo.proc is None or fargo.proc.poll() is not None:
        return
    ecs = EcsJson(fargo.port)
    try:
        left = [t["taskArn"] for t in describe(ecs, arns) if t["lastStatus"] != "STOPPED"]
        if left:
            print(f"cleaning up: stopping {len(left)} tasks", file=sys.stderr)
            stop_all(lambda: EcsJson(fargo.port), left)
            wait_for(ecs, {arn: Launch(arn, 0.0) for arn in left}, "STOPPED", 0.1, 60)
    except Exception as e:  # noqa: BLE001 - BenchFargo.close() kills what is left in containerd anyway
        print(f"cleaning up: {e}", file=sys.stderr)


def ms(values: list[float], p: float) -> float:
    return percentile(values, p) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sequential", type=int, default=20, help="tasks started one after another (%(default)s)")
    parser.add_argument("--concurrent", type=int, default=100, help="tasks started at once, 10 per RunTask (%(default)s)")
    parser.add_argument("--poll-ms", type=float, default=5,
                        help="DescribeTasks poll interval of the sequential runs; each poll costs Fargo about 0.7 ms "
                             "of CPU, which on a small host competes with the start it watches (on 2 CPUs, 5 ms "
                             "polls made the server's own start 2.5-3 ms slower than 20 ms polls) (%(default)s)")
    parser.add_argument("--batches", type=int, default=3,
                        help="concurrent batches, each followed by the baseline's; the medians are compared (%(default)s)")
    parser.add_argument("--batch-poll-ms", type=float, default=50, help="DescribeTasks poll interval for the batch")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fargo-bench-image-"))
    launched: list[str] = []
    try:
        tar = build_test_image(work)
        with BenchFargo() as fargo:
            fargo.import_image(tar)
            sock = fargo.containerd_socket
            subprocess.run(ctr(sock, "images", "import", str(tar)), check=True, capture_output=True)
            ecs = fargo.client()
            ecs.create_cluster(clusterName="default")
            ecs.register_task_definition(
                family=FAMILY, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
                containerDefinitions=[{"name": "app", "image": IMAGE, "essential": True, "command": TASK_COMMAND,
                                      "stopTimeout": STOP_TIMEOUT_S}])
            # (the host's CPUs bound a start: Fargo, containerd, the shim, runc and this client share them)
            print(f"Task start: Fargo pid {fargo.pid()} on {fargo.endpoint}; containerd {sock}; "
                  f"{len(os.sched_getaffinity(0))} CPUs")
            try:
                # One untimed start of each kind warms the image's snapshots, the subnet bridges and ctr's caches.
                sequential_fargo(fargo, 1, [], args.poll_ms / 1000)
                sequential_ctr_run_rm(sock, 1)
                sequential_ctr_run_detached(sock, 1)

                # Interleaved, one of each kind in turn: the host's speed drifts (a shared VM), and a ratio of
                # runs minutes apart measures the drift as much as Fargo.
                stop_times: list[float] = []
                seq: list[Launch] = []
                ctr_rm: list[float] = []
                ctr_d: list[float] = []
                ctr_ds: list[float] = []
                for i in range(args.sequential):
                    seq += sequential_fargo(fargo, 1, stop_times, args.poll_ms / 1000)
                    ctr_rm += sequential_ctr_run_rm(sock, 1, first=i)
                    ctr_d += sequential_ctr_run_detached(sock, 1, first=i)
                    ctr_ds += sequential_ctr_run_detached(sock, 1, seccomp=True, first=i)
                batches: list[BatchResult] = []
                ctr_batches: list[float] = []
                for b in range(args.batches if args.concurrent else 0):
                    batches.append(concurrent_fargo(fargo, args.concurrent, args.batch_poll_ms / 1000, launched))
                    ctr_batches.append(concurrent_ctr_run_detached(sock, args.concurrent, batch=b))
                if batches:  # the median batch of each (by time until all RUNNING)
                    batch = sorted(batches, key=lambda r: r.all_running_s)[len(batches) // 2]
                    ctr_batch = sorted(ctr_batches)[len(ctr_batches) // 2]
                else:
                    batch, ctr_batch = BatchResult([], float("nan"), float("nan")), float("nan")
            finally:
                stop_everything_left(fargo, launched)
    finally:
        subprocess.run(["rm", "-rf", str(work)])
        remove_ctr_cgroup_parent()

    fargo_seq = [launch.latency for launch in seq]
    server_seq = [launch.server_latency for launch in seq if launch.server_latency is not None]
    batch_lat = [launch.latency for launch in batch.launches]
    batch_server = [launch.server_latency for launch in batch.launches if launch.server_latency is not None]
    n, c = args.sequential, args.concurrent
    print()
    print(f"Sequential ({n} each; Fargo tasks are stopped and STOPPED before the next; polling every "
          f"{args.poll_ms:.0f} ms)")
    print_table(["what", "p50 ms", "p95 ms", "min ms", "max ms"], [
        ("Fargo RunTask -> RUNNING (client)", ms(fargo_seq, 50), ms(fargo_seq, 95), ms(fargo_seq, 0), ms(fargo_seq, 100)),
        ("Fargo createdAt -> startedAt (server)", ms(server_seq, 50), ms(server_seq, 95), ms(server_seq, 0),
         ms(server_seq, 100)),
        ("Fargo StopTask -> STOPPED", ms(stop_times, 50), ms(stop_times, 95), ms(stop_times, 0), ms(stop_times, 100)),
        ("ctr run --rm ... true", ms(ctr_rm, 50), ms(ctr_rm, 95), ms(ctr_rm, 0), ms(ctr_rm, 100)),
        ("ctr run -d ... sleep 3600", ms(ctr_d, 50), ms(ctr_d, 95), ms(ctr_d, 0), ms(ctr_d, 100)),
        ("ctr run -d --seccomp ... sleep 3600", ms(ctr_ds, 50), ms(ctr_ds, 95), ms(ctr_ds, 0), ms(ctr_ds, 100)),
    ])
    print()
    print(f"Concurrent ({c} tasks: {-(-c // 10)} RunTask calls of up to 10 fired at once; polling every "
          f"{args.batch_poll_ms:.0f} ms; the median of {len(batches)} batches, each followed by the baseline's)")
    if batches:
        print("  each batch, all RUNNING (s): Fargo " + ", ".join(f"{r.all_running_s:.2f}" for r in batches)
              + "; ctr run -d " + ", ".join(f"{t:.2f}" for t in ctr_batches))
    print_table(["what", "value"], [
        (f"all {c} RUNNING after (s)", batch.all_running_s),
        ("per task RunTask -> RUNNING p50 (ms)", ms(batch_lat, 50)),
        ("per task RunTask -> RUNNING p95 (ms)", ms(batch_lat, 95)),
        ("per task createdAt -> startedAt p50 (ms, server)", ms(batch_server, 50)),
        ("per task createdAt -> startedAt p95 (ms, server)", ms(batch_server, 95)),
        ("Fargo's own CPU per task, RunTask -> all RUNNING (ms)", batch.cpu_s * 1000 / max(1, len(batch.launches))),
        (f"all {c} STOPPED after StopTask (s)", batch.all_stopped_s),
        (f"baseline: {c} x ctr run -d fired at once, all running after (s)", ctr_batch),
    ])
    print()
    print("Where the time goes: lifecycle steps from each task's own timestamps (server side, ms)")
    step_rows = []
    for label, start_field, end_field in STEPS:
        s_vals = [v for v in (launch.step(start_field, end_field) for launch in seq) if v is not None]
        b_vals = [v for v in (launch.step(start_field, end_field) for launch in batch.launches) if v is not None]
        step_rows.append((label, ms(s_vals, 50), ms(s_vals, 95), ms(b_vals, 50), ms(b_vals, 95)))
    print_table(["step", "seq p50", "seq p95", f"{c} conc p50", f"{c} conc p95"], step_rows)
    print()
    seq_ratio_d = percentile(fargo_seq, 50) / percentile(ctr_d, 50)
    batch_ratio = batch.all_running_s / ctr_batch
    print(f"Ratios (Fargo p50 / ctr p50; targets: sequential <= {SEQUENTIAL_TARGET}x `ctr run -d`, {c} concurrent "
          f"all RUNNING <= {CONCURRENT_TARGET}x {c} x `ctr run -d`)")
    print_table(["ratio", "value", "target met"], [
        ("Fargo RunTask->RUNNING / ctr run -d", seq_ratio_d, "yes" if seq_ratio_d <= SEQUENTIAL_TARGET else "NO"),
        ("Fargo RunTask->RUNNING / ctr run --rm", percentile(fargo_seq, 50) / percentile(ctr_rm, 50), ""),
        ("Fargo RunTask->RUNNING / ctr run -d --seccomp", percentile(fargo_seq, 50) / percentile(ctr_ds, 50), ""),
        # The server's own timestamps leave out the observer: a client polling every few ms competes with
        # containerd for the host's CPUs, which `ctr run -d` (nobody polling) does not have to. They also leave
        # out the RunTask call before createdAt and the RUNNING report after startedAt (a few ms): not the target.
        ("Fargo createdAt->startedAt (server) / ctr run -d",
         percentile(server_seq, 50) / percentile(ctr_d, 50), ""),
        (f"Fargo {c} concurrent all RUNNING / {c} x ctr run -d", batch_ratio,
         "yes" if batch_ratio <= CONCURRENT_TARGET else "NO"),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
