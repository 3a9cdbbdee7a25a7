"""The new-to-user protocol of #HowYouTagTweets (EMNLP'21, the source of
twitter-hashtags-2013), as ``v2ht-kg evaluate RUN --protocol new-to-user``.

One ranked list per user: positives are the user's test hashtags that the
user never used before the test period; each positive brings 100 random
negatives drawn from the test-period hashtags the user never used. Both
need at least 5 "context" posts (known posts with the tag plus other users'
test posts with it). A (user, tag) pair is scored by the model's best score
over that user's test posts. Metrics as RankLib: MAP over the whole list,
P@5 (divided by min(5, list length)), nDCG@5 (gain 2^rel − 1).

Differences from the paper's setting, named in docs/metrics.md: candidates
are limited to the model's vocabulary (tags seen at least ``min_tag_count``
times before the test period), and the known posts follow our protocol.
Candidate lists are drawn once per sampling seed and frozen on disk.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..kg.errors import DataError
from .protocol import known_rows

NEGATIVES = 100
MIN_CONTEXT = 5


def build_lists(data, protocol: str, seed: int, negatives: int = NEGATIVES, min_context: int = MIN_CONTEXT) -> list[dict]:
    """[{"user", "pos": [ids], "neg": [ids]}] sorted by user."""
    test = data.rows["test"]
    known = known_rows(data, "test", protocol)
    H = data.n_hashtags
    known_cnt = np.zeros(H, dtype=np.int64)
    for r in known:
        known_cnt[data.tags[r]] += 1
    used_before: dict[int, set] = {}
    for r in known:
        used_before.setdefault(int(data.users[r]), set()).update(data.tags[r])
    used_ever: dict[int, set] = {u: set(s) for u, s in used_before.items()}
    test_by_user: dict[int, set] = {}
    test_cnt_user: dict[tuple, int] = {}
    test_cnt = np.zeros(H, dtype=np.int64)
    for r in test:
        u = int(data.users[r])
        for t in data.tags[r]:
            test_cnt[t] += 1
            test_cnt_user[(u, t)] = test_cnt_user.get((u, t), 0) + 1
        test_by_user.setdefault(u, set()).update(data.tags[r])
        used_ever.setdefault(u, set()).update(data.tags[r])
    test_tags = np.flatnonzero(test_cnt > 0)
    unknown = data._unknown
    rng = np.random.default_rng(seed)
    out = []
    for u in sorted(test_by_user):
        if unknown[u]:
            continue

        def context(t: int) -> int:
            return int(known_cnt[t] + test_cnt[t] - test_cnt_user.get((u, t), 0))

        pos = sorted(t for t in test_by_user[u] if t not in used_before.get(u, set()) and context(t) >= min_context)
        if not pos:
            continue
        pool = np.array([t for t in test_tags if t not in used_ever[u] and context(int(t)) >= min_context], dtype=np.int64)
        if len(pool) == 0:
            continue
        neg = rng.choice(pool, size=negatives * len(pos), replace=True)
        out.append({"user": u, "pos": [int(t) for t in pos], "neg": [int(t) for t in neg]})
    return out


def frozen_lists(data, protocol: str, seed: int, cache_dir: Path) -> list[dict]:
    """The lists for (protocol, seed), drawn once and kept in ``cache_dir``."""
    cache_dir = Path(cache_dir)
    path = cache_dir / f"new-to-user-{protocol}-seed{seed}.json"
    fp = data.ds.fingerprint
    if path.exists():
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if d.get("fingerprint") == fp and d.get("negatives") == NEGATIVES:
                return d["lists"]
        except (json.JSONDecodeError, KeyError, TypeError):
            pass  # unreadable or stale: draw again
    lists = build_lists(data, protocol, seed)
    from .runs import write_json

    cache_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, {"fingerprint": fp, "protocol": protocol, "seed": seed, "negatives": NEGATIVES,
                      "min_context": MIN_CONTEXT, "lists": lists})
    return lists


def list_metrics(scores: np.ndarray, rel: np.ndarray, k: int = 5) -> tuple[float, float, float]:
    """(AP, P@k, nDCG@k) of one list; ties broken by list position."""
    order = np.argsort(-scores, kind="stable")
    r = rel[order]
    n_pos = int(r.sum())
    if n_pos == 0:
        return 0.0, 0.0, 0.0
    hits = np.cumsum(r)
    ap = float((hits[r > 0] / (np.flatnonzero(r > 0) + 1)).sum() / n_pos)
    kk = min(k, len(r))
    p = float(r[:kk].sum() / kk)
    disc = 1.0 / np.log2(np.arange(2, kk + 2))
    dcg = float(((2.0 ** r[:kk] - 1) * disc).sum())
    ideal = np.sort(r)[::-1][:kk]
    idcg = float(((2.0 ** ideal - 1) * disc).sum())
    return ap, p, (dcg / idcg if idcg > 0 else 0.0)


def evaluate_lists(lists: Sequence[dict], user_scores: Callable[[int], np.ndarray]) -> dict:
    """Mean MAP, P@5, nDCG@5 over the lists; ``user_scores(u)`` gives (H,) scores."""
    aps, ps, ns = [], [], []
    for item in lists:
        s = user_scores(item["user"])
        cand = np.array(item["pos"] + item["neg"], dtype=np.int64)
        rel = np.zeros(len(cand))
        rel[:len(item["pos"])] = 1.0
        ap, p, n = list_metrics(s[cand], rel)
        aps.append(ap)
        ps.append(p)
        ns.append(n)
    m = lambda x: float(np.mean(x)) if x else 0.0  # noqa: E731
    return {"map": m(aps), "p@5": m(ps), "ndcg@5": m(ns), "lists": len(lists),
            "positives": int(sum(len(i["pos"]) for i in lists))}


def per_user_max(data, test_scores: torch.Tensor) -> Callable[[int], np.ndarray]:
    """user → (H,) best score over the user's test posts; ``test_scores``
    is aligned with data.rows["test"]."""
    users = data.users[data.rows["test"]]
    cache: dict[int, np.ndarray] = {}

    def f(u: int) -> np.ndarray:
        if u not in cache:
            idx = np.flatnonzero(users == u)
            cache[u] = test_scores[torch.as_tensor(idx)].float().max(dim=0).values.numpy()
        return cache[u]

    return f


def evaluate_new_to_user(data, test_scores: torch.Tensor | None, protocol: str, cache_dir: Path,
                         seeds: Sequence[int] = (0,), reference: bool = True) -> dict:
    """{"model": {...}, "random": {...}, "popularity": {...}} as mean ± std over
    the sampling seeds (each metric: {"mean", "std", "per_seed"})."""
    per: dict[str, list[dict]] = {}
    known = known_rows(data, "test", protocol)
    pop = np.zeros(data.n_hashtags)
    for r in known:
        pop[data.tags[r]] += 1
    for seed in seeds:
        lists = frozen_lists(data, protocol, seed, cache_dir)
        if test_scores is not None:
            per.setdefault("model", []).append(evaluate_lists(lists, per_user_max(data, test_scores)))
        if reference:
            rng = np.random.default_rng([seed, 7])
            per.setdefault("random", []).append(evaluate_lists(lists, lambda u: rng.random(data.n_hashtags)))
            per.setdefault("popularity", []).append(evaluate_lists(lists, lambda u: pop))
    out = {}
    for name, rows in per.items():
        out[name] = {}
        for key in ("map", "p@5", "ndcg@5"):
            vals = [r[key] for r in rows]
            mu = sum(vals) / len(vals)
            sd = math.sqrt(sum((v - mu) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
            out[name][key] = {"mean": mu, "std": sd, "per_seed": vals}
        out[name]["lists"] = rows[0]["lists"]
        out[name]["positives"] = rows[0]["positives"]
    if not per or not next(iter(per.values()))[0]["lists"]:
        raise DataError("no user has a test hashtag new to them with enough context posts: "
                        "the new-to-user protocol has nothing to rank")
    return out
