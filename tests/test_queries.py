"""The Cypher query library (cypher/queries, cypher/explain) against a small
hand-made graph in the real embedded store. Expected values are computed
from the graph definition below, not copied from query output."""
from __future__ import annotations

from collections import Counter

import pytest

from v2ht_kg.kg import cypher_lib
from v2ht_kg.kg.schema import REL_LABEL, Edge

TAGS = {  # name: (count, train_count, longtail)
    "dancer": (40, 30, False),
    "kid dancer": (3, 2, True),
    "kid": (20, 15, False),
    "ballet": (4, 3, True),
    "dog": (50, 40, False),
    "puppy": (2, 2, True),
    "kitten": (6, 5, True),
    "cat": (30, 25, False),
    "beach": (25, 20, False),
    "sunset": (9, 7, False),
    "ocean": (12, 10, False),
    "wave": (8, 6, False),
    "surf": (7, 5, False),
    "surfer": (3, 3, True),
    "café ☕": (1, 1, True),
}
EDGES = [
    Edge("kid dancer", "dancer", "cp", 1.0, {"words": ["dancer"]}, ["co"]),
    Edge("kid", "kid dancer", "cp", 1.0, {"words": ["kid"]}),
    Edge("dog", "puppy", "ss", 1.0, {"synset_a": "dog.n.01", "synset_b": "puppy.n.01", "direction": "a_hypernym_of_b", "depth": 1}),
    Edge("cat", "kitten", "ss", 1.0, {"synset_a": "cat.n.01", "synset_b": "kitten.n.01", "direction": "a_hypernym_of_b", "depth": 1}, ["po"]),
    Edge("ballet", "dancer", "po", 0.82, {"wup": 0.82, "synset_a": "ballet.n.01", "synset_b": "dancer.n.01"}, ["co"]),
    Edge("cat", "dog", "po", 0.857, {"wup": 0.857, "synset_a": "cat.n.01", "synset_b": "dog.n.01"}),
    Edge("kitten", "puppy", "po", 0.9, {"wup": 0.9, "synset_a": "kitten.n.01", "synset_b": "puppy.n.01"}),
    Edge("dancer", "dog", "co", 0.2, {"count": 2, "strength": 0.2, "pmi": 0.3}),
    # a chain of co-occurrences: beach -> surf is 4 hops, beach -> surfer 5
    Edge("beach", "sunset", "co", 0.6, {"count": 5, "strength": 0.6, "pmi": 1.25}),
    Edge("ocean", "sunset", "co", 0.5, {"count": 4, "strength": 0.5, "pmi": 1.1}),
    Edge("ocean", "wave", "co", 0.4, {"count": 3, "strength": 0.4, "pmi": 0.9}),
    Edge("surf", "wave", "co", 0.3, {"count": 2, "strength": 0.3, "pmi": 0.7}),
    Edge("surf", "surfer", "co", 0.3, {"count": 2, "strength": 0.3, "pmi": 0.8}),
]
POSTS = [
    {"id": "p1", "user": "alice", "tags": ["dancer", "kid dancer"], "split": "train"},
    {"id": "p2", "user": "alice", "tags": ["dancer", "beach"], "split": "train"},
    {"id": "p3", "user": "bob", "tags": ["dog", "puppy"], "split": "train"},
    # not training data: user profiles must ignore it
    {"id": "p4", "user": "alice", "tags": ["surf"], "split": "valid"},
]


def neighbours_of(tag: str) -> dict[str, Edge]:
    return {(e.b if e.a == tag else e.a): e for e in EDGES if tag in (e.a, e.b)}


@pytest.fixture(scope="module")
def graph(store):
    store.clear()
    store.ensure_schema()
    store.load_hashtags([
        {"name": n, "words": n.split(), "count": c, "train_count": t, "longtail": lt, "surfaces": ["#" + n.replace(" ", "")]}
        for n, (c, t, lt) in TAGS.items()
    ])
    store.load_edges(EDGES)
    store.load_posts(POSTS)
    return store


def test_every_query_returns_rows_for_its_sample_params(graph):
    # The header samples are what `v2ht-kg query NAME` users see first and
    # what the linter declares: they must mean something on a real graph.
    queries = cypher_lib.list_queries("queries") + cypher_lib.list_queries("explain")
    assert {q.name for q in queries} >= {
        "queries/neighbours", "queries/paths", "queries/longtail", "queries/relation_counts",
        "queries/user_profile", "queries/tag", "queries/degree_by_type", "queries/similar_names",
        "queries/overridden", "explain/tag_neighbours", "explain/typed_paths", "explain/user_tags",
    }
    for q in queries:
        assert q.mode == "read"
        assert graph.read(q.name, **q.params), f"{q.name} returned nothing for {q.params}"


