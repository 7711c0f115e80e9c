"""Where the data of each file system lives: the directory `<efs root>/<fs-id>`, made at CreateFileSystem as a
new EFS root is (owned by root, mode 0755) and removed after DeleteFileSystem, off the caller's path.

A removal runs in a daemon thread: the file system's row stays `deleting` until its directory is gone, so a
removal that a stop of Fargo cut short is done again at the next start (`Efs.resume`).
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("fargo.control")

ROOT_MODE = 0o755


class FileSystemDirectories:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._removing: dict[str, threading.Thread] = {}

    def path(self, file_system_id: str) -> Path:
        return self.root / file_system_id

    def create(self, file_system_id: str) -> None:
        """The file system's empty root directory (also when one is left from a create cut short)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(file_system_id)
        path.mkdir(mode=ROOT_MODE, exist_ok=True)
        os.chown(path, 0, 0, follow_symlinks=False)
        os.chmod(path, ROOT_MODE)  # mkdir's mode is cut by the umask

    def remove_later(self, file_system_id: str, then: Callable[[], None]) -> None:
        """Remove the directory in a thread of its own, then call `then` (once per file system at a time)."""
        with self._lock:
            if file_system_id in self._removing:
                return
            thread = threading.Thread(target=self._remove, args=(file_system_id, then), daemon=True,
                                      name=f"efs-remove-{file_system_id}")
            self._removing[file_system_id] = thread
        thread.start()

    def wait(self, timeout: float) -> None:
        """Give running removals up to `timeout` seconds in all; what is left is redone at the next start."""
        with self._lock:
            threads = list(self._removing.values())
        for thread in threads:
            thread.join(timeout / max(len(threads), 1))

    def _remove(self, file_system_id: str, then: Callable[[], None]) -> None:
        try:
            # rmtree neither follows symlinks nor leaves the tree (fd-based on Linux): a task's links are safe.
            shutil.rmtree(self.path(file_system_id), ignore_errors=True)
            if self.path(file_system_id).exists():
                raise OSError(f"{self.path(file_system_id)} could not be removed whole")
            then()
        except Exception:  # noqa: BLE001 - the row stays `deleting`; the next start tries again
            log.exception("removing the data of file system %s failed", file_system_id)
        finally:
            with self._lock:
                self._removing.pop(file_system_id, None)
