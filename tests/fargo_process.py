"""A `fargo up` subprocess for tests and benchmarks: free port, own data dir, wait for health, and a
clean-up that leaves nothing of it on the host even when the run failed half way (tasks, shims, task
ENIs and cgroups, mounts, the data dir).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FARGO = [sys.executable, "-m", "fargo.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FargoProcess:
    def __init__(self, data_dir: Path, port: int | None = None, extra_args: list[str] | None = None,
                 log_name: str = "fargo-test.log") -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra_args = list(extra_args or [])
        self.log_path = data_dir / log_name
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> FargoProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                FARGO + ["up", "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}",
                         *self.extra_args], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fargo up exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/_fargo/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"fargo up did not become healthy in {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log_tail(self, n: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")


def discard_data_dir(data_dir: Path, task_ids: list[str] | None = None) -> None:
    """Remove every trace of the Fargo that ran on `data_dir` (which must no longer be running); `task_ids`:
    the tasks it ran when its store is not the SQLite file there (PostgreSQL)."""
    from fargo.runtime.containerd_daemon import ContainerdPaths, stop_containerd

    try:
        task_ids = _task_ids(data_dir) + list(task_ids or [])
        _kill_containers(ContainerdPaths.for_data_dir(data_dir).socket)
        stop_containerd(data_dir)
        _kill_shims_of(data_dir)
        _remove_task_host_state(task_ids)
    finally:
        _unmount_under(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def _task_ids(data_dir: Path) -> list[str]:
    """The tasks this Fargo ran, from its SQLite store (their ENIs and cgroups are host-wide)."""
    db = data_dir / "fargo.db"
    if not db.exists():
        return []
    import sqlite3

    with sqlite3.connect(db) as conn:
        try:
            return [row[0] for row in conn.execute("SELECT task_id FROM tasks")]
        except sqlite3.Error:
            return []


def _remove_task_host_state(task_ids: list[str]) -> None:
    from fargo.agent import host_claims
    from fargo.agent.task_cgroup import remove_task_cgroup
    from fargo.network.netns import list_netns_names
    from fargo.network.task_eni import delete_task_eni
    from fargo.network.vpc_router import VpcRouterError, delete_vpc_router, list_vpc_routers

    names = list_netns_names()
    prefixes: set[str] = set()
    for task_id in task_ids:
        # the task's netns is `<prefix>-<task id>`, whatever prefix its Fargo ran with
        for prefix in {n[: -len(task_id) - 1] for n in names if n.endswith("-" + task_id)} or {"fg"}:
            delete_task_eni(task_id, prefix=prefix)
            prefixes.add(prefix)
        try:
            remove_task_cgroup(task_id)
        except OSError as e:  # the test that made it says so; clean-up goes on with the rest
            print(f"cannot remove the cgroups of task {task_id}: {e}", file=sys.stderr)
        host_claims.release(task_id)
    for prefix in prefixes - {"fg"}:  # (the next `fargo up` of the default prefix removes its own)
        for vpc_id in list_vpc_routers(prefix):
            try:
                delete_vpc_router(vpc_id, prefix=prefix, if_unused=True)
            except VpcRouterError as e:
                print(f"cannot remove the router of {vpc_id} ({prefix}): {e}", file=sys.stderr)


def _kill_containers(sock: Path) -> None:
    """SIGKILL and delete every task and container in every namespace of this (private) containerd."""
    if not sock.exists():
        return
    ctr = ["ctr", "-a", str(sock)]
    for ns in _ctr_lines(ctr + ["namespaces", "ls", "-q"]):
        for task in _ctr_lines(ctr + ["-n", ns, "tasks", "ls", "-q"]):
            subprocess.run(ctr + ["-n", ns, "tasks", "kill", "-a", "-s", "SIGKILL", task], capture_output=True,
                           timeout=10)
        deadline = time.monotonic() + 10
        while (tasks := _ctr_lines(ctr + ["-n", ns, "tasks", "ls", "-q"])) and time.monotonic() < deadline:
            for task in tasks:
                subprocess.run(ctr + ["-n", ns, "tasks", "delete", "-f", task], capture_output=True, timeout=10)
            time.sleep(0.1)
        for container in _ctr_lines(ctr + ["-n", ns, "containers", "ls", "-q"]):
            subprocess.run(ctr + ["-n", ns, "containers", "delete", container], capture_output=True, timeout=10)


def _ctr_lines(cmd: list[str]) -> list[str]:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except subprocess.TimeoutExpired:
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _kill_shims_of(data_dir: Path) -> None:
    """containerd-shim processes whose command line names this data dir (they outlive containerd by design)."""
    needle = str(data_dir).encode()
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            cmdline = (proc_dir / "cmdline").read_bytes()
        except OSError:
            continue
        if b"containerd-shim" in cmdline and needle in cmdline:
            try:
                os.kill(int(proc_dir.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _unmount_under(data_dir: Path) -> None:
    """Lazy-unmount anything still mounted below the data dir (overlay rootfs of containers)."""
    prefix = str(data_dir.resolve())
    try:
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return
    for target in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)
