"""Process-wide memory policy for the command line and the bench scripts.

Training allocates and frees the same large tensors at every step: at
INSVIDEO size the propagation's per-edge values are 14-29 MB each (3.6M
directed edges), and a step makes dozens. glibc's malloc serves blocks over
its mmap threshold with fresh mmap()s and returns them to the kernel on
free, so every step paid for them again in page faults: 16,000 minor faults
and 50-90 ms of system time a step, where the faulting ops (index_select,
fill_, copy_ of those values) ran 5-10x slower than on warm memory.
Raising the threshold to glibc's maximum (32 MiB on 64-bit) and keeping
freed memory in the heap lets the next step reuse the same pages: one
INSVIDEO step 0.28-0.29 -> 0.21 s, no minor faults left (docs/benchmarks.md).
The values computed are the same; only where the memory comes from changes.

Python's cyclic garbage collector gets the same treatment (``fewer_gc_passes``).
"""
from __future__ import annotations

import ctypes
import gc
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc refuses more (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 1 << 30  # freed heap kept for reuse, up to this much above the top


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse large freed blocks instead of unmapping them.

    True when applied. Nothing happens (False) outside glibc, with
    ``V2HT_MALLOC=0``, or when the user's own ``GLIBC_TUNABLES`` already set
    malloc: theirs wins."""
    if os.environ.get("V2HT_MALLOC", "1") == "0" or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        libc = ctypes.CDLL(None)  # the interpreter's own symbols, libc's among them
        mallopt = libc.mallopt
        # musl and others export mallopt as a stub; only glibc has this symbol
        libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


# Container allocations between young-generation passes (Python's default: 700),
# then young passes per middle one and middle passes per full one (default 10, 10).
GC_THRESHOLDS = (100_000, 20, 20)


def fewer_gc_passes() -> bool:
    """Run Python's cyclic garbage collector far less often.

    The collector runs after every 700 net container allocations, and every
    100th of those passes walks every object alive. Importing torch and
    reading a data set's posts (26k JSON lines on twitter-2013) allocate
    millions of containers, almost none of them garbage and none in
    reference cycles: a one-shot ``recommend`` spent about 0.4 s of its 1.9 s
    in those passes (0.15 s of the imports, half of the posts' 0.24 s).
    Cycles are still collected, later. True when applied; ``V2HT_GC=0``
    keeps Python's default."""
    if os.environ.get("V2HT_GC", "1") == "0":
        return False
    gc.set_threshold(*GC_THRESHOLDS)
    return True


def apply() -> bool:
    """Both policies, as the CLI runs under them (the bench scripts call
    this too, so their figures are the CLI's); True when the malloc one
    applied."""
    fewer_gc_passes()
    return keep_freed_memory()
