"""The four relation builders and priority, on real WordNet and real words."""
from __future__ import annotations

import csv
import itertools
import math
import random
from collections import Counter
from pathlib import Path

import pytest

from v2ht_kg.kg.dataset import Hashtag
from v2ht_kg.kg.errors import DataError, V2HTError
from v2ht_kg.kg.relations import (
    RelationParams,
    _Taxonomy,
    build_relations,
    composition_edges,
    cooccurrence_edges,
    hashtag_synsets,
    po_edges_from,
    resolve_priority,
    wordnet_edges,
)
from v2ht_kg.kg.schema import RELATIONS, Edge
from v2ht_kg.kg.wordnet import load_wordnet

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

WORDS = ["dog", "puppy", "animal", "cat", "kid", "dancer", "kid dancer", "hip hop",
         "hip hop dance", "dance", "love", "wolf", "child", "selfie", "a b c", "a b", "b c", "a c"]


def vocab(names, longtail=lambda i: i % 2 == 0):
    return [Hashtag(i, n, n.split(), [n], 10, 5, longtail(i)) for i, n in enumerate(names)]


@pytest.fixture(scope="module")
def wn():
    try:
        return load_wordnet()
    except V2HTError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def tags():
    return vocab(WORDS)


@pytest.fixture(scope="module")
def wordnet_rel(wn, tags):
    ss, po = wordnet_edges(tags, wn)
    return {e.key: e for e in ss}, {e.key: e for e in po}


def key(x, y):
    return tuple(sorted((x, y)))


# ----------------------------------------------------------------- cp ------
def test_composition(tags):
    cp = {e.key: e for e in composition_edges(tags)}
    assert cp[key("kid dancer", "kid")].evidence == {"words": ["kid"]}
    assert key("kid dancer", "dancer") in cp
    assert cp[key("hip hop dance", "hip hop")].evidence == {"words": ["hip", "hop"]}
    assert key("hip hop dance", "dance") in cp
    # contiguous phrases only: "a c" is not a phrase of "a b c"
    assert key("a b c", "a b") in cp and key("a b c", "b c") in cp
    assert key("a b c", "a c") not in cp
    assert key("kid", "dancer") not in cp  # two single words are not composed
    assert all(e.weight == 1.0 and e.type == "cp" and e.a < e.b for e in cp.values())
    assert len(cp) == 6


def test_composition_links_chinese_tags_through_their_words():
    from v2ht_kg.kg.normalize import Normalizer

    norm = Normalizer()
    names = [norm.tag(s) for s in ("感谢快手我要上热门", "热门", "快手", "上热门", "美食")]
    tags = [Hashtag(i, t.name, t.words, [t.surface], 10, 5, True) for i, t in enumerate(names)]
    cp = {e.key for e in composition_edges(tags)}
    full, hot, ks, up_hot = (t.name for t in names[:4])
    # 美食 shares no word with any
    assert cp == {key(full, hot), key(full, ks), key(full, up_hot), key(up_hot, hot)}


# ------------------------------------------------------------ ss, po -------
def test_super_subordinate(wordnet_rel):
    ss, _ = wordnet_rel
    e = ss[key("dog", "animal")]
    assert (e.a, e.b) == ("animal", "dog")
    assert e.evidence == {"synset_a": "animal.n.01", "synset_b": "dog.n.01", "direction": "a_hypernym_of_b", "depth": 2}
    assert e.weight == 0.5
    e = ss[key("dog", "puppy")]
    assert e.evidence["direction"] == "a_hypernym_of_b" and e.evidence["depth"] == 1 and e.weight == 1.0
    assert key("puppy", "animal") not in ss  # 3 hops: beyond the default depth
    assert key("kid", "child") not in ss  # synonyms share a synset: not hypernymy
    assert not any("selfie" in k for k in ss)  # not in WordNet


def test_super_subordinate_depth_limit(wn, tags):
    ss, _ = wordnet_edges(tags, wn, max_depth=1)
    keys = {e.key for e in ss}
    assert key("dog", "puppy") in keys and key("dog", "animal") not in keys
    ss3, _ = wordnet_edges(tags, wn, max_depth=3)
    assert key("puppy", "animal") in {e.key for e in ss3}


def test_positive(wn, wordnet_rel):
    _, po = wordnet_rel
    e = po[key("dog", "wolf")]
    assert e.weight == pytest.approx(wn.synset("dog.n.01").wup_similarity(wn.synset("wolf.n.01")))
    assert e.evidence["synset_a"] == "dog.n.01" and e.evidence["synset_b"] == "wolf.n.01"
    assert po[key("kid", "child")].weight == 1.0  # shared synset child.n.01
    assert key("cat", "dog") not in po  # 0.857 < 0.9
    assert all(e.weight >= 0.9 and e.evidence["wup"] == e.weight for e in po.values())
    assert not any("selfie" in k for k in po)


