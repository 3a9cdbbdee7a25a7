"""Wall-clock seconds of a block, kept under a name (the build's reports)."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def timed(into: dict[str, float], key: str) -> Iterator[None]:
    """``with timed(seconds, "co"): ...`` sets ``seconds["co"]`` to the block's
    wall time, also when the block raises."""
    t = time.perf_counter()
    try:
        yield
    finally:
        into[key] = time.perf_counter() - t
