"""SizeInBytes of a file system, metered as EFS meters it: every object 2 KiB of metadata plus its data in
4 KiB increments (at least one) - regular files their logical size rounded up (less when sparse),
directories their entries' storage, symbolic links and special files 4 KiB [efs-ug metered-sizes]. An empty
file system is so 6144 bytes, as AWS shows.

Walking a tree is slow, so a size is kept and served until it is older than `max_age`; then the next caller
gets the kept one while a thread measures again. Only a file system never measured is measured in the
caller's thread (handlers run off the event loop).
"""
from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fargo import clock

log = logging.getLogger("fargo.control")

METADATA_BYTES = 2048
BLOCK = 4096
REMEASURE_AFTER_SECONDS = 5.0


def metered_size(root: Path) -> int:
    """The metered size of the tree at `root` (which itself counts); links are never followed."""
    total = _metered(os.lstat(root))
    stack = [root]
    while stack:  # iterative: a deep tree must not exhaust the stack
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:  # removed or unreadable while walking: metered as it was last seen
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += _metered(info)
            if stat.S_ISDIR(info.st_mode):
                stack.append(Path(entry.path))
    return total


def _metered(info: os.stat_result) -> int:
    if stat.S_ISREG(info.st_mode):
        data = min(_blocks(info.st_size), _blocks(info.st_blocks * 512))  # sparse files: what they use
    elif stat.S_ISDIR(info.st_mode):
        data = _blocks(info.st_size)
    else:
        data = BLOCK
    return METADATA_BYTES + max(data, BLOCK)


def _blocks(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


@dataclass(frozen=True)
class Measured:
    value: int
    at: float  # epoch seconds


class SizeMeter:
    def __init__(self, measure: Callable[[str], int], max_age: float = REMEASURE_AFTER_SECONDS) -> None:
        self._measure = measure
        self._max_age = max_age
        self._lock = threading.Lock()
        self._sizes: dict[str, Measured] = {}
        self._measuring: set[str] = set()

    def size(self, file_system_id: str) -> Measured:
        with self._lock:
            kept = self._sizes.get(file_system_id)
        if kept is None:
            return self._measure_now(file_system_id)
        if clock.now() - kept.at > self._max_age:
            self._measure_later(file_system_id)
        return kept

    def forget(self, file_system_id: str) -> None:
        with self._lock:
            self._sizes.pop(file_system_id, None)

    def _measure_now(self, file_system_id: str) -> Measured:
        measured = Measured(self._measure(file_system_id), clock.now())
        with self._lock:
            self._sizes[file_system_id] = measured
        return measured

    def _measure_later(self, file_system_id: str) -> None:
        with self._lock:
            if file_system_id in self._measuring:
                return
            self._measuring.add(file_system_id)
        threading.Thread(target=self._remeasure, args=(file_system_id,), daemon=True,
                         name=f"efs-meter-{file_system_id}").start()

    def _remeasure(self, file_system_id: str) -> None:
        try:
            self._measure_now(file_system_id)
        except OSError:  # the directory went (the file system is being deleted): keep the last size
            log.debug("metering %s failed", file_system_id, exc_info=True)
        finally:
            with self._lock:
                self._measuring.discard(file_system_id)
