"""Service scheduler against RunTask on a throw-away `fargo up`: a service scaled from 0 to 100 tasks until botocore's
`services_stable` holds, against 100 tasks from 10 RunTask(count=10) calls fired at once until all RUNNING, in the
same run (rounds alternate which goes first); then a rolling update of 50 tasks to a new revision (maximumPercent
200) until stable. Usage (root, repo root):
.venv/bin/python bench/services.py [--tasks 100] [--rolling 50] [--rounds 2] [--poll-ms 200] [--healthy-after-s 40]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fargo_process import SUBNETS, BenchFargo, build_test_image, print_table  # noqa: E402
from task_start import STOP_TIMEOUT_S, TASK_COMMAND, EcsJson, Launch, describe, stop_all, wait_for  # noqa: E402

IMAGE = "fargo.local/busybox:latest"
FAMILY = "bench-services"
SERVICE = "bench"
CLUSTER = "default"
# Its own host objects (fb-..., fargo_fb): test runs on this host use fs, fg, fl.
NETWORK_PREFIX = "fb"
RATIO_TARGET = 1.2
PHASE_TIMEOUT_S = 300.0
NETWORK = {"awsvpcConfiguration": {"subnets": SUBNETS}}


class Waiter:
    """One of botocore's ECS waiters, judged by its own acceptors (first match wins, as botocore's Waiter does)."""

    def __init__(self, name: str) -> None:
        import botocore.session

        self.name = name
        self.acceptors = botocore.session.get_session().get_waiter_model("ecs").get_waiter(name).acceptors

    def state(self, response: dict) -> str | None:
        for acceptor in self.acceptors:
            if acceptor.matcher_func(response):
                return acceptor.state
        return None


SERVICES_STABLE = Waiter("ServicesStable")
SERVICES_INACTIVE = Waiter("ServicesInactive")


def describe_service(ecs: EcsJson) -> dict:
    return ecs("DescribeServices", {"cluster": CLUSTER, "services": [SERVICE]})


def wait_service(ecs: EcsJson, waiter: Waiter, poll_s: float,
                 watch: Callable[[dict, float], None] = lambda _s, _t: None) -> float:
    """Poll DescribeServices until the waiter succeeds; perf_counter of the first reply that did. `watch` sees
    every reply's service and its time."""
    deadline = time.perf_counter() + PHASE_TIMEOUT_S
    while True:
        reply = describe_service(ecs)
        now = time.perf_counter()
        if reply["services"]:
            watch(reply["services"][0], now)
        state = waiter.state(reply)
        if state == "success":
            return now
        if state == "failure":
            raise RuntimeError(f"{waiter.name} failed: {reply}")
        if now > deadline:
            raise TimeoutError(f"{waiter.name} not reached after {PHASE_TIMEOUT_S:.0f} s: {reply['services']}")
        time.sleep(poll_s)


def service_task_arns(ecs: EcsJson, desired: str = "RUNNING") -> list[str]:
    arns: list[str] = []
    token = None
    while True:
        reply = ecs("ListTasks", {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": desired,
                                  "maxResults": 100, **({"nextToken": token} if token else {})})
        arns += reply["taskArns"]
        token = reply.get("nextToken")
        if not token:
            return arns


def wait_stopped(ecs: EcsJson, arns: list[str], poll_s: float) -> None:
    if arns:
        wait_for(ecs, {arn: Launch(arn, 0.0) for arn in arns}, "STOPPED", poll_s, PHASE_TIMEOUT_S)


@dataclass
class Start:
    """One start of n tasks: the client's time to done, and the server's timestamps of its tasks."""

    seconds: float
    sent_wall: float  # time.time() just before the first call
    tasks: list[dict]

    def spread(self, field: str) -> tuple[float, float]:
        """Seconds from the first call to the first and to the last task's `field`."""
        values = [t[field] - self.sent_wall for t in self.tasks if t.get(field) is not None]
        return (min(values), max(values)) if values else (float("nan"), float("nan"))


def service_scale_out(ecs: EcsJson, n: int, poll_s: float) -> Start:
    """desiredCount 0 -> n, timed until services_stable; then back to 0, all STOPPED (untimed)."""
    sent_wall, sent = time.time(), time.perf_counter()
    ecs("UpdateService", {"cluster": CLUSTER, "service": SERVICE, "desiredCount": n})
    stable = wait_service(ecs, SERVICES_STABLE, poll_s)
    arns = service_task_arns(ecs)
    tasks = describe(ecs, arns)
    ecs("UpdateService", {"cluster": CLUSTER, "service": SERVICE, "desiredCount": 0})
    wait_service(ecs, SERVICES_STABLE, poll_s)
    wait_stopped(ecs, arns, poll_s)
    return Start(stable - sent, sent_wall, tasks)


