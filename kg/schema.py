"""Relation types, their priority, and the edge record passed from the
relation builders to the store and from the store to the PyG export.

Priority (paper §3.2.2): one relation per unordered pair of hashtags, the
first of cp > ss > po > co that holds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

RELATIONS = ("cp", "ss", "po", "co")  # priority order; index = PyG edge_type code
PRIORITY = {r: i for i, r in enumerate(RELATIONS)}
REL_LABEL = {"cp": "CP", "ss": "SS", "po": "PO", "co": "CO"}  # relationship types in the store


def turned_evidence(ev: dict) -> dict:
    """Evidence of a pair read from the other end: keys that name an end
    (synset_a, synset_b) swap, and so does the hypernym direction."""
    out = {}
    for k, v in ev.items():
        if k.endswith("_a"):
            k = k[:-2] + "_b"
        elif k.endswith("_b"):
            k = k[:-2] + "_a"
        if k == "direction" and isinstance(v, str):
            v = {"a_hypernym_of_b": "b_hypernym_of_a", "b_hypernym_of_a": "a_hypernym_of_b"}.get(v, v)
        out[k] = v
    return out


@dataclass
class Edge:
    """An undirected typed edge between two canonical hashtag names (a < b).

    ``weight`` is the edge's prior strength in [0, 1] (cp: 1.0, ss: 1/depth, po: the WUP
    score, co: the normalised co-occurrence strength); it becomes an input
    feature of the learned edge-weight network. ``evidence`` holds only JSON
    scalars and lists of strings (it is stored as relationship properties):
    cp: {"words": [...]} shared words; ss: {"synset_a", "synset_b",
    "direction": "a_hypernym_of_b" | "b_hypernym_of_a", "depth"};
    po: {"wup", "synset_a", "synset_b"}; co: {"count", "strength", "pmi"}.
    ``overrides`` lists the lower-priority relations this pair also had.
    """

    a: str
    b: str
    type: str
    weight: float = 1.0
    evidence: dict = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.type not in PRIORITY:
            raise ValueError(f"unknown relation type {self.type!r}")
        if self.a > self.b:
            # Evidence names its ends (synset_a, direction "a_hypernym_of_b"):
            # it must turn with the pair, or it describes the wrong hashtag.
            self.a, self.b = self.b, self.a
            self.evidence = turned_evidence(self.evidence)

    @property
    def key(self) -> tuple[str, str]:
        return (self.a, self.b)


# The PyG snapshot exported from the store (kg.export, file graph.pt) is a
# torch_geometric.data.Data with:
#   names       list[str], node i = hashtag id i of the prepared data set
#   longtail    BoolTensor (N,)
#   count       LongTensor (N,) training-split counts
#   edge_index  LongTensor (2, 2E): every undirected edge in both directions
#   edge_type   LongTensor (2E,): index into RELATIONS
#   edge_weight FloatTensor (2E,): the prior strength (Edge.weight)
#   fingerprint str: PreparedDataset.fingerprint of the data it was built from
