"""Baselines: the bar the model must clear, on a fixture where a user's
history predicts the hashtags and on hand-made posts (kNN, blend)."""
import math
from collections import Counter

import numpy as np
import pytest
import torch

from gnn_fixtures import write_prepared
from handmade import CAT_POSTS, CAT_TAGS, write_dataset
from v2ht_kg.gnn.baselines import Baselines, random_scores
from v2ht_kg.gnn.data import TrainingData
from v2ht_kg.gnn.history import History
from v2ht_kg.gnn.metrics import ranking_metrics
from v2ht_kg.gnn.protocol import known_rows
from v2ht_kg.kg.errors import DataError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    write_prepared(root / "d", n_users=8, n_tags=60, posts_per_user=25, seed=11, acoustic=False)
    return TrainingData.build(root / "d", None, seed=0, w2v_dim=8)


def test_baselines_beat_random(data):
    res = Baselines(data).evaluate("test")
    test_rows = data.rows["test"]
    rand = ranking_metrics(random_scores(len(test_rows), data.n_hashtags, seed=0), data.truth(test_rows))
    for name in ("user_history", "history_cooc", "knn_history"):
        assert res[name]["overall"]["recall@10"] > rand["recall@10"] + 0.3, name
        assert res[name]["overall"]["ndcg@10"] > rand["ndcg@10"] + 0.2, name
    assert res["popularity"]["overall"]["recall@10"] > rand["recall@10"]
    assert res["user_history"]["overall"]["n_posts"] == len(test_rows)
    assert set(res["knn_history"]["params"]) == {"a", "valid"}


def test_history_counts_only_known_posts(data):
    for split, protocol, expect in (("valid", "deployed", {"train"}), ("test", "deployed", {"train", "valid"}),
                                    ("test", "strict", {"train"})):
        known = known_rows(data, split, protocol)
        assert {data.ds.posts[r].split for r in known} == expect
        h = History(data, known)
        counts = np.zeros(data.n_hashtags)
        for r in known:
            if data.users[r] == 2:
                counts[data.tags[r]] += 1
        assert np.array_equal(h.hist(np.array([2])).toarray()[0], counts)
        i, j = data.tags[next(r for r in known if len(data.tags[r]) >= 2)][:2]
        direct = sum(1 for r in known if i in data.tags[r] and j in data.tags[r])
        n_i = sum(1 for r in known if i in data.tags[r])
        together = sum(len(set(data.tags[r]) - {i}) for r in known if i in data.tags[r])
        assert h.cooc_cond[i, j] == pytest.approx(direct / together) and n_i >= direct


def test_unknown_user_backs_off_to_popularity(tmp_path):
    write_prepared(tmp_path / "d", unknown_user=True, n_users=3, visual=False, acoustic=False, seed=4)
    data = TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=8)
    b = Baselines(data)
    b.tune()
    test = data.rows["test"]
    pos = [i for i, r in enumerate(test) if data.users[r] == 0][:2]
    order = lambda s: torch.argsort(s, dim=1, descending=True, stable=True)  # noqa: E731
    pop = order(b.scores("popularity", "test", pos))
    assert torch.equal(order(b.scores("user_history", "test", pos)), pop)
    assert torch.equal(order(b.scores("history_cooc", "test", pos)), pop)


TAGS = ["apple", "pie", "car", "race"]
POSTS = [("train", 0, ["apple"], "red apple fruit"),
         ("train", 0, ["apple", "pie"], "green apple pie"),
         ("train", 1, ["car"], "fast car race"),
         ("train", 1, ["car", "race"], "car race track"),
         ("valid", 1, ["apple"], "apple fruit salad"),
         ("test", 1, ["apple"], "apple fruit salad")]


def _cos(a, b, docs):
    n = len(docs)
    df = Counter(w for d in docs for w in set(d))
    idf = {w: math.log((1 + n) / (1 + df[w])) + 1 for w in df}

    def vec(d):
        c = Counter(w for w in d if w in idf)
        v = {w: (1 + math.log(k)) * idf[w] for w, k in c.items()}
        norm = math.sqrt(sum(x * x for x in v.values()))
        return {w: x / norm for w, x in v.items()}
    va, vb = vec(a), vec(b)
    return sum(va[w] * vb.get(w, 0.0) for w in va)


