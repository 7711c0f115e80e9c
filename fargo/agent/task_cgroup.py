"""The task-level cgroup: `/fargo/<task id>` holding the task's cpu and memory limits (cgroup v1), with each
container's cgroup nested under it; and its removal from every mounted hierarchy, since runc also puts each
container in the named v1 hierarchies (name=systemd) and in cgroup2.
"""
from __future__ import annotations

import errno
import functools
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = "fargo"
_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "blkio", "cpuset", "devices", "freezer")
CFS_PERIOD_US = 100_000
_MOUNTINFO = "/proc/self/mountinfo"


class TaskCgroupNotRemoved(OSError):
    """Some of a task's cgroup directories are still there, usually because processes are left in them."""

    def __init__(self, task_id: str, left: list[str], code: int) -> None:
        super().__init__(code, f"cgroup of task {task_id} not removed: {'; '.join(left)}")
        self.task_id = task_id
        self.left = left


@dataclass(frozen=True)
class CgroupHierarchy:
    """One mounted cgroup hierarchy: a v1 one (controllers and/or a `name=`), or the cgroup2 one."""

    mount_point: Path
    version: int  # 1 or 2
    controllers: tuple[str, ...]  # v1 controllers bound to it; empty for a named-only v1 hierarchy and for v2
    name: str | None  # a named v1 hierarchy's name, e.g. "systemd"


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mountinfo, the parts Fargo looks at."""

    device: str  # major:minor of the filesystem; one per cgroup hierarchy
    root: str  # the directory of the filesystem that is mounted here
    mount_point: Path
    fstype: str
    super_options: tuple[str, ...]


def read_mountinfo(text: str | None = None) -> list[MountEntry]:
    """This process's mounts, in mountinfo order (a mount stacked on another comes after it)."""
    if text is None:
        with open(_MOUNTINFO) as f:
            text = f.read()
    entries = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) >= 5 and len(rfields) >= 3:
            entries.append(MountEntry(fields[2], _unescape(fields[3]), Path(_unescape(fields[4])), rfields[0],
                                      tuple(rfields[2].split(","))))
    return entries


