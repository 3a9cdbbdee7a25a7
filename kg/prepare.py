"""Preparation: raw posts → the prepared data set folder (kg/dataset.py).

Steps: normalise hashtags (surface forms kept), drop posts left without tags,
split (the source's own, chronological, or seeded random 80/10/10 by post),
frequency filters (minimum hashtag count, minimum posts per user), shared
hashtag vocabulary, long-tail flag, text
tokens, feature arrays reordered to post rows. Everything is written to a
temporary folder and renamed into place, so an interrupted run leaves the
previous data set (or none), never half of one.

Protocol boundary (docs/metrics.md): the filters, the vocabulary, ``count``
and the long-tail flag use the posts before the test period (train + valid)
only, never a test-split count. Test posts keep only their in-vocabulary
tags and record the others as ``oov``: the evaluator counts them as misses.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .dataset import FORMAT_VERSION, SPLITS, PreparedDataset
from .errors import DataError
from .fsio import named, reserve
from .records import UNKNOWN_USER, Post

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class PrepareParams:
    min_tag_count: int = 2
    min_user_posts: int = 1
    split: str = "auto"  # auto | given | time | random
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    longtail_threshold: int = 20
    max_text_tokens: int = 20
    max_posts: int | None = None  # keep the first N posts (quick runs)
    seed: int = 42
    spell: bool = False


# Defaults per data set, chosen so that each leaves a useful graph: the
# paper's 50/10 filters would delete most of these smaller sets (68.8% of the
# twitter-2013 training hashtags occur once).
DATASET_DEFAULTS: dict[str, dict] = {
    "twitter-hashtags-2013": dict(min_tag_count=3, min_user_posts=1, split="given", longtail_threshold=20, max_text_tokens=20),
    "tweets2011": dict(min_tag_count=3, min_user_posts=1, split="time", longtail_threshold=20, max_text_tokens=20),
    "kuairec": dict(min_tag_count=2, min_user_posts=1, split="random", longtail_threshold=10, max_text_tokens=24),
    "synthetic": dict(min_tag_count=3, min_user_posts=5, split="random", longtail_threshold=20, max_text_tokens=6),
    "jsonl": dict(),
    "csv": dict(),
}


def default_params(fmt: str, **overrides) -> PrepareParams:
    d = dict(DATASET_DEFAULTS.get(fmt, {}))
    d.update({k: v for k, v in overrides.items() if v is not None})
    return PrepareParams(**d)


def _link_whole(arr: np.ndarray, src_rows: np.ndarray, out_path: Path) -> bool:
    """Hard-link the source .npy as the prepared one when it already is, byte
    for byte, what the copy would write: float16 little-endian C-order, every
    row kept, in the source's order (a generated synthetic set; see
    ``prepare``'s ``link_features``). Writing 3.8 GB again was a tenth of an
    INSVIDEO build. Nothing writes a prepared array in place. False (copy)
    where the source is otherwise or the file system has no hard links."""
    src = getattr(arr, "filename", None)  # np.load's memmap: its header already parsed
    if (src is None or arr.dtype != np.dtype("<f2") or not arr.flags.c_contiguous
            or len(src_rows) != arr.shape[0] or not (src_rows == np.arange(len(src_rows))).all()):
        return False
    try:
        if os.path.getsize(src) != arr.offset + arr.nbytes:  # nothing after the array
            return False
        os.link(src, out_path)
    except OSError:
        return False
    return True


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with named(path), open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _assign_splits(posts: list[Post], params: PrepareParams, has_given: bool, has_time: bool) -> list[str]:
    mode = params.split
    if mode == "auto":
        mode = "given" if has_given else ("time" if has_time else "random")
    n = len(posts)
    if mode == "given":
        if not has_given:
            raise DataError("--split given: this source fixes no split")
        return [p.split or "train" for p in posts]
    r_train, r_valid, _ = params.split_ratios
    if mode == "time":
        if not has_time:
            raise DataError("--split time: these posts carry no time")
        order = sorted(range(n), key=lambda i: (posts[i].time or "", i))
    elif mode == "random":
        order = list(range(n))
        random.Random(params.seed).shuffle(order)
    else:
        raise DataError(f"unknown split mode {mode!r}; one of auto, given, time, random")
    n_train, n_valid = int(round(n * r_train)), int(round(n * r_valid))
    out = [""] * n
    for rank, i in enumerate(order):
        out[i] = "train" if rank < n_train else ("valid" if rank < n_train + n_valid else "test")
    return out


def prepare(
    posts: Iterable[Post],
    out_dir: Path,
    params: PrepareParams,
    source: dict,
    features: dict[str, tuple[np.ndarray, list[str]]] | None = None,
    normalizer=None,
    progress: Progress | None = None,
    link_features: bool = False,
) -> PreparedDataset:
    """Prepare ``posts`` into ``out_dir`` (replaced atomically).

    ``link_features``: the feature files are the work dir's own and never
    edited in place (a generated synthetic set), so one already in prepared
    form is hard-linked, not copied. A user's files are always copied: an
    edit of theirs must not reach a prepared set in silence.

    ``features``: modality → (array (n, steps, dim), post id of each row).
    ``source``: what to record about the input (format, path, bad line count).
    """
    from .normalize import Normalizer

    t0 = time.time()
    prog = progress or (lambda *a: None)
    norm = normalizer or Normalizer(spell=params.spell)
    raw_posts = list(posts)
    if params.max_posts:
        raw_posts = raw_posts[: params.max_posts]
    n_raw = len(raw_posts)
    if n_raw == 0:
        raise DataError("no posts in the input", source.get("path"))

    # Normalise each distinct surface form once.
    surfaces: dict[str, object] = {}
    distinct = sorted({t for p in raw_posts for t in p.hashtags})
    for k, s in enumerate(distinct):
        try:
            surfaces[s] = norm.tag(s)
        except DataError as e:
            raise DataError(f"hashtag {s[:40]!r}...: {e}", source.get("path")) from None
        if k % 2000 == 0:
            prog("normalise", k, len(distinct))
    prog("normalise", len(distinct), len(distinct))

    tag_surfaces: dict[str, Counter] = {}
    kept: list[tuple[Post, list[str]]] = []
    for p in raw_posts:
        names: list[str] = []
        for s in p.hashtags:
            nt = surfaces.get(s)
            if nt is None:
                continue
            if nt.name not in names:
                names.append(nt.name)
            tag_surfaces.setdefault(nt.name, Counter())[s] += 1
        if names:
            kept.append((p, names))

    # The split comes first: every statistic below (the count filters, the
    # vocabulary, the long-tail flag) is taken over the posts a deployed system
    # would have seen before the test period (train + valid) only.
    all_posts = [p for p, _ in kept]
    has_given = any(p.split for p in all_posts)
    has_time = all(p.time for p in all_posts)
    split_of = _assign_splits(all_posts, params, has_given, has_time)
    if "test" not in split_of:
        raise DataError("the test split is empty; use more posts or another --split", source.get("path"))
    items = [(p, names, s) for (p, names), s in zip(kept, split_of)]

    # Frequency filters until stable: removing users can push tags under the
    # minimum and the other way round. Test posts never count; they keep their
    # in-vocabulary tags and remember how many they lost (misses at evaluation).
    oov: dict[int, int] = {}
    for _ in range(10):
        tag_count = Counter(n for _, names, s in items if s != "test" for n in names)
        vocab = {t for t, c in tag_count.items() if c >= params.min_tag_count}
        nxt = []
        for p, names, s in items:
            keep = [n for n in names if n in vocab]
            if s == "test":
                oov[id(p)] = oov.get(id(p), 0) + len(names) - len(keep)
                nxt.append((p, keep, s))
            elif keep:
                nxt.append((p, keep, s))
        changed = len(nxt) != len(items)
        items = nxt
        if params.min_user_posts > 1:
            user_posts = Counter(p.user for p, _, s in items if s != "test" and p.user != UNKNOWN_USER)
            before = len(items)
            items = [(p, ns, s) for p, ns, s in items
                     if p.user == UNKNOWN_USER or user_posts[p.user] >= params.min_user_posts]
            changed = changed or len(items) != before
        if not changed:
            break
    if not any(s != "test" for _, _, s in items):
        raise DataError(
            f"no posts left after filtering (min_tag_count={params.min_tag_count}, min_user_posts={params.min_user_posts})",
            source.get("path"),
        )
    if not any(s == "test" for _, _, s in items):
        raise DataError("the test split is empty after filtering; use more posts or another --split", source.get("path"))
    kept = [(p, names) for p, names, _ in items]
    splits = [s for _, _, s in items]
    post_objs = [p for p, _ in kept]
    post_oov = [oov.get(id(p), 0) if s == "test" else 0 for p, s in zip(post_objs, splits)]

    tag_count = Counter(n for (p, names), s in zip(kept, splits) if s != "test" for n in names)
    train_count = Counter(n for (p, names), s in zip(kept, splits) if s == "train" for n in names)
    # Ids by descending count then name: stable across runs, frequent tags first.
    vocab_sorted = sorted(tag_count, key=lambda t: (-tag_count[t], t))
    tag_id = {t: i for i, t in enumerate(vocab_sorted)}
    words_of = {}
    for s, nt in surfaces.items():
        if nt is not None and nt.name in tag_id:
            words_of.setdefault(nt.name, list(nt.words))

    users = sorted({p.user for p in post_objs}, key=lambda u: (u != UNKNOWN_USER, u))
    user_id = {u: i for i, u in enumerate(users)}
    user_posts = Counter(p.user for p in post_objs)
    user_train = Counter(p.user for p, s in zip(post_objs, splits) if s == "train")

    prog("tokenise", 0, len(post_objs))
    tokens = norm.tokens_many([p.text for p in post_objs], params.max_text_tokens)
    prog("tokenise", len(post_objs), len(post_objs))

    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        _write_jsonl(
            tmp / "hashtags.jsonl",
            (
                dict(
                    id=i, name=t, words=words_of.get(t, t.split()),
                    surfaces=[s for s, _ in tag_surfaces[t].most_common(5)],
                    count=tag_count[t], train_count=train_count[t],
                    longtail=tag_count[t] < params.longtail_threshold,
                )
                for i, t in enumerate(vocab_sorted)
            ),
        )
        _write_jsonl(
            tmp / "users.jsonl",
            (dict(id=i, name=u, n_posts=user_posts[u], n_train=user_train[u]) for i, u in enumerate(users)),
        )
        _write_jsonl(
            tmp / "posts.jsonl",
            (
                dict(row=r, id=p.id, user=user_id[p.user], split=s, tags=[tag_id[n] for n in names],
                     tokens=tok, text=p.text, time=p.time, oov=o, **({"categories": p.categories} if p.categories else {}))
                for r, ((p, names), s, tok, o) in enumerate(zip(kept, splits, tokens, post_oov))
            ),
        )
        feat_meta = {}
        if features:
            (tmp / "features").mkdir()
            row_ids = [p.id for p in post_objs]
            for m, (arr, ids) in features.items():
                pos = {pid: i for i, pid in enumerate(ids)}
                missing = [pid for pid in row_ids if pid not in pos]
                if missing:
                    raise DataError(f"{m} features lack post {missing[0]!r} ({len(missing)} posts in all)", source.get("path"))
                src_rows = np.array([pos[pid] for pid in row_ids], dtype=np.int64)
                out_path = tmp / "features" / f"{m}.npy"
                feat_meta[m] = {"steps": int(arr.shape[1]), "dim": int(arr.shape[2])}
                if link_features and _link_whole(arr, src_rows, out_path):
                    prog(f"features:{m}", len(src_rows), len(src_rows))
                    continue
                with named(out_path):
                    out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float16,
                                                    shape=(len(row_ids),) + tuple(arr.shape[1:]))
                reserve(out_path)  # a full disk is an error here, not a SIGBUS mid-copy
                step = 4096
                for a in range(0, len(src_rows), step):
                    idx = src_rows[a:a + step]
                    if idx[-1] - idx[0] == len(idx) - 1 and (np.diff(idx) == 1).all():
                        # the usual case, posts kept in the source's order: a slice
                        # copy, several times faster than a gather
                        out[a:a + len(idx)] = arr[idx[0]:idx[-1] + 1]
                    else:
                        order = np.argsort(idx)  # sorted reads are sequential on a memmap
                        out[a:a + step][order] = np.asarray(arr[idx[order]], dtype=np.float16)
                    prog(f"features:{m}", min(a + step, len(src_rows)), len(src_rows))
                out.flush()
                del out
        files = ["hashtags.jsonl", "users.jsonl", "posts.jsonl"] + [f"features/{m}.npy" for m in feat_meta]
        split_counts = Counter(splits)
        n_tags = len(vocab_sorted)
        n_longtail = sum(1 for t in vocab_sorted if tag_count[t] < params.longtail_threshold)
        manifest = dict(
            format=FORMAT_VERSION,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            source=source,
            params={k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(params).items()},
            counts=dict(
                raw_posts=n_raw,
                posts=len(kept),
                posts_by_split={s: split_counts.get(s, 0) for s in SPLITS},
                users=len(users),
                hashtags=n_tags,
                longtail_hashtags=n_longtail,
                tag_uses=sum(len(ns) for _, ns in kept),
                test_tag_uses=sum(len(ns) for (_, ns), s in zip(kept, splits) if s == "test") + sum(post_oov),
                test_oov_uses=sum(post_oov),
                test_posts_without_known_tag=sum(1 for (_, ns), s in zip(kept, splits) if s == "test" and not ns),
            ),
            features=feat_meta,
            checksums={f: sha256_file(tmp / f) for f in files},
            seconds=round(time.time() - t0, 2),
        )
        with named(tmp / "manifest.json"), open(tmp / "manifest.json", "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, ensure_ascii=False)
        old = out_dir.with_name(out_dir.name + f".old-{os.getpid()}")
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PreparedDataset(out_dir)
