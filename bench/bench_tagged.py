"""POSTED/TAGGED bulk load, A/B in one process: edges as JSON rows (the old
path) against joined RID strings (what `build` does now).

    .venv/bin/python bench/bench_tagged.py [--posts 100000] [--repeat 2]

Each round clears the embedded store, loads 15,000 hashtags, then the posts
(Post and User vertices, POSTED and TAGGED edges) with the Python GC frozen,
as `build` does, and prints TAGGED edges/s with the edge counts read back.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_load import embedded_store, make_data  # noqa: E402

from v2ht_kg.kg.embedded import frozen_gc  # noqa: E402
from v2ht_kg.kg.store import GraphStore  # noqa: E402


def json_rows(self, rows):
    """GraphStore._bulk_posts as it was: one JSON object per edge."""
    tags = self._hashtag_rids()
    users = sorted({r["user"] for r in rows})
    user_rid = dict(zip(users, self.ingest.create_vertices("User", [{"name": u} for u in users])))
    post_rid = self.ingest.create_vertices("Post", [{"id": r["id"], "split": r["split"]} for r in rows])
    tagged = [{"_src": p, "_dst": tags[t]} for r, p in zip(rows, post_rid) for t in r["tags"]]
    self.ingest.create_edges({"POSTED": [{"_src": user_rid[r["user"]], "_dst": p} for r, p in zip(rows, post_rid)],
                              "TAGGED": tagged})
    return len(tagged)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    tags, _, posts = make_data(15_000, 1_000, args.posts, 0)
    joined = GraphStore._bulk_posts
    try:
        with embedded_store() as store:
            for name, fn in (("json rows", json_rows), ("joined rids", joined)) * args.repeat:
                store.clear()
                store.load_hashtags(tags, path="bulk")
                GraphStore._bulk_posts = fn
                with frozen_gc():
                    t = time.perf_counter()
                    n = store.load_posts(posts, path="bulk")
                    dt = time.perf_counter() - t
                c = store.counts()["edges"]
                print(f"{name:11s}: {n} TAGGED, {len(posts)} POSTED in {dt:.2f} s = {n / dt:,.0f} TAGGED/s "
                      f"(counts read back: {c.get('TAGGED')}, {c.get('POSTED')})", flush=True)
    finally:
        GraphStore._bulk_posts = joined
    return 0


if __name__ == "__main__":
    sys.exit(main())
