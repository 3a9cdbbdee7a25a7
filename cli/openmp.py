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
# Intel's OpenMP (a torch built against it) reads KMP_BLOCKTIME instead, in
# milliseconds, 200 by default: far too long beside a neighbour, and a
# millisecond is its finest step, so it sleeps at once, as PASSIVE did.
BLOCKTIME = "0"
_OWN = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def apply(environ: MutableMapping[str, str] = os.environ) -> None:
    """The short spin (GNU OpenMP; Intel's sleeps at once), unless the user
    chose a wait policy, spin count or block time of their own (theirs
    wins)."""
    if not any(k in environ for k in _OWN):
        environ["GOMP_SPINCOUNT"] = SPINCOUNT
        environ["KMP_BLOCKTIME"] = BLOCKTIME
