"""Typed edges as the JSON rows of ArcadeDB's bulk ingest
(``EdgeBatcher.newEdgesJson``), encoded a column at a time.

``json.dumps`` over one dict per edge cost 10 s of the 27 s INSVIDEO edge
load (1.8M edges, 98% of them co), most of it building and walking those
dicts on the one core the engine's ingest also wants. Edges of one type
share their fields, so each chunk is grouped by the fields an edge has,
every field is encoded as one column, and the rows are put together from
the columns' texts with one template per group:

- a column of plain numbers (int, float, bool) goes through one
  ``json.dumps`` of the whole list, split at its separators: the same text
  ``json.dumps`` writes for each value (a number's text holds no ", ");
- RIDs are "#bucket:position", which need no escaping;
- anything else (strings, lists) is encoded value by value, so a value JSON
  cannot carry still raises TypeError, as ``json.dumps`` of the rows did.

The rows parse to what ``json.dumps`` of the dicts gave (a test compares
them); only the white space differs.
"""
from __future__ import annotations

import json
from typing import Sequence

from .schema import Edge

_NUMBER = (int, float, bool)
# a typed edge's own properties: evidence may not use these names
OWN = ("weight", "overrides")


def _column_texts(values: list) -> list[str]:
    if all(type(v) in _NUMBER for v in values):
        text = json.dumps(values)[1:-1]
        return text.split(", ") if text else []
    return [json.dumps(v) for v in values]


def stored_fields(e: Edge) -> tuple[str, ...]:
    """The properties an edge's stored form holds beside its weight:
    "overrides" only where there are some, and the evidence fields that are
    not None (both load paths; store.edge_row for Cypher)."""
    return (*(("overrides",) if e.overrides else ()), *(k for k, v in e.evidence.items() if v is not None))


def _groups(es: Sequence[Edge]) -> dict[tuple[str, ...], list[Edge]]:
    """The edges by the fields their rows hold. Keyed first on what C
    computes fast (whether there are overrides, the evidence's keys, whether
    a value is None); only edges with a None value are keyed one by one."""
    rough: dict[tuple, list[Edge]] = {}
    for e in es:
        rough.setdefault((bool(e.overrides), tuple(e.evidence), None in e.evidence.values()), []).append(e)
    groups: dict[tuple[str, ...], list[Edge]] = {}
    for (_, _, has_none), group in rough.items():
        if has_none:
            for e in group:
                groups.setdefault(stored_fields(e), []).append(e)
        else:  # every edge of the group has the first one's fields
            groups.setdefault(stored_fields(group[0]), []).extend(group)
    return groups


def edge_rows_json(es: Sequence[Edge], rids: dict[str, str]) -> str:
    """One ingest chunk of edges as a JSON array of rows {"_src", "_dst",
    "weight", "overrides" (only where there are some), evidence fields that
    are not None}."""
    parts = []
    for fields, group in _groups(es).items():
        weights = [float(e.weight) for e in group]
        weight_text = _column_texts(weights)
        cols = [['"' + rids[e.a] + '"' for e in group], ['"' + rids[e.b] + '"' for e in group], weight_text]
        for name in fields:
            if name == "overrides":
                cols.append([json.dumps(list(e.overrides)) for e in group])
                continue
            values = [e.evidence[name] for e in group]
            # co's strength is its weight: the same floats, so the same text
            same = values == weights and all(type(v) is float for v in values)
            cols.append(weight_text if same else _column_texts(values))
        names = ("_src", "_dst", "weight", *fields)
        template = "{" + ",".join(json.dumps(n).replace("%", "%%") + ":%s" for n in names) + "}"
        parts.append(",".join(template % row for row in zip(*cols)))
    return "[" + ",".join(p for p in parts if p) + "]"
