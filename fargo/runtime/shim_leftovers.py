"""What a cut-off Tasks.Create (its client died, or the call was cancelled) leaves on the host, seen from outside
containerd: a shim that containerd no longer lists, its socket, and its bundle directory under the state dir.
Waiting them out, killing an orphaned shim, and removing a bundle nobody serves.
"""
from __future__ import annotations

import asyncio
import ctypes
import hashlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path

# containerd 1.6 puts every shim's socket here, whatever its --state, named by a hash of its address, namespace and id.
SOCKET_DIR = Path("/run/containerd/s")
_RUNTIME_DIR = "io.containerd.runtime.v2.task"
_MNT_DETACH = 2
# Once the last shim process of a container is gone, containerd finishes its clean-up in-process (removing the
# bundle, dropping the task from its list), within milliseconds when idle, up to a second or more in a burst: the
# margin before a new Create. A Create that still meets that clean-up fails and is retried (`tasks.start`).
SETTLE_S = 0.5
# A bundle untouched for this long, with no shim process and no listener, is not being set up or cleaned up by
# containerd any more.
ABANDONED_AFTER_S = 2.0
# A shim containerd still talks to exits by itself 2-15 s after its Create was cut off; one that containerd never
# connected to (the Create was cut off right after `shim start`) never does. Either is killed after this long:
# containerd cleans up after a killed shim as after a crashed one.
ORPHAN_PATIENCE_S = 5.0
_POLL_S = 0.1


class ShimLeftovers:
    def __init__(self, address: str, state_dir: Path | None, namespace: str) -> None:
        self._containerd_socket = address.removeprefix("unix://").removeprefix("unix:")
        self._bundles = state_dir / _RUNTIME_DIR / namespace if state_dir is not None else None
        self._namespace = namespace

    def suspected(self, container_id: str) -> bool:
        """Whether a shim socket or bundle of the container exists: two stats, cheap enough before every Create."""
        bundle = self._bundle(container_id)
        return self._socket(container_id).exists() or (bundle is not None and bundle.exists())

    def remove_abandoned(self, container_id: str) -> bool:
        """Remove the container's bundle if it is abandoned: untouched for ABANDONED_AFTER_S, with no shim process
        and no listener on its socket. True if no bundle is left (or none can be seen)."""
        bundle = self._bundle(container_id)
        if bundle is None or not bundle.exists():
            return True
        # A young bundle may be one containerd is still setting up (its shim not spawned yet).
        if _age(bundle) < ABANDONED_AFTER_S or self._processes(container_id) or _answers(self._socket(container_id)):
            return False
        if not _unmount_under(bundle):
            return False
        shutil.rmtree(bundle, ignore_errors=True)
        return not bundle.exists()

    async def clear(self, container_id: str, patience: float) -> bool:
        """Wait up to `patience` seconds until no shim, shim socket or bundle of the container is left, for a
        container that containerd lists no task for. True once all are gone and settled.

        When an orphaned shim exits, containerd removes its bundle from more than one clean-up path, the last
        after its `shim delete` has run: a new Create that comes too early has its fresh bundle deleted under it,
        and one that comes while the orphan still listens is handed to the orphan (and hangs). So wait for every
        shim process to be gone and the socket to be silent, then SETTLE_S more. An orphan still running after
        ORPHAN_PATIENCE_S is SIGKILLed; containerd then cleans up after it. An abandoned bundle is removed here.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + patience
        quiet_since: float | None = None  # since when no shim process runs and none answers
        killed = False
        while True:
            processes = await asyncio.to_thread(self._processes, container_id)
            busy = bool(processes) or await asyncio.to_thread(_answers, self._socket(container_id))
            bundle = self._bundle(container_id)
            present = bundle is not None and bundle.exists()
            now = loop.time()
            quiet_since = None if busy else (quiet_since if quiet_since is not None else now)
            quiet = 0.0 if quiet_since is None else now - quiet_since
            if not present and quiet >= SETTLE_S:
                self._socket(container_id).unlink(missing_ok=True)  # a killed shim's; a new shim would remove it too
                return True
            if present and quiet >= ABANDONED_AFTER_S:
                await asyncio.to_thread(self.remove_abandoned, container_id)
            if not killed and now - started >= ORPHAN_PATIENCE_S:
                killed = _kill_daemons(processes)
            if now >= deadline:
                return False
            await asyncio.sleep(_POLL_S)

    def _bundle(self, container_id: str) -> Path | None:
        return self._bundles / container_id if self._bundles is not None else None

    def _socket(self, container_id: str) -> Path:
        key = os.path.join(self._containerd_socket, self._namespace, container_id)
        return SOCKET_DIR / hashlib.sha256(key.encode()).hexdigest()

    def _processes(self, container_id: str) -> list[tuple[int, list[bytes]]]:
        """The container's shim processes and their argv: the daemon, and the `start`/`delete` containerd runs."""
        wanted = {b"-namespace": self._namespace.encode(), b"-id": container_id.encode(),
                  b"-address": self._containerd_socket.encode()}
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    argv = handle.read().rstrip(b"\0").split(b"\0")
            except OSError:
                continue  # gone meanwhile
            if os.path.basename(argv[0]).startswith(b"containerd-shim") and \
                    all(_flag(argv, flag) == value for flag, value in wanted.items()):
                found.append((int(entry.name), argv))
        return found


def _kill_daemons(processes: list[tuple[int, list[bytes]]]) -> bool:
    """SIGKILL the shim daemons among `processes` (not containerd's own `start` or `delete` runs of the shim)."""
    killed = False
    for pid, argv in processes:
        if argv[-1] not in (b"start", b"delete"):
            try:
                os.kill(pid, signal.SIGKILL)
                killed = True
            except ProcessLookupError:
                pass
    return killed


def _flag(argv: list[bytes], name: bytes) -> bytes | None:
    try:
        return argv[argv.index(name) + 1]
    except (ValueError, IndexError):
        return None


def _age(bundle: Path) -> float:
    """Seconds since the bundle or any file in it last changed."""
    try:
        changed = max([bundle.lstat().st_mtime] + [entry.lstat().st_mtime for entry in bundle.iterdir()])
    except OSError:
        return 0.0
    return time.time() - changed


def _answers(socket_path: Path) -> bool:
    """Whether something listens on a unix socket (a shim that still serves it)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(socket_path))
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        except OSError:
            return True  # cannot tell: assume it serves
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
