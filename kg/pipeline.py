"""The stages the CLI chains: source → prepared data set → relations →
graph store → PyG snapshot. Each stage is a function of its inputs; the CLI
only renders."""
from __future__ import annotations

from pathlib import Path

from .dataset import PreparedDataset
from .errors import DataError
from .prepare import PrepareParams, Progress, prepare
from .readers import read_posts
from .workdir import Workdir


def synthetic_source(wd: Workdir, preset: str, seed: int, progress: Progress | None = None) -> Path:
    """Generate (once per preset and seed) the synthetic raw folder in the work dir."""
    from . import synthetic

    out = wd.raw_synthetic / f"{preset}-seed{seed}"
    if not (out / "posts.jsonl").is_file():
        synthetic.generate_preset(preset, out, seed=seed)
    return out


def prepare_source(
    source: Path | None,
    fmt: str,
    wd: Workdir,
    params: PrepareParams,
    skip_bad: bool = False,
    preset: str = "small",
    progress: Progress | None = None,
) -> tuple[PreparedDataset, dict]:
    """Read a source and write ``wd.data``. Returns the data set and a report
    (bad lines skipped, source description)."""
    wd.ensure()
    if fmt == "synthetic" and source is None:
        source = synthetic_source(wd, preset, params.seed, progress)
    if source is None:
        raise DataError("give a data folder (or --format synthetic to generate one)")
    source = Path(source)
    if not source.exists():
        raise DataError("data folder does not exist", str(source))
    posts, bad = read_posts(source, fmt, skip_bad=skip_bad)
    posts = list(posts)
    features = None
    if fmt in ("jsonl", "csv", "synthetic"):
        from .rawdata import raw_features

        features = {m: (arr, ids) for m, (arr, ids) in raw_features(source).items()} or None
    report = {"format": fmt, "path": str(source), "bad_lines_skipped": bad.count, "bad_line_examples": bad.examples}
    ds = prepare(posts, wd.data, params, source=report, features=features, progress=progress)
    return ds, report


def build_graph(ds: PreparedDataset, store, wd: Workdir, rel_params=None, fresh: bool = False,
                use_wordnet: bool = True, progress: Progress | None = None) -> dict:
    """Relations from the prepared data set, loaded into ``store`` (a
    GraphStore), then the PyG snapshot ``wd.graph``. The store records the
    build as loading until every batch is in, so an interrupted build is
    never taken for a complete one. Returns the build summary."""
    import time

    from .export import export_graph
    from .relations import RelationParams, build_relations
    from .schema import RELATIONS

    prog = progress or (lambda *a: None)
    t0 = time.time()
    wn = None
    if use_wordnet:
        from .wordnet import load_wordnet

        wn = load_wordnet()
    hashtags = ds.hashtags
    train = [p for p in ds.posts if p.split == "train"]
    prog("relations", 0, 1)
    edges, report = build_relations(hashtags, [p.tags for p in train], wn, rel_params or RelationParams())
    prog("relations", 1, 1)
    t_rel = time.time() - t0

    meta = {"fingerprint": ds.fingerprint, "source": ds.manifest["source"].get("path", ""),
            "hashtags": len(hashtags), "edges": len(edges)}
    store.ensure_schema()
    if fresh:
        store.clear()
    store.begin_build(meta)
    t1 = time.time()
    prog("load hashtags", 0, len(hashtags))
    store.load_hashtags([dict(name=h.name, words=h.words, count=h.count, train_count=h.train_count,
                              longtail=h.longtail, surfaces=h.surfaces) for h in hashtags])
    prog("load hashtags", len(hashtags), len(hashtags))
    by_type = {r: [e for e in edges if e.type == r] for r in RELATIONS}
    prog("load edges", 0, len(edges))
    store.load_edges(edges)
    prog("load edges", len(edges), len(edges))
    users = ds.users
    names = [h.name for h in hashtags]
    rows = [dict(id=p.id, user=users[p.user]["name"], split=p.split, tags=[names[t] for t in p.tags]) for p in train]
    prog("load posts", 0, len(rows))
    n_tagged = store.load_posts(rows)
    prog("load posts", len(rows), len(rows))
    t_load = time.time() - t1
    counts = store.counts()
    store.finish_build({**meta, "tagged": n_tagged})
    prog("export", 0, 1)
    export_graph(store, wd.graph, "pyg", names=names, fingerprint=ds.fingerprint)
    prog("export", 1, 1)
    return {
        "hashtags": len(hashtags),
        "longtail_hashtags": sum(1 for h in hashtags if h.longtail),
        "edges": {r: len(by_type[r]) for r in RELATIONS},
        "edges_before_priority": report.get("before"),
        "overridden": report.get("overridden"),
        "relation_stats": report.get("stats"),
        "train_posts_loaded": len(rows),
        "tagged_edges": n_tagged,
        "store_counts": counts,
        "seconds": {"relations": round(t_rel, 2), "load": round(t_load, 2), "total": round(time.time() - t0, 2)},
        "relation_seconds": report.get("seconds"),
        "graph_snapshot": str(wd.graph),
    }
