"""Simple baselines scored by the same full-ranking evaluator: the bar the
model must clear (docs/metrics.md).

- ``popularity``: use count over the known posts;
- ``user_history``: the author's own use count of each tag;
- ``history_cooc``: the author's tag shares + λ · co-occurrence with them;
- ``knn``: TF-IDF nearest known posts vote their tags (k, power);
- ``knn_history``: a · the author's tag shares + (1 − a) · the kNN vote shares;
- where the posts carry category paths (kuairec): ``category``, category
  popularity (Σ over the path's levels of w_l · the share of the known posts
  under the same prefix using the tag, History.category_share), and
  ``knn_category``: a · its shares + (1 − a) · the kNN vote shares.

Statistics come from the posts known under the protocol (gnn/protocol.py).
The free parameters (λ, k, power, a, w) are tuned on validation (scored with
the training posts known), then applied to the test split; a blend asked for
before it was tuned is an error. Popularity is added at a scale below any
other signal, so it only orders the tags the primary score ties on.
"""
from __future__ import annotations

from itertools import product
from typing import Sequence

import numpy as np
import scipy.sparse as sp
import torch

from ..kg.errors import DataError
from .history import History, _row_normalise, top_k_rows
from .metrics import PairedAccumulator
from .protocol import DEFAULT_PROTOCOL, check_protocol, known_rows

NAMES = ("popularity", "user_history", "history_cooc", "knn", "knn_history")
USER_NAMES = ("user_history", "history_cooc", "knn_history")  # need known authors
CATEGORY_NAMES = ("category", "knn_category")  # where the posts carry category paths
GRID = {
    "history_cooc": [{"lam": v} for v in (0.03, 0.1, 0.3, 1.0, 3.0)],
    "knn": [{"k": k, "power": p} for k, p in product((10, 25, 50, 100), (1.0, 2.0))],
    "knn_history": [{"a": a} for a in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)],
    "category": [{"w": list(w)} for w in ((1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1), (1, .3, .3), (.3, 1, .3),
                                           (.3, .3, 1))],
    "knn_category": [{"a": a} for a in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)],
}
# tuned in this order: a blend reads its parts' tuned parameters
TUNE_ORDER = ("history_cooc", "knn", "knn_history", "category", "knn_category")
TUNE_METRIC = "ndcg@10"
MAX_K = 100
_TIE = 1e-6  # popularity's scale: below any other signal's smallest non-zero step


class SplitSignals:
    """The sparse signals of one split's posts under one history, computed once."""

    def __init__(self, hist: History, rows: np.ndarray):
        self.rows = rows
        self._history = hist
        self._cat = None
        tokens, users = hist.query(rows)
        self.hist = hist.hist(users)
        self.share = _row_normalise(self.hist).tocsr()
        self.cooc = hist.cooc(users).tocsr()
        self.sim = hist.similar(tokens, MAX_K)
        self.X = hist.X
        pop = hist.pop()
        self.pop = torch.from_numpy(pop / max(pop.max(), 1e-12))

    def knn(self, k: int, power: float) -> sp.csr_matrix:
        s = top_k_rows(self.sim, k) if k < MAX_K else self.sim.copy()
        s.data = s.data ** power
        return (s @ self.X).tocsr()

    def category(self, w: Sequence[float]) -> sp.csr_matrix:
        if self._cat is None:
            self._cat = self._history.category_share([self._history.data.categories[r] for r in self.rows])
        return sum((wi * m for wi, m in zip(w, self._cat)), sp.csr_matrix(self._cat[0].shape)).tocsr()


