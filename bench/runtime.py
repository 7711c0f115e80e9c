"""Runtime client speed: fargo.runtime against `ctr` on one private containerd (start of `true`, exec, exec
timeout, 100 containers at once). These measurements were timing assertions in tests/integration/test_runtime.py.
Usage (root, repo root): .venv/bin/python bench/runtime.py [--rounds 20] [--concurrent 100]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fargo_process import percentile, print_table  # noqa: E402

from fargo.agent.host_scan import mounts_under, unmount_all  # noqa: E402
from fargo.agent.task_cgroup import all_hierarchy_mounts  # noqa: E402
from fargo.runtime.client import Containerd  # noqa: E402
from fargo.runtime.containerd_daemon import ContainerdPaths, ensure_containerd, stop_containerd  # noqa: E402
from fargo.runtime.errors import ExecTimedOut  # noqa: E402
from fargo.runtime.oci_spec import ContainerRuntimeSpec, build_oci_spec  # noqa: E402
from fargo.runtime.test_image import write_oci_archive  # noqa: E402

NAMESPACE = "bench"
EXEC_TIMEOUT_S = 0.5
# The targets the tests used to assert.
START_RATIO_TARGET = 1.5  # fargo.runtime create->start->exit / `ctr run --rm`
EXEC_P50_TARGET_S = 0.5
EXEC_TIMEOUT_TARGET_S = 3.0
CONCURRENT_TARGET_S = 20.0


class Bench:
    """A private containerd with the busybox image, a client, and where containers put cgroups and output."""

    def __init__(self, work: Path, client: Containerd, paths: ContainerdPaths, image: str) -> None:
        self.work, self.client, self.paths, self.image = work, client, paths, image
        self.cgroup_parent = f"/fargo-bench-{secrets.token_hex(4)}"

    def spec(self, cid: str, *args: str) -> dict:
        return build_oci_spec(ContainerRuntimeSpec(args=list(args), cgroups_path=f"{self.cgroup_parent}/{cid}")).spec

    async def run(self, cid: str, *args: str) -> int:
        """create, start, wait, delete; the exit code."""
        out = self.work / f"{cid}.out"
        out.touch()
        try:
            await self.client.create_container(cid, self.image, self.spec(cid, *args))
            await self.client.start_task(cid, out, out)
            return (await self.client.wait(cid)).code
        finally:
            await remove(self.client, cid)

    def ctr(self, *args: str) -> list[str]:
        return ["ctr", "-a", str(self.paths.socket), "-n", NAMESPACE, *args]

    def ctr_run_rm(self, cid: str, *args: str) -> list[str]:
        # our cgroup parent, so that ctr leaves no /bench directory in the hierarchies
        return self.ctr("run", "--rm", "--runc-root", str(self.paths.runc_root), "--cgroup",
                        f"{self.cgroup_parent}/{cid}", self.image, cid, *args)


@dataclass
class Results:
    start_ours: list[float]
    start_ctr: list[float]
    exec_ours: list[float]
    exec_ctr: list[float]
    exec_timeouts: list[float]
    concurrent_ours: float
    concurrent_ctr: float


async def remove(client: Containerd, cid: str) -> None:
    info = await client.task_info(cid)
    if info is not None and info.status != "stopped":
        await client.kill(cid, signal.SIGKILL, all=True)
        await client.wait(cid)
    await client.delete_task(cid)
    await client.delete_container(cid)


async def start_of_true(bench: Bench, rounds: int) -> tuple[list[float], list[float]]:
    """fargo.runtime create->start->exit->delete of `true`, and `ctr run --rm` of the same, `rounds` each."""
    ours, theirs = [], []
    for n in range(rounds):
        started = time.perf_counter()
        await bench.run(f"true-{n}", "true")
        ours.append(time.perf_counter() - started)
    for n in range(rounds):
        started = time.perf_counter()
        await asyncio.to_thread(subprocess.run, bench.ctr_run_rm(f"ctr-true-{n}", "true"), check=True,
                                capture_output=True)
        theirs.append(time.perf_counter() - started)
    return ours, theirs


async def execs(bench: Bench, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """In one sleeping container: exec of `sh -c true` (ours, ctr's), and how long a 0.5 s exec timeout takes."""
    cid = "exec-sleeper"
    out = bench.work / f"{cid}.out"
    out.touch()
    await bench.client.create_container(cid, bench.image, bench.spec(cid, "sleep", "3600"))
    try:
        await bench.client.start_task(cid, out, out)
        ours, theirs, timeouts = [], [], []
        for n in range(rounds):
            started = time.perf_counter()
            code = await bench.client.exec_process(cid, f"lat-{n}", ["/bin/sh", "-c", "true"], timeout=10)
            ours.append(time.perf_counter() - started)
            if code != 0:
                raise RuntimeError(f"exec exited {code}")
        for n in range(rounds):
            started = time.perf_counter()
            await asyncio.to_thread(subprocess.run, bench.ctr("tasks", "exec", "--exec-id", f"ctr-{n}", cid,
                                                              "/bin/sh", "-c", "true"), check=True, capture_output=True)
            theirs.append(time.perf_counter() - started)
        for n in range(min(rounds, 5)):
            started = time.perf_counter()
            try:
                await bench.client.exec_process(cid, f"timeout-{n}", ["sleep", "3600"], timeout=EXEC_TIMEOUT_S)
                raise RuntimeError("exec of sleep 3600 returned instead of timing out")
            except ExecTimedOut:
                timeouts.append(time.perf_counter() - started)
        return ours, theirs, timeouts
    finally:
        await remove(bench.client, cid)


async def concurrent(bench: Bench, n: int) -> tuple[float, float]:
    """`n` containers of `sleep 1` at once through one channel, and `n` `ctr run --rm` at once: seconds until all end."""
    started = time.perf_counter()
    codes = await asyncio.gather(*[bench.run(f"conc-{i}", "sh", "-c", "sleep 1") for i in range(n)])
    ours = time.perf_counter() - started
    if set(codes) != {0}:
        raise RuntimeError(f"exit codes {sorted(set(codes))}")
    started = time.perf_counter()
    procs = [subprocess.Popen(bench.ctr_run_rm(f"ctr-conc-{i}", "sh", "-c", "sleep 1"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in range(n)]
    failed = sum(1 for p in procs if p.wait(180) != 0)
    theirs = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{failed} of {n} ctr run --rm failed")
    return ours, theirs


async def remove_all(bench: Bench) -> None:
    for container in await bench.client.list_containers():
        try:
            await remove(bench.client, container.id)
        except Exception as e:  # noqa: BLE001 - keep removing the rest; stop_containerd follows anyway
            print(f"cleaning up {container.id}: {e}", file=sys.stderr)


def remove_cgroup_parent(parent: str) -> None:
    for hierarchy in all_hierarchy_mounts():
        top = hierarchy.mount_point / parent.lstrip("/")
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError as e:
                print(f"cleaning up: {dirpath}: {e.strerror}", file=sys.stderr)


async def measure(work: Path, args: argparse.Namespace) -> Results:
    paths = ContainerdPaths.for_data_dir(work / "ctrd")
    address = ensure_containerd(work / "ctrd", None)
    client = await Containerd.connect(address, NAMESPACE, runc_root=paths.runc_root, state_dir=paths.state)
    tar = work / "busybox.tar"
    built = write_oci_archive(tar)
    await client.import_image(tar)
    bench = Bench(work, client, paths, built.name)
    try:
        await bench.run("warm-up", "true")  # unpacks the snapshot once
        start = await start_of_true(bench, args.rounds)
        exec_times = await execs(bench, args.rounds)
        both = await concurrent(bench, args.concurrent)
        return Results(*start, *exec_times, *both)
    finally:
        try:
            await remove_all(bench)
        finally:
            await client.close()
            remove_cgroup_parent(bench.cgroup_parent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="starts and execs timed one by one (%(default)s)")
    parser.add_argument("--concurrent", type=int, default=100, help="containers started at once (%(default)s)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fargo-bench-runtime-"))
    try:
        results = asyncio.run(measure(work, args))
    finally:
        stop_containerd(work / "ctrd")
        unmount_all(mounts_under(work))
        shutil.rmtree(work, ignore_errors=True)

    ours, theirs, exec_ours, exec_ctr = results.start_ours, results.start_ctr, results.exec_ours, results.exec_ctr
    timeouts, conc_ours, conc_ctr = results.exec_timeouts, results.concurrent_ours, results.concurrent_ctr
    ms = 1000.0
    print(f"\nRuntime client vs ctr on one private containerd ({args.rounds} rounds each)")
    print_table(["what", "p50 ms", "p95 ms", "max ms"], [
        ("fargo.runtime create->start->exit->delete `true`", percentile(ours, 50) * ms, percentile(ours, 95) * ms,
         max(ours) * ms),
        ("ctr run --rm `true` (baseline)", percentile(theirs, 50) * ms, percentile(theirs, 95) * ms, max(theirs) * ms),
        ("fargo.runtime exec `sh -c true`", percentile(exec_ours, 50) * ms, percentile(exec_ours, 95) * ms,
         max(exec_ours) * ms),
        ("ctr tasks exec `sh -c true` (baseline)", percentile(exec_ctr, 50) * ms, percentile(exec_ctr, 95) * ms,
         max(exec_ctr) * ms),
        (f"exec `sleep 3600` with a {EXEC_TIMEOUT_S} s timeout, until ExecTimedOut", percentile(timeouts, 50) * ms,
         percentile(timeouts, 95) * ms, max(timeouts) * ms),
    ])
    print()
    start_ratio = percentile(ours, 50) / percentile(theirs, 50)
    print("Ratios and targets")
    print_table(["ratio", "value", "target", "met"], [
        ("start of `true`: fargo.runtime p50 / ctr run --rm p50", start_ratio, START_RATIO_TARGET,
         "yes" if start_ratio <= START_RATIO_TARGET else "NO"),
        ("exec: fargo.runtime p50 / ctr tasks exec p50", percentile(exec_ours, 50) / percentile(exec_ctr, 50), "", ""),
        ("exec p50 (s)", percentile(exec_ours, 50), EXEC_P50_TARGET_S,
         "yes" if percentile(exec_ours, 50) < EXEC_P50_TARGET_S else "NO"),
        ("exec timeout: max seconds until ExecTimedOut / timeout", max(timeouts) / EXEC_TIMEOUT_S, "", ""),
        ("exec timeout: max seconds until ExecTimedOut", max(timeouts), EXEC_TIMEOUT_TARGET_S,
         "yes" if max(timeouts) < EXEC_TIMEOUT_TARGET_S else "NO"),
        (f"{args.concurrent} containers of `sleep 1` at once, all done (s)", conc_ours, CONCURRENT_TARGET_S,
         "yes" if conc_ours < CONCURRENT_TARGET_S else "NO"),
        (f"... / {args.concurrent} x ctr run --rm at once ({conc_ctr:.1f} s)", conc_ours / conc_ctr, "", ""),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
