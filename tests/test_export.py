"""Graph export from the real embedded store: the PyG snapshot (layout in
kg/schema.py), GraphML and CSV."""
from __future__ import annotations

import csv
import json


import networkx as nx
import pytest
import torch

from v2ht_kg.kg.errors import DataError, V2HTError
from v2ht_kg.kg.export import export_graph, load_pyg_graph
from v2ht_kg.kg.schema import RELATIONS, Edge

TAGS = {  # name: (count, train_count, longtail)
    "dancer": (40, 30, False),
    "kid dancer": (3, 2, True),
    "kid": (20, 15, False),
    "ballet": (4, 3, True),
    "dog": (50, 40, False),
    "puppy": (2, 1, True),
    "cat": (30, 25, False),
    "beach": (25, 20, False),
    'say "cheese" 🧀': (1, 0, True),
}
EDGES = [
    Edge("dancer", "kid dancer", "cp", 1.0, {"words": ["dancer"]}, ["co"]),
    Edge("kid", "kid dancer", "cp", 1.0, {"words": ["kid"]}),
    Edge("dog", "puppy", "ss", 1.0, {"synset_a": "dog.n.01", "synset_b": "puppy.n.01", "direction": "a_hypernym_of_b", "depth": 1}),
    Edge("ballet", "dancer", "po", 0.82, {"wup": 0.82, "synset_a": "ballet.n.01", "synset_b": "dancer.n.01"}),
    Edge("cat", "dog", "po", 0.857, {"wup": 0.857, "synset_a": "cat.n.01", "synset_b": "dog.n.01"}, ["co"]),
    Edge("beach", "dog", "co", 0.25, {"count": 3, "strength": 0.25, "pmi": 0.7}),
    Edge("beach", 'say "cheese" 🧀', "co", 0.5, {"count": 1, "strength": 0.5, "pmi": 2.1}),
]
# the prepared data set's id order: deliberately not the store's name order
NAMES = sorted(TAGS, key=lambda n: (-TAGS[n][0], n))


@pytest.fixture(scope="module")
def graph(store):
    store.clear()
    store.ensure_schema()
    store.load_hashtags([
        {"name": n, "words": n.split(), "count": c, "train_count": t, "longtail": lt, "surfaces": [n]}
        for n, (c, t, lt) in TAGS.items()
    ])
    store.load_edges(EDGES)
    return store


def test_pyg_snapshot_follows_the_schema_and_the_given_order(graph, tmp_path):
    out = tmp_path / "graph.pt"
    summary = export_graph(graph, out, "pyg", names=NAMES, fingerprint="abc123")
    assert summary["nodes"] == len(TAGS)
    assert summary["edges"] == {k: sum(e.type == k for e in EDGES) for k in RELATIONS}
    assert [p.name for p in tmp_path.iterdir()] == ["graph.pt"]  # no temporary left behind

    data = load_pyg_graph(out)
    assert data.names == NAMES and data.num_nodes == len(NAMES)
    assert data.fingerprint == "abc123"
    assert data.longtail.dtype == torch.bool and data.longtail.tolist() == [TAGS[n][2] for n in NAMES]
    assert data.count.dtype == torch.long and data.count.tolist() == [TAGS[n][1] for n in NAMES]

    E = len(EDGES)
    assert data.edge_index.shape == (2, 2 * E) and data.edge_index.dtype == torch.long
    assert data.edge_type.shape == (2 * E,) and data.edge_weight.dtype == torch.float
    src, dst = data.edge_index
    # column i and i + E are the same edge in both directions
    assert torch.equal(src[:E], dst[E:]) and torch.equal(dst[:E], src[E:])
    assert torch.equal(data.edge_type[:E], data.edge_type[E:])
    got = {
        (data.names[s], data.names[d], RELATIONS[t], round(w, 4))
        for s, d, t, w in zip(src.tolist(), dst.tolist(), data.edge_type.tolist(), data.edge_weight.tolist())
    }
    expected = {(e.a, e.b, e.type, round(e.weight, 4)) for e in EDGES}
    expected |= {(b, a, t, w) for a, b, t, w in expected}
    assert got == expected


def test_pyg_snapshot_without_names_uses_store_order(graph, tmp_path):
    export_graph(graph, tmp_path / "g.pt", "pyg")
    data = load_pyg_graph(tmp_path / "g.pt")
    assert data.names == sorted(TAGS)
    assert data.fingerprint == ""


