"""How `fargo up` keeps Python's cyclic garbage collector from pausing everything for tens of ms.

What `fargo up` loads as it starts (botocore's service models, protobuf descriptors, SQLAlchemy's tables:
about 150,000 objects) lives as long as the process, yet every full collection walked all of it with the event
loop held: 25-60 ms, about once every twenty sequential task starts, in the middle of whatever ran then.
Frozen once start-up is done, those objects are left out of every collection (a full one then took 2.5 ms).
What they hold is still freed by reference counting; only reference cycles among them would never be
collected, and start-up makes its lasting ones once.
"""
from __future__ import annotations

import gc


def freeze_what_start_loaded() -> None:
    gc.collect()  # start-up's own garbage goes first: frozen, it would stay
    gc.freeze()
