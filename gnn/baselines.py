"""Non-neural baselines scored by the same full-ranking evaluator.

All statistics come from training posts only. Each baseline maps post rows
to a (B, H) score matrix; ``popularity`` is added with a weight below one
count, so it only orders hashtags the primary score ties on (the back-off).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp
import torch

from .data import TrainingData
from .metrics import MetricAccumulator, longtail_truth, topk_ids


class Baselines:
    NAMES = ("popularity", "user_history", "cooccurrence")

    def __init__(self, data: TrainingData):
        self.data = data
        H, U = data.n_hashtags, data.n_users
        counts = data.train_counts.double()
        # scaled into [0, 0.5]: always less than one co-occurrence or history count
        self.pop = 0.5 * counts / max(float(counts.max()), 1.0)
        train = data.rows["train"]
        ptr = np.cumsum([0] + [len(data.tags[r]) for r in train])
        ids = np.array([t for r in train for t in data.tags[r]], dtype=np.int64)
        # post x hashtag incidence of training posts; both statistics are products of it
        X = sp.csr_matrix((np.ones(len(ids)), ids, ptr), shape=(len(train), H))
        known = (~data._unknown).astype(np.float64)
        owner = sp.csr_matrix((known[data.users[train]], (data.users[train], np.arange(len(train)))),
                              shape=(U, len(train)))
        self.hist = (owner @ X).tocsr()  # the unknown user has an empty history
        cooc = (X.T @ X).tocsr()
        cooc.setdiag(0)
        cooc.eliminate_zeros()
        self.cooc = cooc

    def scores(self, name: str, rows: Sequence[int]) -> torch.Tensor:
        u = self.data.users[np.asarray(rows, dtype=np.int64)]
        B = len(u)
        if name == "popularity":
            base = torch.zeros(B, self.data.n_hashtags, dtype=torch.float64)
        elif name == "user_history":
            base = torch.from_numpy(self.hist[u].toarray())
        elif name == "cooccurrence":
            # Σ over the user's past tag uses of their training co-occurrence counts
            base = torch.from_numpy((self.hist[u] @ self.cooc).toarray())
        else:
            raise ValueError(f"unknown baseline {name!r}")
        return base + self.pop[None, :]

    def evaluate(self, split: str = "test", batch_size: int = 512, ks=(5, 10)) -> dict[str, dict]:
        """{baseline: {"overall": metrics, "longtail": metrics}}; see gnn.metrics."""
        rows = self.data.rows[split]
        out = {}
        for name in self.NAMES:
            acc, acc_lt = MetricAccumulator(ks), MetricAccumulator(ks)
            for i in range(0, len(rows), batch_size):
                chunk = rows[i:i + batch_size]
                top = topk_ids(self.scores(name, chunk), max(ks))
                truth = self.data.truth(chunk)
                acc.add(top, truth)
                acc_lt.add(top, longtail_truth(truth, self.data.longtail))
            out[name] = {"overall": acc.result(), "longtail": acc_lt.result()}
        return out


def random_scores(n_posts: int, n_hashtags: int, seed: int) -> torch.Tensor:
    """A reference point for tests and reports: uniform random scores."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n_posts, n_hashtags, generator=g)
