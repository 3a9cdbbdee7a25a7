"""Time the relation builders on a realistic vocabulary.

Vocabulary: real WordNet noun lemma names (single words and WordNet's own
multi-word lemmas, ``ice_cream`` → ``ice cream``) plus two-word combinations
of sampled words (``kid dancer``-like, which WordNet mostly lacks), seeded.
Posts: synthetic training posts whose tags follow a Zipf law, so there are
frequent and long-tail tags as in real data.

    /work/venv/bin/python bench/bench_relations.py            # 15k tags, 214k posts
    /work/venv/bin/python bench/bench_relations.py --posts 20000 --thresholds 0.8 0.85 0.9 0.95

Prints counts per relation type (before and after priority), seconds per
stage, and for each threshold the po edge count and the fraction of
WordNet-covered pairs that pass.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import dataclass

import numpy as np

from v2ht_kg.kg.relations import RelationParams, _Taxonomy, build_relations, hashtag_synsets, po_edges_from
from v2ht_kg.kg.wordnet import load_wordnet


@dataclass
class Tag:
    id: int
    name: str
    words: list[str]
    count: int = 0
    train_count: int = 0
    longtail: bool = False


def vocabulary(wn, n_tags: int, seed: int) -> list[Tag]:
    rng = random.Random(seed)
    lemmas = sorted({n for n in wn.all_lemma_names("n") if all(p.isalpha() for p in n.split("_"))})
    singles = [n for n in lemmas if "_" not in n]
    multis = [n.replace("_", " ") for n in lemmas if n.count("_") == 1]
    n_multi = n_tags // 10  # WordNet's own collocations
    n_combo = n_tags // 10  # made-up two-word hashtags
    names = set(rng.sample(singles, n_tags - n_multi - n_combo)) | set(rng.sample(multis, n_multi))
    pool = sorted(names - set(multis))
    while len(names) < n_tags:
        names.add(f"{rng.choice(pool)} {rng.choice(pool)}")
    ordered = sorted(names)
    rng.shuffle(ordered)
    return [Tag(i, n, n.split()) for i, n in enumerate(ordered)]


def posts(n_tags: int, n_posts: int, mean_tags: float, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_tags + 1) ** 1.1
    p /= p.sum()
    sizes = np.maximum(1, rng.poisson(mean_tags, n_posts))
    flat = rng.choice(n_tags, size=int(sizes.sum()), p=p)
    out, k = [], 0
    for s in sizes.tolist():
        out.append(flat[k : k + s].tolist())
        k += s
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tags", type=int, default=15000)
    ap.add_argument("--posts", type=int, default=214000)
    ap.add_argument("--tags-per-post", type=float, default=13.4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--thresholds", type=float, nargs="*", default=[], help="extra WUP thresholds to count po for")
    args = ap.parse_args()

    t = time.perf_counter()
    wn = load_wordnet()
    print(f"load WordNet         {time.perf_counter() - t:7.2f} s")
    tags = vocabulary(wn, args.tags, args.seed)
    train = posts(len(tags), args.posts, args.tags_per_post, args.seed)
    counts = np.bincount(np.concatenate([np.unique(p) for p in train]), minlength=len(tags))
    for tag, c in zip(tags, counts.tolist()):
        tag.count = tag.train_count = c
        tag.longtail = c < 100
    print(f"vocabulary           {len(tags)} tags ({sum(len(x.words) > 1 for x in tags)} multi-word), "
          f"{len(train)} posts, {sum(map(len, train)) / len(train):.1f} tags/post")

    t = time.perf_counter()
    edges, report = build_relations(tags, train, wn, RelationParams())
    total = time.perf_counter() - t
    print(f"build_relations      {total:7.2f} s")
    for stage, sec in report["seconds"].items():
        print(f"  {stage:<18} {sec:7.2f} s")
    print("edges before priority", report["before"])
    print("edges after priority ", report["after"])
    print("overridden           ", report["overridden"])
    print("WordNet covered      ", report["wordnet_covered"], "tags")
    print("stats                ", json.dumps(report["stats"]))

    if args.thresholds:
        synsets = hashtag_synsets(tags, wn, RelationParams().max_senses)
        covered = sum(1 for s in synsets if s)
        pairs = covered * (covered - 1) // 2
        tax = _Taxonomy()
        for th in args.thresholds:
            t = time.perf_counter()
            po = po_edges_from(tags, synsets, tax, th)
            print(f"po @ {th:.2f}: {len(po):7d} edges, {len(po) / max(pairs, 1):.2e} of covered pairs, "
                  f"{2 * len(po) / max(covered, 1):.2f} per covered tag, {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