def test_neighbours_carry_type_weight_and_evidence(graph):
    rows = graph.read("queries/neighbours", tag="kid dancer", type="", limit=25)
    got = {r["neighbour"]: r for r in rows}
    assert set(got) == set(neighbours_of("kid dancer"))
    dancer = got["dancer"]
    assert dancer["type"] == "CP" and dancer["words"] == ["dancer"] and dancer["weight"] == 1.0
    assert dancer["overrides"] == ["co"]
    assert dancer["tag_is_a"] is False  # stored dancer -> kid dancer ("dancer" < "kid dancer")
    assert dancer["neighbour_count"] == TAGS["dancer"][0] and dancer["neighbour_longtail"] is False
    assert got["kid"]["words"] == ["kid"]

    dog = {r["neighbour"]: r for r in graph.read("queries/neighbours", tag="dog", type=None, limit=None)}
    assert set(dog) == set(neighbours_of("dog"))
    assert dog["puppy"]["type"] == "SS" and dog["puppy"]["direction"] == "a_hypernym_of_b"
    assert dog["puppy"]["synset_a"] == "dog.n.01" and dog["puppy"]["depth"] == 1 and dog["puppy"]["tag_is_a"] is True
    assert dog["cat"]["type"] == "PO" and dog["cat"]["wup"] == pytest.approx(0.857)
    assert dog["dancer"]["type"] == "CO" and dog["dancer"]["co_count"] == 2 and dog["dancer"]["pmi"] == pytest.approx(0.3)
    weights = [r["weight"] for r in graph.read("queries/neighbours", tag="dog", type=None, limit=None)]
    assert weights == sorted(weights, reverse=True)


def test_neighbours_type_filter_and_limit(graph):
    po = graph.read("queries/neighbours", tag="dancer", type="po", limit=25)
    assert [(r["neighbour"], r["type"]) for r in po] == [("ballet", "PO")]
    assert graph.read("queries/neighbours", tag="dancer", type="PO", limit=25) == po
    one = graph.read("queries/neighbours", tag="dog", type="", limit=1)
    assert len(one) == 1 and one[0]["neighbour"] == max(neighbours_of("dog").items(), key=lambda kv: kv[1].weight)[0]
    assert graph.read("queries/neighbours", tag="no such tag", type="", limit=25) == []


def test_paths_are_shortest_typed_and_bounded(graph):
    rows = graph.read("queries/paths", source="kid", target="ballet", limit=10)
    assert [(r["tags"], r["types"], r["hops"]) for r in rows] == [
        (["kid", "kid dancer", "dancer", "ballet"], ["CP", "CP", "PO"], 3)
    ]
    assert rows[0]["weights"] == pytest.approx([1.0, 1.0, 0.82])
    # two shortest paths of 2 hops: via dog (SS, PO) and via kitten (PO, SS)
    both = graph.read("queries/paths", source="puppy", target="cat", limit=10)
    assert sorted((tuple(r["tags"]), tuple(r["types"])) for r in both) == [
        (("puppy", "dog", "cat"), ("SS", "PO")),
        (("puppy", "kitten", "cat"), ("PO", "SS")),
    ]
    assert [r["hops"] for r in graph.read("queries/paths", source="beach", target="surf", limit=10)] == [4]
    assert graph.read("queries/paths", source="beach", target="surfer", limit=10) == []  # 5 hops
    assert graph.read("queries/paths", source="dancer", target="dancer", limit=10) == []
    assert graph.read("queries/paths", source="dancer", target="café ☕", limit=10) == []


def test_longtail_lists_every_longtail_tag_with_degree_and_top_neighbours(graph):
    rows = graph.read("queries/longtail", limit=100, per_tag=5)
    expected = {n for n, (_, _, lt) in TAGS.items() if lt}
    assert {r["tag"] for r in rows} == expected
    counts = [r["count"] for r in rows]
    assert counts == sorted(counts, reverse=True)
    for r in rows:
        nb = neighbours_of(r["tag"])
        assert r["degree"] == len(nb)
        ranked = sorted(nb, key=lambda n: (-TAGS[n][0], n))
        assert r["top_neighbours"] == [f"{n} ({REL_LABEL[nb[n].type]})" for n in ranked]
    capped = graph.read("queries/longtail", limit=2, per_tag=1)
    assert len(capped) == 2 and all(len(r["top_neighbours"]) <= 1 for r in capped)


def test_relation_counts_count_each_pair_once(graph):
    rows = {r["type"]: r for r in graph.read("queries/relation_counts")}
    expected = Counter(REL_LABEL[e.type] for e in EDGES)
    assert {t: r["relationships"] for t, r in rows.items()} == dict(expected)
    assert rows["PO"]["mean_weight"] == pytest.approx(sum(e.weight for e in EDGES if e.type == "po") / expected["PO"])
    overrides = Counter(REL_LABEL[e.type] for e in EDGES if e.overrides)
    assert {t: r["with_overrides"] for t, r in rows.items() if r["with_overrides"]} == dict(overrides)


