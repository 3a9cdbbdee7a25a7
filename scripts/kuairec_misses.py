"""Which kuairec test tags the default model misses, and how many of them
name the platform or its programmes (README, "kuairec").

    .venv/bin/python scripts/kuairec_misses.py WORKDIR [--seed 0]

WORKDIR is the kuairec work dir of `RESULTS_WORKDIR=... bash
scripts/results.sh kuairec` (its prepared data, graph.pt and the
runs/headline V2HT runs). The default head is fitted as the results' seed-N
row fits it (deployed protocol), then every in-vocabulary test tag use is a
hit (in the top 10) or a miss; prints the most missed tags and the share of
misses and hits whose tag holds one of PLATFORM_WORDS.
"""
from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
import torch

from v2ht_kg.gnn import fusion
from v2ht_kg.gnn.hybrid import HybridContext, dataset_default_groups, fit_on
from v2ht_kg.gnn.runs import load_graph, load_run
from v2ht_kg.kg.dataset import PreparedDataset

# Kuaishou, trending, official, promotion, assistant, creator, same city, work
PLATFORM_WORDS = ("快手", "热门", "官方", "推广", "助手", "创作者", "同城", "作品")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=15, help="most missed tags to list")
    a = ap.parse_args()
    found = sorted((a.workdir / "runs" / "headline").glob(f"v2ht-*-seed{a.seed}"))
    if not found:
        raise SystemExit(f"error: {a.workdir}: no runs/headline/v2ht-*-seed{a.seed} (run "
                         "`RESULTS_WORKDIR=... bash scripts/results.sh kuairec` first)")
    run = load_run(found[0])
    data = run.data
    ds = PreparedDataset(a.workdir / "data")
    names = [h.name for h in ds.hashtags]
    graph = load_graph(a.workdir / "graph.pt", names, ds.fingerprint)
    ctx = HybridContext(data, graph, None, "cpu")
    groups = dataset_default_groups(ds)
    valid, test = ctx.features("valid", "deployed", groups), ctx.features("test", "deployed", groups)
    head, _, _ = fit_on(valid, {"deployed": test}, data, groups, extra=ctx.window(groups), seed=a.seed)
    scores = torch.cat([fusion.score_block(head, test, np.arange(i, min(i + 128, test.n)))
                        for i in range(0, test.n, 128)])
    top = torch.topk(scores, 10, dim=1).indices.numpy()
    hit, miss = collections.Counter(), collections.Counter()
    for i, r in enumerate(data.rows["test"]):
        for t in data.tags[r]:
            (hit if t in top[i] else miss)[t] += 1
    platform = lambda t: any(w in names[t].replace(" ", "") for w in PLATFORM_WORDS)  # noqa: E731
    n_miss, n_hit = sum(miss.values()), sum(hit.values())
    p_miss = sum(c for t, c in miss.items() if platform(t))
    p_hit = sum(c for t, c in hit.items() if platform(t))
    print(f"in-vocabulary test tag uses: {n_hit} hits, {n_miss} misses (top 10, seed {a.seed}, groups "
          f"{','.join(groups)})")
    print(f"tags with a platform word: {p_miss} of the misses ({p_miss / max(n_miss, 1):.0%}), "
          f"{p_hit} of the hits ({p_hit / max(n_hit, 1):.0%})")
    print("most missed: tag, misses, hits")
    for t, c in miss.most_common(a.top):
        print(f"  {names[t].replace(' ', '')}  {c}  {hit[t]}")


if __name__ == "__main__":
    main()
