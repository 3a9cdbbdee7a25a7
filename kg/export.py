"""Export the typed hashtag graph from the store: a PyG snapshot for the model
(graph.pt, layout in kg/schema.py), GraphML for graph tools, CSV for anything.

The store is the source of truth; the export reads it only through the named
queries cypher/export/*.cypher (one per relation type, since a relationship
type cannot be a Cypher parameter). ``build`` writes the same snapshot from
the rows it has just loaded (``export_loaded``), but only when the store's
per-type counts say it holds exactly those rows.
"""
from __future__ import annotations

import csv
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import networkx as nx
import torch
from torch_geometric.data import Data

from .errors import DataError, V2HTError
from .fsio import named
from .schema import RELATIONS, turned_evidence

FORMATS = ("pyg", "graphml", "csv")
# Evidence fields per relation type (kg/schema.py Edge), in export column order.
EVIDENCE = {
    "cp": ("words",),
    "ss": ("synset_a", "synset_b", "direction", "depth"),
    "po": ("wup", "synset_a", "synset_b"),
    "co": ("count", "strength", "pmi"),
}
EVIDENCE_COLUMNS = ("words", "synset_a", "synset_b", "direction", "depth", "wup", "count", "strength", "pmi")
PYG_FIELDS = ("names", "longtail", "count", "edge_index", "edge_type", "edge_weight", "fingerprint")


def read_graph(store) -> tuple[list[dict], dict[str, list[dict]]]:
    """Hashtag rows (ordered by name) and edge rows per relation type (each
    pair once, a < b, ordered by (a, b))."""
    hashtags = store.read("export/hashtags")
    edges = {kind: _canonical(store.read(f"export/{kind}")) for kind in RELATIONS}
    return hashtags, edges


def _canonical(rows: list[dict]) -> list[dict]:
    """Each relationship as the pair (a < b), evidence turned with it, sorted
    by (a, b): the sort happens here, not in the server (see cypher/export)."""
    # a self-loop is no pair; one stored against the loaders' direction (a
    # hand-written edge, say) turns like an Edge does
    rows = [r if r["a"] < r["b"] else {**turned_evidence(r), "a": r["b"], "b": r["a"]}
            for r in rows if r["a"] != r["b"]]
    rows.sort(key=lambda r: (r["a"], r["b"]))
    return rows


def _node_order(hashtags: list[dict], names: list[str] | None) -> list[dict]:
    by_name = {h["name"]: h for h in hashtags}
    if names is None:
        return hashtags
    if len(set(names)) != len(names):
        raise DataError("the hashtag order given for the export repeats names")
    missing = [n for n in names if n not in by_name]
    extra = sorted(set(by_name) - set(names))
    if missing or extra:
        example = (f"e.g. {missing[0]!r} not in the store" if missing else f"e.g. {extra[0]!r} not in the data set")
        raise DataError(
            f"the graph store's hashtags differ from the prepared data set's ({len(by_name)} in the store, "
            f"{len(names)} in the data set, {len(missing)} missing, {len(extra)} extra; {example}); "
            "rebuild the graph (v2ht-kg build)"
        )
    return [by_name[n] for n in names]


def _write_atomically(out: Path, write) -> None:
    """Write through a temporary name beside ``out``, then rename: a reader
    never sees half a file, and a failed export leaves the old one intact."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with named(out):
            write(tmp)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def to_pyg(nodes: list[dict], edges: dict[str, list[dict]], fingerprint: str = "") -> Data:
    index = {h["name"]: i for i, h in enumerate(nodes)}
    src: list[int] = []
    dst: list[int] = []
    etype: list[int] = []
    weight: list[float] = []
    for code, kind in enumerate(RELATIONS):
        for e in edges.get(kind, []):
            try:
                a, b = index[e["a"]], index[e["b"]]
            except KeyError as k:
                raise DataError(f"a {kind} edge names hashtag {k.args[0]!r} that is not a node of the export") from None
            src.append(a)
            dst.append(b)
            etype.append(code)
            weight.append(float(e["weight"]) if e.get("weight") is not None else 1.0)
    # Both directions: the first E columns are a -> b, the next E their reverses,
    # so column i and i + E are the same undirected edge.
    s = torch.tensor(src, dtype=torch.long)
    d = torch.tensor(dst, dtype=torch.long)
    data = Data(
        names=[h["name"] for h in nodes],
        longtail=torch.tensor([bool(h["longtail"]) for h in nodes], dtype=torch.bool),
        count=torch.tensor([int(h["train_count"] or 0) for h in nodes], dtype=torch.long),
        edge_index=torch.stack([torch.cat([s, d]), torch.cat([d, s])]) if src else torch.zeros((2, 0), dtype=torch.long),
        edge_type=torch.tensor(etype + etype, dtype=torch.long),
        edge_weight=torch.tensor(weight + weight, dtype=torch.float),
        fingerprint=fingerprint,
    )
    data.num_nodes = len(nodes)
    return data


def _scalar(value: Any) -> Any:
    """GraphML and CSV cells hold scalars: lists become JSON text."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(list(value) if not isinstance(value, dict) else value, ensure_ascii=False)
    return value


