"""The stages the CLI chains: source → prepared data set → relations →
graph store → PyG snapshot. Each stage is a function of its inputs; the CLI
only renders.

A build is one transaction over the work directory: the store is checked
(reached, authenticated) before anything is prepared; the data set is
prepared into a staging folder beside ``data/``; the store's graph is
cleared when it holds another data set (or other relation parameters); the
build marker says "loading" until ``graph.pt`` is exported and the staged
data set has replaced ``data/``, and only then "complete" with the
fingerprints of all three. Read commands compare them
(:func:`consistency_problems`)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from .dataset import PreparedDataset
from .embedded import frozen_gc
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
    out_dir: Path | None = None,
) -> tuple[PreparedDataset, dict]:
    """Read a source and write ``out_dir`` (default ``wd.data``; a build
    stages it in :func:`staging_dir` and swaps it in at the end). Returns the
    data set and a report (bad lines skipped, source description)."""
    wd.ensure()
    generated = fmt == "synthetic" and source is None
    if generated:
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
    if fmt in ("jsonl", "csv"):
        from .video.extract import read_manifest

        # recommend --video extracts a new video with the same settings and CNN
        video = read_manifest(source)
        if video is not None:
            report["video_features"] = video
    ds = prepare(posts, Path(out_dir) if out_dir is not None else wd.data, params, source=report,
                 features=features, progress=progress, link_features=generated)
    return ds, report


def staging_dir(wd: Workdir) -> Path:
    """Where a build prepares its data set before it replaces ``data/``
    (``data.tmp-PID``: a killed build's folder is removed by the next
    writer, see Workdir.clean_orphans)."""
    return wd.root / f"data.tmp-{os.getpid()}"


def _swap_in(staged: Path, target: Path) -> None:
    """Replace ``target`` by ``staged`` (two renames; the old folder goes
    through ``<name>-old.tmp-PID``, removed afterwards or by the next writer)."""
    old = target.with_name(f"{target.name}-old.tmp-{os.getpid()}")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


def file_digest(path: Path) -> str | None:
    """sha256 (first 32 hex digits) of a file, None when it is missing."""
    path = Path(path)
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


def graph_params(rel_params, use_wordnet: bool) -> str:
    """The relation parameters of a build as canonical JSON: a graph built
    with other thresholds is another graph, even from the same data."""
    from dataclasses import asdict, is_dataclass

    values = asdict(rel_params) if is_dataclass(rel_params) else dict(vars(rel_params))
    return json.dumps({**values, "wordnet": bool(use_wordnet)}, sort_keys=True, default=str)


def stale_reason(info: dict | None, fingerprint: str, params: str, has_nodes: bool) -> str | None:
    """Why the store's graph cannot be merged into by a build of
    ``fingerprint`` with relation ``params`` (None: it can). MERGE over
    another data set's graph would leave the union of both."""
    if info is None:
        return "it holds nodes but no build marker" if has_nodes else None
    if info.get("fingerprint") != fingerprint:
        return f"it holds another data set's graph (fingerprint {info.get('fingerprint')})"
    if info.get("graph_params") is not None and info.get("graph_params") != params:
        return "its graph was built with other relation parameters"
    return None


