"""Start of a task whose image is cached from Fargo's own ECR, against the same task from an imported image.

The busybox image is imported (`fargo.local/busybox:latest`) and also pushed with skopeo to a repository of
Fargo's ECR (token of GetAuthorizationToken). After one warm-up task of each, ~20 sequential tasks of each
(stopped before the next) are timed RunTask -> RUNNING on the same `fargo up`, alternating which goes first.
Usage (root, repo root): .venv/bin/python bench/cached_start.py [--sequential 20]
"""
from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fargo_process import SUBNETS, BenchFargo, build_test_image, percentile, print_table  # noqa: E402
from task_start import (STEPS, STOP_TIMEOUT_S, TASK_COMMAND, TASK_TIMEOUT_S, EcsJson, Launch,  # noqa: E402
                        stop_everything_left, wait_for)

IMPORTED = "fargo.local/busybox:latest"
REPOSITORY = "bench/busybox"
ROLE = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"
RATIO_TARGET = 1.1  # cached ECR image / imported image, p50 RunTask -> RUNNING


def push_to_ecr(fargo: BenchFargo, tar: Path, work: Path) -> str:
    """Create the repository and push the image there with skopeo; returns `repositoryUri:latest`."""
    ecr = fargo.client("ecr")
    uri = ecr.create_repository(repositoryName=REPOSITORY)["repository"]["repositoryUri"]
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    env = dict(os.environ, REGISTRY_AUTH_FILE=str(work / "auth.json"), TMPDIR=str(work))
    subprocess.run(["skopeo", "login", "--tls-verify=false", "-u", user, "--password-stdin", uri.split("/")[0]],
                   input=password, text=True, check=True, capture_output=True, env=env)
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci-archive:{tar}",
                    f"docker://{uri}:latest"], check=True, capture_output=True, env=env)
    return f"{uri}:latest"


def register(fargo: BenchFargo, family: str, image: str) -> None:
    fargo.client().register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        executionRoleArn=ROLE,
        containerDefinitions=[{"name": "app", "image": image, "essential": True, "command": TASK_COMMAND,
                               "stopTimeout": STOP_TIMEOUT_S}])


def start_and_stop(ecs: EcsJson, family: str, launched: list[str], poll_s: float) -> Launch:
    """One task, RunTask -> RUNNING timed; then stopped and STOPPED before returning."""
    sent = time.perf_counter()
    reply = ecs("RunTask", {"cluster": "default", "taskDefinition": family, "launchType": "FARGATE", "count": 1,
                            "networkConfiguration": {"awsvpcConfiguration": {"subnets": SUBNETS}}})
    if reply.get("failures") or not reply.get("tasks"):
        raise RuntimeError(f"RunTask {family} failed: {reply.get('failures')}")
    arn = reply["tasks"][0]["taskArn"]
    launched.append(arn)
    launch = Launch(arn, sent)
    launch.running_at = wait_for(ecs, {arn: launch}, "RUNNING", poll_s, TASK_TIMEOUT_S)[arn]
    ecs("StopTask", {"cluster": "default", "task": arn, "reason": "benchmark done"})
    wait_for(ecs, {arn: Launch(arn, 0.0)}, "STOPPED", poll_s, TASK_TIMEOUT_S)
    return launch


def ms(values: list[float], p: float) -> float:
    return percentile(values, p) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=20, help="tasks of each image, one at a time (%(default)s)")
    parser.add_argument("--poll-ms", type=float, default=5, help="DescribeTasks poll interval (%(default)s)")
    args = parser.parse_args()
    poll_s = args.poll_ms / 1000

    work = Path(tempfile.mkdtemp(prefix="fargo-bench-cached-"))
    launched: list[str] = []
    runs: dict[str, list[Launch]] = {"imported": [], "ecr": []}
    try:
        tar = build_test_image(work)
        with BenchFargo() as fargo:
            fargo.client().create_cluster(clusterName="default")
            fargo.import_image(tar)
            ecr_image = push_to_ecr(fargo, tar, work)
            families = {"imported": "bench-imported", "ecr": "bench-ecr-cached"}
            register(fargo, families["imported"], IMPORTED)
            register(fargo, families["ecr"], ecr_image)
            print(f"Cached start: Fargo pid {fargo.pid()} on {fargo.endpoint}; ECR image {ecr_image}")
            ecs = EcsJson(fargo.port)
            try:
                # Warm-up: the ECR task pulls the image (cold); the imported one warms snapshots and bridges.
                for kind in ("ecr", "imported"):
                    start_and_stop(ecs, families[kind], launched, poll_s)
                for i in range(args.sequential):
                    for kind in (("imported", "ecr") if i % 2 == 0 else ("ecr", "imported")):
                        runs[kind].append(start_and_stop(ecs, families[kind], launched, poll_s))
            finally:
                stop_everything_left(fargo, launched)
    finally:
        subprocess.run(["rm", "-rf", str(work)])

    print()
    print(f"RunTask -> RUNNING, {args.sequential} sequential tasks of each (each STOPPED before the next; "
          f"polling every {args.poll_ms:.0f} ms)")
    latencies = {kind: [launch.latency for launch in launches] for kind, launches in runs.items()}
    print_table(["image", "p50 ms", "p95 ms", "min ms", "max ms"], [
        (name, ms(latencies[kind], 50), ms(latencies[kind], 95), ms(latencies[kind], 0), ms(latencies[kind], 100))
        for kind, name in (("imported", f"imported {IMPORTED}"), ("ecr", "cached in Fargo's ECR"))])
    print()
    print("Where the time goes: lifecycle steps from each task's own timestamps (server side, ms)")
    rows = []
    for label, start_field, end_field in STEPS:
        values = {kind: [v for v in (launch.step(start_field, end_field) for launch in launches) if v is not None]
                  for kind, launches in runs.items()}
        rows.append((label, ms(values["imported"], 50), ms(values["imported"], 95), ms(values["ecr"], 50),
                     ms(values["ecr"], 95)))
    print_table(["step", "imported p50", "imported p95", "ECR p50", "ECR p95"], rows)
    print()
    ratio = percentile(latencies["ecr"], 50) / percentile(latencies["imported"], 50)
    print(f"ratio cached ECR / imported (p50 RunTask -> RUNNING): {ratio:.2f}  (target <= {RATIO_TARGET}; "
          f"{'met' if ratio <= RATIO_TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
