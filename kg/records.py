"""The one internal form of a post, shared by every reader and the generator.

A post carries raw hashtags (surface forms as the source wrote them); the
normaliser maps them to canonical names later, in preparation. Feature
sequences (visual, acoustic) are not held here: they live in per-modality
arrays keyed by post id (see ``kg.prepare``), so that millions of frames never
sit in Python objects.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .errors import DataError
from .fsio import named

UNKNOWN_USER = "<unknown>"


@dataclass
class Post:
    id: str
    user: str  # UNKNOWN_USER when the source has no author ids (kuairec)
    hashtags: list[str]  # raw surface forms, in source order
    text: str = ""  # hashtags already removed from it
    time: str | None = None  # ISO date/time where the source has one
    split: str | None = None  # "train" / "valid" / "test" where the source fixes it
    # the platform's category path, general to specific (kuairec: 时尚 > 穿搭 > ...)
    categories: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        d = {"id": self.id, "user": self.user, "hashtags": self.hashtags, "text": self.text}
        if self.time is not None:
            d["time"] = self.time
        if self.split is not None:
            d["split"] = self.split
        if self.categories:
            d["categories"] = self.categories
        return d

    @classmethod
    def from_json(cls, d: dict, path: str | None = None, line: int | None = None) -> "Post":
        try:
            pid = d["id"]
            tags = d["hashtags"]
        except (KeyError, TypeError) as e:
            raise DataError(f"missing field {e}", path, line) from None
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise DataError("'hashtags' must be a list of strings", path, line)
        split = d.get("split")
        if split is not None and split not in ("train", "valid", "test"):
            raise DataError(f"split must be train, valid or test, not {split!r}", path, line)
        cats = d.get("categories") or []
        if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
            raise DataError("'categories' must be a list of strings (the category path, general first)", path, line)
        return cls(
            id=str(pid),
            user=str(d.get("user") or UNKNOWN_USER),
            hashtags=list(tags),
            text=str(d.get("text") or ""),
            time=d.get("time"),
            split=split,
            categories=[c.strip() for c in cats if c.strip()],
        )


CATEGORY_SEP = ">"  # a category path as text: "fashion > outfits"


def parse_category_path(text: str | None) -> list[str]:
    """'fashion > outfits' as ["fashion", "outfits"]; blank names dropped."""
    return [c.strip() for c in (text or "").split(CATEGORY_SEP) if c.strip()]


def write_posts_jsonl(posts: Iterable[Post], path: Path) -> int:
    n = 0
    with named(path), open(path, "w", encoding="utf-8") as f:
        for p in posts:
            f.write(json.dumps(p.to_json(), ensure_ascii=False) + "\n")
            n += 1
    return n


def read_posts_jsonl(path: Path) -> Iterator[Post]:
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                yield Post.from_json(json.loads(line), str(path), i)