class Baselines:
    NAMES = NAMES

    def __init__(self, data, protocol: str = DEFAULT_PROTOCOL):
        self.data = data
        self.protocol = check_protocol(protocol)
        # the baselines this data set supports, in report order; without
        # known authors the user-side ones would repeat popularity and kNN
        names = NAMES if data.has_users else tuple(n for n in NAMES if n not in USER_NAMES)
        self.names = names + (CATEGORY_NAMES if any(data.categories) else ())
        self.params: dict[str, dict] = {}
        self._signals: dict[str, SplitSignals] = {}

    def signals(self, split: str) -> SplitSignals:
        if split not in self._signals:
            known = known_rows(self.data, split, self.protocol)
            self._signals[split] = SplitSignals(History(self.data, known), self.data.rows[split])
        return self._signals[split]

    def raw(self, name: str, sig: SplitSignals, params: dict | None = None) -> sp.csr_matrix | None:
        """The primary score (sparse, aligned with sig.rows) or None for popularity."""
        if name not in self.names:
            raise DataError(f"unknown baseline {name!r}; choose one of {', '.join(self.names)}")
        if name == "popularity":
            return None
        if name == "user_history":
            return sig.hist
        if name in GRID:
            if params is None:
                raise DataError(f"blend weights missing for baseline {name!r}: tune them on validation first "
                                "(Baselines.tune or evaluate --baselines)")
            if name == "history_cooc":
                return sig.share + params["lam"] * sig.cooc
            if name == "knn":
                return sig.knn(params["k"], params["power"])
            if name == "category":
                return sig.category(params["w"])
            kp = self.params.get("knn")
            if kp is None:
                raise DataError(f"blend weights missing for baseline {name!r}: tune knn first")
            knn = _row_normalise(sig.knn(kp["k"], kp["power"]))
            if name == "knn_history":
                return params["a"] * sig.share + (1 - params["a"]) * knn
            cp = self.params.get("category")
            if cp is None:
                raise DataError("blend weights missing for baseline 'knn_category': tune category first")
            return (params["a"] * _row_normalise(sig.category(cp["w"])) + (1 - params["a"]) * knn).tocsr()
        raise AssertionError(f"baseline {name!r} is listed but has no score")

    def _evaluate(self, name: str, sig: SplitSignals, params: dict | None, batch: int = 512) -> dict:
        acc = PairedAccumulator(self.data.longtail)
        base = self.raw(name, sig, params)
        rows = sig.rows
        for i in range(0, len(rows), batch):
            sl = slice(i, i + batch)
            pop = sig.pop[None, :].expand(len(rows[sl]), -1)
            if base is None:
                scores = pop.clone()
            else:
                scores = torch.from_numpy(base[sl].toarray()) + _TIE * pop
            acc.add_scores(scores, self.data.truth(rows[sl]), self.data.oov[rows[sl]])
        return acc.result()

    def tune(self) -> dict[str, dict]:
        """Pick each baseline's parameters by validation NDCG@10 (training posts known)."""
        sig = self.signals("valid")
        for name in (n for n in TUNE_ORDER if n in self.names):
            best, best_v = None, -1.0
            for params in GRID[name]:
                v = self._evaluate(name, sig, params)["overall"][TUNE_METRIC]
                if v > best_v:
                    best, best_v = params, v
            self.params[name] = dict(best, valid=round(best_v, 6))
        return self.params

    def scores(self, name: str, split: str, rows: Sequence[int] | None = None) -> torch.Tensor:
        """Dense (B, H) scores of ``split``'s posts (all, or the given positions)."""
        sig = self.signals(split)
        base = self.raw(name, sig, self.params.get(name) if name in GRID else None)
        idx = np.arange(len(sig.rows)) if rows is None else np.asarray(rows)
        pop = sig.pop[None, :].expand(len(idx), -1)
        return pop.clone() if base is None else torch.from_numpy(base[idx].toarray()) + _TIE * pop

    def evaluate(self, split: str = "test", names: Sequence[str] | None = None) -> dict[str, dict]:
        """{baseline: {"overall", "longtail", "params"}} (default: every
        baseline the data set supports); tunes first when needed."""
        names = self.names if names is None else names
        if any(n in GRID and n not in self.params for n in names):
            self.tune()
        sig = self.signals(split)
        out = {}
        for name in names:
            params = self.params.get(name) if name in GRID else None
            out[name] = self._evaluate(name, sig, params)
            if params:
                out[name]["params"] = params
        return out


def random_scores(n_posts: int, n_hashtags: int, seed: int) -> torch.Tensor:
    """A reference point for tests and reports: uniform random scores."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n_posts, n_hashtags, generator=g)
