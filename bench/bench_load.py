"""Load throughput of the graph store, per load path.

    .venv/bin/python bench/bench_load.py [--tags 15000 --edges 100000 --posts 30000] [--preset insvideo] [--gc frozen,plain]
    .venv/bin/python bench/bench_load.py --paths create,merge --driver-ext on,off   # neo4j-rust-ext A/B

Prints rows/s for Hashtag nodes, hashtag edges (random pairs spread over
CP/SS/PO/CO, with evidence properties) and training posts (rows/s counts
TAGGED edges; each post also writes its User and POSTED edge), for each path
(bulk: ArcadeDB GraphBatch in-process; create: Cypher CREATE over Bolt on
an empty store; merge: idempotent Cypher MERGE), on the embedded store and,
when NEO4J_URI is set (NEO4J_USER / NEO4J_PASSWORD / NEO4J_DATABASE), on that
server too (its data is deleted). ``--driver-ext on,off`` runs the whole
measurement once per setting, each in its own process: "off" hides the
driver's Rust extension (neo4j-rust-ext, PackStream in Rust), so the driver
falls back to its pure-Python codec; the bulk path does not use the driver
for its rows, the Cypher paths (create, merge) do.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if os.environ.get("V2HT_BENCH_DRIVER_EXT") == "off":
    sys.modules["neo4j._rust"] = None  # the driver then imports its pure-Python PackStream

from v2ht_kg.kg.embedded import EmbeddedServer, frozen_gc
from v2ht_kg.kg.schema import RELATIONS, Edge
from v2ht_kg.kg.store import GraphStore


def make_data(n_tags: int, n_edges: int, n_posts: int, seed: int):
    rng = random.Random(seed)
    names = [f"tag{i} {rng.choice(['kid', 'dance', 'cat', 'food'])}" for i in range(n_tags)]
    tags = [{"name": n, "words": n.split(), "count": rng.randint(1, 500), "train_count": rng.randint(1, 400),
             "longtail": rng.random() < 0.7, "surfaces": [n.replace(" ", "")]} for n in names]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < n_edges:
        a, b = rng.randrange(n_tags), rng.randrange(n_tags)
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    evidence = {"cp": lambda: {"words": ["kid"]},
                "ss": lambda: {"synset_a": "kid.n.01", "synset_b": "child.n.01", "direction": "a_hypernym_of_b", "depth": 1},
                "po": lambda: {"wup": round(rng.random(), 3), "synset_a": "a.n.01", "synset_b": "b.n.01"},
                "co": lambda: {"count": rng.randint(1, 50), "strength": round(rng.random(), 3), "pmi": 1.0}}
    edges: dict[str, list[Edge]] = {k: [] for k in RELATIONS}
    for i, (a, b) in enumerate(sorted(pairs)):
        kind = RELATIONS[i % len(RELATIONS)]
        edges[kind].append(Edge(names[a], names[b], kind, round(rng.random(), 3), evidence[kind](),
                                ["co"] if kind != "co" else []))
    posts = [{"id": f"p{i}", "user": f"u{rng.randrange(max(n_posts // 12, 1))}", "split": "train",
              "tags": rng.sample(names, rng.randint(1, 3))} for i in range(n_posts)]
    return tags, edges, posts


@contextlib.contextmanager
def embedded_store():
    """A GraphStore on a fresh embedded server in a temporary folder, schema made."""
    with tempfile.TemporaryDirectory(prefix="v2ht-bench-") as tmp:
        server = EmbeddedServer(Path(tmp) / "store")
        server.start()
        try:
            with GraphStore(server.uri, (server.user, server.password), ingest=server.ingest) as store:
                store.ensure_schema()
                yield store
        finally:
            server.stop()


def bench(store: GraphStore, data, path: str, batch: int) -> dict:
    tags, edges, posts = data
    t = time.perf_counter()
    store.clear()
    t_clear = time.perf_counter() - t
    out = {}
    t = time.perf_counter()
    store.load_hashtags(tags, batch=batch, path=path)
    out["hashtags"] = len(tags) / (time.perf_counter() - t)
    t = time.perf_counter()
    n_edges = sum(store.load_edges([e for es in edges.values() for e in es], batch=batch, path=path).values())
    out["edges"] = n_edges / (time.perf_counter() - t)
    t = time.perf_counter()
    n_tagged = store.load_posts(posts, batch=batch, path=path)
    out["tagged"] = n_tagged / (time.perf_counter() - t)
    out["clear_s"] = t_clear
    counts = store.counts()
    out["check"] = (counts["nodes"].get("Hashtag"), sum(counts["edges"].get(k.upper(), 0) for k in RELATIONS),
                    counts["edges"].get("TAGGED"))
    return out


def report(target: str, path: str, r: dict, data) -> None:
    tags, edges, posts = data
    n_tagged = sum(len(set(p["tags"])) for p in posts)
    want = (len(tags), sum(len(v) for v in edges.values()), n_tagged)
    ok = "ok" if r["check"] == want else f"MISMATCH {r['check']} != {want}"
    print(f"{target:16s} {path:7s} hashtags {r['hashtags']:9,.0f}/s  edges {r['edges']:9,.0f}/s  "
          f"tagged {r['tagged']:9,.0f}/s  (clear before: {r['clear_s']:.1f} s; counts {ok})", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tags", type=int, default=15_000)
    ap.add_argument("--edges", type=int, default=100_000)
    ap.add_argument("--posts", type=int, default=30_000)
    ap.add_argument("--batch", type=int, default=20_000, help="UNWIND rows per Cypher transaction")
    ap.add_argument("--paths", default="bulk,create,merge")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="runs per path (the first warms the JVM)")
    ap.add_argument("--preset", choices=["insvideo"], help="INSVIDEO sizes: 15,751 hashtags, 1.8M edges, 171k posts")
    ap.add_argument("--gc", default="frozen,plain",
                    help="Python GC during loads: frozen (what build does, kg.embedded.frozen_gc), plain, or both")
    ap.add_argument("--driver-ext", default=None,
                    help="on,off: the neo4j driver with and without its Rust extension, one process each")
    args = ap.parse_args(argv)
    if args.driver_ext:
        for mode in args.driver_ext.split(","):
            rest = [a for i, a in enumerate(sys.argv[1:]) if a != "--driver-ext" and sys.argv[i] != "--driver-ext"]
            print(f"== driver extension {mode}", flush=True)
            rc = subprocess.run([sys.executable, __file__, *rest],
                                env={**os.environ, "V2HT_BENCH_DRIVER_EXT": mode}).returncode
            if rc:
                print(f"driver extension {mode}: the run failed (exit {rc})", file=sys.stderr)
                return rc
        return 0
    from neo4j._codec.packstream import v1

    print(f"neo4j driver PackStream: {'Rust (neo4j-rust-ext)' if v1._rust_pack else 'pure Python'}", flush=True)
    paths = args.paths.split(",")
    if args.preset == "insvideo":  # the insvideo build's own counts (train posts only are loaded)
        args.tags, args.edges, args.posts = 15_751, 1_800_000, 171_000
    data = make_data(args.tags, args.edges, args.posts, args.seed)
    print(f"{args.tags} hashtags, {args.edges} edges, {args.posts} posts "
          f"({sum(len(set(p['tags'])) for p in data[2])} TAGGED), batch {args.batch}", flush=True)

    with embedded_store() as store:
        for path in paths:
            for mode in args.gc.split(","):
                for _ in range(args.repeat):
                    with frozen_gc() if mode == "frozen" else contextlib.nullcontext():
                        r = bench(store, data, path, args.batch)
                    report(f"embedded {mode}", path, r, data)

    uri = os.environ.get("NEO4J_URI")
    if uri:
        auth = (os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", ""))
        with GraphStore(uri, auth, os.environ.get("NEO4J_DATABASE", "neo4j")) as store:
            store.verify()
            store.ensure_schema()
            for path in [p for p in paths if p != "bulk"]:
                for _ in range(args.repeat):
                    report("neo4j", path, bench(store, data, path, args.batch), data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