def test_positive_lower_threshold_links_cat_dog(wn, tags):
    _, po = wordnet_edges(tags, wn, wup_threshold=0.85)
    e = {x.key: x for x in po}[key("cat", "dog")]
    assert e.weight == pytest.approx(0.857, abs=1e-3)
    with pytest.raises(V2HTError, match="wup_threshold"):
        wordnet_edges(tags, wn, wup_threshold=0.5)


def test_senses_are_cut_and_multiword_lemmas_found(wn, tags):
    syn = dict(zip(WORDS, hashtag_synsets(tags, wn, max_senses=2)))
    assert [s.name() for s in syn["dog"]] == ["dog.n.01", "frump.n.01"]
    assert syn["hip hop"] and syn["hip hop"][0].name() == "hip-hop.n.01"
    assert syn["selfie"] == [] and syn["kid dancer"] == []


def _real_words(wn, n=300, seed=7):
    """Seeded real words, a third of them from a few dense WordNet regions so
    that many pairs are near the threshold."""
    rng = random.Random(seed)
    pool = set()
    for root in ("dog.n.01", "bird.n.01", "tree.n.01", "vehicle.n.01", "musical_instrument.n.01",
                 "beverage.n.01", "sport.n.01", "move.v.03", "change.v.01"):
        s = wn.synset(root)
        names = sorted({l for x in s.closure(lambda y: y.hyponyms()) for l in x.lemma_names() if l.isalpha()})
        pool.update(rng.sample(names, min(12, len(names))))
    everything = sorted(w for w in wn.all_lemma_names() if w.isalpha())
    while len(pool) < n:
        pool.add(rng.choice(everything))
    words = sorted(pool)
    rng.shuffle(words)
    return vocab(words)


def test_wup_reimplementation_equals_nltk(wn):
    hs = _real_words(wn, 300)
    syn = [s for ss in hashtag_synsets(hs, wn, 3) for s in ss]
    rng = random.Random(3)
    pairs = [(rng.choice(syn), rng.choice(syn)) for _ in range(1200)]
    pairs += [(x, y) for x in syn[:40] for y in syn[:40]]  # includes x == y and both orders
    tax = _Taxonomy()
    assert [tax.wup(x, y) for x, y in pairs] == [x.wup_similarity(y) for x, y in pairs]


@pytest.mark.parametrize("threshold", [0.85, 0.9])
def test_pruned_positive_equals_brute_force(wn, threshold):
    hs = _real_words(wn, 300)
    syn = hashtag_synsets(hs, wn, 3)
    tax = _Taxonomy()
    got = {e.key: e.weight for e in po_edges_from(hs, syn, tax, threshold)}
    want = {}
    for i, j in itertools.combinations(range(len(hs)), 2):
        a, b = (i, j) if hs[i].name < hs[j].name else (j, i)
        scores = [tax.wup(x, y) for x in syn[a] for y in syn[b]]
        best = max((s for s in scores if s is not None), default=None)
        if best is not None and best >= threshold:
            want[(hs[a].name, hs[b].name)] = best
    assert len(want) >= 30  # the sample really has near pairs
    assert got == want


# ----------------------------------------------------------------- co ------
def test_cooccurrence_counts_strength_pmi(tags):
    idx = {h.name: h.id for h in tags}
    posts = [["dog", "cat"], ["dog", "cat"], ["dog", "cat", "love"], ["kid", "kid dancer"],
             ["kid", "kid dancer", "kid"], ["love", "wolf"], ["dog"]]
    ids = [[idx[n] for n in p] for p in posts]
    co = {e.key: e for e in cooccurrence_edges(ids, tags, min_count=2)}
    assert set(co) == {key("dog", "cat"), key("kid", "kid dancer")}
    e = co[key("dog", "cat")]
    # dog in 4 posts, cat in 3, together in 3, of 7 posts
    assert e.evidence["count"] == 3
    assert e.weight == e.evidence["strength"] == pytest.approx(3 / 3)
    assert e.evidence["pmi"] == pytest.approx(math.log(3 * 7 / (4 * 3)))
    assert co[key("kid", "kid dancer")].evidence["count"] == 2  # a tag repeated in a post counts once
    # dog-cat, dog-love, cat-love, kid-kid dancer, love-wolf
    assert len(cooccurrence_edges(ids, tags, min_count=1)) == 5


def test_cooccurrence_sees_only_the_posts_given(tags):
    """The caller passes training posts; held-out posts must not change a count."""
    train = [[0, 3], [0, 3], [0, 10]]
    held_out = [[0, 10], [0, 10], [0, 3]]
    only_train = {e.key: e.evidence["count"] for e in cooccurrence_edges(train, tags, 1)}
    everything = {e.key: e.evidence["count"] for e in cooccurrence_edges(train + held_out, tags, 1)}
    assert only_train == {key("dog", "cat"): 2, key("dog", "love"): 1}
    assert everything == {key("dog", "cat"): 3, key("dog", "love"): 3}


def test_cooccurrence_rejects_unknown_ids(tags):
    with pytest.raises(DataError, match="training post 1 has tag id 99"):
        cooccurrence_edges([[0, 1], [2, 99]], tags)


