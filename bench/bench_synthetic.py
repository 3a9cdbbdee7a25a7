"""Generation time, peak memory and output size of the synthetic presets.

    /work/venv/bin/python bench/bench_synthetic.py [--insvideo] [--keep DIR]

Each preset runs in a fresh child process so that its peak RSS is its own.
insvideo (213,847 posts, about 3.8 GB of features) runs only with --insvideo.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _one(preset: str, out: Path, seed: int) -> None:
    from v2ht_kg.kg.synthetic import generate_preset

    t0 = time.perf_counter()
    meta = generate_preset(preset, out, seed=seed)
    secs = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    s = meta["stats"]
    print(json.dumps({"preset": preset, "seconds": round(secs, 2), "posts_per_s": round(s["posts"] / secs),
                      "peak_rss_mb": round(peak_mb), "disk_mb": round(size / 2**20, 1), **s}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--insvideo", action="store_true", help="also run the INSVIDEO-scale preset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="write the folders here instead of a temporary folder")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        _one(a.one, a.out, a.seed)
        return
    presets = ["tiny", "small"] + (["insvideo"] if a.insvideo else [])
    root = a.keep or Path(tempfile.mkdtemp(prefix="bench-synthetic-"))
    try:
        for p in presets:
            out = root / p
            if out.exists():
                shutil.rmtree(out)
            subprocess.run([sys.executable, __file__, "--one", p, "--out", str(out), "--seed", str(a.seed)], check=True)
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
