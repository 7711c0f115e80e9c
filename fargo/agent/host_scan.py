"""What the host holds for Fargo's tasks, read from the kernel: task network namespaces and their veths (ports
in the VPC routers, or host veths an older Fargo left), task cgroups in every hierarchy, mounts below a data
dir; and the unmounting of such mounts. Reconciliation compares this with the tasks it knows; nothing here
decides on its own what is stale.
"""
from __future__ import annotations

import ctypes
import errno
import logging
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from fargo.agent.task_cgroup import list_task_cgroups, read_mountinfo
from fargo.network.names import DEFAULT_PREFIX
from fargo.network.task_eni import list_task_enis

_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)
log = logging.getLogger(__name__)


class UnmountFailed(OSError):
    """Some mounts could not be unmounted, not even lazily."""

    def __init__(self, failures: list[tuple[Path, OSError]]) -> None:
        code = failures[0][1].errno or errno.EIO
        super().__init__(code, "could not unmount: " + "; ".join(f"{p}: {e.strerror}" for p, e in failures))
        self.failures = failures


@dataclass(frozen=True)
class HostTaskState:
    """One look at the host: which task ids own a namespace, a veth or a cgroup, and the data dir's mounts."""

    netns: frozenset[str]
    veths: frozenset[str]
    cgroups: frozenset[str]
    mounts: tuple[Path, ...]  # below the data dir, deepest first

    def task_ids(self) -> frozenset[str]:
        return self.netns | self.veths | self.cgroups

    def unknown_task_ids(self, known: Collection[str]) -> frozenset[str]:
        """Task ids the host holds something for that are not among `known`."""
        return self.task_ids() - frozenset(known)


def scan_host(data_dir: Path, prefix: str = DEFAULT_PREFIX) -> HostTaskState:
    enis = list_task_enis(prefix)  # namespaces and veths together
    return HostTaskState(
        netns=frozenset(e.task_id for e in enis if e.netns_path is not None),
        veths=frozenset(e.task_id for e in enis if e.router_port is not None),
        cgroups=frozenset(task_cgroup_ids()),
        mounts=tuple(mounts_under(data_dir)),
    )


def task_netns_ids(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Task ids that have a `<prefix>-<task id>` namespace in /run/netns."""
    return [e.task_id for e in list_task_enis(prefix) if e.netns_path is not None]


def task_veth_ids(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Task ids that have a veth outside their namespace (found by its alias, the task's namespace name)."""
    return [e.task_id for e in list_task_enis(prefix) if e.router_port is not None]


def task_cgroup_ids() -> list[str]:
    """Task ids that have a `/fargo/<task id>` cgroup in any hierarchy (v1 controllers, named v1, cgroup2)."""
    return list_task_cgroups()


def mounts_under(directory: Path) -> list[Path]:
    """Mount points strictly below `directory` (never the directory itself), deepest first.

    A mount point stacked several times appears as often as it is mounted.
    """
    below = os.path.realpath(directory).rstrip("/") + "/"
    points = [str(m.mount_point) for m in read_mountinfo()]
    # sorted() is stable, so a stack keeps its order; umount takes the top of a stack either way.
    return [Path(p) for p in sorted((p for p in points if p.startswith(below)), key=lambda p: -p.count("/"))]


def unmount(mount_point: Path) -> bool:
    """Unmount it, or detach it lazily if it is busy; False if nothing is mounted there (already gone).

    Raises OSError if it cannot be unmounted even lazily.
    """
    code = _umount2(mount_point, 0)
    if code == errno.EBUSY:  # the last resort: it goes once nothing uses it any more
        log.warning("%s is busy: detached lazily", mount_point)
        code = _umount2(mount_point, _MNT_DETACH)
    if code in (errno.EINVAL, errno.ENOENT):  # not (or no longer) a mount point
        return False
    if code != 0:
        raise OSError(code, os.strerror(code), str(mount_point))
    return True


def unmount_all(mount_points: Iterable[Path]) -> list[Path]:
    """`unmount` each, in the order given (pass deepest first, as `mounts_under` lists them).

    Returns those unmounted or detached. Raises UnmountFailed, after trying them all, naming the ones left.
    """
    done: list[Path] = []
    failures: list[tuple[Path, OSError]] = []
    for point in mount_points:
        try:
            if unmount(point):
                done.append(point)
        except OSError as error:
            failures.append((point, error))
    if failures:
        raise UnmountFailed(failures)
    return done


def _umount2(point: Path, flags: int) -> int:
    """0 on success, else the errno."""
    if _libc.umount2(os.fsencode(point), flags) == 0:
        return 0
    return ctypes.get_errno()
