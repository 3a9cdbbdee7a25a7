"""The bulk ingest's JSON rows, encoded a column at a time (kg/edge_json.py),
against json.dumps of one dict per edge, the form they replace."""
from __future__ import annotations

import json

import numpy as np
import pytest

from v2ht_kg.kg.edge_json import edge_rows_json
from v2ht_kg.kg.schema import Edge

RIDS = {name: f"#{i + 3}:{i * 7}" for i, name in enumerate(["a", "b", "c", "d", "e", "f"])}


def dict_rows(es):
    return [{"_src": RIDS[e.a], "_dst": RIDS[e.b], "weight": float(e.weight),
             **({"overrides": list(e.overrides)} if e.overrides else {}),
             **{k: v for k, v in e.evidence.items() if v is not None}} for e in es]


def canon(rows):
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


def test_rows_parse_to_the_dicts_whatever_the_fields_and_values():
    es = [
        Edge("a", "b", "co", 0.25, {"count": 3, "strength": 0.25, "pmi": -1.5e-7}),
        Edge("a", "c", "co", 1, {"count": 10**12, "strength": 1.0, "pmi": float("inf")}),
        Edge("b", "c", "po", 0.93, {"wup": 0.93, "synset_a": 'say "hi", then', "synset_b": "100%s done"}, ["co"]),
        Edge("c", "d", "cp", 1.0, {"words": ["d", "x, y"]}, ["po", "co"]),
        Edge("d", "e", "ss", 0.5, {"synset_a": "é.n.01", "synset_b": "x", "direction": "a_hypernym_of_b",
                                   "depth": 2, "flag": True}),
        Edge("e", "f", "co", 0.5, {"count": 2, "strength": 0.5, "pmi": None}),  # None: left out
    ]
    got = json.loads(edge_rows_json(es, RIDS))
    assert len(got) == len(es)
    assert canon(got) == canon(dict_rows(es))
    co = [r for r in got if r["_src"] == RIDS["a"] and r["_dst"] == RIDS["c"]][0]
    assert co["count"] == 10**12 and co["pmi"] == float("inf") and "overrides" not in co
    assert [r for r in got if r["_src"] == RIDS["c"]][0]["overrides"] == ["po", "co"]
    assert "pmi" not in [r for r in got if r["_src"] == RIDS["e"]][0]


def test_a_column_equal_to_the_weights_reuses_their_text_only_when_it_is_floats():
    # co's strength is its weight; an int column equal to the weights must stay ints
    es = [Edge("a", "b", "co", 1.0, {"count": 1, "strength": 1.0, "pmi": 0.1}),
          Edge("c", "d", "co", 2.0, {"count": 2, "strength": 2.0, "pmi": 0.2})]
    text = edge_rows_json(es, RIDS)
    assert canon(json.loads(text)) == canon(dict_rows(es))
    assert '"count":1,' in text and '"strength":1.0,' in text


def test_no_edges_is_an_empty_array():
    assert json.loads(edge_rows_json([], RIDS)) == []


def test_a_value_json_cannot_carry_still_raises_type_error():
    with pytest.raises(TypeError):
        edge_rows_json([Edge("a", "b", "co", 0.5, {"count": np.int64(3)})], RIDS)
    with pytest.raises(TypeError):
        edge_rows_json([Edge("a", "b", "po", 0.5, {"when": object()})], RIDS)
