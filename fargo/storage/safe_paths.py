"""Directories inside an EFS file system's host directory, found (and made, for an access point with
CreationInfo) without following anything a task planted there: each component is opened relative to its
parent's fd with O_NOFOLLOW|O_DIRECTORY, and `..` is resolved in the path's text, stopping at the file
system's root as an NFS export's root does. The caller gets an fd and mounts from it, never the path.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

# O_NONBLOCK: a FIFO or device planted where a directory is expected must not block the open.
_OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class NoSuchDirectory(Exception):
    """A component is missing, or is not a directory (a symlink, a file); `path` is where it stopped."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no directory at {path}")
        self.path = path


@dataclass(frozen=True)
class DirectoryCreation:
    """How missing directories are made: an access point's CreationInfo (owner and permission bits)."""

    uid: int
    gid: int
    mode: int

    @classmethod
    def from_creation_info(cls, uid: int, gid: int, permissions: str) -> DirectoryCreation:
        mode = int(permissions, 8)  # "755" or "0755", as EFS takes it
        if not 0 <= mode <= 0o7777:
            raise ValueError(f"permissions {permissions!r} are not octal mode bits")
        return cls(uid, gid, mode)


def path_components(path: str) -> list[str]:
    """The names `path` walks down, with `.` dropped and `..` taken back (never above the root)."""
    if "\0" in path:
        raise NoSuchDirectory(path)
    parts: list[str] = []
    for name in path.split("/"):
        if name in ("", "."):
            continue
        if name == "..":
            if parts:
                parts.pop()
            continue
        parts.append(name)
    return parts


def open_file_system(efs_root: str | os.PathLike[str], file_system_id: str) -> int:
    """An fd of `<efs_root>/<file_system_id>`; NoSuchDirectory if this host has no such directory.

    The root is the operator's and may be a symlink; the file system's own directory must not be one."""
    if file_system_id in ("", ".", "..") or "/" in file_system_id or "\0" in file_system_id:
        raise NoSuchDirectory(file_system_id)
    try:
        root = os.open(efs_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise NoSuchDirectory(os.fspath(efs_root)) from None
    try:
        return _open_child(root, file_system_id, file_system_id)
    finally:
        os.close(root)


def open_directory_beneath(base_fd: int, path: str, creation: DirectoryCreation | None = None) -> int:
    """An fd of the directory `path` below `base_fd` (which stays open: the caller owns both).

    Missing components are made with `creation`'s owner and mode when it is given (an access point's
    root and, Fargo's choice since EFS does not say, its missing parents too); existing directories keep
    their owner and mode. Without `creation`, or where a component exists but is not a directory (a symlink
    a task planted included), NoSuchDirectory.
    """
    current = os.dup(base_fd)
    walked = ""
    try:
        for name in path_components(path):
            walked += "/" + name
            try:
                child = _open_child(current, name, walked)
            except NoSuchDirectory:
                if creation is None or not _is_missing(current, name):
                    raise
                child = _make_child(current, name, walked, creation)
            os.close(current)
            current = child
        result, current = current, -1
        return result
    finally:
        if current >= 0:
            os.close(current)


def _open_child(parent_fd: int, name: str, walked: str) -> int:
    try:
        return os.open(name, _OPEN_DIRECTORY, dir_fd=parent_fd)
    except OSError as e:
        # ENOENT: missing; ENOTDIR: a file or a device; ELOOP: a symlink (O_NOFOLLOW refuses it).
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise NoSuchDirectory(walked) from None
        raise


def _is_missing(parent_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return True
    return False


def _make_child(parent_fd: int, name: str, walked: str, creation: DirectoryCreation) -> int:
    try:
        # Private at first, then given its owner and mode through the fd: the umask does not apply, and
        # it is never open to others under the wrong owner.
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:  # made meanwhile (another task mounting the same access point): used as it is
        return _open_child(parent_fd, name, walked)
    child = _open_child(parent_fd, name, walked)
    try:
        os.fchown(child, creation.uid, creation.gid)
        os.fchmod(child, creation.mode)  # after chown, which clears setuid/setgid bits
    except BaseException:
        os.close(child)
        raise
    return child
