"""How torch's OpenMP threads wait at a barrier: set before torch loads its
OpenMP runtime (libgomp reads the environment once, when it loads), by the
CLI and by the bench scripts, so the benches time what a user runs.

A thread that finds no work spins GOMP_SPINCOUNT times, then sleeps. Spinning
without end (OpenMP's default, 300,000 spins) steals the core a peer or
another process needs: full rank fell 5-40x beside one busy process. Never
spinning (OMP_WAIT_POLICY=PASSIVE, the default until 2026-12-04) pays a
futex wake-up at each of the hundreds of parallel regions of a training
step. Measured on the 2-core Intel VM, 2 threads (docs/benchmarks.md, "How
OpenMP threads wait"), against PASSIVE: an INSVIDEO training step 22% faster
alone and 19% slower beside a process busy on one core; the bf16 full rank
22% faster alone, 12% slower beside it. Neither collapses as the endless spin
does (5x for the training step)."""
from __future__ import annotations

import os
from typing import MutableMapping

SPINCOUNT = "3000"  # about 10 microseconds of spinning here


def apply(environ: MutableMapping[str, str] = os.environ) -> None:
    """The short spin, unless the user chose a wait policy or spin count of
    their own (theirs wins)."""
    if "OMP_WAIT_POLICY" not in environ and "GOMP_SPINCOUNT" not in environ:
        environ["GOMP_SPINCOUNT"] = SPINCOUNT
