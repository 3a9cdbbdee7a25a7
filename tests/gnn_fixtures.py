"""A small seeded prepared data set (kg/dataset.py format 2) and a stand-in
model that follows the gnn contract, for the data pipeline and trainer tests.

Each user favours a few hashtags, each hashtag has a cue word that tends to
appear in the text, and each user's visual frames carry a signature, so both
the user history and the content predict the tags.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


def write_prepared(root: Path, *, n_users: int = 6, n_tags: int = 30, posts_per_user: int = 20,
                   visual: bool = True, acoustic: bool = True, unknown_user: bool = False,
                   seed: int = 0, longtail_threshold: int = 6) -> Path:
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "features").mkdir(parents=True, exist_ok=True)
    names = [f"w{i}" if i % 3 else f"w{i} x{i}" for i in range(n_tags)]
    words = [n.split() for n in names]
    fav = [rng.choice(n_tags, size=4, replace=False) for _ in range(n_users)]
    users = [{"id": 0, "name": "<unknown>" if unknown_user else "u0"}] + \
            [{"id": i, "name": f"u{i}"} for i in range(1, n_users)]
    posts = []
    for u in range(n_users):
        for j in range(posts_per_user):
            k = int(rng.integers(1, 4))
            tags = sorted(set(rng.choice(fav[u], size=min(k, 2), replace=False).tolist()
                              + ([int(rng.integers(n_tags))] if k == 3 else [])))
            tokens = [words[t][0] for t in tags if rng.random() < 0.8] + \
                     [f"noise{int(rng.integers(10))}" for _ in range(int(rng.integers(0, 3)))]
            if j == 0:
                tokens = []  # one empty text per user
            split = "train" if j < posts_per_user * 0.7 else ("valid" if j < posts_per_user * 0.85 else "test")
            if split != "train":
                tokens = tokens + ["heldout"]  # a word Word2Vec must never see
            posts.append({"id": f"p{u}_{j}", "user": u, "split": split, "tags": tags, "tokens": tokens,
                          "text": " ".join(tokens), "time": None})
    order = rng.permutation(len(posts))
    posts = [posts[i] for i in order]
    for r, p in enumerate(posts):
        p["row"] = r
    posts = [{"row": p["row"], **{k: v for k, v in p.items() if k != "row"}} for p in posts]
    count = np.zeros(n_tags, dtype=int)
    tcount = np.zeros(n_tags, dtype=int)
    for p in posts:
        if p["split"] != "test":  # format 2: counts over the posts before the test period
            count[p["tags"]] += 1
        if p["split"] == "train":
            tcount[p["tags"]] += 1
    hashtags = [{"id": i, "name": names[i], "words": words[i], "surfaces": [names[i].replace(" ", "")],
                 "count": int(count[i]), "train_count": int(tcount[i]),
                 "longtail": bool(count[i] < longtail_threshold)} for i in range(n_tags)]
    for u in users:
        mine = [p for p in posts if p["user"] == u["id"]]
        u["n_posts"] = len(mine)
        u["n_train"] = sum(p["split"] == "train" for p in mine)
    features = {}
    sig = rng.normal(size=(n_users, 8))
    if visual:
        x = rng.normal(scale=0.3, size=(len(posts), 5, 8)) + sig[[p["user"] for p in posts]][:, None, :]
        for r in range(0, len(posts), 4):
            x[r, 3:] = 0.0  # short videos are zero padded
        np.save(root / "features" / "visual.npy", x.astype(np.float16))
        features["visual"] = {"steps": 5, "dim": 8}
    if acoustic:
        np.save(root / "features" / "acoustic.npy", rng.normal(size=(len(posts), 4, 3)).astype(np.float16))
        features["acoustic"] = {"steps": 4, "dim": 3}
    checksums = {"hashtags.jsonl": _write_jsonl(root / "hashtags.jsonl", hashtags),
                 "users.jsonl": _write_jsonl(root / "users.jsonl", users),
                 "posts.jsonl": _write_jsonl(root / "posts.jsonl", posts)}
    manifest = {"format": 2, "params": {"longtail_threshold": longtail_threshold, "seed": seed},
                "counts": {"posts": len(posts), "hashtags": n_tags, "users": n_users},
                "features": features, "checksums": checksums}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return root


def write_graph(ds_root: Path, path: Path, names: list[str] | None = None) -> Path:
    """A PyG snapshot (kg/schema.py) with a ring of co-occurrence edges."""
    from torch_geometric.data import Data

    from v2ht_kg.kg.dataset import PreparedDataset

    ds = PreparedDataset(ds_root)
    names = names if names is not None else [h.name for h in ds.hashtags]
    n = len(names)
    a = torch.arange(n)
    b = (a + 1) % n
    g = Data(names=names, longtail=torch.tensor([h.longtail for h in ds.hashtags]),
             count=torch.tensor([h.train_count for h in ds.hashtags]),
             edge_index=torch.stack([torch.cat([a, b]), torch.cat([b, a])]),
             edge_type=torch.full((2 * n,), 3), edge_weight=torch.ones(2 * n), fingerprint=ds.fingerprint)
    g.num_nodes = n
    torch.save(g, path)
    return path


class TinyModel(nn.Module):
    """Stand-in for gnn.model.V2HT with the same methods: masked mean pooling
    per modality, a linear user map, a dot product with hashtag embeddings
    (after one mean-neighbour step when propagation is on)."""

    def __init__(self, cfg: dict, init_emb: torch.Tensor, graph=None):
        super().__init__()
        d = cfg["d_hashtag"]
        self.cfg = cfg
        self.emb = nn.Parameter(init_emb.clone().float())
        self.bias = nn.Parameter(torch.zeros(cfg["n_hashtags"]))
        self.proj = nn.ModuleDict({m: nn.Linear(dim, d) for m, dim in cfg["input_dims"].items()})
        self.user = nn.Linear(cfg["d_user_in"], d) if cfg["use_user"] else None
        self.drop = nn.Dropout(0.1)
        if cfg["use_propagation"]:
            assert graph is not None
            self.register_buffer("edge_index", graph.edge_index.clone())
        else:
            self.edge_index = None

    def hashtag_embeddings(self) -> torch.Tensor:
        if self.edge_index is None:
            return self.emb
        src, dst = self.edge_index
        agg = torch.zeros_like(self.emb).index_add_(0, dst, self.emb[src])
        deg = torch.zeros(self.emb.shape[0]).index_add_(0, dst, torch.ones(src.shape[0])).clamp(min=1)
        return 0.8 * self.emb + 0.2 * agg / deg[:, None]

    def encode_posts(self, batch) -> torch.Tensor:
        out = 0
        for m, x in batch.seqs.items():
            mask = (torch.arange(x.shape[1])[None, :] < batch.lengths[m][:, None]).float()
            pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
            out = out + self.proj[m](pooled)
        if self.user is not None:
            out = out + self.user(batch.user_feats)
        return self.drop(out)

    def forward(self, batch) -> torch.Tensor:
        p = self.encode_posts(batch)
        e = self.hashtag_embeddings()
        return (p[:, None, :] * e[batch.cand]).sum(-1) + self.bias[batch.cand]

    def loss(self, batch) -> torch.Tensor:
        logits = self(batch)
        l = nn.functional.binary_cross_entropy_with_logits(logits, batch.labels, reduction="none")
        m = batch.cand_mask.float()
        return (l * m).sum() / m.sum()

    def score_all(self, batch, chunk: int = 4096) -> torch.Tensor:
        return self.encode_posts(batch) @ self.hashtag_embeddings().T + self.bias

    def recommend(self, batch, k: int):
        return torch.topk(self.score_all(batch), k, dim=1)
