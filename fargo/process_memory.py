"""How `fargo up` keeps its resident memory close to what it uses (glibc's allocator, through ctypes).

Many short-lived worker threads (netlink, nftables, store, containerd calls) each get a malloc arena of their
own by default, and freed memory mostly stays mapped: a few hundred tasks started at once leave tens of MiB
resident that nothing uses. Two arenas are plenty for an asyncio program whose threads mostly wait, and a
trim now and then hands the free pages back. Both are no-ops where glibc is not the C library.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # from glibc's <malloc.h>
ARENAS = 2


@functools.cache  # find_library runs `ldconfig -p` (a fork of this whole process) each time it is asked
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_arenas() -> None:
    """Call before the first thread starts: arenas made earlier stay."""
    libc = _libc()
    if libc is not None and not libc.mallopt(_M_ARENA_MAX, ARENAS):
        log.debug("mallopt(M_ARENA_MAX) refused")


def trim() -> None:
    """Give the allocator's free pages back to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
