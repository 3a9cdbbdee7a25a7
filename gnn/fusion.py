"""The fusion head of the default model (V2HT-KG): one score per (post,
hashtag) from the V2HT network's logit and the signals of what the system
knows (gnn/history.py), each an option with its own ablation row:

- ``neural``: V2HT's logit, as a log-softmax over all hashtags of the post;
- ``memory``: the author's own tag counts and shares, and co-occurrence with
  them (per-user tag memory);
- ``copy``: votes of the TF-IDF nearest earlier posts, plain and sharpened
  towards near-duplicates (the copy path);
- ``zeroshot``: the share of a tag's words in the post's tokens (a tag needs
  no use at all to score);
- ``graph``: the memory, copy and zero-shot signals propagated one hop over
  the typed knowledge graph (cp, ss, po; row-normalised per type), so a rare
  tag next to what the user or the neighbours used is lifted;
- ``graphsem`` (not a default): the post's MiniLM cosine to the mean of each
  tag's typed neighbours' centroids and word embeddings, per type: a tag
  with few uses borrows its neighbours' meaning (a zero-shot embedding from
  the graph; it reaches every tag, not only those next to a signal);
- ``pop``: log popularity and the author's activity (context for the rest);
- ``cf``: the tags of users whose histories are alike (user-based
  collaborative filtering).

The head is a small MLP over those features, shared by every hashtag, and
trained with a full softmax over all hashtags (every hashtag is a negative)
on the validation posts, scored knowing the training posts only: the same
time offset it sees at test time, where it knows train + valid (deployed) or
train (strict). The last fifth of the validation period picks the epoch.
The head also learns from a training window: the last training posts,
scored knowing the training posts before them (hybrid.HybridContext.window);
more examples at the same kind of time offset made it steadier.
Weights are saved as JSON (no pickle).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..kg.errors import DataError
from .history import History, _row_normalise
from .metrics import PairedAccumulator

SEMANTIC = ("cp", "ss", "po")  # the typed relations the graph features propagate over
GROUPS = ("neural", "memory", "copy", "zeroshot", "graph", "pop", "category", "cf", "recent", "spread", "semantic",
          "tagsem", "graphsem", "graph2")
FEATURES = {
    "neural": ("neural",),
    "memory": ("hist_log", "hist_share", "cooc", "hist_sim"),
    "copy": ("knn", "knn_sharp", "knn_count", "knn_cooc", "words"),
    "zeroshot": ("lex",),
    "graph": ("g_cp_hist", "g_ss_hist", "g_po_hist", "g_cp_knn", "g_ss_knn", "g_po_knn",
              "g_cp_lex", "g_ss_lex", "g_po_lex"),
    "pop": ("pop", "activity"),
    "category": ("cat_1", "cat_2", "cat_3"),  # History.category_lift, one per level
    "cf": ("user_cf",),
    "recent": ("hist_recent", "hist_last", "pop_recent"),
    "spread": ("tag_users", "novelty"),
    "semantic": ("sem_knn", "sem_sharp", "sem_own"),
    "tagsem": ("sem_tag", "sem_proto"),
    "graphsem": tuple(f"g_{t}_{k}" for t in SEMANTIC for k in ("proto", "tag")),
    "graph2": ("g2_hist", "g2_knn", "g2_lex", "g2_sem"),
}
# the features read from the MiniLM nearest posts, and those that need the
# post's own MiniLM vector (all of the former, and the cosines)
SEM_NEIGHBOURS = FEATURES["semantic"] + ("g2_sem",)
QUERY_VECTORS = SEM_NEIGHBOURS + FEATURES["tagsem"] + FEATURES["graphsem"]
# the groups that need the MiniLM sentence encoder, and the typed graph
SENTENCE_GROUPS = ("semantic", "tagsem", "graphsem", "graph2")
GRAPH_GROUPS = ("graph", "graphsem", "graph2")


def uses_sentences(groups: Sequence[str]) -> bool:
    """Whether ``groups`` need MiniLM embeddings (of the posts, a new post)."""
    return any(g in SENTENCE_GROUPS for g in groups)


def uses_graph(groups: Sequence[str]) -> bool:
    """Whether ``groups`` need the typed graph (graph.pt)."""
    return any(g in GRAPH_GROUPS for g in groups)

# per-hashtag and per-author scalars, broadcast over the (post, hashtag) grid
PER_TAG = ("pop", "pop_recent", "tag_users")
PER_USER = ("activity", "novelty")
K_NEIGHBOURS = 100


def _unit(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def type_adjacency(graph, n: int) -> dict[str, sp.csr_matrix]:
    """Row-normalised adjacency per semantic relation of the graph snapshot."""
    from ..kg.schema import RELATIONS

    out = {}
    ei = graph.edge_index.numpy()
    et = graph.edge_type.numpy()
    for t in SEMANTIC:
        m = et == RELATIONS.index(t)
        a = sp.csr_matrix((np.ones(int(m.sum())), (ei[0, m], ei[1, m])), shape=(n, n))
        out[t] = _row_normalise(a).tocsr()
    return out


def typed_pattern(adjacency: dict) -> sp.csr_matrix:
    """1 where two hashtags share a cp, ss or po edge (type_adjacency's)."""
    return (sum(adjacency[k] for k in SEMANTIC) > 0).astype(np.float64).tocsr()


def two_hop(adjacency: dict) -> sp.csr_matrix:
    """The tags two typed (cp/ss/po) hops away, each hop over any of the
    three, weighted by the paths' share of the walk and row-normalised,
    transposed as the one-hop features use theirs: a signal's matrix times
    it gives each tag the mean over its two-hop neighbours (the one-hop
    ones are the graph group's)."""
    t = _row_normalise(typed_pattern(adjacency)).tocsr()
    t2 = (t @ t).tolil()
    t2.setdiag(0)
    return _row_normalise(t2.tocsr()).T.tocsr()


class SplitFeatures:
    """All sparse features of one split's posts under one history; dense
    (B, H, F) blocks on demand."""

    def __init__(self, hist: History, rows: np.ndarray | None, names: Sequence[str], adjacency=None,
                 neural: torch.Tensor | None = None, query: tuple | None = None, emb: np.ndarray | None = None,
                 tag_emb: np.ndarray | None = None, categories: Sequence[Sequence[str]] | None = None,
                 hop2: sp.csr_matrix | None = None):
        """Rows of the data set, or ``query`` = (token lists, user indices[,
        sentence vectors]) of new posts (then ``rows`` is None), with their
        ``categories`` (category paths; none given: no category). ``emb``: the
        sentence embeddings of every post of the data set (the semantic and
        tagsem groups); ``tag_emb``: those of every hashtag's words (tagsem);
        ``hop2``: two_hop(adjacency) where the caller keeps it (graph2)."""
        tokens, users = hist.query(rows) if query is None else query[:2]
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.n = len(tokens)
        self.names = list(names)
        self.H = hist.data.n_hashtags
        need = set(self.names)
        f: dict[str, object] = {}
        h = hist.hist(users).tocsr()
        share = _row_normalise(h).tocsr()
        if "hist_log" in need:
            f["hist_log"] = h.log1p()
        f["hist_share"] = share
        if "hist_sim" in need:
            f["hist_sim"] = hist.own_similar(tokens, users)
        if "cooc" in need:
            f["cooc"] = (share @ hist.cooc_cond).tocsr()
        sim = hist.similar(tokens, K_NEIGHBOURS)
        knn = _row_normalise(sim @ hist.X).tocsr()
        f["knn"] = knn
        s4 = sim.copy()
        s4.data = s4.data ** 4
        f["knn_sharp"] = (s4 @ hist.X).tocsr()
        s0 = sim.copy()
        s0.data = np.ones_like(s0.data)
        f["knn_count"] = (s0 @ hist.X).tocsr().log1p()
        if "knn_cooc" in need:
            f["knn_cooc"] = (knn @ hist.cooc_cond).tocsr()
        if "words" in need:
            f["words"] = hist.words(tokens)
        lex = hist.lex(tokens)
        f["lex"] = lex
        if "user_cf" in need:
            f["user_cf"] = hist.user_cf(users)
        if need & set(FEATURES["category"]):
            paths = ([hist.data.categories[r] for r in self.rows] if query is None else
                     list(categories) if categories is not None else [[]] * self.n)
            for name, m in zip(FEATURES["category"], hist.category_lift(paths)):
                f[name] = m
        # dense cosines: (query vectors, per-hashtag unit vectors), multiplied per block
        self.products: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if need & set(QUERY_VECTORS):
            if emb is None:
                raise DataError("the semantic features need sentence embeddings of the posts")
            qv = emb[self.rows] if query is None else query[2]
        if "sem_tag" in need:
            if tag_emb is None:
                raise DataError("the tag-semantic features need sentence embeddings of the hashtags")
            self.products["sem_tag"] = (qv, tag_emb)
        if "sem_proto" in need:
            self.products["sem_proto"] = (qv, hist.prototypes(emb))
        if adjacency is not None:
            for t in SEMANTIC:
                if f"g_{t}_proto" in need:
                    self.products[f"g_{t}_proto"] = (qv, _unit(adjacency[t] @ hist.prototypes(emb)))
                if f"g_{t}_tag" in need:
                    if tag_emb is None:
                        raise DataError("the graph's tag-semantic features need sentence embeddings of the hashtags")
                    self.products[f"g_{t}_tag"] = (qv, _unit(adjacency[t] @ tag_emb))
        if need & set(SEM_NEIGHBOURS):
            dsim = hist.dense_similar(emb, qv, K_NEIGHBOURS)
            f["sem_knn"] = _row_normalise(dsim @ hist.X).tocsr()
            d8 = dsim.copy()
            d8.data = d8.data ** 8
            f["sem_sharp"] = (d8 @ hist.X).tocsr()
            if "sem_own" in need:
                f["sem_own"] = hist.own_dense(emb, qv, users)
        if "hist_recent" in need:
            f["hist_recent"] = hist.recent_hist(users, 2.0)
        if "hist_last" in need:
            f["hist_last"] = hist.recent_hist(users, 0.25)
        if adjacency is not None:
            for t in SEMANTIC:
                a = adjacency[t].T.tocsr()  # score of h = mean over its neighbours' scores
                f[f"g_{t}_hist"] = (share @ a).tocsr()
                f[f"g_{t}_knn"] = (knn @ a).tocsr()
                f[f"g_{t}_lex"] = (lex @ a).tocsr()
            if need & set(FEATURES["graph2"]):
                a2 = two_hop(adjacency) if hop2 is None else hop2
                f["g2_hist"] = (share @ a2).tocsr()
                f["g2_knn"] = (knn @ a2).tocsr()
                f["g2_lex"] = (lex @ a2).tocsr()
                if "g2_sem" in need:
                    f["g2_sem"] = (f["sem_knn"] @ a2).tocsr()
        def scaled(v):
            return torch.from_numpy(v / max(float(v.max()), 1e-12)).float()

        self.per_tag = {"pop": scaled(hist.pop())}
        if "pop_recent" in need:
            self.per_tag["pop_recent"] = scaled(hist.recent_pop())
        if "tag_users" in need:
            self.per_tag["tag_users"] = scaled(hist.tag_users())
        self.per_user = {"activity": torch.from_numpy(np.log1p(hist.activity(users))).float()}
        if "novelty" in need:
            self.per_user["novelty"] = torch.from_numpy(hist.novelty(users)).float()
        self.neural = neural
        missing = [n for n in self.names if n not in f and n not in self.products and n not in PER_TAG + PER_USER + ("neural",)]
        if missing:
            raise DataError(f"feature(s) {', '.join(missing)} need the knowledge graph (graph.pt)")
        if "neural" in need and neural is None:
            raise DataError("the neural feature needs the V2HT network's scores")
        self.sparse = {k: v for k, v in f.items() if k in need}
        # every feature of every (post, hashtag), float16: epochs then only slice
        self.dense = torch.empty(self.n, self.H, len(self.names), dtype=torch.float16)
        for i in range(0, self.n, 512):
            self.dense[i:i + 512] = self._build(np.arange(i, min(i + 512, self.n))).half()
        self.sparse, self.products = {}, {}

    def _build(self, idx: np.ndarray) -> torch.Tensor:
        cols = []
        for n in self.names:
            if n in PER_TAG:
                cols.append(self.per_tag[n][None, :].expand(len(idx), -1))
            elif n in PER_USER:
                cols.append(self.per_user[n][idx][:, None].expand(-1, self.H))
            elif n == "neural":
                cols.append(torch.log_softmax(self.neural[idx].float(), dim=1))
            elif n in self.products:
                q, m = self.products[n]
                cols.append(torch.from_numpy(q[idx] @ m.T).float())
            else:
                cols.append(torch.from_numpy(self.sparse[n][idx].toarray()).float())
        return torch.stack(cols, dim=2)

    def block(self, idx: np.ndarray) -> torch.Tensor:
        """(B, H, F) float32 for positions ``idx`` of the split's rows."""
        x = self.dense[torch.as_tensor(idx, dtype=torch.long)]
        if self._cols is not None:
            x = x[..., self._cols]
        return x.float()

    _cols = None

    def subset(self, names: Sequence[str]) -> "SplitFeatures":
        """The same features restricted to ``names`` (an ablation), sharing memory."""
        base = self.__dict__.get("_base_names", self.names)
        missing = [n for n in names if n not in base]
        if missing:
            raise DataError(f"feature(s) {', '.join(missing)} were not computed")
        view = object.__new__(SplitFeatures)
        view.__dict__.update(self.__dict__)
        view._base_names = list(base)
        view._cols = torch.tensor([base.index(n) for n in names], dtype=torch.long)
        view.names = list(names)
        return view


# epochs whose heads are averaged into the one kept (fit_fusion)
AVERAGE_EPOCHS = 5


class FusionHead(nn.Module):
    def __init__(self, n_features: int, hidden: int = 32):
        super().__init__()
        self.linear = nn.Linear(n_features, 1)
        self.mlp = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.register_buffer("mu", torch.zeros(n_features))
        self.register_buffer("sd", torch.ones(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mu) / self.sd
        return (self.linear(z) + self.mlp(z)).squeeze(-1)


def feature_names(groups: Sequence[str]) -> list[str]:
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise DataError(f"unknown fusion group {bad[0]!r}; choose from {', '.join(GROUPS)}")
    return [n for g in GROUPS if g in groups for n in FEATURES[g]]


def _softmax_loss(logits: torch.Tensor, truth: Sequence[Sequence[int]]) -> torch.Tensor:
    logp = torch.log_softmax(logits, dim=1)
    rows = torch.tensor([i for i, t in enumerate(truth) for _ in t], dtype=torch.long)
    cols = torch.tensor([x for t in truth for x in t], dtype=torch.long)
    return -logp[rows, cols].mean()


def _fit_stats(feats: SplitFeatures, idx: np.ndarray, head: FusionHead, rng: np.random.Generator) -> None:
    sample = rng.choice(idx, size=min(len(idx), 256), replace=False)
    x = feats.block(np.sort(sample)).reshape(-1, len(feats.names))
    head.mu.copy_(x.mean(0))
    head.sd.copy_(x.std(0).clamp_min(1e-6))


def _train(parts: Sequence[tuple[SplitFeatures, list[list[int]], np.ndarray]], epochs: int, seed: int,
           batch: int = 64, lr: float = 1e-2, hidden: int = 32,
           on_epoch: Callable[[int, FusionHead], bool | None] | None = None) -> FusionHead:
    """Adam over the posts ``idx`` of each (features, truth, idx) part; a
    batch never mixes parts. ``on_epoch(epoch, head)`` after each epoch; a
    true answer stops training."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = FusionHead(len(parts[0][0].names), hidden)
    _fit_stats(parts[0][0], parts[0][2], head, rng)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-5)
    parts = [(f, t, np.array([i for i in idx if t[i]], dtype=np.int64)) for f, t, idx in parts]
    for ep in range(1, epochs + 1):
        head.train()
        batches = []
        for k, (_, _, idx) in enumerate(parts):
            order = rng.permutation(idx)
            batches += [(k, np.sort(order[i:i + batch])) for i in range(0, len(order), batch)]
        for j in rng.permutation(len(batches)):
            k, b = batches[j]
            feats, truth, _ = parts[k]
            loss = _softmax_loss(head(feats.block(b)), [truth[i] for i in b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if on_epoch is not None and on_epoch(ep, head):
            break
    return head


@torch.no_grad()
def score_block(head: FusionHead, feats: SplitFeatures, idx: np.ndarray) -> torch.Tensor:
    head.eval()
    return head(feats.block(idx))


def evaluate_head(head: FusionHead, feats: SplitFeatures, data, idx: np.ndarray | None = None,
                  batch: int = 64, offset: torch.Tensor | None = None) -> dict:
    """Metrics of the head's ranking; ``offset`` (H,) is subtracted from
    every post's scores first (evaluate.tail_offset)."""
    idx = np.arange(len(feats.rows)) if idx is None else idx
    acc = PairedAccumulator(data.longtail)
    for i in range(0, len(idx), batch):
        b = idx[i:i + batch]
        rows = feats.rows[b]
        s = score_block(head, feats, b)
        acc.add_scores(s if offset is None else s - offset, data.truth(rows), data.oov[rows])
    return acc.result()


def fit_fusion(valid: SplitFeatures, data, *, extra: SplitFeatures | None = None, seed: int = 0,
               max_epochs: int = 30, patience: int | None = 8, holdout: float = 0.2, select: str = "ndcg@10",
               average: int = AVERAGE_EPOCHS, progress: Callable[[str], None] | None = None) -> tuple[FusionHead, dict]:
    """Fit on the first (1 − ``holdout``) of the validation posts (row order:
    time order for chronological splits), and on every post of ``extra`` (the
    training window, see hybrid.HybridContext.window); the rest of the
    validation posts ranks the epochs, and training stops after ``patience``
    epochs without a better one. The head kept is the weight average of the
    ``average`` best epochs' heads (1: the best epoch's head alone): the
    holdout curve jumps between epochs at this learning rate, and the
    average sits between those jumps (as in stochastic weight averaging)."""
    say = progress or (lambda m: None)
    truth = data.truth(valid.rows)
    n = len(valid.rows)
    cut = int(round(n * (1 - holdout)))
    fit_idx, hold_idx = np.arange(cut), np.arange(cut, n)
    parts = [(valid, truth, fit_idx)]
    if extra is not None:
        if extra.names != valid.names:
            raise DataError("the training window's features differ from the validation posts'")
        parts.append((extra, data.truth(extra.rows), np.arange(len(extra.rows))))
    if average < 1:
        raise DataError(f"average must be at least 1 epoch, got {average}")
    curve: list[float] = []
    states: list[dict] = []

    def on_epoch(ep, head):
        v = evaluate_head(head, valid, data, hold_idx)["overall"][select]
        curve.append(v)
        states.append({k: t.detach().clone() for k, t in head.state_dict().items()})
        # the V2HT epochs' layout, * on a new best
        say(f"fusion {ep:>3}/{max_epochs}  holdout {select} {v:.4f}" + ("  *" if v >= max(curve) else ""))
        return patience is not None and ep - (int(np.argmax(curve)) + 1) >= patience

    head = _train(parts, max_epochs, seed, on_epoch=on_epoch)
    top = sorted(range(len(curve)), key=lambda e: (-curve[e], e))[:average]  # ties: the earlier epoch
    head.load_state_dict({k: sum(states[e][k] for e in top) / len(top) for k in states[0]})
    return head.eval(), {"epochs": top[0] + 1, "averaged_epochs": sorted(e + 1 for e in top),
                         "holdout": holdout, "window_posts": 0 if extra is None else len(extra.rows),
                         "holdout_curve": [round(v, 5) for v in curve]}


def save_head(head: FusionHead, names: Sequence[str], path: Path, meta: dict) -> None:
    from .runs import write_json

    write_json(Path(path), {"features": list(names), "hidden": head.mlp[0].out_features, "meta": meta,
                            "state": {k: v.tolist() for k, v in head.state_dict().items()}})


def load_head(path: Path) -> tuple[FusionHead, list[str], dict]:
    from .runs import read_json

    d = read_json(Path(path), "fusion head")
    try:
        names = list(d["features"])
        head = FusionHead(len(names), int(d["hidden"]))
        head.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in d["state"].items()})
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise DataError(f"not a fusion head ({type(e).__name__})", str(path)) from None
    if not all(math.isfinite(float(x)) for p in head.parameters() for x in p.detach().flatten()[:1]):
        raise DataError("fusion head has non-finite weights", str(path))
    return head.eval(), names, d.get("meta", {})