def build_graph(ds: PreparedDataset, store, wd: Workdir, rel_params=None, fresh: bool = False,
                use_wordnet: bool = True, progress: Progress | None = None) -> dict:
    """Relations from the prepared data set, loaded into ``store`` (a
    GraphStore), then the PyG snapshot ``wd.graph``. When ``ds`` lies in a
    staging folder (not ``wd.data``) it replaces ``wd.data`` once the export
    succeeded. The store records the build as loading until all of that is
    done, so an interrupted build is never taken for a complete one; a store
    holding another data set's graph is cleared first (``summary["cleared"]``
    says why). Returns the build summary."""
    import time
    from collections import Counter

    from .export import export_graph, export_loaded
    from .relations import RelationParams, build_relations
    from .schema import RELATIONS
    from .timing import timed

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

    rel_params = rel_params or RelationParams()
    gparams = graph_params(rel_params, use_wordnet)
    meta = {"fingerprint": ds.fingerprint, "source": (ds.manifest.get("source") or {}).get("path", ""),
            "hashtags": len(hashtags), "edges": len(edges), "graph_params": gparams}
    store.ensure_schema()
    cleared = "--fresh" if fresh else None
    if not fresh:
        counts0 = store.counts()["nodes"]
        cleared = stale_reason(store.build_info(), ds.fingerprint, gparams,
                               any(n for label, n in counts0.items() if label != "Build"))
    if cleared:
        store.clear()
    store.begin_build(meta)
    t1 = time.time()
    tag_rows = [dict(name=h.name, words=h.words, count=h.count, train_count=h.train_count,
                     longtail=h.longtail, surfaces=h.surfaces) for h in hashtags]
    load_s: dict[str, float] = {}
    with frozen_gc():
        prog("load hashtags", 0, len(hashtags))
        with timed(load_s, "hashtags"):
            store.load_hashtags(tag_rows)
        prog("load hashtags", len(hashtags), len(hashtags))
        n_by_type = Counter(e.type for e in edges)
        prog("load edges", 0, len(edges))
        with timed(load_s, "edges"):
            store.load_edges(edges)
        prog("load edges", len(edges), len(edges))
        users = ds.users
        names = [h.name for h in hashtags]
        rows = [dict(id=p.id, user=users[p.user]["name"], split=p.split, tags=[names[t] for t in p.tags]) for p in train]
        prog("load posts", 0, len(rows))
        with timed(load_s, "posts"):  # users, posts, POSTED and TAGGED
            n_tagged = store.load_posts(rows)
        prog("load posts", len(rows), len(rows))
    t_load = time.time() - t1
    counts = store.counts()
    prog("export", 0, 1)
    # the snapshot from what was just loaded when the store holds exactly that
    # (per-type counts); else, say with edges written by hand, from the store
    if export_loaded(wd.graph, tag_rows, edges, names, ds.fingerprint, counts) is None:
        export_graph(store, wd.graph, "pyg", names=names, fingerprint=ds.fingerprint)
    prog("export", 1, 1)
    if Path(ds.root).resolve() != wd.data.resolve():
        _swap_in(Path(ds.root), wd.data)
    # Complete only now: graph.pt and data/ are this build's (a kill before
    # this line leaves the marker "loading", which every read reports).
    store.finish_build({**meta, "tagged": n_tagged, "graph_sha": file_digest(wd.graph)})
    return {
        "hashtags": len(hashtags),
        "longtail_hashtags": sum(1 for h in hashtags if h.longtail),
        "edges": {r: n_by_type[r] for r in RELATIONS},
        "edges_before_priority": report.get("before"),
        "overridden": report.get("overridden"),
        "relation_stats": report.get("stats"),
        "train_posts_loaded": len(rows),
        "tagged_edges": n_tagged,
        "store_counts": counts,
        "seconds": {"relations": round(t_rel, 2), "load": round(t_load, 2), "total": round(time.time() - t0, 2)},
        "relation_seconds": report.get("seconds"),
        # per part of the store load, and its rows a second (edges: typed relations;
        # posts: users + posts + POSTED + TAGGED)
        "load_seconds": {k: round(v, 2) for k, v in load_s.items()},
        "load_rows_per_s": {
            "hashtags": round(len(hashtags) / max(load_s["hashtags"], 1e-9)),
            "edges": round(len(edges) / max(load_s["edges"], 1e-9)),
            "posts": round((len({r["user"] for r in rows}) + 2 * len(rows) + n_tagged) / max(load_s["posts"], 1e-9)),
        },
        "graph_snapshot": str(wd.graph),
        "cleared": cleared,
    }


def consistency_problems(info: dict | None, wd: Workdir) -> list[str]:
    """What a read command must warn about before it answers from the store:
    no build marker, an unfinished build, or a store, ``data/`` and
    ``graph.pt`` that were not built together (fingerprints). Empty when
    they agree. ``data/`` and ``graph.pt`` are compared only when the work
    directory has them (a Neo4j store may be queried from anywhere)."""
    if info is None:
        return ["the store holds no build marker, so no build completed here: the answers may be empty or stale "
                "(run `v2ht-kg build`)"]
    problems = []
    if info.get("status") != "complete":
        problems.append("the last build did not complete; the graph may be partial (rerun `v2ht-kg build`)")
    fp = info.get("fingerprint")
    has_data = (wd.data / "manifest.json").is_file()
    if has_data:
        try:
            data_fp = PreparedDataset(wd.data).fingerprint
        except DataError as e:
            problems.append(f"the prepared data set is unreadable ({e})")
        else:
            if data_fp != fp:
                problems.append(f"the store's graph was built from data set {fp}, but {wd.data} holds data set "
                                f"{data_fp} (rerun `v2ht-kg build`)")
    want = info.get("graph_sha")
    if want and info.get("status") == "complete" and (has_data or wd.graph.exists()):
        have = file_digest(wd.graph)
        if have is None:
            problems.append(f"{wd.graph} is missing (rerun `v2ht-kg build`)")
        elif have != want:
            problems.append(f"{wd.graph} is not the snapshot of the store's graph (rerun `v2ht-kg build`)")
    return problems
