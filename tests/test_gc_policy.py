"""The command line's garbage-collector policy (cli/runtime.fewer_gc_passes):
the CLI applies it, V2HT_GC=0 keeps Python's default, and reading a data
set's posts then takes a small fraction of the collector's passes.

Each case runs in its own interpreter: the thresholds are process-wide."""
from __future__ import annotations

import json
import os
import subprocess
import sys

# main() as the `v2ht-kg` script runs it, with the Typer app swapped for a
# probe that reports the thresholds it runs under
CLI_PROBE = """
import gc, json
default = gc.get_threshold()
from v2ht_kg.cli import app as cli

def probe():
    print(json.dumps({"default": default, "now": gc.get_threshold()}), flush=True)
    raise SystemExit(0)

cli.app = probe
cli.main()
"""

# 30,000 posts.jsonl lines read as the data set reads them, counting the
# collector's passes over each generation
READ_PROBE = """
import gc, json, sys, tempfile
from pathlib import Path
from v2ht_kg.cli import runtime
from v2ht_kg.kg.dataset import PostRow, _typed_rows
if sys.argv[1] == "policy":
    runtime.fewer_gc_passes()
with tempfile.TemporaryDirectory() as d:
    p = Path(d) / "posts.jsonl"
    p.write_text("".join(json.dumps({"row": i, "id": f"p{i}", "user": i % 97, "split": "train",
                                     "tags": [i % 50, 7], "tokens": ["a", "b", str(i)]}) + "\\n"
                         for i in range(30000)))
    gc.collect()
    before = [g["collections"] for g in gc.get_stats()]
    rows = _typed_rows(p, PostRow)
    after = [g["collections"] for g in gc.get_stats()]
print(json.dumps({"rows": len(rows), "passes": [a - b for a, b in zip(after, before)]}))
"""


def _run(code: str, *args: str, **env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if k != "V2HT_GC"}
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                       env={**full, **env})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_the_cli_runs_the_collector_less_often_unless_told_not_to():
    from v2ht_kg.cli.runtime import GC_THRESHOLDS

    got = _run(CLI_PROBE)
    assert tuple(got["now"]) == GC_THRESHOLDS and tuple(got["default"]) != GC_THRESHOLDS
    kept = _run(CLI_PROBE, V2HT_GC="0")
    assert kept["now"] == kept["default"]


def test_reading_posts_takes_a_fraction_of_the_passes():
    default, policy = _run(READ_PROBE, "default"), _run(READ_PROBE, "policy")
    assert default["rows"] == policy["rows"] == 30000
    # Python's default passes over the young generation every 700 net
    # allocations: hundreds here, and full passes over everything alive
    assert sum(default["passes"]) > 100 and default["passes"][2] >= 1, default
    assert sum(policy["passes"]) * 20 < sum(default["passes"]) and policy["passes"][2] == 0, policy