def _unescape(path: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes (\040 ...).
    if "\\" not in path:
        return path
    return path.encode().decode("unicode_escape").encode("latin-1").decode()


@functools.cache
def all_hierarchy_mounts() -> tuple[CgroupHierarchy, ...]:
    """Every cgroup hierarchy mounted here, once each (hierarchies do not change while the agent runs)."""
    return _hierarchies(read_mountinfo(), _kernel_controllers())


def _kernel_controllers() -> frozenset[str]:
    # Mount options mix controllers with flags (xattr, noprefix, ...); the kernel's own list tells them apart.
    try:
        with open("/proc/cgroups") as f:
            return frozenset(line.split()[0] for line in f if line.strip() and not line.startswith("#"))
    except OSError:
        return frozenset(_CONTROLLERS)


def _hierarchies(mounts: list[MountEntry], kernel_controllers: frozenset[str]) -> tuple[CgroupHierarchy, ...]:
    by_device: dict[str, tuple[str, CgroupHierarchy]] = {}
    for mount in mounts:
        if mount.fstype not in ("cgroup", "cgroup2"):
            continue
        # A hierarchy mounted twice (a bind mount, a sub-tree) is one hierarchy: prefer a mount of its whole tree.
        if mount.device in by_device and (by_device[mount.device][0] == "/" or mount.root != "/"):
            continue
        if mount.fstype == "cgroup2":
            hierarchy = CgroupHierarchy(mount.mount_point, 2, (), None)
        else:
            options = mount.super_options
            controllers = tuple(o for o in options if o in kernel_controllers)
            name = next((o.partition("=")[2] for o in options if o.startswith("name=")), None)
            hierarchy = CgroupHierarchy(mount.mount_point, 1, controllers, name)
        by_device[mount.device] = (mount.root, hierarchy)
    return tuple(hierarchy for _root, hierarchy in by_device.values())


@functools.cache
def controller_mounts() -> dict[str, Path]:
    """Where each v1 controller we limit or account with is mounted (cpu and cpuacct may be apart or together)."""
    found: dict[str, Path] = {}
    for hierarchy in all_hierarchy_mounts():
        for controller in hierarchy.controllers:
            if controller in _CONTROLLERS:
                found.setdefault(controller, hierarchy.mount_point)
    return found


def task_cgroup_path(task_id: str) -> str:
    return f"/{CGROUP_ROOT}/{task_id}"


def container_cgroup_path(task_id: str, runtime_id: str) -> str:
    return f"/{CGROUP_ROOT}/{task_id}/{runtime_id}"


def create_task_cgroup(task_id: str, memory_mib: int, data_dir: Path | None = None) -> None:
    """The task's cgroup in every hierarchy we use, with its memory limit; its CPU limit comes later
    (`limit_task_cpu`). With `data_dir`, blkio accounting is switched on for the device the containers write
    to (see `_account_block_io`)."""
    mounts = controller_mounts()
    rel = task_cgroup_path(task_id).lstrip("/")
    for name, base in mounts.items():
        if name == "cpuset":
            _ensure_cpuset(base, rel)
        else:
            (base / rel).mkdir(parents=True, exist_ok=True)
    if "memory" in mounts:
        _write(mounts["memory"] / rel / "memory.limit_in_bytes", str(memory_mib * 1024 * 1024))
    if "blkio" in mounts and data_dir is not None:
        _account_block_io(mounts["blkio"] / rel, data_dir)


def limit_task_cpu(task_id: str, cpu_units: int) -> None:
    """The task's CPU limit (`cpu_units` of 1024 per vCPU) as a CFS quota; the same again is a no-op."""
    mounts = controller_mounts()
    if "cpu" in mounts:
        cgroup = mounts["cpu"] / task_cgroup_path(task_id).lstrip("/")
        _write(cgroup / "cpu.cfs_period_us", str(CFS_PERIOD_US))
        _write(cgroup / "cpu.cfs_quota_us", str(cpu_units * CFS_PERIOD_US // 1024))


# 100 GB/s: a limit nobody reaches.
_NO_OP_BPS = 100 * 1024**3


def _account_block_io(cgroup: Path, data_dir: Path) -> None:
    """Kernels >= 6.9 keep blkio's v1 statistics at zero for a device until some cgroup sets a throttle limit
    on it (host.md section 5): a no-op limit on the data dir's device makes the task's blkio_stats count."""
    device = os.stat(data_dir).st_dev
    if os.major(device) == 0:  # not a block device (tmpfs, overlay): nothing to account
        return
    _no_op_throttle(cgroup, os.major(device), os.minor(device))


def account_block_io_on(task_id: str, major: int, minor: int) -> None:
    """The same no-op limit on another device the task writes to (its ephemeral volume's loop device), set
    in the task's blkio cgroup; made here if the cgroup hook, running beside, has not made it yet."""
    hierarchy = next((h for h in all_hierarchy_mounts() if "blkio" in h.controllers), None)
    if hierarchy is None or "cpuset" in hierarchy.controllers:
        return  # (a cpuset cgroup must be made with its cpus and mems: that is create_task_cgroup's to do)
    cgroup = hierarchy.mount_point / task_cgroup_path(task_id).lstrip("/")
    cgroup.mkdir(parents=True, exist_ok=True)
    _no_op_throttle(cgroup, major, minor)


def _no_op_throttle(cgroup: Path, major: int, minor: int) -> None:
    spec = f"{major}:{minor} {_NO_OP_BPS}"
    for name in ("blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"):
        try:
            _write(cgroup / name, spec)
        except OSError:
            return  # the kernel refuses this device: stats stay zero, limits are untouched


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
    """Remove the task's cgroup, with its containers' cgroups, from every hierarchy; a missing one is fine.

    Raises TaskCgroupNotRemoved naming each directory left (and the processes in it) so the caller can retry.
    """
    rel = task_cgroup_path(task_id).lstrip("/")
    left: list[Path] = []
    reasons: list[str] = []
    code = 0
    for hierarchy in all_hierarchy_mounts():
        # cgroup directories go with rmdir only, deepest first; their control files go with them
        for dirpath, _dirs, _files in os.walk(hierarchy.mount_point / rel, topdown=False):
            path = Path(dirpath)
            if any(path in stuck.parents for stuck in left):
                continue  # its child is already reported
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError as error:
                code = code or error.errno or errno.EBUSY
                left.append(path)
                reasons.append(_why_left(path, error))
    if left:
        raise TaskCgroupNotRemoved(task_id, reasons, code)


def _why_left(path: Path, error: OSError) -> str:
    try:
        pids = (path / "cgroup.procs").read_text().split()
    except OSError:
        pids = []
    if pids:
        shown = ", ".join(pids[:5]) + (", ..." if len(pids) > 5 else "")
        return f"{path} holds {len(pids)} process(es) ({shown})"
    return f"{path}: {error.strerror}"


def list_task_cgroups() -> list[str]:
    """The task ids that have a cgroup in any hierarchy."""
    task_ids: set[str] = set()
    for hierarchy in all_hierarchy_mounts():
        try:
            with os.scandir(hierarchy.mount_point / CGROUP_ROOT) as entries:
                task_ids.update(e.name for e in entries if e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return sorted(task_ids)


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
