"""The one clock: epoch seconds as AWS's JSON protocol carries them (float with fraction)."""
from __future__ import annotations

import time


def now() -> float:
    return round(time.time(), 3)
