"""Image files of task volumes: an empty ext4 per size is formatted once (the template, kept in the data dir)
and each task's image is a sparse copy of it, written from the template's data held in memory.

Why a copy and not mkfs per task (measured here, 20 GiB, median of 10): mkfs.ext4 takes 9.7 ms (fork, exec,
formatting), writing the ~150 KB of data a template holds 0.5 ms. The mkfs options keep that data small:
no resize inode (its 1024 reserved GDT blocks are 4 MB, and a task volume never grows), no backup
superblocks (sparse_super2, num_backup_sb=0; 22 extents become 12, and unlinking the image gets faster),
no journal (a volume does not outlive the host's uptime, so there is no crash to replay; it also halves
mount and umount time), and inode tables zeroed in the template so that no ext4lazyinit thread writes them
for every task: mke2fs discards the file first, so the zeroed tables stay holes (with nodiscard it writes
320 MB of zeroes). The default flex_bg size (16) stays: packing all groups into one flex group (-G 4096)
made the file 3 extents but the first mkdir on every new volume cost 3.4 ms of CPU instead of 0.5.
Never `-O quota`/`project`: this kernel cannot mount such a file system.

A template may hold top-level directories (`mkfs.ext4 -d`): ext4 spreads top-level directories over block
groups, so the first two on each new volume cost 0.35 and 0.26 ms (a nested one 0.03); made once in the
template, every copy has them already.
"""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

GIB = 1024**3
# Part of the templates' names: a change of the options below makes new templates, never reuses old ones.
RECIPE = "r4"
MKFS = ["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal,^resize_inode,sparse_super2,^quota,^project",
        "-E", "lazy_itable_init=0,num_backup_sb=0"]
# A template holds ~150 KB (20 GiB) to ~2 MB (200 GiB) of data: kept in memory once read.
_MAX_TEMPLATE_DATA = 64 * 1024 * 1024


class TemplateFailed(OSError):
    """mkfs.ext4 could not format a template (missing e2fsprogs, a full disk), or a template is unusable."""


@dataclass(frozen=True)
class _TemplateData:
    size: int
    segments: tuple[tuple[int, bytes], ...]  # (offset, data) of each data range; the rest is holes


class VolumeImages:
    """The templates under `templates_dir` (made on first use, kept across restarts), and copies of them.
    Thread-safe."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self._data: dict[tuple[int, tuple[str, ...]], _TemplateData] = {}
        self._lock = threading.Lock()

    def template(self, size_gib: int, dirs: tuple[str, ...] = ()) -> Path:
        """The template of `size_gib` with the (empty, root-owned, 0755) top-level directories `dirs`,
        formatted now if there is none yet (atomically on disk)."""
        for name in dirs:
            if not name or "/" in name or name in (".", "..", "lost+found"):
                raise ValueError(f"not a top-level directory name: {name!r}")
        kind = "-".join(("", *dirs)) if dirs else ""
        path = self.templates_dir / f"ext4-{size_gib}g-{RECIPE}{kind}.img"
        if not path.exists():
            self._format(path, size_gib, dirs)
        return path

    def write_image(self, fd: int, size_gib: int, dirs: tuple[str, ...] = ()) -> None:
        """Make the empty regular file `fd` a copy of the template of `size_gib` (with `dirs`).

        The copy is as sparse as the template. Its size overcommits the host's disk: a task's volume takes
        host space only as the task writes to it, and nothing reserves the rest (no preallocation: that would
        cost the whole size of every volume up front, and most tasks use little of it).
        """
        data = self._template_data(size_gib, dirs)
        os.ftruncate(fd, data.size)
        for offset, chunk in data.segments:
            view = memoryview(chunk)
            while view:
                written = os.pwrite(fd, view, offset)
                view, offset = view[written:], offset + written

    def copy_to(self, target: Path, size_gib: int) -> None:
        """A new image file at `target` (replaced if there), a copy of the template of `size_gib`."""
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            self.write_image(fd, size_gib)
        finally:
            os.close(fd)

    def _template_data(self, size_gib: int, dirs: tuple[str, ...] = ()) -> _TemplateData:
        key = (size_gib, dirs)
        data = self._data.get(key)
        if data is None:
            with self._lock:  # one reader (and maker) per process; others wait for it
                data = self._data.get(key)
                if data is None:
                    data = self._data[key] = _read_data(self.template(size_gib, dirs))
        return data

    def _format(self, path: Path, size_gib: int, dirs: tuple[str, ...] = ()) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        skeleton = scratch.with_name(scratch.name + ".d")
        try:
            with open(scratch, "wb") as f:
                f.truncate(size_gib * GIB)  # sparse
            populate: list[str] = []
            if dirs:
                skeleton.mkdir(mode=0o755)
                os.chmod(skeleton, 0o755)  # the volume's root, whatever the umask
                for name in dirs:
                    (skeleton / name).mkdir()
                    os.chmod(skeleton / name, 0o755)
                populate = ["-d", str(skeleton)]
            try:
                done = subprocess.run([*MKFS, *populate, str(scratch)], capture_output=True, text=True)
            except FileNotFoundError:
                raise TemplateFailed(errno.ENOENT, "mkfs.ext4 is not installed (apt-get install e2fsprogs)") from None
            if done.returncode != 0:
                raise TemplateFailed(errno.EIO, f"mkfs.ext4 failed: {done.stderr.strip() or done.returncode}")
            fd = os.open(scratch, os.O_RDONLY)
            try:
                os.fsync(fd)  # every later volume of this size is copied from it: it must survive a host crash
            finally:
                os.close(fd)
            os.rename(scratch, path)  # another agent process may race us: both results are equal
            for old in self.templates_dir.glob("ext4-*.img"):
                fields = old.name.removesuffix(".img").split("-")  # ext4, <size>g, <recipe>, dirs...
                if len(fields) >= 3 and fields[2] != RECIPE:
                    old.unlink(missing_ok=True)  # an older recipe's: no volume is copied from it again
        finally:
            scratch.unlink(missing_ok=True)
            shutil.rmtree(skeleton, ignore_errors=True)


def _read_data(template: Path) -> _TemplateData:
    """The data ranges of a sparse file (SEEK_DATA/SEEK_HOLE), read into memory."""
    fd = os.open(template, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        segments = []
        total = offset = 0
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as error:
                if error.errno == errno.ENXIO:
                    break  # only a hole is left
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            total += end - start
            if total > _MAX_TEMPLATE_DATA:
                raise TemplateFailed(errno.EFBIG, f"{template} is not a sparse template ({total} bytes of data)")
            chunk = os.pread(fd, end - start, start)
            while len(chunk) < end - start:
                more = os.pread(fd, end - start - len(chunk), start + len(chunk))
                if not more:
                    raise TemplateFailed(errno.EIO, f"{template} ended early")
                chunk += more
            segments.append((start, chunk))
            offset = end
        return _TemplateData(size, tuple(segments))
    finally:
        os.close(fd)
