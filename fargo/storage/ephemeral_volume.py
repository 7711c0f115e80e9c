"""A task's ephemeral storage: a sparse ext4 image on a loop device, mounted in the task's directory, that
holds every container's writable layer and every task volume, so that what they hold together is limited.

    <task dir>/volume.img              the image (1.4.0: 20-200 GiB; 1.3.0: 10 GiB for the writable layers)
    <task dir>/volume/                 its mount point
        containers/<runtime id>/       a container's overlay upper and work dirs (writable_layer_dir)
        volumes/<name>/                a task volume, bind-mounted into the containers that name it
    <task dir>/volumes.img             1.3.0 only: 4 GiB for the task volumes, mounted at volume/volumes

Why a loop-mounted ext4: it is the only size limit this kernel enforces (no XFS or ext4 project quotas,
host.md section 2), and it is quick with no fork at all: a sparse copy of a formatted template
(ext4_images), a LOOP_CONFIGURE ioctl, a mount(2): 6 ms alone (median), 13 ms wall and 4 ms of CPU inside
the agent beside the ENI's setup (host.md's recipe with mkfs, losetup and mount(8) took 24 ms). Removal
throws the data away without writing it back (a file system shutdown), unmounts, and deletes the image:
about 11 ms. Both are stateless: what is mounted and bound is read from the kernel, so a restarted agent,
or reconciliation after a crash, finds and finishes them.
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from fargo.storage import loop_devices
from fargo.storage.ext4_images import VolumeImages
from fargo.storage.mounts import MS_NOATIME, is_mount_point, mount, mount_points_under, shut_down, unmount

log = logging.getLogger(__name__)

VOLUME_DIR = "volume"
CONTAINERS_DIR = "containers"
VOLUMES_DIR = "volumes"
LAYERS_IMAGE = "volume.img"
TASK_VOLUMES_IMAGE = "volumes.img"
_IMAGE_NAMES = frozenset({LAYERS_IMAGE, TASK_VOLUMES_IMAGE})
MIB = 1024 * 1024
# discard: space a task frees goes back to the host (the loop device punches holes in the sparse image).
# nobarrier: the volume never outlives a crash of its host (its task is gone then, and reconcile deletes the
# image), so cache flushes to the disk buy nothing; without them an fsync in the task costs a third as much.
_MOUNT_DATA = "discard,nobarrier"
# After umount the loop device comes loose by itself (autoclear); a namespace being made at that moment may
# hold the file system a little longer. Wait this long before reporting the volume as not removed.
_LOOSE_WAIT_S = 0.5


class EphemeralVolumeError(OSError):
    """The task's volume could not be made (TaskCannotStart), or not entirely removed (the runner retries)."""


@dataclass(frozen=True)
class StorageSizes:
    """The sizes a platform version gives: one volume for everything, or (1.3.0) a second one for volumes."""

    writable_layers_gib: int
    task_volumes_gib: int | None = None  # None: task volumes share the writable layers' volume


@dataclass(frozen=True)
class _Part:
    image: Path
    mount_point: Path
    size_gib: int
    dirs: tuple[str, ...] = ()  # top-level directories its image is made with


