"""The prepared data set: the folder that ``v2ht-kg build`` (preparation)
writes and every later stage reads. One work directory holds one data set.

Layout of ``<workdir>/data/`` (format 2)::

    manifest.json      parameters, counts, seed, sha256 of every file below
    hashtags.jsonl     one line per hashtag, in id order:
                       {"id", "name", "words", "surfaces", "count",
                        "train_count", "longtail"}
    users.jsonl        one line per user, in id order:
                       {"id", "name", "n_posts", "n_train"}
    posts.jsonl        one line per post, in row order:
                       {"row", "id", "user", "split", "tags", "tokens", "text", "time", "oov"}
                       user: user index (0 is the unknown user when the source
                       has no author ids); tags: hashtag ids; tokens:
                       lemmatised text tokens (stop words removed)
    features/<m>.npy   float16 array (n_posts, steps, dim) per modality m in
                       {"visual", "acoustic"}, row i = posts.jsonl row i;
                       opened memory-mapped, never loaded whole

``name`` is the canonical hashtag: its lemmatised words joined by one space
(``kid dancer``). ``count`` counts uses in the posts before the test period
(train + valid: the vocabulary filter), ``train_count`` over training posts
only (co-occurrence edges use training posts only). ``longtail`` is ``count <
longtail_threshold`` (manifest ``params.longtail_threshold``). No test-split
count reaches any of them. ``oov`` (test posts only) counts the post's true
hashtags outside the vocabulary: a test post may have ``tags == []``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import DataError

FORMAT_VERSION = 2  # 2: pre-test statistics, test posts carry oov
SPLITS = ("train", "valid", "test")
MODALITIES = ("visual", "acoustic", "text")


@dataclass
class Hashtag:
    id: int
    name: str
    words: list[str]
    surfaces: list[str]
    count: int
    train_count: int
    longtail: bool


@dataclass
class PostRow:
    row: int
    id: str
    user: int
    split: str
    tags: list[int]
    tokens: list[str]
    text: str = ""
    time: str | None = None
    oov: int = 0  # test posts: true tags outside the vocabulary (always misses)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise DataError("missing; prepare the data set again (v2ht-kg build)", str(path))
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"corrupt JSON ({e.msg})", str(path), i) from None
    return out


class PreparedDataset:
    """Read access to a prepared data set folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        mpath = self.root / "manifest.json"
        if not mpath.exists():
            raise DataError("no prepared data set here (manifest.json missing); run `v2ht-kg build` or `v2ht-kg data prepare` first", str(self.root))
        try:
            self.manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"corrupt manifest ({e.msg})", str(mpath)) from None
        if self.manifest.get("format") != FORMAT_VERSION:
            raise DataError(f"prepared data format {self.manifest.get('format')!r} is not {FORMAT_VERSION}; prepare it again", str(mpath))

    # -- identity -----------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """Changes whenever the hashtags or posts change: runs and graphs record it."""
        c = self.manifest["checksums"]
        return c["hashtags.jsonl"][:16] + c["posts.jsonl"][:16]

    @property
    def params(self) -> dict:
        return self.manifest["params"]

    # -- tables -------------------------------------------------------------
    @cached_property
    def hashtags(self) -> list[Hashtag]:
        return [Hashtag(**d) for d in _read_jsonl(self.root / "hashtags.jsonl")]

    @cached_property
    def tag_index(self) -> dict[str, int]:
        return {h.name: h.id for h in self.hashtags}

    @cached_property
    def users(self) -> list[dict]:
        return _read_jsonl(self.root / "users.jsonl")

    @cached_property
    def user_index(self) -> dict[str, int]:
        return {u["name"]: u["id"] for u in self.users}

    @cached_property
    def posts(self) -> list[PostRow]:
        return [PostRow(**d) for d in _read_jsonl(self.root / "posts.jsonl")]

    @cached_property
    def post_index(self) -> dict[str, int]:
        return {p.id: p.row for p in self.posts}

    def split_rows(self, split: str) -> np.ndarray:
        return np.array([p.row for p in self.posts if p.split == split], dtype=np.int64)

    @property
    def modalities(self) -> list[str]:
        """Modalities present: always "text"; "visual"/"acoustic" when features exist."""
        return [m for m in ("visual", "acoustic") if m in self.manifest.get("features", {})] + ["text"]

    def features(self, modality: str) -> np.ndarray:
        """(n_posts, steps, dim) float16, memory-mapped."""
        if modality not in self.manifest.get("features", {}):
            raise DataError(f"this data set has no {modality} features", str(self.root))
        return np.load(self.root / "features" / f"{modality}.npy", mmap_mode="r")

    def longtail_mask(self) -> np.ndarray:
        return np.array([h.longtail for h in self.hashtags], dtype=bool)