@pytest.mark.parametrize("names", [
    NAMES[:-1],  # the store holds a tag the data set lacks
    NAMES + ["unknown tag"],  # the data set holds a tag the store lacks
    NAMES[:-1] + [NAMES[0]],  # a repeated name
])
def test_names_that_differ_from_the_store_are_rejected(graph, tmp_path, names):
    out = tmp_path / "graph.pt"
    with pytest.raises(DataError) as err:
        export_graph(graph, out, "pyg", names=names)
    assert "\n" not in str(err.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_graphml_holds_nodes_edges_and_evidence(graph, tmp_path):
    out = tmp_path / "sub" / "graph.graphml"
    export_graph(graph, out, "graphml", names=NAMES, fingerprint="fp")
    g = nx.read_graphml(out)
    assert g.graph["fingerprint"] == "fp"
    assert list(g.nodes) == NAMES
    assert g.nodes["kid dancer"]["longtail"] is True and g.nodes["dog"]["count"] == TAGS["dog"][0]
    assert g.number_of_edges() == len(EDGES)
    for e in EDGES:
        attrs = g.edges[e.a, e.b]
        assert attrs["type"] == e.type and attrs["weight"] == pytest.approx(e.weight)
        assert json.loads(attrs["overrides"]) == e.overrides
    assert json.loads(g.edges["dancer", "kid dancer"]["words"]) == ["dancer"]
    assert g.edges["dog", "puppy"]["direction"] == "a_hypernym_of_b"
    assert g.edges["beach", 'say "cheese" 🧀']["count"] == 1


def test_csv_folder_has_nodes_and_edges(graph, tmp_path):
    out = tmp_path / "csv"
    export_graph(graph, out, "csv", names=NAMES)
    assert sorted(p.name for p in out.iterdir()) == ["edges.csv", "nodes.csv"]
    with open(out / "nodes.csv", encoding="utf-8", newline="") as f:
        nodes = list(csv.DictReader(f))
    assert [r["name"] for r in nodes] == NAMES and [int(r["id"]) for r in nodes] == list(range(len(NAMES)))
    assert {r["name"]: r["longtail"] for r in nodes} == {n: str(TAGS[n][2]).lower() for n in NAMES}
    with open(out / "edges.csv", encoding="utf-8", newline="") as f:
        edges = list(csv.DictReader(f))
    assert {(r["a"], r["b"], r["type"]) for r in edges} == {(e.a, e.b, e.type) for e in EDGES}
    cp = next(r for r in edges if r["b"] == "kid dancer" and r["a"] == "dancer")
    assert json.loads(cp["words"]) == ["dancer"] and json.loads(cp["overrides"]) == ["co"] and cp["wup"] == ""
    co = next(r for r in edges if r["type"] == "co" and r["b"] == "dog")
    assert (int(co["count"]), float(co["pmi"])) == (3, pytest.approx(0.7))


def test_unknown_format_or_wrong_kind_of_target_is_refused(graph, tmp_path):
    with pytest.raises(V2HTError, match="unknown export format"):
        export_graph(graph, tmp_path / "g.x", "dot")
    (tmp_path / "file").write_text("x")
    with pytest.raises(V2HTError, match="not a folder"):
        export_graph(graph, tmp_path / "file", "csv")
    with pytest.raises(V2HTError, match="is a folder"):
        export_graph(graph, tmp_path, "pyg")


def test_loading_a_missing_or_corrupt_snapshot_is_a_one_line_data_error(tmp_path):
    with pytest.raises(DataError, match="missing"):
        load_pyg_graph(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="not a readable graph snapshot") as err:
        load_pyg_graph(bad)
    assert "\n" not in str(err.value) and str(bad) in str(err.value)
    other = tmp_path / "other.pt"
    torch.save({"x": torch.zeros(2)}, other)
    with pytest.raises(DataError, match="not a v2ht-kg graph snapshot"):
        load_pyg_graph(other)


def test_a_relationship_stored_against_the_loaders_direction_exports_as_its_pair(graph, tmp_path):
    # the export matches directed (no server-side sort); a hand-written b -> a
    # edge still comes out once, as (a, b) with its evidence turned
    graph.run("MATCH (a:Hashtag {name: $a}), (b:Hashtag {name: $b}) "
              "CREATE (b)-[:SS {weight: 0.5, synset_a: 'puppy.n.01', synset_b: 'cat.n.01', "
              "direction: 'a_hypernym_of_b', depth: 2, overrides: []}]->(a)",
              {"a": "cat", "b": "puppy"}, write=True)
    try:
        from v2ht_kg.kg.export import read_graph

        _, edges = read_graph(graph)
        ss = [(r["a"], r["b"], r["synset_a"], r["synset_b"], r["direction"]) for r in edges["ss"]]
        assert ss == [("cat", "puppy", "cat.n.01", "puppy.n.01", "b_hypernym_of_a"),
                      ("dog", "puppy", "dog.n.01", "puppy.n.01", "a_hypernym_of_b")]
        for rows in edges.values():
            assert [(r["a"], r["b"]) for r in rows] == sorted((r["a"], r["b"]) for r in rows)
            assert all(r["a"] < r["b"] for r in rows)
    finally:
        graph.run("MATCH (:Hashtag {name: $b})-[r:SS]->(:Hashtag {name: $a}) DELETE r",
                  {"a": "cat", "b": "puppy"}, write=True)


def _same_snapshot(a, b) -> None:
    assert a.names == b.names and a.fingerprint == b.fingerprint
    for f in ("longtail", "count", "edge_index", "edge_type", "edge_weight"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f


def test_the_build_snapshot_from_loaded_rows_equals_the_store_export(graph, tmp_path):
    """build writes graph.pt from the rows it loaded (no read back), only
    when the store holds exactly those: the file must be the export's."""
    from v2ht_kg.kg.export import export_loaded

    rows = [{"name": n, "count": c, "train_count": t, "longtail": lt} for n, (c, t, lt) in TAGS.items()]
    export_graph(graph, tmp_path / "store.pt", "pyg", names=NAMES, fingerprint="f1")
    summary = export_loaded(tmp_path / "loaded.pt", rows, EDGES, NAMES, "f1", graph.counts())
    assert summary is not None and summary["edges"] == {k: sum(e.type == k for e in EDGES) for k in RELATIONS}
    _same_snapshot(load_pyg_graph(tmp_path / "loaded.pt"), load_pyg_graph(tmp_path / "store.pt"))
    # one edge more in the store than was loaded: no snapshot from memory
    assert export_loaded(tmp_path / "x.pt", rows, EDGES[:-1], NAMES, "f1", graph.counts()) is None
    assert export_loaded(tmp_path / "x.pt", rows[:-1], EDGES, NAMES[:-1], "f1", graph.counts()) is None
    assert not (tmp_path / "x.pt").exists()
