"""A throw-away `fargo up` for benchmarks: free port, temp data dir, private containerd, and full clean-up.

Also the small things every benchmark prints: percentiles, a fixed-width table, ratios.
Only 127.0.0.1 is ever contacted.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fargo.runtime.containerd_daemon import ContainerdPaths  # noqa: E402
from tests.fargo_process import FARGO, REPO, FargoProcess, discard_data_dir, free_port  # noqa: E402,F401

REGION = "us-east-1"
BENCH_CLUSTER = "default"
SUBNETS = ["subnet-fargo-default-1a", "subnet-fargo-default-1b", "subnet-fargo-default-1c"]


class BenchFargo(FargoProcess):
    """`fargo up` on a free port with its own temp data dir, as a context manager that discards it all."""

    def __init__(self, prefix: str = "fargo-bench-", extra_args: Sequence[str] = ()) -> None:
        super().__init__(Path(tempfile.mkdtemp(prefix=prefix)), extra_args=["--log-level", "WARNING", *extra_args],
                         log_name="fargo-bench.log")
        # Subnet bridges are host-wide and named by subnet id; remove at the end only those we created.
        self._bridges_before = _fargo_bridges()

    @property
    def containerd_socket(self) -> Path:
        return ContainerdPaths.for_data_dir(self.data_dir).socket

    def __enter__(self) -> BenchFargo:
        try:
            self.start()
            return self
        except BaseException:
            self.close()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def import_image(self, tar: Path) -> None:
        subprocess.run(FARGO + ["image", "import", str(tar), "--endpoint", self.endpoint],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)

    def client(self, service: str = "ecs") -> Any:
        return super().client(service)

    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def close(self) -> None:
        """Stop Fargo, then discard its containerd, tasks, host state and data dir."""
        try:
            self.stop()
        finally:
            discard_data_dir(self.data_dir)
            _delete_new_idle_bridges(self._bridges_before)


def _fargo_bridges() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()
            if line.split(":")[1].strip().startswith("fgb")}


def _delete_new_idle_bridges(before: set[str]) -> None:
    for name in _fargo_bridges() - before:
        ports = subprocess.run(["ip", "-o", "link", "show", "master", name], capture_output=True, text=True).stdout
        if not ports.strip():
            subprocess.run(["ip", "link", "delete", name, "type", "bridge"], capture_output=True)


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


def in_threads(work: Callable[[list[str]], None], items: list[str], threads: int = 10) -> None:
    """`work` on `threads` interleaved slices of `items` at once; the first error is raised once all are done."""
    errors: list[BaseException] = []

    def worker(chunk: list[str]) -> None:
        try:
            work(chunk)
        except BaseException as e:  # noqa: BLE001 - re-raised below, after the other threads finish
            errors.append(e)

    workers = [threading.Thread(target=worker, args=(items[i::threads],)) for i in range(threads) if items[i::threads]]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
