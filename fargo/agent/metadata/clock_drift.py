"""How far the host clock may be off, as v4's ClockDrift reports it: read from the kernel's NTP state (adjtimex).

chrony and ntpd keep the kernel's maximum-error estimate and the unsynchronised flag up to date, so one
cheap syscall answers without asking the time daemon.
"""
from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass

SYNCHRONIZED = "SYNCHRONIZED"
NOT_SYNCHRONIZED = "NOT_SYNCHRONIZED"
_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


@dataclass(frozen=True)
class ClockDrift:
    error_bound_ms: float
    reference_time: float  # epoch seconds of the reading
    synchronized: bool


class _Timex(ctypes.Structure):
    # struct timex of <linux/timex.h>; ctypes lays out the padding as the C compiler does.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


_libc = ctypes.CDLL(None, use_errno=True)


def read_clock_drift() -> ClockDrift | None:
    """The kernel's view now (modes 0 only reads), or None where adjtimex is unavailable."""
    timex = _Timex()
    try:
        state = _libc.adjtimex(ctypes.byref(timex))
    except AttributeError:
        return None
    if state < 0:
        return None
    synchronized = state != _TIME_ERROR and not timex.status & _STA_UNSYNC
    return ClockDrift(error_bound_ms=timex.maxerror / 1000.0, reference_time=time.time(), synchronized=synchronized)
