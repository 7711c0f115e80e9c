"""A throw-away `fargo up` for benchmarks: free port, temp data dir, private containerd, and full clean-up.

Also the small things every benchmark prints: percentiles, a fixed-width table, ratios.
Only 127.0.0.1 is ever contacted.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fargo.runtime.containerd_daemon import ContainerdPaths, stop_containerd  # noqa: E402

REGION = "us-east-1"
BENCH_CLUSTER = "default"
SUBNETS = ["subnet-fargo-default-1a", "subnet-fargo-default-1b", "subnet-fargo-default-1c"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BenchFargo:
    """`python -m fargo.cli.main up` on a free port with its own temp data dir; use as a context manager."""

    def __init__(self, prefix: str = "fargo-bench-") -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        # Subnet bridges are host-wide and named by subnet id; remove at the end only those we created.
        self._bridges_before = _fargo_bridges()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "fargo-bench.log"

    @property
    def containerd_socket(self) -> Path:
        return ContainerdPaths.for_data_dir(self.data_dir).socket

    def __enter__(self) -> BenchFargo:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self, timeout: float = 60.0) -> BenchFargo:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fargo.cli.main", "up", "--data-dir", str(self.data_dir),
                 "--listen", f"127.0.0.1:{self.port}", "--log-level", "WARNING"],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
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

    def import_image(self, tar: Path) -> None:
        subprocess.run([sys.executable, "-m", "fargo.cli.main", "image", "import", str(tar),
                        "--endpoint", self.endpoint, "--data-dir", str(self.data_dir)],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)

    def client(self, service: str = "ecs") -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="bench", aws_secret_access_key="bench")

    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def log_tail(self, n: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def close(self) -> None:
        """Stop Fargo (SIGTERM, then SIGKILL), its containerd, any task shims left, and remove the data dir."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            _kill_leftover_tasks(self.containerd_socket)
            stop_containerd(self.data_dir)
            _kill_shims_of(self.data_dir)
            _delete_new_idle_bridges(self._bridges_before)
        finally:
            _unmount_under(self.data_dir)
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _kill_leftover_tasks(sock: Path) -> None:
    """Kill and delete every task and container in every namespace of this containerd (a benchmark's own)."""
    if not sock.exists():
        return
    ctr = ["ctr", "-a", str(sock)]
    namespaces = _ctr_lines(ctr + ["namespaces", "ls", "-q"])
    for ns in namespaces:
        for task in _ctr_lines(ctr + ["-n", ns, "tasks", "ls", "-q"]):
            subprocess.run(ctr + ["-n", ns, "tasks", "kill", "-s", "SIGKILL", task], capture_output=True, timeout=10)
        deadline = time.monotonic() + 10
        while _ctr_lines(ctr + ["-n", ns, "tasks", "ls", "-q"]) and time.monotonic() < deadline:
            for task in _ctr_lines(ctr + ["-n", ns, "tasks", "ls", "-q"]):
                subprocess.run(ctr + ["-n", ns, "tasks", "delete", "-f", task], capture_output=True, timeout=10)
            time.sleep(0.1)
        for container in _ctr_lines(ctr + ["-n", ns, "containers", "ls", "-q"]):
            subprocess.run(ctr + ["-n", ns, "containers", "delete", container], capture_output=True, timeout=10)


def _fargo_bridges() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()
            if line.split(":")[1].strip().startswith("fgb")}


def _delete_new_idle_bridges(before: set[str]) -> None:
    for name in _fargo_bridges() - before:
        ports = subprocess.run(["ip", "-o", "link", "show", "master", name], capture_output=True, text=True).stdout
        if not ports.strip():
            subprocess.run(["ip", "link", "delete", name, "type", "bridge"], capture_output=True)


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
    """Lazy-unmount anything still mounted below the data dir (overlay rootfs, ephemeral volumes, netns files)."""
    prefix = str(data_dir.resolve())
    try:
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return
    for target in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


def build_test_image(out_dir: Path) -> Path:
    tar = out_dir / "busybox.tar"
    subprocess.run([sys.executable, "-m", "fargo.runtime.test_image", str(tar)], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    return tar


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths))))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
