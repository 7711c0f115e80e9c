"""nftables scripts run in a chosen network namespace, through libnftables inside this process.

One libnftables context per namespace, kept: its netlink socket is born in that namespace (so any thread can
use it) and is never closed on the way. Closing an nftables socket waits for the kernel to free the last
transaction (an RCU grace period, 15-20 ms on this host), which `nft -f` pays on every run; a kept context
applies a whole VPC filter in about 1-6 ms, back to back too. A kept socket also keeps its namespace alive, so
`release_netns` must come before a namespace's name is removed (vpc_router does); a context whose path now
names another namespace is replaced on its next use.
"""
from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass

from fargo.network.netns import run_in_netns

_NFT_CTX_DEFAULT = 0
# One context at a time: libnftables keeps some state process-wide (its interface cache).
_lock = threading.Lock()
_library: ctypes.CDLL | None = None


class NftError(RuntimeError):
    """nft refused a script; the message is nft's own (which line, what it expected)."""


@dataclass(frozen=True)
class _Context:
    namespace: tuple[int, int] | None  # (device, inode) of the namespace it was made in; None: this process's
    handle: int


_contexts: dict[str | None, _Context] = {}


def _libnftables() -> ctypes.CDLL:
    global _library
    if _library is None:
        try:
            lib = ctypes.CDLL("libnftables.so.1")
        except OSError as error:
            raise NftError(f"libnftables.so.1 is missing (install the nftables package): {error}") from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        _library = lib
    return _library


def run_nft(script: str, netns_path: str | None = None) -> str:
    """Run `script` as one nft transaction in the namespace at `netns_path` (None: the host's); its output.

    Raises NftError with nft's message if any command fails (then none of them took effect), and OSError if
    the namespace cannot be entered.
    """
    lib = _libnftables()
    with _lock:
        handle = _context(lib, netns_path)
        code = lib.nft_run_cmd_from_buffer(handle, script.encode())
        # Each read hands back what the last command wrote, and starts the buffer anew.
        output = (lib.nft_ctx_get_output_buffer(handle) or b"").decode(errors="replace")
        errors = (lib.nft_ctx_get_error_buffer(handle) or b"").decode(errors="replace")
    if code != 0:
        raise NftError(errors.strip() or f"nft failed ({code})")
    return output


def release_netns(netns_path: str) -> None:
    """Close the kept context of that namespace (call it before the namespace's name goes)."""
    lib = _libnftables()
    with _lock:
        context = _contexts.pop(netns_path, None)
        if context is not None:
            lib.nft_ctx_free(context.handle)


def _context(lib: ctypes.CDLL, netns_path: str | None) -> int:
    namespace = _namespace_of(netns_path)
    known = _contexts.get(netns_path)
    if known is not None and known.namespace == namespace:
        return known.handle
    if known is not None:  # the path names another namespace now: let the old one go
        lib.nft_ctx_free(known.handle)
        del _contexts[netns_path]
    # The socket is opened in nft_ctx_new, in the namespace of the thread that calls it.
    handle = lib.nft_ctx_new(_NFT_CTX_DEFAULT) if netns_path is None else run_in_netns(
        netns_path, lambda: lib.nft_ctx_new(_NFT_CTX_DEFAULT))
    if not handle:
        raise NftError("libnftables could not make a context")
    lib.nft_ctx_buffer_output(handle)
    lib.nft_ctx_buffer_error(handle)
    _contexts[netns_path] = _Context(namespace, handle)
    return handle


def _namespace_of(netns_path: str | None) -> tuple[int, int] | None:
    if netns_path is None:
        return None
    info = os.stat(netns_path)
    return (info.st_dev, info.st_ino)
