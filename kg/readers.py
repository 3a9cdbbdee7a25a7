"""Readers from each source format into ``kg.records.Post``.

Every reader yields posts in file order and reports bad input as a
``DataError`` naming the file and line; with ``skip_bad`` it counts bad lines
in ``BadLines`` instead. Bytes are decoded line by line so that a stray
non-UTF-8 byte is reported where it is, not as a codec traceback.
"""
from __future__ import annotations

import ast
import csv
import io
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .errors import DataError
from .normalize import MAX_TAG_CHARS
from .records import UNKNOWN_USER, Post

FORMATS = ("twitter-hashtags-2013", "tweets2011", "kuairec", "jsonl", "csv", "synthetic")
INLINE_TAG = re.compile(r"#\w+", re.UNICODE)
MAX_LINE_CHARS = 1_000_000


@dataclass
class BadLines:
    """Bad lines skipped under --skip-bad: a count and the first few messages."""

    skip: bool = False
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def handle(self, err: DataError) -> None:
        if not self.skip:
            raise err
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(str(err))


def _lines(path: Path, bad: BadLines) -> Iterator[tuple[int, str]]:
    """(line number, decoded line without newline), strict UTF-8 per line;
    undecodable lines go to ``bad`` (raised, or counted under --skip-bad)."""
    if not path.is_file():
        raise DataError("file not found", str(path))
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad.handle(DataError(f"not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})", str(path), i))
                continue
            yield i, line.rstrip("\r\n")


def _require_dir(path: Path, files: list[str]) -> None:
    if not path.exists():
        raise DataError("data folder does not exist", str(path))
    if not path.is_dir():
        raise DataError("expected a data folder, found a file", str(path))
    missing = [f for f in files if not (path / f).is_file()]
    if missing:
        raise DataError(f"missing {', '.join(missing)}", str(path))




def _clean_tags(tags: list[str], path: Path, line: int) -> list[str]:
    # Empty tag fields occur in the real sets (documented); such a post is
    # still a post (it counts in the raw statistics) and preparation drops it.
    out = [t.strip() for t in tags if t.strip()]
    for t in out:
        if len(t) > MAX_TAG_CHARS:
            raise DataError(f"hashtag too long ({len(t)} characters, at most {MAX_TAG_CHARS}): {t[:30]!r}...", str(path), line)
    return out


def read_twitter_2013(root: Path, bad: BadLines) -> Iterator[Post]:
    """polyusmart/Personalized-Hashtag-Preferences Data/: text<TAB>user<TAB>tags...,
    chronological train/valid/test split shipped as three files (kept)."""
    _require_dir(root, ["train.csv", "valid.csv", "test.csv"])
    for split in ("train", "valid", "test"):
        path = root / f"{split}.csv"
        for i, line in _lines(path, bad):
            if not line.strip():
                continue
            try:
                fields = line.split("\t")
                if len(fields) < 3:
                    raise DataError(f"expected text<TAB>user<TAB>hashtag..., found {len(fields)} field(s)", str(path), i)
                user = fields[1].strip()
                if not user.isdigit():
                    raise DataError(f"user id must be numeric, found {user[:40]!r}", str(path), i)
                tags = _clean_tags(fields[2:], path, i)
                yield Post(id=f"{split}-{i}", user=user, hashtags=tags, text=fields[0], split=split)
            except DataError as e:
                bad.handle(e)


def read_tweets2011(root: Path, bad: BadLines) -> Iterator[Post]:
    """CelestineZYJ/Per-Tag-Cur input/: header tweet_id user_id time content hashtag;
    inline #tags are stripped from the text (they are the answers)."""
    _require_dir(root, ["trainSet.csv", "testSet.csv"])
    seen: set[str] = set()
    for name in ("trainSet.csv", "testSet.csv"):
        path = root / name
        header = None
        for i, line in _lines(path, bad):
            if header is None:
                header = line.split("\t")
                if header[:5] != ["tweet_id", "user_id", "time", "content", "hashtag"]:
                    raise DataError("expected header tweet_id user_id time content hashtag", str(path), i)
                continue
            if not line.strip():
                continue
            try:
                fields = line.split("\t")
                if len(fields) != 5:
                    raise DataError(f"expected 5 tab-separated fields, found {len(fields)}", str(path), i)
                tid, user, time, content, tagfield = fields
                try:
                    tags = ast.literal_eval(tagfield)
                except (ValueError, SyntaxError):
                    raise DataError(f"hashtag field is not a list literal: {tagfield[:60]!r}", str(path), i) from None
                if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
                    raise DataError("hashtag field must be a list of strings", str(path), i)
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", time):
                    raise DataError(f"time must be YYYY-MM-DD, found {time[:30]!r}", str(path), i)
                if tid in seen:  # the two files overlap on 2011-02-02/03
                    continue
                seen.add(tid)
                text = INLINE_TAG.sub(" ", content)
                yield Post(id=tid, user=user, hashtags=_clean_tags(list(tags), path, i), text=text, time=time)
            except DataError as e:
                bad.handle(e)


