"""Timestamps as the metadata and credentials endpoints write them (Go's time.Time in UTC)."""
from __future__ import annotations

from datetime import datetime, timezone


def rfc3339_nano(epoch: float) -> str:
    """Go's RFC3339Nano: fraction digits with trailing zeros dropped, none at all on whole seconds."""
    # Epoch floats hold about microseconds; finer digits would be rounding noise.
    micros = round(epoch * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:06d}".rstrip("0")
    return text + "Z"


def rfc3339_seconds(epoch: float) -> str:
    """RFC3339 to the second, e.g. 2019-08-01T05:20:30Z (credentials Expiration, ClockDrift reference)."""
    return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
