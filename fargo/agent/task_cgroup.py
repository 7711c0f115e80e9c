"""The task-level cgroup (cgroup v1): `/fargo/<task id>` in each controller, holding the task's cpu and
memory limits; each container's cgroup nests under it, so the task as a whole cannot exceed its size.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

CGROUP_ROOT = "fargo"
_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "blkio", "cpuset", "devices", "freezer")
CFS_PERIOD_US = 100_000


@functools.cache
def controller_mounts() -> dict[str, Path]:
    """Where each v1 controller is mounted, read from mountinfo (cpu and cpuacct may be apart or together)."""
    found: dict[str, Path] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if rfields and rfields[0] == "cgroup":
                for opt in rfields[2].split(","):
                    if opt in _CONTROLLERS:
                        found.setdefault(opt, Path(fields[4]))
    return found


def task_cgroup_path(task_id: str) -> str:
    return f"/{CGROUP_ROOT}/{task_id}"


def container_cgroup_path(task_id: str, runtime_id: str) -> str:
    return f"/{CGROUP_ROOT}/{task_id}/{runtime_id}"


def create_task_cgroup(task_id: str, cpu_units: int, memory_mib: int) -> None:
    mounts = controller_mounts()
    rel = task_cgroup_path(task_id).lstrip("/")
    for name, base in mounts.items():
        if name == "cpuset":
            _ensure_cpuset(base, rel)
        else:
            (base / rel).mkdir(parents=True, exist_ok=True)
    if "memory" in mounts:
        _write(mounts["memory"] / rel / "memory.limit_in_bytes", str(memory_mib * 1024 * 1024))
    if "cpu" in mounts:
        _write(mounts["cpu"] / rel / "cpu.cfs_period_us", str(CFS_PERIOD_US))
        _write(mounts["cpu"] / rel / "cpu.cfs_quota_us", str(cpu_units * CFS_PERIOD_US // 1024))


def _ensure_cpuset(base: Path, rel: str) -> None:
    # a new cpuset cgroup starts empty: copy cpus and mems down from its parent, level by level
    path = base
    for part in rel.split("/"):
        parent, path = path, path / part
        if not path.exists():
            path.mkdir()
            for knob in ("cpuset.cpus", "cpuset.mems"):
                _write(path / knob, (parent / knob).read_text().strip())


def oom_kills(task_id: str, runtime_id: str) -> int:
    """How many processes of the container the memory cgroup has OOM-killed (0 if unknown)."""
    base = controller_mounts().get("memory")
    if base is None:
        return 0
    try:
        text = (base / container_cgroup_path(task_id, runtime_id).lstrip("/") / "memory.oom_control").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def remove_task_cgroup(task_id: str) -> None:
    """rmdir, deepest first: cgroup directories cannot be removed with their contents."""
    rel = task_cgroup_path(task_id).lstrip("/")
    for base in controller_mounts().values():
        top = base / rel
        if not top.exists():
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def list_task_cgroups() -> list[str]:
    base = controller_mounts().get("memory")
    root = base / CGROUP_ROOT if base else None
    if root is None or not root.exists():
        return []
    return [p.name for p in root.iterdir() if p.is_dir()]


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