def test_knn_and_blend_on_hand_made_posts(tmp_path):
    write_dataset(tmp_path / "d", TAGS, POSTS)
    data = TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=8)
    b = Baselines(data, "strict")
    b.params = {"knn": {"k": 10, "power": 1.0}}
    sig = b.signals("test")
    docs = [p[3].split() for p in POSTS[:4]]
    q = POSTS[5][3].split()
    sims = [_cos(q, d, docs) for d in docs]
    assert sims[0] > sims[1] > 0 and sims[2] == sims[3] == 0
    knn = b.raw("knn", sig, b.params["knn"]).toarray()[0]
    assert knn[0] == pytest.approx(sims[0] + sims[1])  # apple: both apple posts vote
    assert knn[1] == pytest.approx(sims[1]) and knn[2] == 0 and knn[3] == 0
    # the author (user 1) only ever used car and race: a = 1 is pure history, a = 0 pure kNN
    hist_only = b.raw("knn_history", sig, {"a": 1.0}).toarray()[0]
    assert hist_only[2] == pytest.approx(2 / 3) and hist_only[0] == 0
    knn_only = b.raw("knn_history", sig, {"a": 0.0}).toarray()[0]
    assert knn_only[0] == pytest.approx((sims[0] + sims[1]) / (sims[0] + 2 * sims[1]))
    mid = b.raw("knn_history", sig, {"a": 0.5}).toarray()[0]
    assert mid == pytest.approx(0.5 * hist_only + 0.5 * knn_only)
    # the deployed protocol knows the validation post too: apple then has three votes
    d = Baselines(data, "deployed")
    knn_dep = d.raw("knn", d.signals("test"), {"k": 10, "power": 1.0}).toarray()[0]
    assert knn_dep[0] > knn[0] and int(np.argmax(knn_dep)) == 0  # the identical valid post votes too
    assert d.signals("test").hist.toarray()[0][0] == 1  # user 1's valid post used apple


def test_blend_weights_missing_is_an_error(tmp_path):
    write_dataset(tmp_path / "d", TAGS, POSTS)
    data = TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=8)
    b = Baselines(data)
    with pytest.raises(DataError, match="blend weights missing"):
        b.scores("knn_history", "test")
    with pytest.raises(DataError, match="unknown protocol"):
        Baselines(data, "transductive")


CF_TAGS = ["cat", "kitten", "dog", "car", "race"]
CF_POSTS = [("train", 0, ["cat", "kitten"], "my cat"),       # user 0: cats
            ("train", 1, ["cat", "dog"], "cat and dog"),     # user 1: cats and a dog
            ("train", 2, ["car", "race"], "race car"),       # user 2: cars only
            ("train", 3, ["cat"], "cat nap"),                # user 3: only "cat"
            ("test", 3, ["kitten"], "sleepy")]


def test_user_cf_reads_the_tags_of_alike_users_never_the_author_own(tmp_path):
    write_dataset(tmp_path / "d", CF_TAGS, CF_POSTS)
    data = TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=8)
    h = History(data, known_rows(data, "test", "deployed"))
    names = [t.name for t in data.ds.hashtags]
    u3 = data.users[data.rows["test"][0]]
    cf = dict(zip(names, h.user_cf(np.array([u3, -1]), k=2).toarray()[0]))
    # user 3 used "cat": users 0 and 1 are alike (they used it too), user 2 is not
    assert cf["kitten"] > 0 and cf["dog"] > 0 and cf["cat"] > 0
    assert cf["car"] == 0 and cf["race"] == 0
    assert sum(cf.values()) == pytest.approx(1.0)
    assert not h.user_cf(np.array([-1])).toarray().any()  # no author, no history: nothing
    # the author's own tags do not come back through itself: a user alone has none
    solo = History(data, np.array([r for r in known_rows(data, "test", "deployed") if data.users[r] == 2]))
    u2 = data.users[[r for r in data.rows["train"] if data.users[r] == 2][0]]
    assert not solo.user_cf(np.array([u2])).toarray().any()


def test_oracle_is_the_ceiling_of_every_bar(data):
    """The oracle ranks every true tag first: recall is what the vocabulary
    allows (out-of-vocabulary tags stay misses) and no baseline passes it."""
    from v2ht_kg.gnn.benchmark import oracle_metrics, targets

    saved = data.oov.copy()
    data.oov[data.rows["test"][:3]] += [1, 2, 0]  # some tags outside the vocabulary (restored below)
    try:
        o = oracle_metrics(data)
        rows = data.rows["test"]
        truth = data.truth(rows)
        want = np.mean([min(len(t), 10) / (len(t) + data.oov[r]) for t, r in zip(truth, rows) if len(t) + data.oov[r]])
        assert o["overall"]["recall@10"] == pytest.approx(want)
        assert o["overall"]["recall@10"] < 1.0
        res = Baselines(data).evaluate("test")
        for name, m in res.items():
            for part in ("overall", "longtail"):
                for k in ("recall@10", "ndcg@10"):
                    assert m[part][k] <= o[part][k] + 1e-9, (name, part, k)
        rows_d = {"V2HT-KG (default)": {p: {k: (o[p][k], 0.0) for k in o[p]} for p in o},
                  "User history": {p: {k: (res["user_history"][p][k], 0.0) for k in o[p]} for p in o}}
        t = targets({"rows": {"deployed": rows_d}, "oracle": o})
        r10 = t["overall recall@10"]
        assert r10["ceiling"] == o["overall"]["recall@10"]
        assert r10["need"] == pytest.approx(res["user_history"]["overall"]["recall@10"] * 1.1)
    finally:
        data.oov[:] = saved


