"""One-shot `recommend --text` against a bare `import torch`, alternated in
one run (the issue's yardstick: ≤ 2 s, or ≤ 2x the import).

    .venv/bin/python bench/bench_oneshot.py RUN -w WORKDIR [--user U] [--repeat 5]

Each round runs `python -c "import torch"`, then `v2ht-kg recommend RUN
--text ... --json` as a new process, and times both wall clocks; it prints
every round, the recommend's own `timing` split, and the medians and their
ratio.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd[:3])}...: exit {out.returncode}: {out.stderr.strip()[-300:]}")
    return dt, out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("-w", "--workdir", required=True)
    ap.add_argument("--text", default="watching the game tonight with friends")
    ap.add_argument("--user", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    exe = Path(sys.executable)
    cli = exe.with_name("v2ht-kg")
    rec = [str(cli), "recommend", args.run, "--text", args.text, "-w", args.workdir, "--json"]
    if args.user:
        rec += ["--user", args.user]
    torch_s, rec_s = [], []
    print(f"{'round':>5} {'import torch s':>15} {'recommend s':>12}  timing")
    for i in range(args.repeat):
        t, _ = wall([str(exe), "-c", "import torch"])
        r, out = wall(rec)
        timing = json.loads(out).get("timing", {})
        torch_s.append(t)
        rec_s.append(r)
        print(f"{i + 1:5d} {t:15.2f} {r:12.2f}  {json.dumps(timing)}")
    mt, mr = statistics.median(torch_s), statistics.median(rec_s)
    print(f"median: import torch {mt:.2f} s, recommend {mr:.2f} s, ratio {mr / mt:.2f}x (goal ≤ 2 s or ≤ 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
