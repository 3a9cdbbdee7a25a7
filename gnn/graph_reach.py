"""How much of a run's long-tail misses the typed graph could reach at all.

The graph lift bar (long-tail R@10 +20% with the graph's features against
without them) asks the cp/ss/po relations to turn misses into hits. A missed
long-tail tag can only be lifted by one hop over those relations if one of
its typed neighbours is something the system already points at for that
post: a tag of the author's known posts, a tag of the TF-IDF or MiniLM
nearest known posts, or a tag already in the top k. This counts, per test
use of an in-vocabulary long-tail tag, whether the ranking hits it, and for
each miss which of those sources hold a typed neighbour of it. The hits the
bar asks for, set beside the reachable misses, say how far any one-hop use
of the graph could go. The same count within two typed hops says how far
a two-hop use could (the opt-in ``graph2`` fusion group is one).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import torch


def reach_counts(truth: Sequence[Sequence[int]], longtail: np.ndarray, top: np.ndarray,
                 sources: Mapping[str, sp.csr_matrix], typed: sp.csr_matrix, bar: float = 0.20) -> dict:
    """``truth``: per post its true in-vocabulary hashtags; ``top``: (posts, k)
    ranked hashtags; ``sources``: per name a (posts, H) matrix whose non-zero
    columns are the tags that source points at for the post (``top`` is added
    as the source "top"); ``typed``: (H, H), non-zero where two hashtags share
    a cp, ss or po edge."""
    typed = typed.tocsr()
    sources = {k: v.tocsr() for k, v in sources.items()}
    names = list(sources) + ["top"]
    lt_tags = np.flatnonzero(longtail)
    has_edge = np.diff(typed.indptr) > 0
    out = {"k": int(top.shape[1]), "longtail_tags": int(len(lt_tags)),
           "longtail_tags_with_typed_edge": int(has_edge[lt_tags].sum()), "positives": 0, "hits": 0,
           "misses": 0, "misses_with_typed_edge": 0,
           "misses_reachable": {n: 0 for n in names + ["any"]}}
    for i, tags in enumerate(truth):
        pos = [h for h in set(tags) if longtail[h]]
        if not pos:
            continue
        ranked = set(top[i].tolist())
        pointed = {n: set(sources[n][i].indices.tolist()) for n in sources}
        pointed["top"] = ranked
        for h in pos:
            out["positives"] += 1
            if h in ranked:
                out["hits"] += 1
                continue
            out["misses"] += 1
            nb = set(typed[h].indices.tolist())
            out["misses_with_typed_edge"] += bool(nb)
            reached = [n for n in names if nb & pointed[n]]
            for n in reached:
                out["misses_reachable"][n] += 1
            out["misses_reachable"]["any"] += bool(reached)
    # hits counted here are uses, not per-post recall, so the bar is read on them
    out["bar"] = bar
    out["hits_the_bar_adds"] = math.ceil(bar * out["hits"])
    reach = out["misses_reachable"]["any"]
    out["share_of_reachable_misses_needed"] = (out["hits_the_bar_adds"] / reach) if reach else None
    return out


def within_two_hops(typed: sp.csr_matrix) -> sp.csr_matrix:
    """Non-zero where two hashtags are one or two typed hops apart (a tag is
    not its own neighbour)."""
    t = (typed > 0).astype(np.float64)
    two = ((t @ t + t) > 0).astype(np.float64).tolil()
    two.setdiag(0)
    out = two.tocsr()
    out.eliminate_zeros()
    return out


def run_reach(run, run_dir, split: str = "test", k: int = 10, device: str = "cpu") -> dict:
    """reach_counts for a trained run (V2HT or the fusion head) on ``split``,
    its sources under the run's own protocol."""
    from pathlib import Path

    from ..kg.errors import DataError
    from .fusion import K_NEIGHBOURS, type_adjacency, typed_pattern
    from .hybrid import HybridContext, HybridScorer, load_hybrid, neural_scores, run_protocol
    from .runs import load_graph
    from .sentence import available

    data = run.data
    if not run.cfg.get("graph_path"):
        raise DataError("this run records no graph (graph.pt); the reach needs its typed relations", str(run_dir))
    rows = data.rows[split]
    protocol = run_protocol(run_dir, run.cfg)
    if load_hybrid(run_dir) is not None:
        scorer = HybridScorer(run, run_dir, device)
        ctx, scores = scorer.ctx, scorer.split_scores(split)
    else:
        ctx = HybridContext(data, None, None, device)
        scores = neural_scores(run.model, data, rows, device=device)
    adj = ctx.adj  # a head with graph features loaded the snapshot already
    if adj is None:
        names = [h.name for h in data.ds.hashtags]
        adj = type_adjacency(load_graph(Path(run.cfg["graph_path"]), names, data.ds.fingerprint), data.n_hashtags)
    typed = typed_pattern(adj)
    top = torch.topk(scores, min(k, data.n_hashtags), dim=1).indices.numpy()
    hist = ctx.history(split, protocol)
    tokens, users = hist.query(rows)
    sources = {"history": hist.hist(users), "knn": hist.similar(tokens, K_NEIGHBOURS) @ hist.X}
    if available():
        emb = ctx.embeddings()
        sources["semantic"] = hist.dense_similar(emb, emb[rows], K_NEIGHBOURS) @ hist.X
    truth, longtail = data.truth(rows), data.ds.longtail_mask()
    out = reach_counts(truth, longtail, top, sources, typed)
    two = reach_counts(truth, longtail, top, sources, within_two_hops(typed))
    out["within_two_hops"] = {k: two[k] for k in ("misses_with_typed_edge", "misses_reachable",
                                                   "share_of_reachable_misses_needed")}
    return {"split": split, "protocol": protocol, **out}