def test_user_profile_counts_training_posts_only(graph):
    rows = graph.read("queries/user_profile", user="alice", limit=50)
    expected = Counter(t for p in POSTS if p["user"] == "alice" and p["split"] == "train" for t in p["tags"])
    assert {r["tag"]: r["posts"] for r in rows} == dict(expected)
    assert rows[0]["tag"] == "dancer"
    assert graph.read("explain/user_tags", user="alice") == [
        {"tag": r["tag"], "posts": r["posts"], "longtail": r["longtail"]} for r in rows
    ]
    assert graph.read("queries/user_profile", user="nobody", limit=50) == []


def test_tag_properties_and_typed_degrees(graph):
    (row,) = graph.read("queries/tag", tag="kid dancer")
    count, train_count, longtail = TAGS["kid dancer"]
    assert row["name"] == "kid dancer" and row["words"] == ["kid", "dancer"] and row["surfaces"] == ["#kiddancer"]
    assert (row["count"], row["train_count"], row["longtail"]) == (count, train_count, longtail)
    degrees = Counter(e.type for e in neighbours_of("kid dancer").values())
    assert {k: row[k] for k in ("cp", "ss", "po", "co")} == {k: degrees.get(k, 0) for k in ("cp", "ss", "po", "co")}
    (odd,) = graph.read("queries/tag", tag="café ☕")
    assert odd["name"] == "café ☕"


def test_degree_by_type_summarises_every_hashtag(graph):
    rows = {r["type"]: r for r in graph.read("queries/degree_by_type")}
    assert set(rows) == {"CP", "SS", "PO", "CO"}
    for kind, label in REL_LABEL.items():
        deg = Counter()
        for e in EDGES:
            if e.type == kind:
                deg[e.a] += 1
                deg[e.b] += 1
        r = rows[label]
        assert r["hashtags"] == len(TAGS)
        assert r["connected"] == len(deg)
        assert r["max"] == max(deg.values())
        assert r["mean"] == pytest.approx(sum(deg.values()) / len(TAGS))


def test_similar_names_suggests_close_tags(graph):
    rows = graph.read("queries/similar_names", text="dancer", limit=10)
    assert [r["tag"] for r in rows] == sorted((n for n in TAGS if "dancer" in n), key=lambda n: -TAGS[n][0])
    # a run-together unknown tag finds the known name inside it
    assert "dancer" in [r["tag"] for r in graph.read("queries/similar_names", text="BestDancerEver", limit=10)]
    assert [r["tag"] for r in graph.read("queries/similar_names", text="café", limit=10)] == ["café ☕"]
    assert graph.read("queries/similar_names", text="zzqx", limit=10) == []


def test_overridden_lists_edges_that_won_over_lower_priorities(graph):
    rows = graph.read("queries/overridden", type="", limit=50)
    assert {(r["a"], r["b"], r["type"], tuple(r["overrides"])) for r in rows} == {
        (e.a, e.b, REL_LABEL[e.type], tuple(e.overrides)) for e in EDGES if e.overrides
    }
    assert {r["type"] for r in graph.read("queries/overridden", type="ss", limit=50)} == {"SS"}


def test_explain_tag_neighbours_has_every_evidence_field(graph):
    rows = graph.read("explain/tag_neighbours", tag="puppy")
    got = {r["neighbour"]: r for r in rows}
    assert set(got) == set(neighbours_of("puppy"))
    ss = got["dog"]
    assert (ss["type"], ss["synset_a"], ss["synset_b"], ss["direction"], ss["depth"]) == (
        "SS", "dog.n.01", "puppy.n.01", "a_hypernym_of_b", 1
    )
    assert ss["tag_is_a"] is False and ss["neighbour_longtail"] is False and ss["neighbour_count"] == TAGS["dog"][0]
    po = got["kitten"]
    assert po["type"] == "PO" and po["wup"] == pytest.approx(0.9) and po["tag_is_a"] is False
    assert po["neighbour_longtail"] is True
    co = {r["neighbour"]: r for r in graph.read("explain/tag_neighbours", tag="dancer")}["dog"]
    assert (co["co_count"], co["strength"], co["pmi"]) == (2, pytest.approx(0.2), pytest.approx(0.3))


def test_explain_typed_paths_to_several_targets(graph):
    rows = graph.read("explain/typed_paths", tag="kid", targets=["ballet", "dancer", "dog", "puppy", "sunset", "kid"])
    got = {r["target"]: r for r in rows}
    # puppy is 4 hops away, sunset unreachable, kid is the tag itself
    assert set(got) == {"ballet", "dancer", "dog"}
    assert got["dancer"]["tags"] == ["kid", "kid dancer", "dancer"] and got["dancer"]["types"] == ["CP", "CP"]
    assert got["dog"]["types"] == ["CP", "CP", "CO"] and got["dog"]["hops"] == 3
    assert [r["hops"] for r in rows] == sorted(r["hops"] for r in rows)
    assert graph.read("explain/typed_paths", tag="kid", targets=[]) == []
