"""Timestamps as the metadata and credentials endpoints write them (Go's time.Time in UTC)."""
from __future__ import annotations

from datetime import datetime, timezone


def rfc3339_nano(epoch: float) -> str:
    """Go's RFC3339Nano of epoch seconds (a float holds about microseconds; finer digits would be noise)."""
    return rfc3339_nano_ns(round(epoch * 1_000_000) * 1000)


def rfc3339_nano_ns(epoch_ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped, and the dot with them."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    fraction = f"{nanos:09d}".rstrip("0")
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{fraction}" if fraction else "") + "Z"


def rfc3339_seconds(epoch: float) -> str:
    """RFC3339 to the second, e.g. 2019-08-01T05:20:30Z (credentials Expiration, ClockDrift reference)."""
    return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
