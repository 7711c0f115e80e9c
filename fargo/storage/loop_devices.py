"""Loop devices driven by ioctls on /dev/loop-control and /dev/loopN (no `losetup` fork: 0.4 ms of CPU where
`losetup --find --show` takes 2.4 ms), and the loop devices of the host found from sysfs by their files.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import threading
from dataclasses import dataclass
from pathlib import Path

LOOP_MAJOR = 7  # fixed in the kernel's major numbers (include/uapi/linux/major.h)
_LOOP_CONTROL = "/dev/loop-control"
_LOOP_CTL_GET_FREE = 0x4C82
_LOOP_CONFIGURE = 0x4C0A
_LOOP_CLR_FD = 0x4C01
LO_FLAGS_AUTOCLEAR = 4
LO_FLAGS_DIRECT_IO = 16
_SYS_BLOCK = Path("/sys/block")
_DELETED = " (deleted)"
# Another setup (ours or any other program's) may take the device LOOP_CTL_GET_FREE named before we bind it.
_ATTEMPTS = 64


class _LoopInfo64(ctypes.Structure):
    _fields_ = [("lo_device", ctypes.c_uint64), ("lo_inode", ctypes.c_uint64), ("lo_rdevice", ctypes.c_uint64),
                ("lo_offset", ctypes.c_uint64), ("lo_sizelimit", ctypes.c_uint64), ("lo_number", ctypes.c_uint32),
                ("lo_encrypt_type", ctypes.c_uint32), ("lo_encrypt_key_size", ctypes.c_uint32),
                ("lo_flags", ctypes.c_uint32), ("lo_file_name", ctypes.c_uint8 * 64),
                ("lo_crypt_name", ctypes.c_uint8 * 64), ("lo_encrypt_key", ctypes.c_uint8 * 32),
                ("lo_init", ctypes.c_uint64 * 2)]


class _LoopConfig(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_uint32), ("block_size", ctypes.c_uint32), ("info", _LoopInfo64),
                ("reserved", ctypes.c_uint64 * 8)]


assert ctypes.sizeof(_LoopConfig) == 304, "struct loop_config changed size"


@dataclass(frozen=True)
class LoopDevice:
    number: int
    backing_file: str  # as the kernel shows it, without " (deleted)"
    backing_deleted: bool = False

    @property
    def path(self) -> str:
        return f"/dev/loop{self.number}"


def attach(image_fd: int) -> tuple[int, int]:
    """Bind the open image file `image_fd` (O_RDWR) to a free loop device: (its number, an open O_RDWR fd of
    /dev/loopN, which the caller closes).

    The device has LO_FLAGS_AUTOCLEAR: it comes loose by itself when its last user goes (the mount, or this
    fd if nothing mounts it, also when the process dies), so a crash leaves no bound device behind. Direct
    I/O keeps the image's blocks out of the host's page cache (the volume's own cache is enough); where the
    backing file system cannot do it, the device is bound without it.
    """
    flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO
    last: OSError | None = None
    for _ in range(_ATTEMPTS):
        number = fcntl.ioctl(_control(), _LOOP_CTL_GET_FREE)
        try:
            device_fd = os.open(f"/dev/loop{number}", os.O_RDWR | os.O_CLOEXEC)
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ENXIO):
                raise
            last = error  # removed (LOOP_CTL_REMOVE) between the two calls: ask again
            continue
        config = _LoopConfig(fd=image_fd, block_size=0)
        config.info.lo_flags = flags
        try:
            fcntl.ioctl(device_fd, _LOOP_CONFIGURE, config)
            return number, device_fd
        except OSError as error:
            os.close(device_fd)
            if error.errno == errno.EBUSY:
                last = error  # another setup bound it first: take the next free one
                continue
            if error.errno == errno.EINVAL and flags & LO_FLAGS_DIRECT_IO:
                flags &= ~LO_FLAGS_DIRECT_IO  # the backing file system refuses O_DIRECT
                last = error
                continue
            raise
    raise OSError(errno.EBUSY, f"no loop device could be bound in {_ATTEMPTS} attempts: {last}")


_control_fd: int | None = None
_control_lock = threading.Lock()


def _control() -> int:
    """/dev/loop-control, opened once and kept (ioctls on one fd from several threads are fine)."""
    global _control_fd
    if _control_fd is None:
        with _control_lock:
            if _control_fd is None:
                _control_fd = os.open(_LOOP_CONTROL, os.O_RDWR | os.O_CLOEXEC)
    return _control_fd


def detach(number: int) -> None:
    """Unbind /dev/loopN; a device in use (mounted) is marked to come loose when its last user goes.

    A device that is unbound already (ENXIO) or gone is fine.
    """
    try:
        fd = os.open(f"/dev/loop{number}", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.ioctl(fd, _LOOP_CLR_FD)
    except OSError as error:
        if error.errno != errno.ENXIO:
            raise
    finally:
        os.close(fd)


def bound_devices() -> list[LoopDevice]:
    """Every bound loop device of the host, with the file behind it (reading sysfs: no device is opened)."""
    found = []
    try:
        names = os.listdir(_SYS_BLOCK)
    except FileNotFoundError:
        return []
    for name in names:
        if not name.startswith("loop") or not name[4:].isdigit():
            continue
        try:
            with open(_SYS_BLOCK / name / "loop" / "backing_file") as f:
                backing = f.read().rstrip("\n")
        except OSError:
            continue  # not bound (no loop/ directory), or unbound while we read
        deleted = backing.endswith(_DELETED)
        found.append(LoopDevice(int(name[4:]), backing.removesuffix(_DELETED) if deleted else backing, deleted))
    return found


def devices_backed_under(directory: Path) -> list[LoopDevice]:
    """Bound loop devices whose backing file lies below `directory` (deleted backing files included)."""
    below = os.path.realpath(directory).rstrip("/") + "/"
    return [d for d in bound_devices() if d.backing_file.startswith(below)]


def backing_file(number: int) -> str | None:
    """The file bound to /dev/loopN (without " (deleted)"), or None when it is not bound."""
    try:
        with open(_SYS_BLOCK / f"loop{number}" / "loop" / "backing_file") as f:
            return f.read().rstrip("\n").removesuffix(_DELETED)
    except OSError:
        return None
