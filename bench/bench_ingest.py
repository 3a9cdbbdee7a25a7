"""The engine's own ingest rate on this machine: ArcadeDB's GraphBatch fed
the way `build` feeds it, with no v2ht-kg code in the loop, so the store
load's figures can be read against what the engine allows.

    .venv/bin/python bench/bench_ingest.py [--edges 400000] [--heap 2g]
        [--variants json,empty-list,joined,parse,wal-off,batch-1m,heap-4g,g1]

Each variant runs in a fresh process (a cold JVM), creates 17,548 vertices
in a new database under a temporary folder, then loads the same random
edges twice (two edge types, "cold" and "warm"), and prints per round the
time to build the Python rows, to encode them as JSON, the engine's ingest
calls and the batch's close, and the rates:

- json: CO-like property edges (weight, count, strength, pmi) as JSON rows,
  what the store does for typed edges (`EdgeBatcher.newEdgesJson`), with
  full-precision floats as co's are (until 2026-12-05 late the bench wrote
  0.5, 0.25 and 1.5, whose short text the engine parses faster);
- empty-list: the same with an empty `overrides` list on every edge, as the
  store wrote co edges until 2026-12-05;
- joined: the same pairs without properties as two joined RID strings, what
  it does for POSTED/TAGGED (`newEdgesJoined`);
- parse: Java only parses the JSON rows (no edge is created): the share of
  the JSON path that is parsing;
- wal-off, batch-1m, heap-4g: the json variant without the write-ahead log
  (which `build` keeps on), with a 1M-edge batch, with a 4 GB heap;
- g1: the json variant under the JVM's own pick of collector (G1 on two
  cores) instead of the parallel one `build` asks for (kg.embedded.GC_ARGS).

Every variant starts the JVM with build's collector flags unless it names
its own.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

H = 17_548
CHUNK = 100_000
VARIANTS = {  # name: (rows, heap, GraphBatch options, JVM collector flags; None: build's)
    "json": ("json", "2g", {}, None),
    "empty-list": ("json-empty-list", "2g", {}, None),
    "joined": ("joined", "2g", {}, None),
    "parse": ("parse", "2g", {}, None),
    "wal-off": ("json", "2g", {"use_wal": False}, None),
    "batch-1m": ("json", "2g", {"batch_size": 1_000_000}, None),
    "heap-4g": ("json", "4g", {}, None),
    "g1": ("json", "2g", {}, ["-XX:+UseG1GC"]),
}


def child(mode: str, heap: str, n_edges: int, opts: dict, gc_args: list | None, root: str) -> None:
    import gc
    import random
    import time

    import jpype  # noqa: F401
    from arcadedb_embedded.jvm import start_jvm

    from v2ht_kg.kg.embedded import jvm_gc_args

    start_jvm(heap_size=heap, jvm_args=jvm_gc_args() if gc_args is None else gc_args)
    import arcadedb_embedded as adb
    from arcadedb_embedded.results import _bridge_class

    db = adb.create_database(root)
    db.schema.get_or_create_vertex_type("Hashtag")
    vb = jpype.JClass("com.arcadedb.python.VertexBatcher")
    eb = _bridge_class("EdgeBatcher")
    with db.graph_batch(use_wal=True) as gb:
        rids = str(vb.createVerticesJson(gb._java_graph_batch, "Hashtag",
                                         json.dumps([{"name": f"t{i}", "count": i} for i in range(H)]))).split(";")
    rng = random.Random(0)
    pairs = [(rng.randrange(H), rng.randrange(H)) for _ in range(n_edges)]
    # co's evidence as build writes it: a count, strength = count / a tag's
    # posts (full-precision floats, whose text the engine parses) and a PMI
    counts = [rng.randrange(2, 50) for _ in range(n_edges)]
    strengths = [k / rng.randrange(k, 500) for k in counts]
    pmis = [rng.gauss(0.0, 3.0) for _ in range(n_edges)]
    gc.collect()
    gc.freeze()  # as build does (kg.embedded.frozen_gc)
    for rnd, label in enumerate(("cold", "warm")):
        tname = f"CO{rnd}"
        db.schema.get_or_create_edge_type(tname)
        t0 = time.perf_counter()
        if mode == "joined":
            src = [";".join(rids[a] for a, _ in pairs[i:i + CHUNK]) for i in range(0, n_edges, CHUNK)]
            dst = [";".join(rids[b] for _, b in pairs[i:i + CHUNK]) for i in range(0, n_edges, CHUNK)]
            t1 = t2 = time.perf_counter()
        else:
            extra = {"overrides": []} if mode == "json-empty-list" else {}
            rows = [{"_src": rids[a], "_dst": rids[b], "weight": s, **extra, "count": k, "strength": s, "pmi": p}
                    for (a, b), k, s, p in zip(pairs, counts, strengths, pmis)]
            t1 = time.perf_counter()
            chunks = [json.dumps(rows[i:i + CHUNK]) for i in range(0, n_edges, CHUNK)]
            t2 = time.perf_counter()
        kw = {"use_wal": True, "parallel_flush": True, "expected_edge_count": n_edges, **opts}
        with db.graph_batch(**kw) as gb:
            if mode == "joined":
                for s, d in zip(src, dst):
                    eb.newEdgesJoined(gb._java_graph_batch, s, tname, d)
            elif mode == "parse":
                parser = jpype.JClass("com.arcadedb.serializer.json.JSONArray")
                for c in chunks:
                    parser(c)
            else:
                for c in chunks:
                    eb.newEdgesJson(gb._java_graph_batch, tname, c)
            t3 = time.perf_counter()
        t4 = time.perf_counter()
        print(json.dumps({"round": label, "rows_s": round(t1 - t0, 2), "json_s": round(t2 - t1, 2),
                          "ingest_s": round(t3 - t2, 2), "close_s": round(t4 - t3, 2),
                          "edges_per_s": round(n_edges / (t4 - t0)),
                          "engine_edges_per_s": round(n_edges / (t4 - t2))}), flush=True)
    db.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edges", type=int, default=400_000)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, heap, opts, gc_args, root = json.loads(args.child)
        child(mode, heap, args.edges, opts, gc_args, root)
        return 0
    print(f"{'variant':9} {'round':5} {'rows s':>7} {'json s':>7} {'ingest s':>9} {'close s':>8} "
          f"{'edges/s':>8} {'engine/s':>9}")
    for name in args.variants.split(","):
        if name not in VARIANTS:
            print(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}", file=sys.stderr)
            return 2
        mode, heap, opts, gc_args = VARIANTS[name]
        with tempfile.TemporaryDirectory() as tmp:
            spec = json.dumps([mode, heap, opts, gc_args, f"{tmp}/db"])
            out = subprocess.run([sys.executable, __file__, "--edges", str(args.edges), "--child", spec],
                                 capture_output=True, text=True, cwd=tmp)
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode or not rows:
            print(f"{name}: failed (exit {out.returncode}): {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
        for r in rows:
            print(f"{name:9} {r['round']:5} {r['rows_s']:7.2f} {r['json_s']:7.2f} {r['ingest_s']:9.2f} "
                  f"{r['close_s']:8.2f} {r['edges_per_s']:8d} {r['engine_edges_per_s']:9d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
