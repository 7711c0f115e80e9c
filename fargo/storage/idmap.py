"""Bind mounts of an open directory, plain or idmapped, made with the new mount API's raw syscalls
(util-linux 2.38's `mount` silently ignores X-mount.idmap), and the user namespaces that carry the mappings.

An idmapped mount shows files on disk as `disk` ids to a caller whose ids are `caller`, and stores what that
caller creates as `disk`. A mapping is a bijection, so it cannot squash every caller to one id as an EFS
access point does: a caller whose uid (gid) is not the mapped one gets EOVERFLOW when it creates or chowns,
and sees other owners as 65534. Secondary gids are not applied either.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The new mount API has no wrappers in Debian 12's glibc. Its numbers are the same on x86_64 and arm64
# (syscalls added since Linux 5.0 share one numbering on every architecture but alpha).
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442

_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_OPEN_TREE_CLONE = 1
_OPEN_TREE_CLOEXEC = os.O_CLOEXEC
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOUNT_ATTR_IDMAP = 0x00100000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# A user namespace is made by a helper process (`unshare --user`): the fork is the whole cost, so one
# namespace per mapping is kept. The mounts hold their own reference, so evicting one is harmless.
USERNS_CACHE_SIZE = 64
_USERNS_READY_TIMEOUT = 5.0


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class IdmapUnsupported(OSError):
    """The file system under the directory cannot be idmapped (NFS, for one, does not allow it)."""


@dataclass(frozen=True)
class IdMapping:
    """`caller_uid`/`caller_gid` (the container's effective ids) act on disk as `disk_uid`/`disk_gid`."""

    caller_uid: int
    caller_gid: int
    disk_uid: int
    disk_gid: int

    def uid_map(self) -> str:
        # The mount's uid_map line reads `<on-disk id> <caller id> 1` (the other way round maps the opposite).
        return f"{self.disk_uid} {self.caller_uid} 1\n"

    def gid_map(self) -> str:
        return f"{self.disk_gid} {self.caller_gid} 1\n"


class UserNamespaces:
    """An fd of a user namespace per mapping, made on first use and kept (thread-safe)."""

    def __init__(self, capacity: int = USERNS_CACHE_SIZE) -> None:
        self._capacity = capacity
        self._fds: OrderedDict[IdMapping, int] = OrderedDict()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def borrowed(self, mapping: IdMapping) -> Iterator[int]:
        """An fd of the namespace for `mapping`, valid inside the block (no eviction can close it there)."""
        with self._lock:
            fd = self._fds.get(mapping)
            if fd is None:
                fd = self._fds[mapping] = _make_userns(mapping)
                while len(self._fds) > self._capacity:
                    _, old = self._fds.popitem(last=False)
                    os.close(old)
            self._fds.move_to_end(mapping)
            yield fd

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


def _make_userns(mapping: IdMapping) -> int:
    """A helper enters a new user namespace; as root in the initial namespace we write its maps (no
    setgroups=deny needed) and keep an fd of it. A subprocess, not os.fork: the agent has threads."""
    own = os.readlink("/proc/self/ns/user")
    helper = subprocess.Popen(["unshare", "--user", "--", "cat"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ns_link = f"/proc/{helper.pid}/ns/user"
        deadline = time.monotonic() + _USERNS_READY_TIMEOUT
        while _readlink_or_none(ns_link) == own:
            if helper.poll() is not None or time.monotonic() > deadline:
                raise OSError(errno.ECHILD, "could not make a user namespace for an idmapped mount")
            time.sleep(0.0002)
        with open(f"/proc/{helper.pid}/uid_map", "w") as f:
            f.write(mapping.uid_map())
        with open(f"/proc/{helper.pid}/gid_map", "w") as f:
            f.write(mapping.gid_map())
        return os.open(ns_link, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        assert helper.stdin is not None
        helper.stdin.close()  # cat sees EOF and exits; the namespace lives on through the fd
        helper.wait()


def _readlink_or_none(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None  # not exec'd yet, or gone: the caller's poll() tells which


def bind_directory(directory_fd: int, target: Path, userns_fd: int | None = None) -> None:
    """Mount a clone of the directory `directory_fd` names at `target` (an existing directory), idmapped
    through `userns_fd` when given. The source is never resolved by path again: a symlink swapped in after
    the fd was opened changes nothing."""
    tree = _check(_libc.syscall(_SYS_OPEN_TREE, directory_fd, b"", _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC |
                                _AT_EMPTY_PATH), "open_tree", target)
    try:
        if userns_fd is not None:
            attr = _MountAttr(attr_set=_MOUNT_ATTR_IDMAP, userns_fd=userns_fd)
            result = _libc.syscall(_SYS_MOUNT_SETATTR, tree, b"", _AT_EMPTY_PATH, ctypes.byref(attr),
                                   ctypes.c_size_t(ctypes.sizeof(attr)))
            if result < 0:
                code = ctypes.get_errno()
                if code in (errno.EINVAL, errno.EOPNOTSUPP):
                    raise IdmapUnsupported(code, f"cannot idmap this file system: {os.strerror(code)}", str(target))
                raise OSError(code, f"mount_setattr: {os.strerror(code)}", str(target))
        _check(_libc.syscall(_SYS_MOVE_MOUNT, tree, b"", _AT_FDCWD, os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH),
               "move_mount", target)
    finally:
        os.close(tree)  # a detached clone that was never moved goes with its last fd


def _check(result: int, what: str, target: Path) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}", str(target))
    return result
