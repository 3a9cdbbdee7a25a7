"""Does the default thread setting survive a neighbour?

    .venv/bin/python bench/bench_threads.py [--seconds 6]

Runs exact full ranking of the V2HT network (random weights, synthetic
INSVIDEO-like sizes: 15,751 hashtags) in a child process, alone and beside
one busy neighbour process, for:
- all cores with OpenMP's default (spinning) wait policy: the first default;
- all cores with OMP_WAIT_POLICY=PASSIVE;
- the free cores (gnn.trainer.free_cores) with PASSIVE: the default until
  2026-12-04;
- the free cores with the CLI's short spin (cli/openmp.py): the default now.
Prints posts/s and the slowdown the neighbour causes for each. Run it on a
quiet machine: the free-core count reads the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, os, sys, time
import torch
from v2ht_kg.gnn.trainer import set_threads
threads = None if sys.argv[1] == "free" else int(sys.argv[1])
n = set_threads(threads)
seconds = float(sys.argv[2])
torch.manual_seed(0)
H, D = 15751, 64
# the default model's pair MLP at its own shapes: (post, hashtag) pairs of
# 2*D inputs through two hidden layers (gnn/model.py defaults)
w1, w2, w3 = torch.randn(2 * D, 128), torch.randn(128, 64), torch.randn(64, 1)
e = torch.randn(H, D)
q = torch.randn(8, D)
done, t0 = 0, time.perf_counter()
with torch.inference_mode():
    while time.perf_counter() - t0 < seconds:
        for p in q:
            x = torch.cat([p.expand(H, D), e], 1)
            s = torch.relu(torch.relu(x @ w1) @ w2) @ w3
            done += 1
print(json.dumps({"threads": n, "posts_s": done / (time.perf_counter() - t0)}))
"""


def run(threads: str, policy: str | None, seconds: float, neighbour: bool) -> dict:
    """policy: an OMP_WAIT_POLICY, "cli" for the CLI's (cli/openmp.py), or None
    for OpenMP's own default."""
    from v2ht_kg.cli import openmp

    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"):
        env.pop(k, None)
    if policy == "cli":
        openmp.apply(env)
    elif policy:
        env["OMP_WAIT_POLICY"] = policy
    busy = None
    if neighbour:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, threads, str(seconds)], env=env,
                             capture_output=True, text=True, check=True)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=6.0)
    a = ap.parse_args()
    cores = str(len(os.sched_getaffinity(0)))
    settings = [("all cores, spinning (first default)", cores, None),
                ("all cores, PASSIVE", cores, "PASSIVE"),
                ("free cores, PASSIVE", "free", "PASSIVE"),
                ("free cores, short spin (default)", "free", "cli")]
    print(f"load average before: {os.getloadavg()[0]:.2f} on {cores} cores")
    for label, threads, policy in settings:
        alone = run(threads, policy, a.seconds, False)
        time.sleep(2.0)
        shared = run(threads, policy, a.seconds, True)
        time.sleep(2.0)
        print(f"{label:36s} alone {alone['posts_s']:7.1f} posts/s ({alone['threads']} threads)  "
              f"with a neighbour {shared['posts_s']:7.1f} ({shared['threads']} threads)  "
              f"slowdown {alone['posts_s'] / max(shared['posts_s'], 1e-9):5.2f}x", flush=True)


if __name__ == "__main__":
    main()
