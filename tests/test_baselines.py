"""Baselines on a fixture where a user's history predicts the hashtags."""
import numpy as np
import pytest
import torch

from gnn_fixtures import write_prepared
from v2ht_kg.gnn.baselines import Baselines, random_scores
from v2ht_kg.gnn.data import TrainingData
from v2ht_kg.gnn.metrics import ranking_metrics


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    write_prepared(root / "d", n_users=8, n_tags=60, posts_per_user=25, seed=11, acoustic=False)
    return TrainingData.build(root / "d", None, seed=0, w2v_dim=8)


def test_baselines_beat_random(data):
    res = Baselines(data).evaluate("test")
    test_rows = data.rows["test"]
    rand = ranking_metrics(random_scores(len(test_rows), data.n_hashtags, seed=0), data.truth(test_rows))
    for name in ("user_history", "cooccurrence"):
        assert res[name]["overall"]["recall@10"] > rand["recall@10"] + 0.3, name
        assert res[name]["overall"]["ndcg@10"] > rand["ndcg@10"] + 0.2, name
    assert res["popularity"]["overall"]["recall@10"] > rand["recall@10"]
    assert res["user_history"]["overall"]["n_posts"] == len(test_rows)


def test_statistics_come_from_training_posts(data):
    b = Baselines(data)
    train = data.rows["train"]
    # co-occurrence counts by direct counting
    i, j = data.tags[next(r for r in train if len(data.tags[r]) >= 2)][:2]
    direct = sum(1 for r in train if i in data.tags[r] and j in data.tags[r])
    assert b.cooc[i, j] == direct and b.cooc[i, i] == 0
    # user history counts of user 2
    counts = np.zeros(data.n_hashtags)
    for r in train:
        if data.users[r] == 2:
            counts[data.tags[r]] += 1
    assert np.array_equal(b.hist[2].toarray()[0], counts)
    # popularity orders by training counts and never outweighs one history count
    s = b.scores("popularity", [int(train[0])])[0]
    assert torch.equal(torch.argsort(s, descending=True, stable=True),
                       torch.argsort(data.train_counts.double(), descending=True, stable=True))
    assert float(s.max()) <= 0.5


def test_unknown_user_backs_off_to_popularity(tmp_path):
    write_prepared(tmp_path / "d", unknown_user=True, n_users=3, visual=False, acoustic=False, seed=4)
    data = TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=8)
    b = Baselines(data)
    r = [int(x) for x in data.rows["test"] if data.users[x] == 0][:2]
    pop = b.scores("popularity", r)
    assert torch.equal(b.scores("user_history", r), pop)
    assert torch.equal(b.scores("cooccurrence", r), pop)
