"""``load`` pauses the cyclic garbage collector while it builds millions of objects, and leaves the collector as
it found it: enabled, nothing of the caller's frozen objects unfrozen, and what it made collectable."""

from __future__ import annotations

import gc

import ocilens
from ocilens.image import gc_paused


def test_the_collector_is_enabled_again_and_the_objects_made_are_old() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        made = [[i] for i in range(50_000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    # the young generation does not hold them: the next collection of it does not trace 50,000 lists again
    assert gc.get_count()[0] < 1_000
    assert any(x is made for x in gc.get_objects(generation=2))


def test_a_callers_frozen_objects_stay_frozen() -> None:
    kept = [[i] for i in range(1_000)]
    gc.freeze()
    try:
        assert not any(x is kept for x in gc.get_objects())  # frozen: in no generation the collector traces
        img = ocilens.sample_image(progress=False)
        assert len(img.files) > 0
        assert gc.isenabled() and gc.get_freeze_count() > 0
        assert not any(x is kept for x in gc.get_objects())  # still frozen
    finally:
        gc.unfreeze()
    assert kept


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_cyclic_garbage_made_meanwhile_is_still_collected() -> None:
    with gc_paused():
        a: list = []
        a.append(a)
        probe = id(a)
        del a
    gc.collect()
    assert all(id(x) != probe for x in gc.get_objects())
