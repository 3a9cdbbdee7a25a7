"""The process-wide malloc policy (cli/runtime.py): a large block freed and
allocated again reuses its pages instead of faulting fresh ones in.

Each case runs in its own interpreter: mallopt changes the whole process,
and glibc's adaptive threshold depends on what the process did before."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy is glibc's mallopt")

# Touch a 24 MB tensor, free it, then count the minor page faults of touching
# a second one of the same size.
PROBE = """
import json, resource, sys
import torch
from v2ht_kg.cli.runtime import keep_freed_memory
applied = keep_freed_memory()
n = 6 << 20
a = torch.empty(n).fill_(1.0)
del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = torch.empty(n).fill_(2.0)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "faults": faults, "pages": n * 4 // 4096}))
"""


def _probe(**env: str) -> dict:
    import json

    full = {k: v for k, v in os.environ.items() if k not in ("V2HT_MALLOC", "GLIBC_TUNABLES")}
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env={**full, **env})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_freed_block_is_reused_without_page_faults():
    kept = _probe()
    assert kept["applied"] is True
    assert kept["faults"] < kept["pages"] // 10, kept


def test_glibc_default_faults_the_block_in_again():
    # the cost the policy removes: without it the second block comes from fresh pages
    default = _probe(V2HT_MALLOC="0")
    assert default["applied"] is False
    assert default["faults"] > default["pages"] // 2, default


def test_users_own_malloc_tunables_win():
    out = _probe(GLIBC_TUNABLES="glibc.malloc.mmap_threshold=131072")
    assert out["applied"] is False
    assert out["faults"] > out["pages"] // 2, out
