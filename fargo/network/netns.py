"""Named network namespaces under /run/netns, made the way `ip netns add` makes them, without forking.

A namespace is entered only by a short-lived helper thread (setns/unshare act on the calling thread), so no
pooled or event-loop thread ever changes namespace. Sockets born in that thread stay in the namespace.
"""
from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fargo.network.names import NETNS_DIR, netns_path

CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SHARED = 1 << 20
_MNT_DETACH = 2
_NETLINK_ROUTE = 0

_libc = ctypes.CDLL(None, use_errno=True)
_netns_dir_ready = False
_netns_dir_lock = threading.Lock()

T = TypeVar("T")


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _in_new_thread(work: Callable[[], T]) -> T:
    """Run `work` in a fresh thread and return its result (or raise its error); the thread then ends."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as error:  # handed to the caller below
            box["error"] = error

    thread = threading.Thread(target=run, name="fargo-netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def _enter(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {path}")
    finally:
        os.close(fd)


def run_in_netns(path: str, work: Callable[[], T]) -> T:
    """Call `work` inside the namespace at `path` (from a helper thread that enters it and then ends)."""

    def entered() -> T:
        _enter(path)
        return work()

    return _in_new_thread(entered)


def socket_in_netns(path: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket that lives in the namespace at `path`, usable from any thread."""
    return run_in_netns(path, lambda: socket.socket(family, kind, proto))


def tcp_listener_in_netns(path: str, address: str, port: int, backlog: int = 128) -> socket.socket:
    """A non-blocking TCP socket listening on address:port, born in the namespace at `path`.

    Raises OSError if binding fails (e.g. the address is not in that namespace).
    """

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebind despite connections in TIME_WAIT
            sock.bind((address, port))
            sock.listen(backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    return run_in_netns(path, make)


def set_sysctls(values: dict[str, str]) -> None:
    """Write /proc/sys entries (e.g. `net/ipv4/ip_forward`) of the calling thread's namespace where they differ.

    Call it through `run_in_netns` for another namespace: /proc/sys/net shows the opener's namespace.
    """
    for key, value in values.items():
        path = f"/proc/sys/{key}"
        with open(path, "r+") as entry:
            if entry.read().strip() != value:
                entry.seek(0)
                entry.write(value)


def read_sysctl(key: str) -> str:
    with open(f"/proc/sys/{key}") as entry:
        return entry.read().strip()


def link_names() -> set[str]:
    """The interface names of the calling thread's namespace, from /proc/thread-self/net/dev (no netlink)."""
    # /proc/thread-self, not /proc/self: the latter shows the thread-group leader's namespace.
    with open("/proc/thread-self/net/dev") as table:
        lines = table.read().splitlines()[2:]
    return {line.partition(":")[0].strip() for line in lines}


def _ensure_netns_dir() -> None:
    # As iproute2 does: /run/netns is a shared mount point, so namespace mounts made here propagate to
    # mount namespaces copied later (containerd, runc) and their unmount does too (no pinned namespaces).
    global _netns_dir_ready
    with _netns_dir_lock:
        if _netns_dir_ready:
            return
        os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
        directory = NETNS_DIR.encode()
        if _libc.mount(b"none", directory, None, _MS_SHARED | _MS_REC, None) != 0:
            if ctypes.get_errno() != errno.EINVAL:  # EINVAL: not a mount point yet
                _check(-1, f"make {NETNS_DIR} shared")
            _check(_libc.mount(directory, directory, b"none", _MS_BIND | _MS_REC, None), f"bind {NETNS_DIR}")
            _check(_libc.mount(b"none", directory, None, _MS_SHARED | _MS_REC, None), f"make {NETNS_DIR} shared")
        _netns_dir_ready = True


@dataclass
class NewNetns:
    """A namespace just made: its path, an fd of it (to move links in) and a route-netlink socket inside it.

    The caller owns both and must close them (`close()`); while open they keep the namespace alive.
    """

    path: str
    fd: int
    netlink: socket.socket

    def close(self) -> None:
        self.netlink.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def create_netns(name: str) -> NewNetns:
    """Create /run/netns/NAME; raises FileExistsError if the name is taken (even by a half-made namespace)."""
    _ensure_netns_dir()
    path = netns_path(name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))

    def make() -> NewNetns:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
        fd = -1
        try:
            fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", _MS_BIND, None), f"mount {path}")
        except BaseException:
            netlink.close()
            if fd >= 0:
                os.close(fd)
            raise
        return NewNetns(path=path, fd=fd, netlink=netlink)

    try:
        return _in_new_thread(make)
    except BaseException:
        _unlink_quietly(path)
        raise


def is_mounted_netns(path: str) -> bool:
    """True if `path` is a namespace bind mount (a bare file left by a crash is not)."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except FileNotFoundError:
        return False


def remove_netns(name: str) -> None:
    """Unmount and remove /run/netns/NAME; nothing to do if it is absent or was never mounted."""
    path = netns_path(name)
    if _libc.umount2(path.encode(), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not mounted (half-made)
            _check(-1, f"umount {path}")
    _unlink_quietly(path)


def list_netns_names() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
