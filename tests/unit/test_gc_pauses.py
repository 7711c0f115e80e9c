"""What `fargo up` loaded as it started is left out of the garbage collector's walks; later garbage is not."""
from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from fargo.gc_pauses import freeze_what_start_loaded


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


@pytest.fixture
def frozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # (this test process goes on with every other test)


def test_start_up_objects_are_frozen_and_later_cycles_are_still_collected(frozen: None) -> None:
    loaded = {"model": [object() for _ in range(3)]}  # what start-up loaded and keeps
    dropped = _Node()  # start-up's own garbage
    dropped_gone = weakref.ref(dropped)
    del dropped
    before = gc.get_freeze_count()
    freeze_what_start_loaded()

    assert dropped_gone() is None  # collected first, not frozen for good
    assert gc.get_freeze_count() > before
    assert not any(o is loaded for o in gc.get_objects())  # a full collection does not walk it
    later = _Node()
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None
