"""Ordered work on a few threads, for producers whose heavy parts release
the GIL (numpy sampling and casts, calls into the JVM)."""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: int = 4) -> Iterator[R]:
    """fn over items on ``workers`` threads, results in item order, with at
    most ``ahead`` results computed ahead of the consumer (Executor.map
    submits every item at once and would hold every result in memory). An
    exception in fn is raised here, at its item's turn. ``workers`` 0 runs
    fn inline; 1 is one thread working ahead of the consumer."""
    if workers <= 0:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        queue: deque = deque()
        try:
            for item in items:
                queue.append(pool.submit(fn, item))
                if len(queue) >= ahead:
                    yield queue.popleft().result()
            while queue:
                yield queue.popleft().result()
        finally:
            for f in queue:  # the consumer stopped early: drop what is not started
                f.cancel()
