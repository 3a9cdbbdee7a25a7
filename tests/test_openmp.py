"""The OpenMP wait policy (cli/openmp.py): a short spin unless the user chose
their own, in the environment before torch loads its OpenMP runtime."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from v2ht_kg.cli import openmp

# records GOMP_SPINCOUNT and OMP_WAIT_POLICY as they are when torch is first imported
PROBE = """
import importlib.abc, json, os, sys
seen = {}
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.update(spin=os.environ.get("GOMP_SPINCOUNT"), policy=os.environ.get("OMP_WAIT_POLICY"),
                        block=os.environ.get("KMP_BLOCKTIME"))
        return None
sys.meta_path.insert(0, Watch())
import v2ht_kg.cli.app
import torch
print(json.dumps(seen))
"""


def test_the_short_spin_unless_the_user_chose():
    env: dict[str, str] = {}
    openmp.apply(env)
    assert env == {"GOMP_SPINCOUNT": openmp.SPINCOUNT, "KMP_BLOCKTIME": openmp.BLOCKTIME}
    for own in ({"OMP_WAIT_POLICY": "PASSIVE"}, {"GOMP_SPINCOUNT": "0"}, {"OMP_WAIT_POLICY": "ACTIVE"},
                {"KMP_BLOCKTIME": "200"}):
        env = dict(own)
        openmp.apply(env)
        assert env == own


def _seen(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "KMP_BLOCKTIME")}
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
                       env={**env, **extra})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_the_cli_sets_it_before_torch_loads():
    assert _seen() == {"spin": openmp.SPINCOUNT, "policy": None, "block": openmp.BLOCKTIME}
    assert _seen(OMP_WAIT_POLICY="PASSIVE") == {"spin": None, "policy": "PASSIVE", "block": None}
