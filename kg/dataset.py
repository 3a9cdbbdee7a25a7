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
                       (+ "categories": the platform's category path, general
                       first, where the source has one: kuairec)
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

import hashlib
import json
from dataclasses import MISSING, dataclass, field, fields
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

    @property
    def text_words(self) -> list[str]:
        """Its words: the segmentation, or the name's words where there is none."""
        return self.words or self.name.split()


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
    categories: list[str] = field(default_factory=list)  # the category path, general first


def _read_jsonl(path: Path, required: tuple[str, ...] = ()) -> list[dict]:
    out = []
    for i, d in _numbered_jsonl(path):
        if not isinstance(d, dict):
            raise DataError(f"expected a JSON object, not {type(d).__name__}", str(path), i)
        missing = [k for k in required if k not in d]
        if missing:
            raise DataError(f"missing key {missing[0]!r}; prepare the data set again", str(path), i)
        out.append(d)
    return out


def _typed_rows(path: Path, cls) -> list:
    """The lines of ``path`` as ``cls`` rows; a line that is not an object, or
    has a key ``cls`` does not know or lacks one it needs, is a DataError
    naming the file and line (not a TypeError from the constructor)."""
    known = {f.name for f in fields(cls)}
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    out = []
    for i, d in _numbered_jsonl(path):
        if not isinstance(d, dict):
            raise DataError(f"expected a JSON object, not {type(d).__name__}", str(path), i)
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataError(f"unknown key {unknown[0]!r} (a {cls.__name__} line has {', '.join(sorted(known))}); "
                            "prepare the data set again", str(path), i)
        missing = [k for k in required if k not in d]
        if missing:
            raise DataError(f"missing key {missing[0]!r}; prepare the data set again", str(path), i)
        out.append(cls(**d))
    return out


def _numbered_jsonl(path: Path):
    if not path.exists():
        raise DataError("missing; prepare the data set again (v2ht-kg build)", str(path))
    try:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield i, json.loads(line)
                    except json.JSONDecodeError as e:
                        raise DataError(f"corrupt JSON ({e.msg})", str(path), i) from None
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 (byte {e.start})", str(path)) from None


class PreparedDataset:
    """Read access to a prepared data set folder."""

    @property
    def source_format(self) -> str | None:
        """The format its posts were read in (manifest ``source.format``)."""
        from .readers import manifest_format

        return manifest_format(self.manifest)

    def __init__(self, root: Path):
        self.root = Path(root)
        mpath = self.root / "manifest.json"
        if not mpath.exists():
            raise DataError("no prepared data set here (manifest.json missing); run `v2ht-kg build` or `v2ht-kg data prepare` first", str(self.root))
        try:
            self.manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"corrupt manifest ({e.msg})", str(mpath)) from None
        except UnicodeDecodeError:
            raise DataError("corrupt manifest (not UTF-8)", str(mpath)) from None
        if not isinstance(self.manifest, dict):
            raise DataError("corrupt manifest (not a JSON object); prepare the data set again", str(mpath))
        if self.manifest.get("format") != FORMAT_VERSION:
            raise DataError(f"prepared data format {self.manifest.get('format')!r} is not {FORMAT_VERSION}; prepare it again", str(mpath))
        checksums = self.manifest.get("checksums")
        if not isinstance(checksums, dict):
            raise DataError("manifest lacks 'checksums' (an object of file: sha256); prepare the data set again", str(mpath))
        for name in ("hashtags.jsonl", "posts.jsonl"):
            if not isinstance(checksums.get(name), str):
                raise DataError(f"manifest 'checksums' lacks the sha256 of {name}; prepare the data set again", str(mpath))
        if not isinstance(self.manifest.get("params"), dict):
            raise DataError("manifest lacks 'params' (an object); prepare the data set again", str(mpath))

    # -- identity -----------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """Changes whenever the hashtags or posts change: runs and graphs record it."""
        c = self.manifest["checksums"]
        return c["hashtags.jsonl"][:16] + c["posts.jsonl"][:16]

    @property
    def params(self) -> dict:
        return self.manifest["params"]

    def verify_checksums(self) -> None:
        """Every file the manifest lists must have its recorded sha256 (a
        file edited, truncated or swapped after preparation is a DataError
        naming it). Costs one read of each file: call it when a data set is
        opened for training, not on every look-up."""
        for name, want in self.manifest["checksums"].items():
            path = self.root / name
            if not path.is_file():
                raise DataError("listed in the manifest but missing; prepare the data set again", str(path))
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            if h.hexdigest() != want:
                raise DataError(f"changed since preparation (sha256 {h.hexdigest()[:12]}..., manifest "
                                f"{str(want)[:12]}...); prepare the data set again", str(path))

    # -- tables -------------------------------------------------------------
    @cached_property
    def hashtags(self) -> list[Hashtag]:
        return _typed_rows(self.root / "hashtags.jsonl", Hashtag)

    @cached_property
    def tag_index(self) -> dict[str, int]:
        return {h.name: h.id for h in self.hashtags}

    @cached_property
    def users(self) -> list[dict]:
        return _read_jsonl(self.root / "users.jsonl", ("id", "name"))

    @cached_property
    def user_index(self) -> dict[str, int]:
        return {u["name"]: u["id"] for u in self.users}

    @cached_property
    def posts(self) -> list[PostRow]:
        return _typed_rows(self.root / "posts.jsonl", PostRow)

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