class TaskStorageLayout:
    """Where a task's storage lives in its task dir; and how much of it is used (statvfs, a few µs)."""

    def __init__(self, task_dir: Path) -> None:
        # The kernel names backing files and mount points by their real paths; runc wants absolute sources.
        self.task_dir = Path(os.path.realpath(task_dir))
        self.volume_dir = self.task_dir / VOLUME_DIR

    def container_dir(self, runtime_id: str) -> Path:
        return self.volume_dir / CONTAINERS_DIR / runtime_id

    def task_volume_dir(self, name: str) -> Path:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"not a volume name: {name!r}")
        return self.volume_dir / VOLUMES_DIR / name

    def utilized_bytes(self) -> int | None:
        """Bytes in use on the task's mounted volume(s); None when none is mounted (never the host's disk)."""
        total = None
        for point in (self.volume_dir, self.volume_dir / VOLUMES_DIR):
            if is_mount_point(point):
                try:
                    st = os.statvfs(point)
                except OSError:
                    continue
                total = (total or 0) + (st.f_blocks - st.f_bfree) * st.f_frsize
        return total

    def utilized_mib(self) -> int | None:
        used = self.utilized_bytes()
        return None if used is None else -(-used // MIB)


class EphemeralVolume(TaskStorageLayout):
    """One task's volume(s): `make` (idempotent: a second call finds its work done and keeps the contents),
    `remove` (idempotent: tolerates half-done work, raises when something is left)."""

    def __init__(self, task_dir: Path, sizes: StorageSizes, images: VolumeImages) -> None:
        super().__init__(task_dir)
        self.sizes = sizes
        self._images = images
        # The writable layers' volume comes with its two top-level directories (ext4_images: each made on
        # a new volume cost 0.3 ms); `volumes` is also the mount point of 1.3.0's second volume.
        self._parts = [_Part(self.task_dir / LAYERS_IMAGE, self.volume_dir, sizes.writable_layers_gib,
                             (CONTAINERS_DIR, VOLUMES_DIR))]
        if sizes.task_volumes_gib is not None:
            self._parts.append(_Part(self.task_dir / TASK_VOLUMES_IMAGE, self.volume_dir / VOLUMES_DIR,
                                     sizes.task_volumes_gib))

    def make(self, task_volumes: Iterable[str] = ()) -> list[int]:
        """Mount the volume(s) with the dirs of `task_volumes`; the loop device numbers (for blkio accounting).

        A part already mounted from its image is kept as it is: an agent that restarts finds a running task's
        data where it was. A part that is not mounted is made afresh: what is there is an unfinished make's.
        """
        # (few system calls, plain os: this runs beside the ENI's setup, and each call is a chance for the GIL
        # to go to the other side)
        os.makedirs(self.task_dir, exist_ok=True)
        devices = []
        for part in self._parts:
            # a mount point made just now has nothing mounted; one that was there may have this part mounted
            number = None if _made(part.mount_point) else _mounted_loop(part)
            if number is None:
                if is_mount_point(part.mount_point):
                    raise EphemeralVolumeError(errno.EEXIST, f"something else is mounted at {part.mount_point}")
                number = self._make_part(part)
            devices.append(number)
        _made(self.volume_dir / CONTAINERS_DIR)  # in the image already: these cost a failed mkdir (µs) and
        _made(self.volume_dir / VOLUMES_DIR)     # keep the layout whatever image the volume came from
        for name in task_volumes:
            # Fargate's bind-mount volumes start empty, owned by root with mode 0755 (the ECS guide says so);
            # the mode is set whatever the agent's umask
            if _made(self.task_volume_dir(name)):
                os.chmod(self.task_volume_dir(name), 0o755)
        return devices

    def _make_part(self, part: _Part) -> int:
        if os.path.lexists(part.image):  # left by an unfinished make: no device may keep it
            _release_images(self.task_dir, {part.image.name})
        fd = os.open(part.image, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            self._images.write_image(fd, part.size_gib, part.dirs)
            number, device_fd = loop_devices.attach(fd)
        finally:
            os.close(fd)
        try:
            mount(f"/dev/loop{number}", part.mount_point, "ext4", MS_NOATIME, _MOUNT_DATA)
        finally:
            os.close(device_fd)  # the mount holds the device now; without one, autoclear unbinds it here
        return number

    def remove(self) -> None:
        remove_task_storage(self.task_dir)


def remove_task_storage(task_dir: Path) -> None:
    """Throw away a task's storage, whatever its layout or state: every mount under its volume dir (data not
    written back), the loop devices bound to its images, the images, the volume dir.

    Idempotent. Raises EphemeralVolumeError naming what is left (a mount or device still in use).
    """
    task_dir = Path(os.path.realpath(task_dir))
    volume_dir = task_dir / VOLUME_DIR
    problems: list[str] = []
    mounted = False
    loose: list[int] = []  # the devices of the volumes unmounted here: they unbind themselves (autoclear)
    for point in mount_points_under(volume_dir, itself=True):  # deepest first
        try:
            number = _shut_down_if_volume(point, task_dir)
            unmount(point)
            if number is not None:
                loose.append(number)
        except OSError as error:
            mounted = True
            problems.append(f"{point} still mounted: {error.strerror or error}")
    # Autoclear unbinds in the kernel's own time: wait for those devices alone (a read each). Only when none
    # was mounted (a make cut short, a device somebody holds) are all loop devices scanned for the images:
    # with a hundred tasks stopping at once, that scan was the most of what stopping cost.
    images = {str(task_dir / name) for name in _IMAGE_NAMES}
    if loose:
        released = _wait_loose(loose, images)
        for number in released:
            _detach_quietly(number)
    else:
        released = [d.number for d in _release_images(task_dir, _IMAGE_NAMES)]
    for name in _IMAGE_NAMES:
        try:
            os.unlink(task_dir / name)
        except FileNotFoundError:
            pass
    if not mounted:  # (a volume dir still mounted is never deleted through)
        try:
            shutil.rmtree(volume_dir)
        except FileNotFoundError:
            pass
        except OSError as error:
            problems.append(f"{volume_dir}: {error.strerror or error}")
    left = _wait_loose(released, images)
    problems += [f"/dev/loop{n} still bound to {loop_devices.backing_file(n)}" for n in left]
    if problems:
        raise EphemeralVolumeError(errno.EBUSY, "task storage not removed: " + "; ".join(problems))


def find_task_storage(tasks_dir: Path) -> set[str]:
    """Task ids under `tasks_dir` that have storage on the host: a bound loop device, a mount in their volume
    dir, an image, or a volume dir."""
    tasks_dir = Path(os.path.realpath(tasks_dir))
    found = set()
    for device in loop_devices.devices_backed_under(tasks_dir):
        found.add(Path(device.backing_file).relative_to(tasks_dir).parts[0])
    for point in mount_points_under(tasks_dir):
        parts = point.relative_to(tasks_dir).parts
        if len(parts) >= 2 and parts[1] == VOLUME_DIR:
            found.add(parts[0])
    try:
        entries = list(os.scandir(tasks_dir))
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and any(
                os.path.lexists(os.path.join(entry.path, n)) for n in (*_IMAGE_NAMES, VOLUME_DIR)):
            found.add(entry.name)
    return found


def remove_orphan_storage(tasks_dir: Path, known: Collection[str]) -> list[str]:
    """Remove the storage of every task under `tasks_dir` not in `known`; the ids of those removed.
    One that cannot be removed is logged and left for the next reconciliation."""
    removed = []
    for task_id in sorted(find_task_storage(tasks_dir) - set(known)):
        try:
            remove_task_storage(tasks_dir / task_id)
            removed.append(task_id)
        except OSError as error:
            log.warning("could not remove the storage of orphaned task %s: %s", task_id, error)
    return removed


def _made(directory: Path) -> bool:
    """mkdir (0755); False if it was there already."""
    try:
        os.mkdir(directory, 0o755)
        return True
    except FileExistsError:
        return False


def _mounted_loop(part: _Part) -> int | None:
    """The loop device number if `part`'s mount point has its image's file system mounted, else None."""
    try:
        fd = os.open(part.mount_point, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _loop_of(fd, part.image)
    finally:
        os.close(fd)


def _loop_of(fd: int, image: Path) -> int | None:
    device = os.fstat(fd).st_dev
    if os.major(device) != loop_devices.LOOP_MAJOR:
        return None
    number = os.minor(device)
    return number if loop_devices.backing_file(number) == str(image) else None


def _shut_down_if_volume(point: Path, task_dir: Path) -> int | None:
    """Shut down the file system at `point` if, and only if, it is one of the task's own images on a loop
    device: checked on the very fd the ioctl goes to, so that no other file system (the host's!) is hit.
    The loop device's number, if it was one."""
    try:
        fd = os.open(point, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not is_mount_point(point):
            return None
        for name in (LAYERS_IMAGE, TASK_VOLUMES_IMAGE):
            number = _loop_of(fd, task_dir / name)
            if number is not None:
                shut_down(fd)
                return number
        return None
    finally:
        os.close(fd)


def _bound_to_images(task_dir: Path, names: Collection[str]) -> list[loop_devices.LoopDevice]:
    return [d for d in loop_devices.devices_backed_under(task_dir)
            if Path(d.backing_file).parent == task_dir and Path(d.backing_file).name in names]


def _release_images(task_dir: Path, names: Collection[str]) -> list[loop_devices.LoopDevice]:
    """Unbind loop devices bound to the task's images (one in use comes loose when its user goes); those found."""
    found = _bound_to_images(task_dir, names)
    for device in found:
        _detach_quietly(device.number)
    return found


def _detach_quietly(number: int) -> None:
    try:
        loop_devices.detach(number)
    except OSError as error:
        log.warning("could not unbind /dev/loop%d from %s: %s", number, loop_devices.backing_file(number), error)


def _wait_loose(numbers: list[int], images: set[str]) -> list[int]:
    """Wait (a little) until none of these loop devices is bound to one of `images`; those still bound."""
    deadline = time.monotonic() + _LOOSE_WAIT_S
    while True:
        numbers = [n for n in numbers if loop_devices.backing_file(n) in images]
        if not numbers or time.monotonic() >= deadline:
            return numbers
        time.sleep(0.005)