def test_category_shares_lift_and_baselines_on_hand_made_posts(tmp_path):
    write_dataset(tmp_path / "d", CAT_TAGS, CAT_POSTS)
    data = TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=8)
    assert data.categories[0] == ["food", "cooking"]
    test = data.rows["test"]
    paths = [data.categories[r] for r in test]
    # deployed: the 7 train + valid posts are known
    h = History(data, known_rows(data, "test", "deployed"))
    l1, l2, l3 = (m.toarray() for m in h.category_share(paths))
    # food: 4 posts (soup 3, noodle 2); food > cooking: 3 posts (soup 3, noodle 1)
    assert l1[0] == pytest.approx([3 / 5, 2 / 5, 0, 0])
    assert l2[0] == pytest.approx([3 / 4, 1 / 4, 0, 0])
    # music: 3 posts (dance 1, song 2); no second level on the post; a category no known post has: nothing
    assert l1[1] == pytest.approx([0, 0, 1 / 4, 2 / 4]) and not l2[1].any()
    assert not l1[2].any() and not l3.any()
    # the lift divides by the tag's share of all known posts, (count + 1) / (7 + 1)
    lift = h.category_lift(paths)[0].toarray()
    assert lift[0, 0] == pytest.approx(math.log1p((3 / 5) / (4 / 8)))
    assert lift[0, 1] == pytest.approx(math.log1p((2 / 5) / (3 / 8)))
    # strict: the valid post is not known, soup has 2 of food's 3 posts
    strict = History(data, known_rows(data, "test", "strict")).category_share(paths)[0].toarray()
    assert strict[0] == pytest.approx([2 / 4, 2 / 4, 0, 0])
    b = Baselines(data, "deployed")
    assert b.names[-2:] == ("category", "knn_category")
    sig = b.signals("test")
    both = b.raw("category", sig, {"w": [1.0, 1.0, 0.0]}).toarray()
    assert both[0] == pytest.approx(l1[0] + l2[0])
    with pytest.raises(DataError, match="tune category first"):
        b.params = {"knn": {"k": 10, "power": 1.0}}
        b.raw("knn_category", sig, {"a": 0.5})
    b.params["category"] = {"w": [1.0, 0.0, 0.0]}
    pure = b.raw("knn_category", sig, {"a": 1.0}).toarray()
    assert pure[0] == pytest.approx(l1[0] / l1[0].sum())
    res = b.evaluate("test")
    assert set(res) == set(b.names) and set(res["knn_category"]["params"]) == {"a", "valid"}
    assert len(res["category"]["params"]["w"]) == 3


def test_sets_without_categories_keep_the_five_baselines(data):
    assert Baselines(data).names == ("popularity", "user_history", "history_cooc", "knn", "knn_history")


def test_sets_without_known_authors_leave_out_the_user_baselines(tmp_path):
    """On a set whose every post is the unknown user's (kuairec), the user
    side would only repeat popularity and kNN: those rows are not listed."""
    write_prepared(tmp_path / "d", unknown_user=True, n_users=1, visual=False, acoustic=False, seed=4)
    data = TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=8)
    assert not data.has_users
    b = Baselines(data)
    assert b.names == ("popularity", "knn")
    assert set(b.evaluate("test")) == {"popularity", "knn"}
    with pytest.raises(DataError, match="unknown baseline 'user_history'"):
        b.raw("user_history", b.signals("test"))


def test_prototypes_are_each_tags_unit_mean_over_known_posts_only(data):
    known = known_rows(data, "test", "deployed")
    h = History(data, known)
    emb = np.random.default_rng(3).standard_normal((len(data.ds.posts), 16)).astype(np.float32)
    got = h.prototypes(emb)
    assert got.shape == (data.n_hashtags, 16) and got.dtype == np.float32
    # the CSC product it replaced: the same sums in the same order, so the same bits
    c = np.asarray(h.X.T @ emb[h.known], dtype=np.float32)
    assert np.array_equal(got, c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12))
    known_set = set(int(r) for r in known)
    for t in range(data.n_hashtags):
        rows = [r for r in range(len(data.ds.posts)) if r in known_set and t in data.tags[r]]
        if not rows:
            assert not got[t].any()  # a tag with no known use has no centroid
            continue
        mean = emb[rows].astype(np.float64).sum(0)
        assert np.allclose(got[t], mean / np.linalg.norm(mean), atol=1e-6)
