"""nftables scripts run in a chosen network namespace, through libnftables inside this process.

Not the `nft` binary: closing an nftables netlink socket waits for the kernel to free the last transaction
(an RCU grace period, 15-20 ms on this host), which `nft -f` pays on every exit. Here a helper thread enters
the namespace, runs the script, hands back the result and only then frees its context, so a caller waits
for the transaction alone (1-3 ms).
"""
from __future__ import annotations

import ctypes
import threading

from fargo.network.netns import start_in_netns

_NFT_CTX_DEFAULT = 0
# libnftables keeps some state process-wide (its interface cache): one context at a time.
_lock = threading.Lock()
_library: ctypes.CDLL | None = None


class NftError(RuntimeError):
    """nft refused a script; the message is nft's own (which line, what it expected)."""


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
    """Run `script` as one nft transaction in the namespace at `netns_path` (None: this thread's); its output.

    Raises NftError with nft's message if any command fails (then none of them took effect).
    """
    lib = _libnftables()
    outcome: dict[str, object] = {}
    ready = threading.Event()

    def work() -> None:
        try:
            with _lock:
                context = lib.nft_ctx_new(_NFT_CTX_DEFAULT)
                if not context:
                    raise NftError("libnftables could not make a context")
                try:
                    lib.nft_ctx_buffer_output(context)
                    lib.nft_ctx_buffer_error(context)
                    code = lib.nft_run_cmd_from_buffer(context, script.encode())
                    output = (lib.nft_ctx_get_output_buffer(context) or b"").decode(errors="replace")
                    errors = (lib.nft_ctx_get_error_buffer(context) or b"").decode(errors="replace")
                    outcome["result"] = output if code == 0 else NftError(errors.strip() or f"nft failed ({code})")
                    ready.set()
                finally:
                    lib.nft_ctx_free(context)  # the slow part (see above): the caller has its answer already
        except BaseException as error:  # handed to the caller below
            outcome.setdefault("result", error)
        finally:
            ready.set()

    def failed(error: BaseException) -> None:
        outcome["result"] = error
        ready.set()

    start_in_netns(netns_path, work, failed)
    ready.wait()
    result = outcome["result"]
    if isinstance(result, BaseException):
        raise result
    return str(result)