# ----------------------------------------------------------- priority ------
def test_priority_keeps_the_strongest_relation():
    edges_in = [
        [Edge("x", "y", "co", 0.2, {"count": 2}), Edge("p", "q", "co", 0.3)],
        [Edge("y", "x", "cp", 1.0, {"words": ["x"]})],
        [Edge("p", "q", "po", 0.95), Edge("p", "q", "po", 0.97), Edge("p", "q", "ss", 0.5)],
        [Edge("z", "z", "co", 1.0)],
    ]
    edges, report = resolve_priority(*edges_in)
    by = {e.key: e for e in edges}
    assert len(edges) == 2
    assert by[("x", "y")].type == "cp" and by[("x", "y")].overrides == ["co"]
    assert by[("p", "q")].type == "ss" and by[("p", "q")].overrides == ["po", "co"]
    assert report["before"] == {"cp": 1, "ss": 1, "po": 2, "co": 2}
    assert report["after"] == {"cp": 1, "ss": 1, "po": 0, "co": 0}
    assert report["overridden"] == {"cp>co": 1, "ss>po": 1, "ss>co": 1}
    assert report["self_loops_dropped"] == 1
    assert edges_in[0][0].overrides == []  # inputs untouched
    # within one type the higher weight wins
    edges, _ = resolve_priority([Edge("p", "q", "po", 0.95), Edge("p", "q", "po", 0.97)])
    assert [e.weight for e in edges] == [0.97]


def test_build_relations_small(wn, tags):
    idx = {h.name: h.id for h in tags}
    posts = [[idx["kid"], idx["kid dancer"]]] * 3 + [[idx["dog"], idx["cat"]]] * 2
    edges, report = build_relations(tags, posts, wn)
    by = {e.key: e for e in edges}
    assert by[key("kid", "kid dancer")].type == "cp"
    assert by[key("kid", "kid dancer")].overrides == ["co"]
    assert by[key("dog", "cat")].type == "co"
    assert by[key("dog", "puppy")].type == "ss"
    assert by[key("dog", "wolf")].type == "po"
    assert report["overridden"]["cp>co"] == 1
    assert sum(report["after"].values()) == len(edges) == len(by)
    for t in RELATIONS:
        assert report["after"][t] == sum(e.type == t for e in edges)
    names = {h.name for h in tags}
    assert all(e.a < e.b and e.a in names and e.b in names for e in edges)
    s = report["stats"]
    assert s["nodes"] == len(tags) and s["edges"] == len(edges)
    assert s["isolated"] == sum(1 for h in tags if not any(h.name in e.key for e in edges))
    assert report["wordnet_covered"] == sum(1 for x in hashtag_synsets(tags, wn, 3) if x)

    no_wn, rep = build_relations(tags, posts, None, RelationParams(co_min_count=3))
    assert {e.type for e in no_wn} == {"cp"}  # co pair kid/kid dancer is cp, dog/cat has 2 < 3
    assert rep["before"]["co"] == 1 and rep["before"]["ss"] == rep["before"]["po"] == 0


def test_bad_input_is_a_clear_error(wn, tags):
    bad = [Hashtag(1, "dog", ["dog"], ["dog"], 1, 1, True)]
    with pytest.raises(DataError, match="id order"):
        build_relations(bad, [], wn)
    with pytest.raises(DataError, match="twice"):
        build_relations(vocab(["dog", "dog"]), [], wn)
    with pytest.raises(V2HTError, match="co_min_count"):
        build_relations(tags, [], wn, RelationParams(co_min_count=0))
    with pytest.raises(DataError, match="integer hashtag ids"):
        cooccurrence_edges([[0, "x"]], tags)


# ---------------------------------------------------------- real data ------
def test_real_twitter_hashtags(wn):
    train = SHARED_DATA / "twitter-hashtags-2013" / "train.csv"
    if not train.exists():
        pytest.skip(f"real data not found at {train}")
    posts = []
    with open(train, encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            posts.append([t for t in row[2:] if t])
    freq = Counter(t for p in posts for t in set(p))
    names = sorted(t for t, c in freq.items() if c >= 3)
    tags = [Hashtag(i, n, [n], [n], freq[n], freq[n], freq[n] < 100) for i, n in enumerate(names)]
    idx = {n: i for i, n in enumerate(names)}
    ids = [[idx[t] for t in p if t in idx] for p in posts]
    edges, report = build_relations(tags, ids, wn)
    assert report["before"]["co"] > 100 and report["before"]["ss"] > 0 and report["before"]["po"] > 0
    co = [e for e in edges if e.type == "co"]
    e = max(co, key=lambda x: x.evidence["count"])
    direct = sum(1 for p in posts if e.a in p and e.b in p)
    assert e.evidence["count"] == direct
    assert e.weight == pytest.approx(direct / min(freq[e.a], freq[e.b]))
    assert len({x.key for x in edges}) == len(edges)