def to_networkx(nodes: list[dict], edges: dict[str, list[dict]], fingerprint: str = "") -> nx.Graph:
    g = nx.Graph(fingerprint=fingerprint)
    for h in nodes:
        g.add_node(h["name"], longtail=bool(h["longtail"]), count=int(h["count"] or 0), train_count=int(h["train_count"] or 0))
    for kind in RELATIONS:
        for e in edges.get(kind, []):
            attrs = {"type": kind, "weight": float(e["weight"]) if e.get("weight") is not None else 1.0}
            for key in EVIDENCE[kind]:
                if e.get(key) is not None:
                    attrs[key] = _scalar(e[key])
            attrs["overrides"] = _scalar(e.get("overrides") or [])
            g.add_edge(e["a"], e["b"], **attrs)
    return g


def _write_csv(folder: Path, nodes: list[dict], edges: dict[str, list[dict]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)

    def nodes_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["id", "name", "longtail", "count", "train_count"])
            for i, h in enumerate(nodes):
                w.writerow([i, h["name"], str(bool(h["longtail"])).lower(), int(h["count"] or 0), int(h["train_count"] or 0)])

    def edges_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["a", "b", "type", "weight", *EVIDENCE_COLUMNS, "overrides"])
            for kind in RELATIONS:
                for e in edges.get(kind, []):
                    ev = [_scalar(e.get(c)) if c in EVIDENCE[kind] and e.get(c) is not None else "" for c in EVIDENCE_COLUMNS]
                    w.writerow([e["a"], e["b"], kind, e["weight"], *ev, _scalar(e.get("overrides") or [])])

    _write_atomically(folder / "nodes.csv", nodes_csv)
    _write_atomically(folder / "edges.csv", edges_csv)


def export_graph(store, out: Path, fmt: str = "pyg", names: list[str] | None = None, fingerprint: str = "") -> dict:
    """Write the store's graph to ``out`` (a file for pyg/graphml, a folder
    for csv). ``names`` fixes the node order (the prepared data set's hashtag
    id order) and must hold exactly the store's hashtags. Returns a summary:
    {"path", "format", "nodes", "edges": {kind: count}}."""
    if fmt not in FORMATS:
        raise V2HTError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out)
    if fmt == "csv" and out.exists() and not out.is_dir():
        raise V2HTError(f"{out}: exists and is not a folder; the csv export writes a folder")
    if fmt != "csv" and out.is_dir():
        raise V2HTError(f"{out}: is a folder; the {fmt} export writes a file")
    hashtags, edges = read_graph(store)
    if not hashtags:
        raise V2HTError("the graph store holds no hashtags; build the graph first (v2ht-kg build)")
    return _write(out, fmt, hashtags, edges, names, fingerprint)


def _write(out: Path, fmt: str, hashtags: list[dict], edges: dict[str, list[dict]], names: list[str] | None,
           fingerprint: str) -> dict:
    """Hashtag and canonical edge rows (as read_graph returns them) to ``out``."""
    nodes = _node_order(hashtags, names)
    if fmt == "pyg":
        data = to_pyg(nodes, edges, fingerprint)
        _write_atomically(out, lambda tmp: torch.save(data, tmp))
    elif fmt == "graphml":
        g = to_networkx(nodes, edges, fingerprint)
        _write_atomically(out, lambda tmp: nx.write_graphml(g, tmp))
    else:
        _write_csv(out, nodes, edges)
    return {"path": str(out), "format": fmt, "nodes": len(nodes), "edges": {k: len(edges[k]) for k in RELATIONS}}


def export_loaded(out: Path, hashtags: list[dict], edges: list, names: list[str], fingerprint: str,
                  store_counts: dict) -> dict | None:
    """graph.pt from the rows a build has just loaded, without reading them
    back: at INSVIDEO scale the store read is most of the build (167 of
    340 s). Only when the store's per-type counts equal what was loaded
    (``store_counts``: GraphStore.counts()); otherwise None, and the caller
    exports from the store. The file is the one export_graph writes: same
    node order, pairs ordered and sorted the same way."""
    from .schema import REL_LABEL

    by_kind: dict[str, dict[tuple[str, str], dict]] = {k: {} for k in RELATIONS}
    for e in edges:  # a later duplicate pair wins, as in GraphStore.load_edges
        by_kind[e.type][(e.a, e.b)] = {"a": e.a, "b": e.b, "weight": float(e.weight)}
    stored = store_counts.get("edges", {})
    if store_counts.get("nodes", {}).get("Hashtag", 0) != len(hashtags) or any(
            stored.get(REL_LABEL[k], 0) != len(v) for k, v in by_kind.items()):
        return None
    rows = {k: _canonical(list(v.values())) for k, v in by_kind.items()}
    return {**_write(Path(out), "pyg", hashtags, rows, names, fingerprint), "from": "loaded rows"}


def _pyg_safe_globals() -> list:
    # PyG's classes a pickled Data refers to; allow-listing them lets
    # torch.load keep weights_only=True, so loading a file runs no code.
    from torch_geometric.data import data as data_mod, storage

    names = [(data_mod, "Data"), (data_mod, "DataEdgeAttr"), (data_mod, "DataTensorAttr"), (storage, "GlobalStorage")]
    return [getattr(m, n) for m, n in names if hasattr(m, n)]


def load_pyg_graph(path: Path) -> Data:
    """Read a graph.pt written by export_graph(fmt="pyg")."""
    path = Path(path)
    if not path.is_file():
        raise DataError("graph snapshot missing; export it first (v2ht-kg graph export)", str(path))
    try:
        with torch.serialization.safe_globals(_pyg_safe_globals()):
            data = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"not a readable graph snapshot ({first[:120]})", str(path)) from None
    if not isinstance(data, Data) or any(f not in data for f in PYG_FIELDS):
        raise DataError("not a v2ht-kg graph snapshot (fields missing)", str(path))
    return data
