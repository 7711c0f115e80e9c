"""The bundle directories containerd keeps for its tasks (`<state>/io.containerd.runtime.v2.task/<ns>/<id>`),
seen from outside: whether one is left for a container, whether a shim still serves it, and removing one
that no shim serves any more. Only bundles under the state dir of a containerd that Fargo owns are touched.
"""
from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import socket
from pathlib import Path

_RUNTIME_DIR = "io.containerd.runtime.v2.task"
_MNT_DETACH = 2
# containerd removes the bundle of a shim it gave up on once that shim has exited; it takes it about 15 ms to do so.
# A bundle that no shim has served for this long is not going to be removed by containerd.
ABANDONED_AFTER_S = 1.0
_POLL_S = 0.1


class TaskBundles:
    def __init__(self, state_dir: Path | None, namespace: str) -> None:
        self._root = state_dir / _RUNTIME_DIR / namespace if state_dir is not None else None

    @property
    def known(self) -> bool:
        """Whether bundles can be seen at all (False for a containerd whose state dir Fargo does not own)."""
        return self._root is not None

    def exists(self, container_id: str) -> bool:
        return self._root is not None and (self._root / container_id).exists()

    def remove_abandoned(self, container_id: str) -> bool:
        """Remove the container's bundle unless a shim serves it; True if no bundle is left."""
        if self._root is None:
            return True
        bundle = self._root / container_id
        if not bundle.exists():
            return True
        if _shim_serves(bundle) or not _unmount_under(bundle):
            return False
        shutil.rmtree(bundle, ignore_errors=True)
        return not bundle.exists()

    async def wait_gone(self, container_id: str, patience: float) -> bool:
        """Wait up to `patience` seconds for the bundle of a task that containerd no longer has to go.

        A shim whose Tasks.Create was cut off (its client died, or the call was cancelled) lives on for seconds,
        and containerd deletes the bundle only after it exits: a bundle removed under a live shim would come back
        to haunt the next task of that id when containerd cleans up after the old shim. A bundle that no shim has
        served for ABANDONED_AFTER_S is removed here. True once no bundle is left.
        """
        if self._root is None:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        unserved_since: float | None = None
        while self.exists(container_id):
            now = loop.time()
            if await asyncio.to_thread(_shim_serves, self._root / container_id):
                unserved_since = None
            elif unserved_since is None:
                unserved_since = now
            elif now - unserved_since >= ABANDONED_AFTER_S:
                return await asyncio.to_thread(self.remove_abandoned, container_id)
            if now >= deadline:
                return False
            await asyncio.sleep(_POLL_S)
        return True


def _shim_serves(bundle: Path) -> bool:
    """Whether a shim answers on the socket the bundle's `address` file names (when in doubt: yes)."""
    try:
        address = (bundle / "address").read_text().strip()
    except FileNotFoundError:
        return False  # the shim never got as far as writing its address
    except OSError:
        return True
    path = address.removeprefix("unix://")
    if not path.startswith("/"):
        return True  # an address form we cannot check
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        except OSError:
            return True
    return True


def _unmount_under(directory: Path) -> bool:
    """Lazily unmount everything mounted at or below `directory` (a rootfs); True if nothing is left mounted.

    rmtree must never descend into a mounted rootfs: it would delete the snapshot's files.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for mount_point in _mount_points_under(directory):
        libc.umount2(os.fsencode(mount_point), _MNT_DETACH)
    return not _mount_points_under(directory)


def _mount_points_under(directory: Path) -> list[str]:
    prefix = str(directory)
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
        for line in mountinfo:
            point = _unescape(line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)  # deepest first


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field
