"""Hashtag segmentation and normalisation benchmark.

Prints, on tests/data/segmentation_gold.tsv: exact-match accuracy of the
segmentation (words before lemmatisation) and of the full normalised name, for
our segmenter and for stock wordsegment and wordninja (given the same
separator/camelCase pre-split and lower-casing, so that only the segmenters
differ); tags/s; the misses. Then the time to normalise every distinct tag of
twitter-hashtags-2013 train.csv when ../shared/data exists.

Run: /work/venv/bin/python bench/bench_segment.py
"""
from __future__ import annotations

import math
import re
import sys
import time
from pathlib import Path

from v2ht_kg.kg.normalize import Normalizer, _read_word_list

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "tests" / "data" / "segmentation_gold.tsv"
DATA = ROOT.parent / "shared" / "data"
_ASCII = re.compile(r"[a-z0-9]+")


def read_gold(path: Path = GOLD) -> list[tuple[str, str, str]]:
    """(tag, words, name) rows; name defaults to words."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("# "):
            continue
        f = line.split("\t")
        rows.append((f[0], f[1], f[2] if len(f) > 2 else f[1]))
    return rows


def run_segmenter(label: str, gold, segment) -> None:
    t = time.perf_counter()
    got = [" ".join(segment(tag)) for tag, _, _ in gold]
    dt = time.perf_counter() - t
    misses = [(tag, g, w) for (tag, w, _), g in zip(gold, got) if g != w]
    ok = len(gold) - len(misses)
    print(f"{label:<34} {ok:>4}/{len(gold)} = {ok / len(gold):6.1%}   {len(gold) / dt:>9,.0f} tags/s")
    for tag, g, w in misses:
        print(f"    miss  {tag!r:<34} -> {g!r}  (want {w!r})")


def main() -> int:
    import wordninja
    import wordsegment

    gold = read_gold()
    print(f"gold list: {GOLD.relative_to(ROOT)} ({len(gold)} tags)\n")

    t = time.perf_counter()
    norm = Normalizer()
    print(f"Normalizer() load: {time.perf_counter() - t:.2f} s\n")
    print("segmentation, exact match of the word list:")

    def with_presplit(segment_run):
        # The same separator/camelCase pre-split as ours, then the library.
        def seg(tag: str) -> list[str]:
            words = []
            s = tag.lstrip("#")
            for piece in re.split(r"[\W_]+", s):
                for part in norm._camel_parts(piece):
                    part = part.lower()
                    words.extend(segment_run(part) if _ASCII.fullmatch(part) else [part] if part else [])
            return words
        return seg

    wordsegment.load()
    run_segmenter("wordsegment 1.3.1 (stock)", gold, with_presplit(wordsegment.segment))
    run_segmenter("wordninja 2.0.0 (stock)", gold, with_presplit(wordninja.split))

    # The same libraries given the social word list, as ours is.
    social = _read_word_list("social_words.txt")
    ws = wordsegment.Segmenter()
    ws.load()
    for w in social:
        ws.unigrams[w] = max(ws.unigrams.get(w, 0.0), 2e7)
    run_segmenter("wordsegment + social words", gold, with_presplit(ws.segment))
    wn = object.__new__(wordninja.LanguageModel)
    base = wordninja.DEFAULT_LANGUAGE_MODEL._wordcost
    ranked = social + sorted(base, key=base.get)  # social words ranked first
    wn._wordcost = {w: math.log((i + 1) * math.log(len(ranked))) for i, w in reversed(list(enumerate(ranked)))}
    wn._maxword = max(len(w) for w in ranked)
    run_segmenter("wordninja + social words", gold, with_presplit(wn.split))
    # Fresh instance each time for timing, so the per-surface cache does not count.
    fresh = Normalizer()
    run_segmenter("ours (Viterbi, web counts + social)", gold, fresh.segment)

    fresh = Normalizer()
    t = time.perf_counter()
    names = [fresh.tag(tag) for tag, _, _ in gold]
    dt = time.perf_counter() - t
    misses = [(tag, n.name if n else None, want) for (tag, _, want), n in zip(gold, names)
              if (n.name if n else None) != want]
    ok = len(gold) - len(misses)
    print(f"\nfull normalisation, exact match of the name: {ok}/{len(gold)} = {ok / len(gold):.1%}"
          f"   {len(gold) / dt:,.0f} tags/s")
    for tag, g, w in misses:
        print(f"    miss  {tag!r:<34} -> {g!r}  (want {w!r})")

    train = DATA / "twitter-hashtags-2013" / "train.csv"
    if not train.exists():
        print(f"\n{train} absent: skipping the real-data timing")
        return 0
    from v2ht_kg.kg.readers import read_posts

    posts, _ = read_posts(train.parent, "twitter-hashtags-2013")
    tags = {t for p in posts if p.split == "train" for t in p.hashtags}
    fresh = Normalizer()
    t = time.perf_counter()
    out = [fresh.tag(x) for x in sorted(tags)]
    dt = time.perf_counter() - t
    n_names = len({o.name for o in out if o is not None})
    n_none = sum(o is None for o in out)
    print(f"\ntwitter-hashtags-2013 train.csv: {len(tags):,} distinct tags -> {n_names:,} names "
          f"({n_none} without letters/digits) in {dt:.2f} s ({len(tags) / dt:,.0f} tags/s, one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