def run_tasks_start(fargo: BenchFargo, n: int, poll_s: float, launched: list[str]) -> Start:
    """n tasks from RunTask calls of count 10 fired at once from as many threads, timed until all RUNNING (as
    bench/task_start.py's concurrent part); then all stopped and STOPPED (untimed)."""
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
            params = {"cluster": CLUSTER, "taskDefinition": f"{FAMILY}:1", "launchType": "FARGATE",
                      "count": calls[i], "networkConfiguration": NETWORK}
            replies[i] = [t["taskArn"] for t in clients[i]("RunTask", params)["tasks"]]
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    workers = [threading.Thread(target=fire, args=(i,)) for i in range(len(calls))]
    for w in workers:
        w.start()
    sent_wall, sent = time.time(), time.perf_counter()
    gate.wait()
    for w in workers:
        w.join()
    arns = [arn for reply in replies for arn in reply]
    launched.extend(arns)
    if errors:
        raise errors[0]
    launches = {arn: Launch(arn, sent) for arn in arns}
    running = wait_for(clients[0], launches, "RUNNING", poll_s, PHASE_TIMEOUT_S)
    start = Start(max(running.values()) - sent, sent_wall, [launch.server for launch in launches.values()])
    stop_all(lambda: EcsJson(fargo.port), arns)
    wait_stopped(clients[0], arns, poll_s)
    return start


@dataclass
class Rolling:
    seconds: float           # UpdateService -> services_stable
    new_running_s: float     # -> the new deployment's runningCount reached the count
    healthy_s: float         # -> the last new task counted healthy (its startedAt + the healthy delay)


