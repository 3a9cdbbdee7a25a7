"""kg.prefetch.ordered_map: order, bounded look-ahead, errors at their turn."""
from __future__ import annotations

import threading
import time

import pytest

from v2ht_kg.kg.prefetch import ordered_map


@pytest.mark.parametrize("workers", [0, 1, 2, 3])
def test_results_keep_item_order(workers):
    def slow_square(i):
        time.sleep(0.002 * ((7 * i) % 5))  # later items often finish first
        return i * i

    assert list(ordered_map(slow_square, range(30), workers=workers, ahead=4)) == [i * i for i in range(30)]


def test_look_ahead_is_bounded():
    started = []
    lock = threading.Lock()

    def record(i):
        with lock:
            started.append(i)
        return i

    it = ordered_map(record, range(100), workers=2, ahead=3)
    assert next(it) == 0
    time.sleep(0.05)
    assert max(started) <= 3  # at most `ahead` items submitted past the one consumed
    assert list(it) == list(range(1, 100))


def test_an_error_is_raised_at_its_item():
    def fail_at_5(i):
        if i == 5:
            raise ValueError("item 5")
        return i

    got = []
    with pytest.raises(ValueError, match="item 5"):
        for x in ordered_map(fail_at_5, range(10), workers=2, ahead=2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]