def read_kuairec(root: Path, bad: BadLines) -> Iterator[Post]:
    """KuaiRec kuairec_caption_category.csv: no uploader ids (user unknown);
    topic_tag is like [tag1,tag2] with unquoted values; videos without tags are
    not posts with hashtags and are skipped silently."""
    path = root / "kuairec_caption_category.csv" if root.is_dir() else root
    if not root.exists():
        raise DataError("data folder does not exist", str(root))
    if not path.is_file():
        raise DataError("missing kuairec_caption_category.csv", str(root))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise DataError("not UTF-8", str(path), line) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    need = {"video_id", "caption", "topic_tag"}
    if not reader.fieldnames or not need <= set(reader.fieldnames):
        raise DataError(f"expected columns {sorted(need)}", str(path), 1)
    for row in reader:
        line = reader.line_num
        vid = (row.get("video_id") or "").strip()
        if not vid.isdigit():
            continue  # continuation rows of multi-line captions
        raw = (row.get("topic_tag") or "").strip()
        if not raw:
            continue
        if not (raw.startswith("[") and raw.endswith("]")):
            bad.handle(DataError(f"topic_tag must look like [a,b], found {raw[:40]!r}", str(path), line))
            continue
        try:
            tags = _clean_tags(raw[1:-1].split(","), path, line)
        except DataError as e:
            bad.handle(e)
            continue
        if not tags:
            continue
        caption = row.get("caption") or ""
        cover = row.get("manual_cover_text") or ""
        # The video's category path (时尚 > 穿搭 > ...) is content the platform
        # knows at upload; it goes first so that the token cap keeps it.
        names = [(row.get(f"{lv}_level_category_name") or "").strip() for lv in ("first", "second", "third")]
        text = category_led_text(names, cover, caption)
        # the path as categories: its levels up to the first unknown one
        cats = list(itertools.takewhile(lambda c: c and c != "UNKNOWN", names))
        yield Post(id=vid, user=UNKNOWN_USER, hashtags=tags, text=text, categories=cats)


# Formats whose reader writes the post's category path at the head of its
# text; a new post's text must be composed alike (new_post_text), or the
# model meets at serving a text shorter by the words every post had.
CATEGORY_LED_FORMATS = frozenset({"kuairec"})


def category_led_text(names: Sequence[str], *parts: str) -> str:
    """The category names, then the parts, without inline #tags (the answers)."""
    return INLINE_TAG.sub(" ", " ".join(x for x in (*names, *parts) if x and x != "UNKNOWN"))


def manifest_format(manifest) -> str | None:
    """The reader format a prepared set's manifest records (``source.format``)."""
    src = manifest.get("source") if isinstance(manifest, dict) else None
    return src.get("format") if isinstance(src, dict) else None


def prepared_format(data_dir: Path) -> str | None:
    """manifest_format of the prepared set in ``data_dir``, read without
    loading the set (no numpy or torch: `recommend` needs it before its
    start-up work); None where there is no readable manifest."""
    import json

    try:
        return manifest_format(json.loads((Path(data_dir) / "manifest.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def new_post_text(fmt: str | None, text: str, categories: Sequence[str] = ()) -> str:
    """A new post's text (``recommend --text``, ``--category``) as ``fmt``'s
    reader writes a post's: for a category-led format, the path first."""
    return category_led_text(categories, text) if fmt in CATEGORY_LED_FORMATS else text


def read_posts(source: Path, fmt: str, skip_bad: bool = False) -> tuple[Iterator[Post], BadLines]:
    """The reader for a format. ``jsonl``/``csv``/``synthetic`` read the raw
    folder format of ``kg.rawdata`` (posts.jsonl or posts.csv + features/)."""
    bad = BadLines(skip=skip_bad)
    source = Path(source)
    if not source.exists():
        raise DataError("data folder does not exist", str(source))
    readers: dict[str, Callable[[Path, BadLines], Iterator[Post]]] = {
        "twitter-hashtags-2013": read_twitter_2013,
        "tweets2011": read_tweets2011,
        "kuairec": read_kuairec,
    }
    if fmt in readers:
        return readers[fmt](source, bad), bad
    if fmt in ("jsonl", "csv", "synthetic"):
        from .rawdata import read_raw_posts

        return read_raw_posts(source), bad
    raise DataError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def guess_format(source: Path) -> str:
    s = Path(source)
    if (s / "train.csv").is_file() and (s / "valid.csv").is_file():
        return "twitter-hashtags-2013"
    if (s / "trainSet.csv").is_file():
        return "tweets2011"
    if (s / "kuairec_caption_category.csv").is_file() or s.name.startswith("kuairec"):
        return "kuairec"
    if (s / "posts.csv").is_file():
        return "csv"
    return "jsonl"