def rolling_update(ecs: EcsJson, n: int, poll_s: float, healthy_after_s: float) -> Rolling:
    """n tasks of revision 1, healthy; then UpdateService to revision 2 with maximumPercent 200, until stable."""
    ecs("UpdateService", {"cluster": CLUSTER, "service": SERVICE, "desiredCount": n})
    wait_service(ecs, SERVICES_STABLE, poll_s)
    old = describe(ecs, service_task_arns(ecs))
    # a rolling update replaces healthy tasks (a task that is not healthy yet is stopped at once)
    time.sleep(max(0.0, max(t["startedAt"] for t in old) + healthy_after_s + 1 - time.time()))
    new_running: list[float] = []

    def watch(service: dict, now: float) -> None:
        primary = service["deployments"][0]
        if not new_running and primary["taskDefinition"].endswith(f"{FAMILY}:2") and primary["runningCount"] >= n:
            new_running.append(now)

    sent_wall, sent = time.time(), time.perf_counter()
    ecs("UpdateService", {"cluster": CLUSTER, "service": SERVICE, "taskDefinition": f"{FAMILY}:2",
                          "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100}})
    stable = wait_service(ecs, SERVICES_STABLE, poll_s, watch)
    new = describe(ecs, service_task_arns(ecs))
    if any(not t["taskDefinitionArn"].endswith(f"{FAMILY}:2") for t in new) or len(new) != n:
        raise RuntimeError(f"after the rolling update: {len(new)} tasks, not all of revision 2")
    healthy = max(t["startedAt"] for t in new) + healthy_after_s - sent_wall
    return Rolling(stable - sent, (new_running[0] if new_running else stable) - sent, healthy)


def delete_service(ecs: EcsJson, poll_s: float) -> None:
    arns = service_task_arns(ecs)
    ecs("DeleteService", {"cluster": CLUSTER, "service": SERVICE, "force": True})
    wait_service(ecs, SERVICES_INACTIVE, poll_s)
    wait_stopped(ecs, arns, poll_s)


def stop_everything_left(fargo: BenchFargo, poll_s: float) -> None:
    """After a failure midway: the service deleted, every task of the cluster stopped, boundedly."""
    if fargo.proc is None or fargo.proc.poll() is not None:
        return
    ecs = EcsJson(fargo.port)
    try:
        if describe_service(ecs)["services"][0]["status"] == "ACTIVE":
            ecs("DeleteService", {"cluster": CLUSTER, "service": SERVICE, "force": True})
        left = ecs("ListTasks", {"cluster": CLUSTER, "desiredStatus": "RUNNING", "maxResults": 100})["taskArns"]
        while left:
            print(f"cleaning up: stopping {len(left)} tasks", file=sys.stderr)
            stop_all(lambda: EcsJson(fargo.port), left)
            wait_stopped(ecs, left, poll_s)
            left = ecs("ListTasks", {"cluster": CLUSTER, "desiredStatus": "RUNNING", "maxResults": 100})["taskArns"]
    except Exception as e:  # noqa: BLE001 - BenchFargo.close() kills what is left in containerd anyway
        print(f"cleaning up: {e}", file=sys.stderr)


def host_leftovers(data_dir: Path) -> list[str]:
    """Namespaces, links and nft tables of our prefix, and loop devices of our data dir, still on the host."""
    def lines(*cmd: str) -> list[str]:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()

    found = [f"netns {line.split()[0]}" for line in lines("ip", "netns")
             if line.startswith((f"{NETWORK_PREFIX}-", f"{NETWORK_PREFIX}r-"))]
    found += [f"link {line.split(':')[1].strip()}" for line in lines("ip", "-o", "link")
              if line.split(":")[1].strip().startswith(NETWORK_PREFIX)]
    found += [f"nft {line}" for line in lines("nft", "list", "tables") if line.endswith(f"fargo_{NETWORK_PREFIX}")]
    found += [f"loop {line}" for line in lines("losetup", "-a") if str(data_dir) in line]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100, help="tasks of each start (%(default)s)")
    parser.add_argument("--rolling", type=int, default=50, help="tasks of the rolling update (%(default)s)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="starts of each kind, alternating which goes first (%(default)s)")
    parser.add_argument("--poll-ms", type=float, default=200, help="DescribeServices / DescribeTasks poll interval")
    parser.add_argument("--healthy-after-s", type=float, default=40,
                        help="a task without health checks counts as healthy this long after RUNNING, as on ECS "
                             "(FARGO_SERVICE_HEALTHY_AFTER_SECONDS; %(default)s)")
    args = parser.parse_args()
    poll_s = args.poll_ms / 1000
    os.environ["FARGO_SERVICE_HEALTHY_AFTER_SECONDS"] = str(args.healthy_after_s)  # inherited by `fargo up`

    work = Path(tempfile.mkdtemp(prefix="fargo-bench-image-"))
    launched: list[str] = []
    service_starts: list[Start] = []
    run_task_starts: list[Start] = []
    try:
        tar = build_test_image(work)
        with BenchFargo(extra_args=["--network-prefix", NETWORK_PREFIX]) as fargo:
            data_dir = fargo.data_dir
            fargo.import_image(tar)
            boto = fargo.client()
            boto.create_cluster(clusterName=CLUSTER)
            for revision in (1, 2):  # the same task; revision 2 for the rolling update
                boto.register_task_definition(
                    family=FAMILY, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                    memory="512", containerDefinitions=[{
                        "name": "app", "image": IMAGE, "essential": True, "command": TASK_COMMAND,
                        "stopTimeout": STOP_TIMEOUT_S, "environment": [{"name": "REVISION", "value": str(revision)}]}])
            boto.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=f"{FAMILY}:1", desiredCount=0,
                                launchType="FARGATE", networkConfiguration=NETWORK,
                                deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100})
            ecs = EcsJson(fargo.port)
            print(f"Services: Fargo pid {fargo.pid()} on {fargo.endpoint}, network prefix {NETWORK_PREFIX}")
            try:
                # One untimed task warms the image's snapshots and the VPC router.
                run_tasks_start(fargo, 1, poll_s, launched)
                for i in range(args.rounds):
                    if i % 2 == 0:
                        service_starts.append(service_scale_out(ecs, args.tasks, poll_s))
                        run_task_starts.append(run_tasks_start(fargo, args.tasks, poll_s, launched))
                    else:
                        run_task_starts.append(run_tasks_start(fargo, args.tasks, poll_s, launched))
                        service_starts.append(service_scale_out(ecs, args.tasks, poll_s))
                rolling = rolling_update(ecs, args.rolling, poll_s, args.healthy_after_s)
                delete_service(ecs, poll_s)
            finally:
                stop_everything_left(fargo, poll_s)
    finally:
        subprocess.run(["rm", "-rf", str(work)])
    left = host_leftovers(data_dir)

    n = args.tasks
    print()
    print(f"{n} tasks, {args.rounds} rounds (alternating which goes first), polling every {args.poll_ms:.0f} ms; "
          "seconds from the first call")
    rows = []
    for label, starts in ((f"service 0 -> {n}, until services_stable", service_starts),
                          (f"{-(-n // 10)} x RunTask(count=10) at once, until all RUNNING", run_task_starts)):
        for i, s in enumerate(starts):
            first_created, last_created = s.spread("createdAt")
            _, last_started = s.spread("startedAt")
            rows.append((f"{label} #{i + 1}", s.seconds, first_created, last_created, last_started))
    print_table(["what", "done (s)", "1st createdAt", "last createdAt", "last startedAt"], rows)
    ratios = [s.seconds / r.seconds for s, r in zip(service_starts, run_task_starts)]
    median = (statistics.median(s.seconds for s in service_starts)
              / statistics.median(r.seconds for r in run_task_starts))
    print()
    print(f"Rolling update of {args.rolling} tasks to a new revision (maximumPercent 200, minimumHealthyPercent 100; "
          f"a task counts as healthy {args.healthy_after_s:.0f} s after RUNNING)")
    print_table(["what", "seconds"], [
        ("UpdateService -> services_stable", rolling.seconds),
        (f"UpdateService -> {args.rolling} new tasks RUNNING", rolling.new_running_s),
        ("UpdateService -> last new task healthy", rolling.healthy_s),
        ("last new task healthy -> services_stable (old ones stopped)", rolling.seconds - rolling.healthy_s),
    ])
    print()
    print(f"Ratio (target: service scale-out <= {RATIO_TARGET}x the RunTasks of the same run)")
    print_table(["ratio", "value", "target met"], [
        *((f"round {i + 1}", r, "yes" if r <= RATIO_TARGET else "NO") for i, r in enumerate(ratios)),
        ("median service / median RunTask", median, "yes" if median <= RATIO_TARGET else "NO"),
    ])
    print()
    if left:
        print(f"Left on the host after clean-up ({len(left)}): " + ", ".join(left))
        return 1
    print("Nothing left on the host (ip netns, ip link, nft, losetup -a).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
