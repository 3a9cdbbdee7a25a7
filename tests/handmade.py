"""Hand-made prepared data sets (kg/dataset.py format 2): posts written out
one by one, so a test can compute every statistic by hand."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import torch


def _jsonl(path: Path, rows: list[dict]) -> str:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


# posts with category paths (kg.records.Post.categories), for the category baselines and features
CAT_TAGS = ["soup", "noodle", "dance", "song"]
CAT_POSTS = [("train", 0, ["soup"], "hot bowl", ["food", "cooking"]),
             ("train", 0, ["soup", "noodle"], "lunch time", ["food", "cooking"]),
             ("train", 0, ["noodle"], "street stall", ["food", "street"]),
             ("train", 0, ["dance"], "stage night", ["music", "dance"]),
             ("train", 0, ["song"], "stage night", ["music", "singing"]),
             ("train", 0, ["song"], "kitchen song", ["music", "cooking"]),  # cooking under music: not food's
             ("valid", 0, ["soup"], "bowl", ["food", "cooking"]),
             ("test", 0, ["noodle"], "new place", ["food", "cooking"]),
             ("test", 0, ["song"], "nothing", ["music"]),
             ("test", 0, ["dance"], "blank", ["circus"])]


def write_dataset(root: Path, tags: list[str], posts: list[tuple], users: list[str] | None = None,
                  longtail_threshold: int = 3) -> Path:
    """``posts``: (split, user index, [tag names], "text tokens"[, [category
    path]]) in row order."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tid = {t: i for i, t in enumerate(tags)}
    n_users = 1 + max(p[1] for p in posts)
    users = users or [f"u{i}" for i in range(n_users)]
    rows = [{"row": r, "id": f"p{r}", "user": u, "split": s, "tags": [tid[t] for t in ts],
             "tokens": text.split(), "text": text, "time": None, "oov": 0, **({"categories": rest[0]} if rest else {})}
            for r, (s, u, ts, text, *rest) in enumerate(posts)]
    count = {t: sum(1 for s, _, ts, *_ in posts if s != "test" and t in ts) for t in tags}
    train = {t: sum(1 for s, _, ts, *_ in posts if s == "train" and t in ts) for t in tags}
    hts = [{"id": i, "name": t, "words": t.split(), "surfaces": [t.replace(" ", "")], "count": count[t],
            "train_count": train[t], "longtail": count[t] < longtail_threshold} for i, t in enumerate(tags)]
    us = [{"id": i, "name": n, "n_posts": sum(1 for p in posts if p[1] == i),
           "n_train": sum(1 for p in posts if p[1] == i and p[0] == "train")} for i, n in enumerate(users)]
    checksums = {"hashtags.jsonl": _jsonl(root / "hashtags.jsonl", hts), "users.jsonl": _jsonl(root / "users.jsonl", us),
                 "posts.jsonl": _jsonl(root / "posts.jsonl", rows)}
    (root / "manifest.json").write_text(json.dumps({
        "format": 2, "params": {"longtail_threshold": longtail_threshold, "seed": 0},
        "counts": {"posts": len(rows), "hashtags": len(tags), "users": len(users)},
        "features": {}, "checksums": checksums}), encoding="utf-8")
    return root


def graph(tags: list[str], edges: list[tuple[str, str, str]]):
    """A stand-in snapshot with edge_index / edge_type (kg/schema.py codes)."""
    from v2ht_kg.kg.schema import RELATIONS

    tid = {t: i for i, t in enumerate(tags)}
    src = [tid[a] for a, b, _ in edges] + [tid[b] for a, b, _ in edges]
    dst = [tid[b] for a, b, _ in edges] + [tid[a] for a, b, _ in edges]
    types = [RELATIONS.index(t) for _, _, t in edges] * 2
    return SimpleNamespace(edge_index=torch.tensor([src, dst]), edge_type=torch.tensor(types), names=list(tags))
