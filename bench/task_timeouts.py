"""How soon Fargo acts on a task's timers: a dependency not met within startTimeout, and StopTask of a task whose
init process (tini) forwards SIGTERM. Both were timing assertions in tests/e2e/test_task_health.py.
Usage (root, repo root): .venv/bin/python bench/task_timeouts.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fargo_process import BenchFargo, build_test_image, percentile, print_table  # noqa: E402
from task_start import IMAGE, TASK_COMMAND, EcsJson, Launch, run_params, stop_everything_left, wait_for  # noqa: E402

START_TIMEOUT_S = 2
STOP_TIMEOUT_S = 20
# The bounds the tests asserted, in seconds.
START_TIMEOUT_TARGET_S = 15.0
INIT_STOP_TARGET_S = 10.0
POLL_S = 0.02
TIMEOUT_S = 60.0

FAMILIES: dict[str, list[dict]] = {
    # `app` waits for `slow` to COMPLETE, which it never does: the task must stop once startTimeout has passed.
    "bench-impatient": [
        {"name": "slow", "essential": False, "command": ["sleep", "3600"], "stopTimeout": 2},
        {"name": "app", "command": ["echo", "never printed"], "startTimeout": START_TIMEOUT_S,
         "dependsOn": [{"containerName": "slow", "condition": "COMPLETE"}]},
    ],
    # tini passes SIGTERM on to sleep, so StopTask should not wait for the 20 s stopTimeout.
    "bench-with-init": [
        {"name": "app", "command": ["sh", "-c", "exec sleep 3600"], "linuxParameters": {"initProcessEnabled": True},
         "stopTimeout": STOP_TIMEOUT_S},
    ],
    # The baseline for the above: no init, the shell traps SIGTERM itself.
    "bench-trapping": [{"name": "app", "command": TASK_COMMAND, "stopTimeout": STOP_TIMEOUT_S}],
}


def run_task(ecs: EcsJson, family: str, launched: list[str]) -> Launch:
    params = {**run_params(1), "taskDefinition": family}
    sent = time.perf_counter()
    arn = ecs("RunTask", params)["tasks"][0]["taskArn"]
    launched.append(arn)
    return Launch(arn, sent)


def start_timeouts(ecs: EcsJson, rounds: int, launched: list[str]) -> list[float]:
    """Seconds from RunTask to STOPPED for the task whose dependency is never met."""
    times = []
    for _ in range(rounds):
        launch = run_task(ecs, "bench-impatient", launched)
        stopped_at = wait_for(ecs, {launch.arn: launch}, "STOPPED", POLL_S, TIMEOUT_S)[launch.arn]
        if launch.server.get("stopCode") != "TaskFailedToStart":
            raise RuntimeError(f"expected TaskFailedToStart, got {launch.server.get('stopCode')}: "
                               f"{launch.server.get('stoppedReason')}")
        times.append(stopped_at - launch.sent_at)
    return times


def stops(ecs: EcsJson, family: str, rounds: int, launched: list[str]) -> list[float]:
    """Seconds from StopTask to STOPPED for a RUNNING task of `family`; its container must exit by SIGTERM (143)
    or by its trap (0), never by SIGKILL."""
    times = []
    for _ in range(rounds):
        launch = run_task(ecs, family, launched)
        wait_for(ecs, {launch.arn: launch}, "RUNNING", POLL_S, TIMEOUT_S)
        time.sleep(0.3)  # let the shell set its trap / tini start its child
        stopping = Launch(launch.arn, time.perf_counter())
        ecs("StopTask", {"cluster": "default", "task": launch.arn, "reason": "benchmark"})
        stopped_at = wait_for(ecs, {launch.arn: stopping}, "STOPPED", POLL_S, TIMEOUT_S)[launch.arn]
        code = stopping.server["containers"][0].get("exitCode")
        if code not in (0, 143):
            raise RuntimeError(f"{family}: container exited {code}, not by SIGTERM")
        times.append(stopped_at - stopping.sent_at)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="tasks of each kind, one after another (%(default)s)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fargo-bench-image-"))
    launched: list[str] = []
    try:
        tar = build_test_image(work)
        with BenchFargo() as fargo:
            fargo.import_image(tar)
            boto = fargo.client()
            boto.create_cluster(clusterName="default")
            for family, containers in FAMILIES.items():
                boto.register_task_definition(
                    family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                    memory="512", containerDefinitions=[{"image": IMAGE, "essential": True, **c} for c in containers])
            ecs = EcsJson(fargo.port)
            try:
                waited = start_timeouts(ecs, args.rounds, launched)
                init_stops = stops(ecs, "bench-with-init", args.rounds, launched)
                trap_stops = stops(ecs, "bench-trapping", args.rounds, launched)
            finally:
                stop_everything_left(fargo, launched)
    finally:
        subprocess.run(["rm", "-rf", str(work)])

    print(f"\nTask timers ({args.rounds} tasks of each kind, one after another; polling every {POLL_S * 1000:.0f} ms)")
    print_table(["what", "p50 s", "max s"], [
        (f"dependency not met, startTimeout {START_TIMEOUT_S} s: RunTask -> STOPPED", percentile(waited, 50),
         max(waited)),
        (f"initProcessEnabled, stopTimeout {STOP_TIMEOUT_S} s: StopTask -> STOPPED", percentile(init_stops, 50),
         max(init_stops)),
        ("no init, shell traps TERM (baseline): StopTask -> STOPPED", percentile(trap_stops, 50), max(trap_stops)),
    ])
    print()
    print("Ratios and targets")
    print_table(["ratio", "value", "target", "met"], [
        ("startTimeout: max RunTask -> STOPPED / startTimeout", max(waited) / START_TIMEOUT_S, "", ""),
        ("startTimeout: max RunTask -> STOPPED (s)", max(waited), START_TIMEOUT_TARGET_S,
         "yes" if max(waited) < START_TIMEOUT_TARGET_S else "NO"),
        ("init stop p50 / trapping stop p50", percentile(init_stops, 50) / percentile(trap_stops, 50), "", ""),
        ("init: max StopTask -> STOPPED (s)", max(init_stops), INIT_STOP_TARGET_S,
         "yes" if max(init_stops) < INIT_STOP_TARGET_S else "NO"),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
